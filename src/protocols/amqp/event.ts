import type { TransactionEvent } from '../../events/types';

/**
 * An AMQP 0-9-1 transaction (docs/events.md, AMQP): a synchronous method with its
 * `-ok` on the same channel, an asynchronous method alone, or a message carried with
 * its content (basic.publish, basic.deliver, basic.return, basic.get with its get-ok).
 */
export interface AmqpEvent extends TransactionEvent<'amqp'> {
  /** the method, as packetbeat names it: `queue.declare`, `basic.publish`, ... (`basic.get-empty` for a get that found nothing) */
  method: string;
  /** `sendRequest`: the method and its subject (`queue.declare orders`); a published message's body */
  request?: string;
  /** `sendResponse`: `OK` when answered; a delivered, returned or got message's body */
  response?: string;
  amqp: AmqpFields;
}

/** the arguments of the request and its reply, merged (the reply's win, as packetbeat merges them), and the content's properties */
export interface AmqpFields {
  /** the channel the methods were on (pktflow) */
  channel: number;
  'reply-code'?: number;
  'reply-text'?: string;
  'class-id'?: number;
  'method-id'?: number;
  exchange?: string;
  'exchange-type'?: string;
  passive?: boolean;
  durable?: boolean;
  exclusive?: boolean;
  'auto-delete'?: boolean;
  /** exchange.declare (pktflow) */
  internal?: boolean;
  'no-wait'?: boolean;
  'consumer-tag'?: string;
  'delivery-tag'?: number;
  'message-count'?: number;
  'consumer-count'?: number;
  'routing-key'?: string;
  'no-ack'?: boolean;
  'no-local'?: boolean;
  'if-unused'?: boolean;
  'if-empty'?: boolean;
  queue?: string;
  redelivered?: boolean;
  multiple?: boolean;
  /** basic.reject, basic.nack, basic.recover */
  requeue?: boolean;
  arguments?: AmqpTable;
  mandatory?: boolean;
  immediate?: boolean;
  /** exchange.bind / unbind */
  source?: string;
  destination?: string;
  /** basic.qos */
  'prefetch-size'?: number;
  'prefetch-count'?: number;
  global?: boolean;
  /** channel.flow */
  active?: boolean;
  /** connection.start */
  'version-major'?: number;
  'version-minor'?: number;
  'server-properties'?: AmqpTable;
  mechanisms?: string;
  locales?: string;
  /** connection.start-ok */
  'client-properties'?: AmqpTable;
  mechanism?: string;
  locale?: string;
  /** connection.tune / tune-ok */
  'channel-max'?: number;
  'frame-max'?: number;
  heartbeat?: number;
  /** connection.open */
  'virtual-host'?: string;
  /** connection.blocked, connection.update-secret (pktflow) */
  reason?: string;
  /** content properties */
  'content-type'?: string;
  'content-encoding'?: string;
  headers?: AmqpTable;
  'delivery-mode'?: string;
  priority?: number;
  'correlation-id'?: string;
  'reply-to'?: string;
  expiration?: string;
  'message-id'?: string;
  timestamp?: string;
  type?: string;
  'user-id'?: string;
  'app-id'?: string;
  /** the content's body size from its header (pktflow) */
  'body-size'?: number;
}

/** a field table as packetbeat renders it: arrays as tables keyed "0", "1", ...; a void value as null */
export interface AmqpTable {
  [key: string]: string | number | boolean | null | AmqpTable;
}
