import type { TransactionEvent } from '../../events/types';

/** A memcache transaction, text or binary protocol, over TCP or UDP (docs/events.md, Memcache). */
export interface MemcacheEvent extends Omit<TransactionEvent<'memcache'>, 'event'> {
  event: TransactionEvent<'memcache'>['event'] & {
    /** `memcache.` and the request's type in lower case: `memcache.load`, `memcache.store`, ... (packetbeat's) */
    action?: string;
  };
  /** the request's command in upper case: `GET`, `SET`, ... */
  method?: string;
  /** text: the command line; binary: the command and its key */
  query?: string;
  /** the request's first key */
  resource?: string;
  memcache: {
    protocol_type: 'text' | 'binary';
    request?: MemcacheRequest;
    response?: MemcacheResponse;
  };
}

/** what requests and responses have in common */
export interface MemcacheMessageFields {
  command: string;
  type: string;
  opcode?: string;
  opcode_value?: number;
  opaque?: number;
  keys?: string[];
  count_values?: number;
  values?: string[];
  bytes?: number;
  flags?: number;
  cas_unique?: number;
  value?: number;
}

export interface MemcacheRequest extends MemcacheMessageFields {
  line?: string;
  vbucket?: number;
  quiet?: boolean;
  exptime?: number;
  delta?: number;
  initial?: number;
  verbosity?: number;
  raw_args?: string;
  source_class?: number;
  dest_class?: number;
  automove?: string;
  sleep_us?: number;
  noreply?: boolean;
}

export interface MemcacheResponse extends MemcacheMessageFields {
  status?: string;
  status_code?: number;
  error_msg?: string;
  stats?: { name: string; value: string }[];
  version?: string;
}
