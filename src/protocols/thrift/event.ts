import type { TransactionEvent } from '../../events/types';

/** A Thrift RPC transaction: a call with its reply, or a oneway call (docs/events.md, Thrift). */
export interface ThriftEvent extends TransactionEvent<'thrift'> {
  /** the method called; absent for a reply without a call */
  method?: string;
  /** the service (packetbeat's `path`): from the IDL files, or a multiplexed call's prefix */
  path?: string;
  /** the method and its arguments: `add(1: 1, 2: 2)` */
  query?: string;
  thrift: {
    /** the arguments as packetbeat renders them: `(1: 1, 2: "x")`, names for ids when the IDL has them */
    params?: string;
    service?: string;
    /** the result, when the reply holds no exception ('' for a void method) */
    return_value?: string;
    /** the exception the reply holds: a declared one (`(ouch: (1: 4, 2: "x"))`) or a TApplicationException */
    exceptions?: string;
    /** pktflow's own: the sequence id of the call (of the reply, for a reply without a call) */
    seq_id: number;
    /** pktflow's own: `call` or `oneway` */
    request_type?: string;
    /** pktflow's own: `reply` or `exception` (a TApplicationException) */
    response_type?: string;
    /** pktflow's own: `binary` or `compact` */
    protocol: string;
    /** pktflow's own: `framed` or `socket` (unframed) */
    transport: string;
  };
  /** `sendRequest`: the query */
  request?: string;
  /** `sendResponse`: the return value, or `Exceptions: ` and the exceptions */
  response?: string;
}
