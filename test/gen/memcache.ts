/**
 * Memcache edge cases real clients rarely produce, as captures:
 * fixtures/memcache/edge-*.pcap. Rewrite them with `npx tsx test/gen/memcache.ts`.
 *
 * - edge-midstream: connections first seen inside a text value and inside a binary
 *   body; the analyzer finds the next message boundary.
 * - edge-gap: segments lost inside a response's value (the transaction is partial,
 *   the next ones in step), a whole text request lost (its response pairs with a
 *   placeholder), a binary response lost (its request is skipped by opaque).
 * - edge-quiet: binary quiet requests answered by a later one, one opaque reused
 *   with GetKQ keys, a non-quiet request the server skipped; meta commands (ms with
 *   data, mg with q, mn).
 * - edge-udp: a response of five datagrams in shuffled order with a duplicate, a
 *   response missing a datagram (emitted incomplete), a response without request,
 *   an unanswered request.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { ether, F, ipv4, TcpConv, timed, udp, writePcap } from './packets';

const b = (s: string) => Buffer.from(s, 'latin1');
const eth = (p: Buffer) => ether(0x0800, p);
const CLIENT = { ip: '10.20.0.1', port: 41000 };
const SERVER = { ip: '10.20.0.2', port: 11211 };

/** a binary message */
export function bin(magic: number, opcode: number, key: string, extras: Buffer, value: Buffer, opaque: number, status = 0): Buffer {
  const h = Buffer.alloc(24);
  h[0] = magic;
  h[1] = opcode;
  h.writeUInt16BE(key.length, 2);
  h[4] = extras.length;
  h.writeUInt16BE(status, 6);
  h.writeUInt32BE(extras.length + key.length + value.length, 8);
  h.writeUInt32BE(opaque, 12);
  return Buffer.concat([h, extras, b(key), value]);
}
const NONE = Buffer.alloc(0);
const req = (op: number, key: string, opaque: number, extras = NONE, value = NONE) => bin(0x80, op, key, extras, value, opaque);
const res = (op: number, key: string, opaque: number, status = 0, extras = NONE, value = NONE) => bin(0x81, op, key, extras, value, opaque, status);
const flags = (n: number) => {
  const x = Buffer.alloc(4);
  x.writeUInt32BE(n);
  return x;
};

function midstream(): Buffer[] {
  const out: Buffer[] = [];
  // text: the capture starts inside a VALUE's data, then whole exchanges follow
  const t = new TcpConv([{ ...CLIENT, port: 41001 }, SERVER]);
  out.push(t.seg(1, F.ACK | F.PSH, b('zzzzzz\r\nget one\r\nEND\r\n')));
  out.push(t.seg(0, F.ACK | F.PSH, b('get two\r\n')));
  out.push(t.seg(1, F.ACK | F.PSH, b('VALUE two 0 3\r\nabc\r\nEND\r\n')));
  out.push(t.seg(0, F.ACK | F.PSH, b('set three 0 0 1\r\nx\r\n')));
  out.push(t.seg(1, F.ACK | F.PSH, b('STORED\r\n')));
  // binary: the capture starts inside a Set's value
  const c = new TcpConv([{ ...CLIENT, port: 41002 }, SERVER]);
  const set = req(0x01, 'k', 9, Buffer.alloc(8), b('value-bytes'));
  out.push(c.seg(0, F.ACK | F.PSH, Buffer.concat([set.subarray(30), req(0x00, 'k', 10)])));
  out.push(c.seg(1, F.ACK | F.PSH, Buffer.concat([res(0x01, '', 9), res(0x00, '', 10, 0, flags(1), b('v'))])));
  out.push(...t.close(), ...c.close());
  return out;
}

function gaps(): Buffer[] {
  const out: Buffer[] = [];
  const t = new TcpConv([{ ...CLIENT, port: 41003 }, SERVER]);
  out.push(...t.handshake());
  out.push(t.seg(0, F.ACK | F.PSH, b('get big\r\n')));
  out.push(t.seg(1, F.ACK | F.PSH, b(`VALUE big 0 3000\r\n${'a'.repeat(1000)}`)));
  t.seq[1] = (t.seq[1] + 1000) >>> 0; // 1000 bytes of the value lost
  out.push(t.seg(1, F.ACK | F.PSH, b(`${'c'.repeat(1000)}\r\nEND\r\n`)));
  // a whole request lost; its response comes
  out.push(t.seg(0, F.ACK | F.PSH, b('get x\r\n')));
  out.push(t.seg(1, F.ACK | F.PSH, b('END\r\n')));
  t.seq[0] = (t.seq[0] + 'delete y\r\n'.length) >>> 0;
  out.push(t.seg(0, F.ACK | F.PSH, b('incr n 1\r\n')));
  out.push(t.seg(1, F.ACK | F.PSH, b('NOT_FOUND\r\n')));
  out.push(t.seg(1, F.ACK | F.PSH, b('2\r\n')));
  out.push(...t.close());
  // binary: a response lost whole
  const c = new TcpConv([{ ...CLIENT, port: 41004 }, SERVER]);
  out.push(...c.handshake());
  out.push(c.seg(0, F.ACK | F.PSH, Buffer.concat([req(0x00, 'a', 1), req(0x00, 'b', 2), req(0x00, 'c', 3)])));
  out.push(c.seg(1, F.ACK | F.PSH, res(0x00, '', 1, 0, flags(0), b('A'))));
  c.seq[1] = (c.seq[1] + 29) >>> 0;
  out.push(c.seg(1, F.ACK | F.PSH, res(0x00, '', 3, 1, NONE, b('Not found'))));
  out.push(...c.close());
  return out;
}

function quiet(): Buffer[] {
  const out: Buffer[] = [];
  const c = new TcpConv([{ ...CLIENT, port: 41005 }, SERVER]);
  out.push(...c.handshake());
  // one opaque for every GetKQ: responses pair by key; a Get (not quiet) the server skipped
  out.push(c.seg(0, F.ACK | F.PSH, Buffer.concat([req(0x0d, 'k1', 0), req(0x0d, 'k2', 0), req(0x0d, 'k3', 0), req(0x00, 'skipped', 7), req(0x0a, '', 0)])));
  out.push(c.seg(1, F.ACK | F.PSH, Buffer.concat([res(0x0d, 'k3', 0, 0, flags(0), b('three')), res(0x0a, '', 0)])));
  // quiet storage: SetQ answered only on failure
  out.push(c.seg(0, F.ACK | F.PSH, Buffer.concat([req(0x11, 's1', 20, Buffer.alloc(8), b('1')), req(0x12, 's1', 21, Buffer.alloc(8), b('2')), req(0x0a, '', 22)])));
  out.push(c.seg(1, F.ACK | F.PSH, Buffer.concat([res(0x12, '', 21, 2, NONE, b('Data exists for key.')), res(0x0a, '', 22)])));
  out.push(...c.close());
  // meta commands: ms with its data, mg hit, mg with q (a miss: no answer), mn
  const t = new TcpConv([{ ...CLIENT, port: 41006 }, SERVER]);
  out.push(...t.handshake());
  out.push(t.seg(0, F.ACK | F.PSH, b('ms mk 5 T60\r\nhello\r\nmg mk v\r\nmg nokey v q\r\nmn\r\n')));
  out.push(t.seg(1, F.ACK | F.PSH, b('HD\r\nVA 5\r\nhello\r\nMN\r\n')));
  out.push(...t.close());
  return out;
}

function udpFrames(): Buffer[] {
  const out: Buffer[] = [];
  const cl = { ip: '10.20.0.5', port: 52000 };
  const header = (id: number, seq: number, total: number) => {
    const h = Buffer.alloc(8);
    h.writeUInt16BE(id, 0);
    h.writeUInt16BE(seq, 2);
    h.writeUInt16BE(total, 4);
    return h;
  };
  const request = (id: number, text: string) => eth(ipv4(cl.ip, SERVER.ip, 17, udp(cl.port, SERVER.port, Buffer.concat([header(id, 0, 1), b(text)]))));
  const response = (id: number, seq: number, total: number, data: Buffer) => eth(ipv4(SERVER.ip, cl.ip, 17, udp(SERVER.port, cl.port, Buffer.concat([header(id, seq, total), data]))));
  // a response in five datagrams, shuffled, one sent twice
  const value = b(`VALUE big 0 5000\r\n${'q'.repeat(5000)}\r\nEND\r\n`);
  const parts = [0, 1, 2, 3, 4].map((i) => value.subarray(i * 1400, (i + 1) * 1400));
  out.push(request(1, 'get big\r\n'));
  for (const i of [3, 0, 4, 1, 1, 2]) out.push(response(1, i, 5, parts[i]));
  // a response missing its datagram 1 of 2: emitted incomplete at the timeout
  const half = b(`VALUE h 0 2000\r\n${'h'.repeat(2000)}\r\nEND\r\n`);
  out.push(request(2, 'get h\r\n'));
  out.push(response(2, 0, 2, half.subarray(0, 1400)));
  // a response without its request, a request without its response
  out.push(response(3, 0, 1, b('STORED\r\n')));
  out.push(request(4, 'get nobody\r\n'));
  return out;
}

export function writeMemcacheEdges(dir: string): string[] {
  const files: [string, Buffer[]][] = [
    ['edge-midstream.pcap', midstream()],
    ['edge-gap.pcap', gaps()],
    ['edge-quiet.pcap', quiet()],
  ];
  const written: string[] = [];
  for (const [name, pkts] of files) {
    writeFileSync(path.join(dir, name), writePcap(timed(pkts.map(eth))));
    written.push(name);
  }
  writeFileSync(path.join(dir, 'edge-udp.pcap'), writePcap(timed(udpFrames(), 1_700_000_000, undefined, 1_000_000)));
  written.push('edge-udp.pcap');
  return written;
}

if (require.main === module) {
  const dir = path.join(__dirname, '..', '..', 'fixtures', 'memcache');
  console.log(writeMemcacheEdges(dir).join('\n'));
}
