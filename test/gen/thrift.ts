/**
 * Writes fixtures/thrift/edge-*.pcap: Thrift conversations the fixtures' client does
 * not produce on demand: packet loss inside a string, inside a frame and between
 * unframed messages; captures that start inside a connection; a server on another
 * port; replies out of order and a client that sends every call with sequence id 0;
 * multiplexed method names; messages that break the protocol. The messages are
 * encoded by the `thrift` npm library's own protocol writers (TBinaryProtocol,
 * TCompactProtocol, TFramedTransport). Deterministic: `npx tsx test/gen/thrift.ts`
 * rewrites the files byte-identical.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { writePcap, type GenFrame, etherFrames as frames, TcpScript as Conv } from './packets';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const thrift = require('thrift');
const T = thrift.Thrift.Type;

/** a field of a struct: id, type and a writer of its value */
export type Field = [id: number, type: number, write: (p: any) => void];

export const i32 = (id: number, v: number): Field => [id, T.I32, (p) => p.writeI32(v)];
export const str = (id: number, v: string | Buffer): Field => [id, T.STRING, (p) => (typeof v === 'string' ? p.writeString(v) : p.writeBinary(v))];
export const bool = (id: number, v: boolean): Field => [id, T.BOOL, (p) => p.writeBool(v)];
export const struct = (id: number, fields: Field[]): Field => [id, T.STRUCT, (p) => writeStruct(p, fields)];

export function writeStruct(p: any, fields: Field[]): void {
  p.writeStructBegin('s');
  for (const [id, type, w] of fields) {
    p.writeFieldBegin('f', type, id);
    w(p);
    p.writeFieldEnd();
  }
  p.writeFieldStop();
  p.writeStructEnd();
}

export type Proto = 'binary' | 'compact';

/** one message as the library writes it: `framed` through TFramedTransport, else TBufferedTransport */
export function message(proto: Proto, framed: boolean, name: string, type: number, seq: number, fields: Field[]): Buffer {
  const out: Buffer[] = [];
  const tr = framed ? new thrift.TFramedTransport(undefined, (b: Buffer) => out.push(b)) : new thrift.TBufferedTransport(undefined, (b: Buffer) => out.push(b));
  const p = proto === 'binary' ? new thrift.TBinaryProtocol(tr) : new thrift.TCompactProtocol(tr);
  p.writeMessageBegin(name, type, seq);
  writeStruct(p, fields);
  p.writeMessageEnd();
  p.flush();
  return Buffer.concat(out);
}

export const CALL = 1;
export const REPLY = 2;
export const EXCEPTION = 3;
export const ONEWAY = 4;

const call = (proto: Proto, framed: boolean, name: string, seq: number, ...f: Field[]) => message(proto, framed, name, CALL, seq, f);
const reply = (proto: Proto, framed: boolean, name: string, seq: number, ...f: Field[]) => message(proto, framed, name, REPLY, seq, f);

const text = (n: number) => Array.from({ length: Math.ceil(n / 10) }, (_, i) => `${String(i).padStart(9, '0')}|`).join('').slice(0, n);

/** packet loss: inside a long string (place kept), inside a frame (next frame read), between unframed messages (resynchronised) */
function gaps(): GenFrame[] {
  const big = reply('binary', false, 'get', 2, str(0, text(6000)));
  const a = new Conv('10.12.0.1', 51001, '10.12.0.2', 9090).send(0, call('binary', false, 'get', 1, str(1, 'k'))).send(1, reply('binary', false, 'get', 1, str(0, 'v')));
  a.send(0, call('binary', false, 'get', 2, str(1, 'big'))).send(1, big.subarray(0, 2000)).lose(1, big.subarray(2000, 4000)).send(1, big.subarray(4000));
  a.send(0, call('binary', false, 'ping', 3)).send(1, reply('binary', false, 'ping', 3));
  // framed: a segment lost inside a call's arguments: the call is cut, its reply still pairs by sequence id
  const fc = call('compact', true, 'put', 1, str(1, 'key'), str(2, text(3000)), i32(3, 7));
  const b = new Conv('10.12.0.1', 51002, '10.12.0.2', 9090).send(0, fc.subarray(0, 30)).lose(0, fc.subarray(30, 1500)).send(0, fc.subarray(1500));
  b.send(1, reply('compact', true, 'put', 1, bool(0, true)));
  b.send(0, call('compact', true, 'ping', 2)).send(1, reply('compact', true, 'ping', 2));
  // unframed: a whole reply lost, and the start of the next: the one after is found again
  const c = new Conv('10.12.0.1', 51003, '10.12.0.2', 9090).send(0, call('binary', false, 'a', 1), call('binary', false, 'b', 2), call('binary', false, 'c', 3));
  const rb = reply('binary', false, 'b', 2, i32(0, 2));
  c.send(1, reply('binary', false, 'a', 1, i32(0, 1))).lose(1, rb).lose(1, reply('binary', false, 'c', 3, i32(0, 3)).subarray(0, 5));
  c.send(1, reply('binary', false, 'c', 3, i32(0, 3)).subarray(5));
  c.send(0, call('binary', false, 'd', 4)).send(1, reply('binary', false, 'd', 4, i32(0, 4)));
  return frames([...a.close(), ...b.close(), ...c.close()]);
}

/** captures that begin inside connections: in a reply, in a call's string */
function midstream(): GenFrame[] {
  const r = reply('binary', false, 'get', 9, str(0, 'the value that was asked for before the capture began'));
  const m = new Conv('10.12.1.1', 51101, '10.12.1.2', 9090, false, [70000, 90000]).send(1, r.subarray(17));
  m.send(0, call('binary', false, 'get', 10, str(1, 'k2'))).send(1, reply('binary', false, 'get', 10, str(0, 'v2')));
  const fc = call('compact', true, 'put', 3, str(1, text(500)));
  const f = new Conv('10.12.1.1', 51102, '10.12.1.2', 9090, false, [123, 456]).send(0, fc.subarray(200));
  f.send(1, reply('compact', true, 'put', 3, bool(0, true)));
  f.send(0, call('compact', true, 'ping', 4)).send(1, reply('compact', true, 'ping', 4));
  return frames([...m.close(), ...f.close()]);
}

/** servers on ports no protocol claims, found by the first bytes: a framed compact call; an unframed binary one */
function otherPort(): GenFrame[] {
  const a = new Conv('10.12.2.1', 51201, '10.12.2.2', 19090).send(0, call('compact', true, 'ping', 1)).send(1, reply('compact', true, 'ping', 1));
  a.send(0, call('compact', true, 'add', 2, i32(1, 1), i32(2, 2))).send(1, reply('compact', true, 'add', 2, i32(0, 3)));
  const b = new Conv('10.12.2.1', 51202, '10.12.2.2', 19091).send(0, call('binary', false, 'getStruct', 1, i32(1, 5)));
  b.send(1, reply('binary', false, 'getStruct', 1, struct(0, [i32(1, 5), str(2, 'five')])));
  return frames([...a.close(), ...b.close()]);
}

/**
 * calls in flight together: replies out of order; a client that sends every call
 * with sequence id 0 (Python's generated clients do); TMultiplexedProtocol names;
 * a reply whose call never came; a call never answered
 */
function pairing(): GenFrame[] {
  const a = new Conv('10.12.3.1', 51301, '10.12.3.2', 9090);
  a.send(0, Buffer.concat([1, 2, 3].map((s) => call('binary', true, 'slow', s, i32(1, s)))));
  a.send(1, reply('binary', true, 'slow', 3, i32(0, 30)), reply('binary', true, 'slow', 1, i32(0, 10)), reply('binary', true, 'slow', 2, i32(0, 20)));
  const z = new Conv('10.12.3.1', 51302, '10.12.3.2', 9090);
  z.send(0, call('binary', false, 'get', 0, str(1, 'a')), call('binary', false, 'put', 0, str(1, 'b')));
  z.send(1, reply('binary', false, 'get', 0, str(0, 'A')), reply('binary', false, 'put', 0));
  z.send(0, call('binary', false, 'get', 0, str(1, 'c'))).send(1, reply('binary', false, 'get', 0, str(0, 'C')));
  const m = new Conv('10.12.3.1', 51303, '10.12.3.2', 9090);
  m.send(0, call('compact', true, 'Calculator:add', 1, i32(1, 2), i32(2, 3))).send(1, reply('compact', true, 'Calculator:add', 1, i32(0, 5)));
  m.send(0, message('compact', true, 'Logger:log', ONEWAY, 2, [str(1, 'hello')]));
  m.send(1, reply('compact', true, 'Calculator:add', 99, i32(0, 5)));
  m.send(0, call('compact', true, 'Calculator:never', 3));
  return frames([...a.close(), ...z.close(), ...m.close()]);
}

/** bytes that break the protocol, each followed by a message that is read again */
function violations(): GenFrame[] {
  // a field of an unknown type (framed: the frame is skipped, the next one read)
  const bad = call('binary', true, 'f', 1, i32(1, 1));
  bad[4 + 4 + 4 + 1 + 4] = 0x63; // the field's type byte
  const u = new Conv('10.12.4.1', 51401, '10.12.4.2', 9090).send(0, bad).send(1, reply('binary', true, 'f', 1));
  u.send(0, call('binary', true, 'g', 2)).send(1, reply('binary', true, 'g', 2));
  // nesting past 32 levels
  let deep: Field = i32(1, 1);
  for (let i = 0; i < 40; i++) deep = struct(1, [deep]);
  const d = new Conv('10.12.4.1', 51402, '10.12.4.2', 9090).send(0, call('compact', false, 'deep', 1, deep)).send(1, reply('compact', false, 'deep', 1));
  d.send(0, call('compact', false, 'ping', 2)).send(1, reply('compact', false, 'ping', 2));
  // a frame longer than its message; the header transport's frame; garbage on an unframed stream
  const long = Buffer.concat([call('binary', true, 'h', 1), Buffer.from('junk')]);
  long.writeUInt32BE(long.length - 4, 0);
  const header = Buffer.from('000000170fff0000000000010001000000000000000000000000000000', 'hex').subarray(0, 27);
  const l = new Conv('10.12.4.1', 51403, '10.12.4.2', 9090).send(0, long).send(1, reply('binary', true, 'h', 1));
  l.send(0, header).send(0, call('binary', true, 'i', 2)).send(1, reply('binary', true, 'i', 2));
  const g = new Conv('10.12.4.1', 51404, '10.12.4.2', 9090).send(0, call('binary', false, 'j', 1)).send(1, Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'));
  g.send(0, call('binary', false, 'k', 2)).send(1, reply('binary', false, 'k', 2));
  return frames([...u.close(), ...d.close(), ...l.close(), ...g.close()]);
}

export function thriftEdgeCases(): Record<string, Buffer> {
  return {
    'edge-gaps.pcap': writePcap(gaps()),
    'edge-midstream.pcap': writePcap(midstream()),
    'edge-other-port.pcap': writePcap(otherPort()),
    'edge-pairing.pcap': writePcap(pairing()),
    'edge-violations.pcap': writePcap(violations()),
  };
}

if (require.main === module) {
  const dir = path.join(__dirname, '..', '..', 'fixtures', 'thrift');
  mkdirSync(dir, { recursive: true });
  for (const [name, data] of Object.entries(thriftEdgeCases())) {
    writeFileSync(path.join(dir, name), data);
    console.log(path.join(dir, name));
  }
}
