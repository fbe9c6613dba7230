/**
 * The methods of AMQP 0-9-1 and RabbitMQ's extensions (exchange.bind/unbind,
 * basic.nack, confirm.select, connection.blocked/unblocked/update-secret): their
 * names, how they pair, and their arguments as packetbeat names them.
 */
import { Reader } from './wire';

/** how a method takes part in a transaction */
export const enum Kind {
  /** a synchronous request: answered by one of `replies` on the same channel */
  request = 0,
  /** a reply to a synchronous request */
  reply = 1,
  /** asynchronous: a transaction of its own (basic.ack, basic.publish, ...) */
  async = 2,
}

export interface MethodDef {
  readonly key: number;
  readonly name: string;
  readonly kind: Kind;
  /** the replies that answer it (keys) */
  readonly replies: readonly number[];
  /** a content header and body frames follow it */
  readonly content: boolean;
  /** connection set-up and flow control: left out by `hideConnectionInformation` (packetbeat's list) */
  readonly hidden: boolean;
  /** its arguments into packetbeat's fields; returns packetbeat's `request` text after the method name ('' none) */
  readonly args: (r: Reader, f: Record<string, unknown>, parseArguments: boolean) => string;
}

export const methodKey = (classId: number, methodId: number) => classId * 65536 + methodId;

const METHODS = new Map<number, MethodDef>();

function def(classId: number, methodId: number, name: string, kind: Kind, replies: number[], args: MethodDef['args'] = () => '', o: { content?: boolean; hidden?: boolean } = {}): void {
  const key = methodKey(classId, methodId);
  METHODS.set(key, { key, name, kind, replies: replies.map((m) => methodKey(classId, m)), content: o.content ?? false, hidden: o.hidden ?? false, args });
}

export function methodDef(classId: number, methodId: number): MethodDef | undefined {
  return METHODS.get(methodKey(classId, methodId));
}

/** bits b0..b4 of an octet */
function bits(r: Reader, f: Record<string, unknown>, names: string[]): void {
  const v = r.u8();
  for (let i = 0; i < names.length; i++) f[names[i]] = (v & (1 << i)) !== 0;
}

/** a table argument, when asked for and not empty */
function args(r: Reader, f: Record<string, unknown>, parse: boolean, name = 'arguments'): void {
  if (!parse) return;
  const t = r.table();
  if (t !== null) f[name] = t;
}

function closeInfo(r: Reader, f: Record<string, unknown>): string {
  f['reply-code'] = r.u16();
  f['reply-text'] = r.shortstr();
  f['class-id'] = r.u16();
  f['method-id'] = r.u16();
  return '';
}

const R = Kind.request;
const OK = Kind.reply;
const A = Kind.async;
const hidden = { hidden: true };

// connection (10)
def(10, 10, 'connection.start', R, [11], (r, f, p) => {
  f['version-major'] = r.u8();
  f['version-minor'] = r.u8();
  const props = r.table();
  if (props !== null && p) f['server-properties'] = props;
  f.mechanisms = r.longstr();
  f.locales = r.longstr();
  return '';
}, hidden);
def(10, 11, 'connection.start-ok', OK, [], (r, f, p) => {
  const props = r.table();
  if (props !== null && p) f['client-properties'] = props;
  f.mechanism = r.shortstr();
  r.skipLongstr(); // the SASL response: credentials
  f.locale = r.shortstr();
  return '';
}, hidden);
def(10, 20, 'connection.secure', R, [21], () => '', hidden);
def(10, 21, 'connection.secure-ok', OK, [], () => '', hidden);
const tune = (r: Reader, f: Record<string, unknown>) => {
  f['channel-max'] = r.u16();
  f['frame-max'] = r.u32();
  f.heartbeat = r.u16();
  return '';
};
def(10, 30, 'connection.tune', R, [31], tune, hidden);
def(10, 31, 'connection.tune-ok', OK, [], tune, hidden);
def(10, 40, 'connection.open', R, [41], (r, f) => {
  f['virtual-host'] = r.shortstr();
  return '';
}, hidden);
def(10, 41, 'connection.open-ok', OK, [], () => '', hidden);
def(10, 50, 'connection.close', R, [51], closeInfo);
def(10, 51, 'connection.close-ok', OK, []);
def(10, 60, 'connection.blocked', A, [], (r, f) => {
  f.reason = r.shortstr();
  return '';
}, hidden);
def(10, 61, 'connection.unblocked', A, [], () => '', hidden);
def(10, 70, 'connection.update-secret', R, [71], (r, f) => {
  r.skipLongstr();
  f.reason = r.shortstr();
  return '';
}, hidden);
def(10, 71, 'connection.update-secret-ok', OK, [], () => '', hidden);

// channel (20)
def(20, 10, 'channel.open', R, [11], () => '', hidden);
def(20, 11, 'channel.open-ok', OK, [], () => '', hidden);
const active = (r: Reader, f: Record<string, unknown>) => {
  bits(r, f, ['active']);
  return '';
};
def(20, 20, 'channel.flow', R, [21], active, hidden);
def(20, 21, 'channel.flow-ok', OK, [], active, hidden);
def(20, 40, 'channel.close', R, [41], closeInfo);
def(20, 41, 'channel.close-ok', OK, []);

// exchange (40)
def(40, 10, 'exchange.declare', R, [11], (r, f, p) => {
  r.u16();
  const exchange = r.shortstr();
  const type = r.shortstr();
  f.exchange = exchange;
  f['exchange-type'] = type === '' ? 'direct' : type;
  bits(r, f, ['passive', 'durable', 'auto-delete', 'internal', 'no-wait']);
  args(r, f, p);
  return exchange;
});
def(40, 11, 'exchange.declare-ok', OK, []);
def(40, 20, 'exchange.delete', R, [21], (r, f) => {
  r.u16();
  const exchange = r.shortstr();
  f.exchange = exchange;
  bits(r, f, ['if-unused', 'no-wait']);
  return exchange;
});
def(40, 21, 'exchange.delete-ok', OK, []);
const exchangeBind = (r: Reader, f: Record<string, unknown>, p: boolean) => {
  r.u16();
  const destination = r.shortstr();
  const source = r.shortstr();
  f.destination = destination;
  f.source = source;
  f['routing-key'] = r.shortstr();
  bits(r, f, ['no-wait']);
  args(r, f, p);
  return `${source} ${destination}`;
};
def(40, 30, 'exchange.bind', R, [31], exchangeBind);
def(40, 31, 'exchange.bind-ok', OK, []);
def(40, 40, 'exchange.unbind', R, [51], exchangeBind);
def(40, 51, 'exchange.unbind-ok', OK, []);

// queue (50)
def(50, 10, 'queue.declare', R, [11], (r, f, p) => {
  r.u16();
  const queue = r.shortstr();
  f.queue = queue;
  bits(r, f, ['passive', 'durable', 'exclusive', 'auto-delete', 'no-wait']);
  args(r, f, p);
  return queue;
});
def(50, 11, 'queue.declare-ok', OK, [], (r, f) => {
  f.queue = r.shortstr();
  f['message-count'] = r.u32();
  f['consumer-count'] = r.u32();
  return '';
});
const queueBind = (withBits: boolean) => (r: Reader, f: Record<string, unknown>, p: boolean) => {
  r.u16();
  const queue = r.shortstr();
  const exchange = r.shortstr();
  f.queue = queue;
  if (exchange !== '') f.exchange = exchange;
  f['routing-key'] = r.shortstr();
  if (withBits) bits(r, f, ['no-wait']);
  args(r, f, p);
  return `${queue} ${exchange}`;
};
def(50, 20, 'queue.bind', R, [21], queueBind(true));
def(50, 21, 'queue.bind-ok', OK, []);
def(50, 30, 'queue.purge', R, [31], (r, f) => {
  r.u16();
  const queue = r.shortstr();
  f.queue = queue;
  bits(r, f, ['no-wait']);
  return queue;
});
const messageCount = (r: Reader, f: Record<string, unknown>) => {
  f['message-count'] = r.u32();
  return '';
};
def(50, 31, 'queue.purge-ok', OK, [], messageCount);
def(50, 40, 'queue.delete', R, [41], (r, f) => {
  r.u16();
  const queue = r.shortstr();
  f.queue = queue;
  bits(r, f, ['if-unused', 'if-empty', 'no-wait']);
  return queue;
});
def(50, 41, 'queue.delete-ok', OK, [], messageCount);
def(50, 50, 'queue.unbind', R, [51], queueBind(false));
def(50, 51, 'queue.unbind-ok', OK, []);

// basic (60)
def(60, 10, 'basic.qos', R, [11], (r, f) => {
  f['prefetch-size'] = r.u32();
  f['prefetch-count'] = r.u16();
  bits(r, f, ['global']);
  return '';
}, hidden);
def(60, 11, 'basic.qos-ok', OK, [], () => '', hidden);
def(60, 20, 'basic.consume', R, [21], (r, f, p) => {
  r.u16();
  const queue = r.shortstr();
  f.queue = queue;
  f['consumer-tag'] = r.shortstr();
  bits(r, f, ['no-local', 'no-ack', 'exclusive', 'no-wait']);
  args(r, f, p);
  return queue;
});
const consumerTag = (r: Reader, f: Record<string, unknown>) => {
  f['consumer-tag'] = r.shortstr();
  return '';
};
def(60, 21, 'basic.consume-ok', OK, [], consumerTag);
def(60, 30, 'basic.cancel', R, [31], (r, f) => {
  const tag = r.shortstr();
  f['consumer-tag'] = tag;
  bits(r, f, ['no-wait']);
  return tag;
});
def(60, 31, 'basic.cancel-ok', OK, [], consumerTag);
def(60, 40, 'basic.publish', A, [], (r, f) => {
  r.u16();
  const exchange = r.shortstr();
  if (exchange !== '') f.exchange = exchange;
  f['routing-key'] = r.shortstr();
  bits(r, f, ['mandatory', 'immediate']);
  return '';
}, { content: true });
def(60, 50, 'basic.return', A, [], (r, f) => {
  f['reply-code'] = r.u16();
  f['reply-text'] = r.shortstr();
  const exchange = r.shortstr();
  if (exchange !== '') f.exchange = exchange;
  f['routing-key'] = r.shortstr();
  return '';
}, { content: true });
def(60, 60, 'basic.deliver', A, [], (r, f) => {
  f['consumer-tag'] = r.shortstr();
  f['delivery-tag'] = r.u64();
  bits(r, f, ['redelivered']);
  const exchange = r.shortstr();
  if (exchange !== '') f.exchange = exchange;
  f['routing-key'] = r.shortstr();
  return '';
}, { content: true });
def(60, 70, 'basic.get', R, [71, 72], (r, f) => {
  r.u16();
  const queue = r.shortstr();
  f.queue = queue;
  bits(r, f, ['no-ack']);
  return queue;
});
def(60, 71, 'basic.get-ok', OK, [], (r, f) => {
  f['delivery-tag'] = r.u64();
  bits(r, f, ['redelivered']);
  const exchange = r.shortstr();
  if (exchange !== '') f.exchange = exchange;
  f['routing-key'] = r.shortstr();
  f['message-count'] = r.u32();
  return '';
}, { content: true });
def(60, 72, 'basic.get-empty', OK, []);
def(60, 80, 'basic.ack', A, [], (r, f) => {
  f['delivery-tag'] = r.u64();
  bits(r, f, ['multiple']);
  return '';
});
def(60, 90, 'basic.reject', A, [], (r, f) => {
  const tag = r.u64();
  f['delivery-tag'] = tag;
  bits(r, f, ['requeue']);
  return String(tag);
});
const requeue = (r: Reader, f: Record<string, unknown>) => {
  bits(r, f, ['requeue']);
  return '';
};
def(60, 100, 'basic.recover-async', A, [], requeue);
def(60, 110, 'basic.recover', R, [111], requeue);
def(60, 111, 'basic.recover-ok', OK, []);
def(60, 120, 'basic.nack', A, [], (r, f) => {
  f['delivery-tag'] = r.u64();
  bits(r, f, ['multiple', 'requeue']);
  return '';
});

// confirm (85)
def(85, 10, 'confirm.select', R, [11], (r, f) => {
  bits(r, f, ['no-wait']);
  return '';
});
def(85, 11, 'confirm.select-ok', OK, []);

// tx (90)
def(90, 10, 'tx.select', R, [11]);
def(90, 11, 'tx.select-ok', OK, []);
def(90, 20, 'tx.commit', R, [21]);
def(90, 21, 'tx.commit-ok', OK, []);
def(90, 30, 'tx.rollback', R, [31]);
def(90, 31, 'tx.rollback-ok', OK, []);

/** every method's name (for counters and tests) */
export const METHOD_NAMES: readonly string[] = [...METHODS.values()].map((m) => m.name);
