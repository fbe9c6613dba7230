/**
 * Writes fixtures/amqp/edge-*.pcap: AMQP 0-9-1 conversations real clients do not
 * produce on demand: packet loss inside a body, inside and between method frames;
 * captures that start inside a connection; a broker on a port no protocol claims;
 * content of two channels interleaved, frames split across segments at odd places,
 * heartbeats, requests answered by a connection.close; bytes that are not AMQP
 * (a bad frame-end octet, an unknown frame type, an unknown method, a body with no
 * message, an AMQP 1.0 connection). Deterministic: `npx tsx test/gen/amqp.ts`
 * rewrites the files byte-identical. The frame builders are used by test/amqp.test.ts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { writePcap, type GenFrame, etherFrames as frames, TcpScript as Conv } from './packets';

const u8 = (n: number) => Buffer.from([n]);
const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const u64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
export const shortstr = (s: string) => Buffer.concat([u8(Buffer.byteLength(s)), Buffer.from(s)]);
export const longstr = (s: string | Buffer) => {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  return Buffer.concat([u32(b.length), b]);
};

/** a field table of strings (S), numbers (I, or l past 32 bits), booleans (t) and tables (F) */
export function table(t: Record<string, unknown>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(t)) {
    parts.push(shortstr(k));
    if (typeof v === 'string') parts.push(Buffer.from('S'), longstr(v));
    else if (typeof v === 'boolean') parts.push(Buffer.from('t'), u8(v ? 1 : 0));
    else if (typeof v === 'number' && Number.isInteger(v) && Math.abs(v) < 2 ** 31) parts.push(Buffer.from('I'), u32(v >>> 0));
    else if (typeof v === 'number') parts.push(Buffer.from('l'), u64(v));
    else parts.push(Buffer.from('F'), table(v as Record<string, unknown>));
  }
  return longstr(Buffer.concat(parts));
}

export function frame(type: number, channel: number, payload: Buffer): Buffer {
  return Buffer.concat([u8(type), u16(channel), u32(payload.length), payload, u8(0xce)]);
}

export const method = (channel: number, classId: number, methodId: number, ...args: Buffer[]) => frame(1, channel, Buffer.concat([u16(classId), u16(methodId), ...args]));
export const heartbeat = () => frame(8, 0, Buffer.alloc(0));
export const PROTOCOL_HEADER = Buffer.from('AMQP\x00\x00\x09\x01', 'latin1');

/** a content header of class basic with content-type (and delivery-mode) when given */
export function contentHeader(channel: number, bodySize: number, props: { contentType?: string; deliveryMode?: number; messageId?: string } = {}): Buffer {
  let flags = 0;
  const list: Buffer[] = [];
  if (props.contentType !== undefined) {
    flags |= 0x8000;
    list.push(shortstr(props.contentType));
  }
  if (props.deliveryMode !== undefined) {
    flags |= 0x1000;
    list.push(u8(props.deliveryMode));
  }
  if (props.messageId !== undefined) {
    flags |= 0x0080;
    list.push(shortstr(props.messageId));
  }
  return frame(2, channel, Buffer.concat([u16(60), u16(0), u64(bodySize), u16(flags), ...list]));
}
export const body = (channel: number, data: Buffer | string) => frame(3, channel, typeof data === 'string' ? Buffer.from(data) : data);

// methods, by the names the spec gives them
export const M = {
  start: () => method(0, 10, 10, u8(0), u8(9), table({ product: 'RabbitMQ', version: '3.10.8', capabilities: { publisher_confirms: true } }), longstr('PLAIN AMQPLAIN'), longstr('en_US')),
  startOk: () => method(0, 10, 11, table({ product: 'gen' }), shortstr('PLAIN'), longstr('\0guest\0guest'), shortstr('en_US')),
  tune: () => method(0, 10, 30, u16(2047), u32(131072), u16(60)),
  tuneOk: () => method(0, 10, 31, u16(2047), u32(131072), u16(60)),
  open: () => method(0, 10, 40, shortstr('/'), shortstr(''), u8(0)),
  openOk: () => method(0, 10, 41, shortstr('')),
  chOpen: (ch: number) => method(ch, 20, 10, shortstr('')),
  chOpenOk: (ch: number) => method(ch, 20, 11, longstr('')),
  close: (ch: number, code: number, text: string, cls = 0, mth = 0) => method(ch, ch === 0 ? 10 : 20, ch === 0 ? 50 : 40, u16(code), shortstr(text), u16(cls), u16(mth)),
  closeOk: (ch: number) => method(ch, ch === 0 ? 10 : 20, ch === 0 ? 51 : 41),
  queueDeclare: (ch: number, q: string, bits = 0, args: Record<string, unknown> = {}) => method(ch, 50, 10, u16(0), shortstr(q), u8(bits), table(args)),
  queueDeclareOk: (ch: number, q: string, messages = 0, consumers = 0) => method(ch, 50, 11, shortstr(q), u32(messages), u32(consumers)),
  queueDelete: (ch: number, q: string) => method(ch, 50, 40, u16(0), shortstr(q), u8(0)),
  queueDeleteOk: (ch: number, n: number) => method(ch, 50, 41, u32(n)),
  publish: (ch: number, exchange: string, key: string, bits = 0) => method(ch, 60, 40, u16(0), shortstr(exchange), shortstr(key), u8(bits)),
  deliver: (ch: number, tag: string, dtag: number, exchange: string, key: string) => method(ch, 60, 60, shortstr(tag), u64(dtag), u8(0), shortstr(exchange), shortstr(key)),
  get: (ch: number, q: string) => method(ch, 60, 70, u16(0), shortstr(q), u8(0)),
  getOk: (ch: number, dtag: number, key: string, count: number) => method(ch, 60, 71, u64(dtag), u8(0), shortstr(''), shortstr(key), u32(count)),
  getEmpty: (ch: number) => method(ch, 60, 72, shortstr('')),
  ack: (ch: number, dtag: number, multiple = false) => method(ch, 60, 80, u64(dtag), u8(multiple ? 1 : 0)),
  consume: (ch: number, q: string, tag = '') => method(ch, 60, 20, u16(0), shortstr(q), shortstr(tag), u8(0), table({})),
  consumeOk: (ch: number, tag: string) => method(ch, 60, 21, shortstr(tag)),
};

/** the connection's opening, both ways, and channel `ch` opened */
export function opening(ch = 1): [Buffer, Buffer][] {
  return [
    [PROTOCOL_HEADER, M.start()],
    [M.startOk(), M.tune()],
    [Buffer.concat([M.tuneOk(), M.open()]), M.openOk()],
    [M.chOpen(ch), M.chOpenOk(ch)],
  ];
}

const text = (n: number) => Buffer.from(Array.from({ length: Math.ceil(n / 10) }, (_, i) => String(i).padStart(9, '0') + '|').join('').slice(0, n));

/** packet loss: inside a body (the place is kept), inside a method frame (searched for again), a reply lost whole */
function gaps(): GenFrame[] {
  const big = text(6000);
  const d = body(1, big);
  const a = new Conv('10.12.0.1', 51001, '10.12.0.2', 5672).pairs(opening());
  a.send(0, M.consume(1, 'q', 'c1')).send(1, M.consumeOk(1, 'c1'));
  a.send(1, Buffer.concat([M.deliver(1, 'c1', 1, '', 'q'), contentHeader(1, 6000, { contentType: 'text/plain' })]));
  a.send(1, d.subarray(0, 2000)).lose(1, d.subarray(2000, 4000)).send(1, d.subarray(4000));
  a.send(0, M.ack(1, 1));
  a.send(0, M.queueDeclare(1, 'after-body-loss')).send(1, M.queueDeclareOk(1, 'after-body-loss'));
  // a segment lost across two method frames: the rest of the second is passed over, the next frame found
  const twoReplies = Buffer.concat([M.queueDeclareOk(1, 'x1'), M.queueDeclareOk(1, 'x2'), M.queueDeclareOk(1, 'x3')]);
  a.send(0, Buffer.concat([M.queueDeclare(1, 'x1'), M.queueDeclare(1, 'x2'), M.queueDeclare(1, 'x3')]));
  a.send(1, twoReplies.subarray(0, 10)).lose(1, twoReplies.subarray(10, 40)).send(1, twoReplies.subarray(40));
  a.send(0, M.get(1, 'q')).send(1, M.getEmpty(1));
  // a publish whose content header is lost: the message is emitted with what was read
  const pub = Buffer.concat([M.publish(1, 'ex', 'rk'), contentHeader(1, 5, { contentType: 'text/plain' }), body(1, 'hello')]);
  a.send(0, pub.subarray(0, 30)).lose(0, pub.subarray(30, 50)).send(0, pub.subarray(50));
  a.send(0, M.close(0, 200, 'bye')).send(1, M.closeOk(0));
  return frames(a.close());
}

/** captures that begin inside connections: inside a body frame, inside a method frame */
function midstream(): GenFrame[] {
  const m = new Conv('10.12.1.1', 51101, '10.12.1.2', 5672, false, [70000, 90000]);
  const d = body(1, text(500));
  m.send(1, d.subarray(200));
  m.send(1, Buffer.concat([M.deliver(1, 'c1', 7, 'ex', 'rk'), contentHeader(1, 3), body(1, 'abc')]));
  m.send(0, M.ack(1, 7));
  m.send(0, M.queueDeclare(1, 'mid')).send(1, M.queueDeclareOk(1, 'mid', 3, 1));
  const n = new Conv('10.12.1.1', 51102, '10.12.1.2', 5672, false, [123, 456]);
  const decl = M.queueDeclare(2, 'cut');
  n.send(0, decl.subarray(5)).send(1, M.queueDeclareOk(2, 'cut'));
  n.send(0, M.get(2, 'cut')).send(1, M.getEmpty(2));
  return frames([...m.close(), ...n.close()]);
}

/** a broker on ports no protocol claims: found by the protocol header, and (mid-stream) by a method frame */
function otherPort(): GenFrame[] {
  const a = new Conv('10.12.2.1', 51201, '10.12.2.2', 15672).pairs(opening());
  a.send(0, M.queueDeclare(1, 'elsewhere')).send(1, M.queueDeclareOk(1, 'elsewhere'));
  a.send(0, M.close(0, 200, 'bye')).send(1, M.closeOk(0));
  const b = new Conv('10.12.2.1', 51202, '10.12.2.2', 25672, false);
  b.send(0, M.queueDelete(1, 'found-mid-stream')).send(1, M.queueDeleteOk(1, 4));
  return frames([...a.close(), ...b.close()]);
}

/** what real clients do, at odd places: interleaved content of two channels, frames cut across segments, many per segment, heartbeats, a connection.close answering requests */
function interleaved(): GenFrame[] {
  const c = new Conv('10.12.3.1', 51301, '10.12.3.2', 5672).pairs(opening(1));
  c.send(0, M.chOpen(2)).send(1, M.chOpenOk(2));
  // channel 1's message and channel 2's, frames interleaved (allowed between channels)
  const all = Buffer.concat([M.publish(1, 'ex', 'one'), M.publish(2, 'ex', 'two'), contentHeader(2, 3, { contentType: 'text/plain' }), contentHeader(1, 6, { contentType: 'application/json', deliveryMode: 2 }), body(1, '{"a":'), body(2, 'two'), body(1, '1'), heartbeat()]);
  // cut into pieces of 7 bytes: no frame is whole in a segment
  for (let i = 0; i < all.length; i += 7) c.send(0, all.subarray(i, i + 7));
  c.send(1, heartbeat());
  // three requests on two channels in one segment; their replies in one segment, channel 2's first
  c.send(0, Buffer.concat([M.queueDeclare(1, 'a'), M.queueDeclare(2, 'b'), M.get(1, 'a')]));
  c.send(1, Buffer.concat([M.queueDeclareOk(2, 'b'), M.queueDeclareOk(1, 'a', 1), M.getOk(1, 1, 'a', 0), contentHeader(1, 0)]));
  // a no-wait declare; a reply nobody asked for
  c.send(0, M.queueDeclare(1, 'nowait', 0x10));
  c.send(1, M.queueDeleteOk(1, 0));
  // the server closes the connection while requests wait on two channels
  c.send(0, Buffer.concat([M.queueDeclare(1, 'p1'), M.queueDeclare(2, 'p2')]));
  c.send(1, M.close(0, 320, 'CONNECTION_FORCED - broker forced connection closure with reason \'shutdown\''));
  c.send(0, M.closeOk(0));
  return frames(c.close());
}

/** bytes that are not AMQP 0-9-1, each followed by a recovery */
function violations(): GenFrame[] {
  const v = new Conv('10.12.4.1', 51401, '10.12.4.2', 5672).pairs(opening());
  // a frame whose frame-end octet is wrong
  const bad = M.queueDeclareOk(1, 'bad');
  bad[bad.length - 1] = 0x00;
  v.send(0, M.queueDeclare(1, 'bad')).send(1, bad);
  v.send(0, M.queueDeclare(1, 'good')).send(1, M.queueDeclareOk(1, 'good'));
  // an unknown frame type, then an unknown method, then a body frame with no message before it
  v.send(0, Buffer.from([0x09, 0, 1, 0, 0, 0, 2, 0xaa, 0xbb, 0xce]));
  v.send(0, method(1, 60, 99, u8(0)));
  v.send(0, body(1, 'stray'));
  v.send(0, M.queueDelete(1, 'good')).send(1, M.queueDeleteOk(1, 0));
  v.send(0, M.close(0, 200, 'bye')).send(1, M.closeOk(0));
  // AMQP 1.0: its header, then frames of another format: not analysed
  const w = new Conv('10.12.4.1', 51402, '10.12.4.2', 5672).send(0, Buffer.from('AMQP\x00\x01\x00\x00', 'latin1')).send(1, Buffer.from('AMQP\x00\x01\x00\x00', 'latin1'));
  w.send(0, Buffer.from('0000001f02000000005310c0120100a00e706b74666c6f772d7465737400', 'hex'));
  return frames([...v.close(), ...w.close()]);
}

export function amqpEdgeCases(): Record<string, Buffer> {
  return {
    'edge-gaps.pcap': writePcap(gaps()),
    'edge-midstream.pcap': writePcap(midstream()),
    'edge-other-port.pcap': writePcap(otherPort()),
    'edge-interleaved.pcap': writePcap(interleaved()),
    'edge-violations.pcap': writePcap(violations()),
  };
}

if (require.main === module) {
  const dir = path.join(__dirname, '..', '..', 'fixtures', 'amqp');
  mkdirSync(dir, { recursive: true });
  const files = amqpEdgeCases();
  for (const [name, data] of Object.entries(files)) writeFileSync(path.join(dir, name), data);
  console.log(`wrote ${Object.keys(files).join(', ')} to ${dir}`);
}
