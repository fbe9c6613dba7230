/**
 * MongoDB wire messages built byte by byte, and fixtures/mongodb/edge-*.pcap: what
 * real clients no longer send (the legacy operations: modern drivers and FerretDB
 * speak OP_MSG only), what FerretDB does not offer (OP_COMPRESSED), and what the
 * network does to a conversation (loss, a capture that starts mid-stream, exhaust
 * cursors, out-of-order replies, a request never answered). Deterministic: run
 * `npx tsx test/gen/mongodb.ts` and the files come out byte-identical (the zstd
 * payload comes from the `zstd` command, whose output is fixed for a level).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { deflateSync } from 'node:zlib';
import { BSON, Long, ObjectId, type Document } from 'bson';
import snappy from 'snappyjs';
import { crc32c } from '../../src/protocols/mongodb/wire';
import { ether, F, TcpConv, timed, type GenFrame, writePcap } from './packets';

export const OP = { reply: 1, msgLegacy: 1000, update: 2001, insert: 2002, query: 2004, getMore: 2005, delete: 2006, killCursors: 2007, compressed: 2012, msg: 2013 } as const;

const i32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  return b;
};
const i64 = (v: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(v);
  return b;
};
const cstr = (s: string) => Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]);
export const bson = (d: Document) => Buffer.from(BSON.serialize(d));

/** a whole message: header (length, requestID, responseTo, opCode) and body */
export function message(requestId: number, responseTo: number, op: number, body: Buffer): Buffer {
  return Buffer.concat([i32(16 + body.length), i32(requestId), i32(responseTo), i32(op), body]);
}

export interface OpMsgOptions {
  flags?: number;
  /** kind-1 sections after the body */
  sequences?: { id: string; docs: Document[] }[];
  /** append a CRC-32C (and set checksumPresent); `bad` appends a wrong one */
  checksum?: 'good' | 'bad';
}

export function opMsg(requestId: number, responseTo: number, body: Document, o: OpMsgOptions = {}): Buffer {
  let flags = o.flags ?? 0;
  if (o.checksum !== undefined) flags |= 1;
  const parts = [i32(flags), Buffer.from([0]), bson(body)];
  for (const s of o.sequences ?? []) {
    const payload = Buffer.concat([cstr(s.id), ...s.docs.map(bson)]);
    parts.push(Buffer.from([1]), i32(4 + payload.length), payload);
  }
  const len = 16 + parts.reduce((n, p) => n + p.length, 0) + (o.checksum !== undefined ? 4 : 0);
  const m = Buffer.concat([i32(len), i32(requestId), i32(responseTo), i32(OP.msg), ...parts]);
  if (o.checksum === undefined) return m;
  const crc = Buffer.alloc(4);
  crc.writeUInt32LE((crc32c(m, 0, m.length) ^ (o.checksum === 'bad' ? 1 : 0)) >>> 0);
  return Buffer.concat([m, crc]);
}

export function opQuery(requestId: number, ns: string, query: Document, o: { flags?: number; skip?: number; limit?: number; fields?: Document } = {}): Buffer {
  const parts = [i32(o.flags ?? 0), cstr(ns), i32(o.skip ?? 0), i32(o.limit ?? 0), bson(query)];
  if (o.fields !== undefined) parts.push(bson(o.fields));
  return message(requestId, 0, OP.query, Buffer.concat(parts));
}

export function opReply(requestId: number, responseTo: number, docs: Document[], o: { flags?: number; cursorId?: bigint; startingFrom?: number } = {}): Buffer {
  return message(requestId, responseTo, OP.reply, Buffer.concat([i32(o.flags ?? 0), i64(o.cursorId ?? 0n), i32(o.startingFrom ?? 0), i32(docs.length), ...docs.map(bson)]));
}

export function opGetMore(requestId: number, ns: string, limit: number, cursorId: bigint): Buffer {
  return message(requestId, 0, OP.getMore, Buffer.concat([i32(0), cstr(ns), i32(limit), i64(cursorId)]));
}

export function opInsert(requestId: number, ns: string, docs: Document[], flags = 0): Buffer {
  return message(requestId, 0, OP.insert, Buffer.concat([i32(flags), cstr(ns), ...docs.map(bson)]));
}

export function opUpdate(requestId: number, ns: string, selector: Document, update: Document, flags = 0): Buffer {
  return message(requestId, 0, OP.update, Buffer.concat([i32(0), cstr(ns), i32(flags), bson(selector), bson(update)]));
}

export function opDelete(requestId: number, ns: string, selector: Document, flags = 0): Buffer {
  return message(requestId, 0, OP.delete, Buffer.concat([i32(0), cstr(ns), i32(flags), bson(selector)]));
}

export function opKillCursors(requestId: number, ids: bigint[]): Buffer {
  return message(requestId, 0, OP.killCursors, Buffer.concat([i32(0), i32(ids.length), ...ids.map(i64)]));
}

export function opMsgLegacy(requestId: number, text: string): Buffer {
  return message(requestId, 0, OP.msgLegacy, cstr(text));
}

/** zstd through the `zstd` command (level 3) */
function zstd(b: Buffer): Buffer {
  return execFileSync('zstd', ['-3', '-c', '-q', '--no-check'], { input: b });
}

export const COMPRESS: Record<number, (b: Buffer) => Buffer> = { 0: (b) => b, 1: (b) => Buffer.from(snappy.compress(b)), 2: (b) => deflateSync(b), 3: zstd };

/** OP_COMPRESSED around a whole message (its header's ids are kept, its opcode becomes originalOpcode) */
export function opCompressed(msg: Buffer, compressorId: number, data?: Buffer): Buffer {
  const body = msg.subarray(16);
  const compressed = data ?? COMPRESS[compressorId](body);
  return message(msg.readInt32LE(4), msg.readInt32LE(8), OP.compressed, Buffer.concat([i32(msg.readInt32LE(12)), i32(body.length), Buffer.from([compressorId]), compressed]));
}

const CLIENT = '10.7.0.1';
const SERVER = '10.7.0.2';
const ok = (extra: Document = {}) => ({ ...extra, ok: 1 });
const cursorReply = (ns: string, id: bigint, batch: Document[], first: boolean) => ok({ cursor: { [first ? 'firstBatch' : 'nextBatch']: batch, id: Long.fromBigInt(id), ns } });
const oid = (n: number) => new ObjectId(n.toString(16).padStart(24, '0'));

/** one connection: requests and replies as (side, bytes) in order; each message one segment unless split */
function conversation(port: number, cport: number, steps: [number, Buffer][], o: { handshake?: boolean; close?: boolean } = {}): Buffer[] {
  const c = new TcpConv([{ ip: CLIENT, port: cport }, { ip: SERVER, port }]);
  const out: Buffer[] = o.handshake === false ? [] : c.handshake();
  for (const [side, bytes] of steps) out.push(c.seg(side, F.PSH | F.ACK, bytes));
  if (o.close !== false) out.push(...c.close());
  return out;
}

const eth = (pkts: Buffer[]) => pkts.map((p) => ether(0x0800, p));

/** the legacy operations, with the replies a pre-3.6 server gave */
function legacy(): GenFrame[] {
  const ns = 'shop.items';
  const docs = [{ _id: oid(1), sku: 'a-1', qty: 5 }, { _id: oid(2), sku: 'b-2', qty: 0 }];
  return timed(eth(conversation(27017, 50001, [
    [0, opQuery(1, 'admin.$cmd', { isMaster: 1 }, { limit: -1 })],
    [1, opReply(101, 1, [{ ismaster: true, maxWireVersion: 5, ok: 1 }])],
    [0, opQuery(2, ns, { qty: { $gt: 0 } }, { skip: 5, limit: 2, fields: { sku: 1 } })],
    [1, opReply(102, 2, docs, { cursorId: 0x1122334455667788n })],
    [0, opGetMore(3, ns, 2, 0x1122334455667788n)],
    [1, opReply(103, 3, [{ _id: oid(3), sku: 'c-3', qty: 1 }], { startingFrom: 2 })],
    [0, opGetMore(4, ns, 2, 0x1122334455667788n)],
    [1, opReply(104, 4, [], { flags: 1 })],
    [0, opInsert(5, ns, docs)],
    [0, opUpdate(6, ns, { sku: 'a-1' }, { $inc: { qty: 1 } }, 1)],
    [0, opDelete(7, ns, { qty: 0 }, 1)],
    [0, opQuery(8, 'shop.$cmd', { getLastError: 1 }, { limit: -1 })],
    [1, opReply(105, 8, [{ n: 1, err: null, ok: 1 }])],
    [0, opQuery(9, 'shop.$cmd', { $query: { count: 'items', query: { qty: 1 } }, $readPreference: { mode: 'secondaryPreferred' } }, { limit: -1 })],
    [1, opReply(106, 9, [{ n: 3, ok: 1 }])],
    [0, opQuery(10, ns, { $where: 'this.qty >' })],
    [1, opReply(107, 10, [{ $err: 'SyntaxError: missing operand', code: 16722 }], { flags: 2 })],
    [0, opQuery(11, 'shop.$cmd', { drop: 'nothing' }, { limit: -1 })],
    [1, opReply(108, 11, [{ ok: 0, errmsg: 'ns not found', code: 26, codeName: 'NamespaceNotFound' }])],
    [0, opKillCursors(12, [0x1122334455667788n, 42n])],
    [0, opMsgLegacy(13, 'hello from a 2010 driver')],
  ])));
}

/** OP_COMPRESSED: noop, snappy, zlib, zstd requests and replies; an unknown compressor; damaged zlib */
function compressed(): GenFrame[] {
  const ns = 'shop.items';
  const find = (id: number) => opMsg(id, 0, { find: 'items', filter: { qty: { $gte: id } }, $db: 'shop' });
  const reply = (id: number, to: number) => opMsg(id, to, cursorReply(ns, 0n, [{ _id: id, qty: id, note: 'z'.repeat(200) }], true));
  const steps: [number, Buffer][] = [];
  for (const c of [0, 1, 2, 3]) steps.push([0, opCompressed(find(c + 1), c)], [1, opCompressed(reply(100 + c, c + 1), c)]);
  steps.push([0, opCompressed(find(5), 9, Buffer.from('opaque'))], [1, opCompressed(reply(105, 5), 9, Buffer.from('opaque'))]);
  const good = opCompressed(find(6), 2);
  good[good.length - 3] ^= 0xff; // the deflate stream's tail: its checksum no longer holds
  steps.push([0, good], [1, opCompressed(reply(106, 6), 2)]);
  return timed(eth(conversation(27017, 50002, steps)));
}

/** OP_MSG: checksums, a document sequence, moreToCome, an exhaust cursor, out-of-order and pipelined replies, a split message, on a port MongoDB does not own (found by the probe) */
function opMsgCases(): GenFrame[] {
  const ns = 'shop.items';
  const c = new TcpConv([{ ip: CLIENT, port: 50003 }, { ip: SERVER, port: 40017 }]);
  const out: Buffer[] = [...c.handshake()];
  const send = (side: number, ...msgs: Buffer[]) => out.push(c.seg(side, F.PSH | F.ACK, Buffer.concat(msgs)));
  send(0, opMsg(1, 0, { ping: 1, $db: 'admin' }, { checksum: 'good' }));
  send(1, opMsg(201, 1, { ok: 1 }, { checksum: 'good' }));
  send(0, opMsg(2, 0, { ping: 1, $db: 'admin' }, { checksum: 'bad' }));
  send(1, opMsg(202, 2, { ok: 0, errmsg: 'OP_MSG checksum does not match contents.', code: 2, codeName: 'BadValue' }));
  // insert with its documents in a sequence; then an unacknowledged one (w: 0 sets moreToCome: no reply)
  send(0, opMsg(3, 0, { insert: 'items', ordered: true, $db: 'shop' }, { sequences: [{ id: 'documents', docs: [{ _id: 1 }, { _id: 2 }, { _id: 3 }] }] }));
  send(1, opMsg(203, 3, { n: 3, ok: 1 }));
  send(0, opMsg(4, 0, { insert: 'items', writeConcern: { w: 0 }, $db: 'shop' }, { flags: 2, sequences: [{ id: 'documents', docs: [{ _id: 4 }] }] }));
  // exhaust: a getMore allowing it, three replies, each but the last with moreToCome, each answering the one before
  send(0, opMsg(5, 0, { getMore: Long.fromBigInt(77n), collection: 'items', batchSize: 1, $db: 'shop' }, { flags: 1 << 16 }));
  send(1, opMsg(205, 5, cursorReply(ns, 77n, [{ _id: 1 }], false), { flags: 2 }));
  send(1, opMsg(206, 205, cursorReply(ns, 77n, [{ _id: 2 }], false), { flags: 2 }));
  send(1, opMsg(207, 206, cursorReply(ns, 0n, [{ _id: 3 }], false)));
  // two requests in one segment, replies in the other order, in one segment
  send(0, opMsg(6, 0, { count: 'items', $db: 'shop' }), opMsg(7, 0, { dbStats: 1, $db: 'shop' }));
  send(1, opMsg(209, 7, { db: 'shop', collections: 1, ok: 1 }), opMsg(208, 6, { n: 3, ok: 1 }));
  // a message split over three segments
  const big = opMsg(8, 0, { find: 'items', filter: { name: 'x'.repeat(3000) }, $db: 'shop' });
  for (const [a, b] of [[0, 1000], [1000, 2000], [2000, big.length]]) out.push(c.seg(0, F.ACK, big.subarray(a, b)));
  send(1, opMsg(210, 8, cursorReply(ns, 0n, [], true)));
  // a write error and a write concern error
  send(0, opMsg(9, 0, { insert: 'items', $db: 'shop' }, { sequences: [{ id: 'documents', docs: [{ _id: 1 }, { _id: 2 }] }] }));
  send(1, opMsg(211, 9, { n: 0, writeErrors: [{ index: 0, code: 11000, errmsg: 'E11000 duplicate key error collection: shop.items index: _id_ dup key: { _id: 1 }' }, { index: 1, code: 11000, errmsg: 'E11000 duplicate key error' }], ok: 1 }));
  send(0, opMsg(10, 0, { delete: 'items', deletes: [{ q: {}, limit: 0 }], writeConcern: { w: 5 }, $db: 'shop' }));
  send(1, opMsg(212, 10, { n: 3, writeConcernError: { code: 100, codeName: 'UnsatisfiableWriteConcern', errmsg: 'Not enough data-bearing nodes' }, ok: 1 }));
  out.push(...c.close());
  return timed(eth(out));
}

/**
 * What the network does: a reply segment lost (the transaction is partial, the next
 * pairs), a loss across a message boundary (the framing is found again), a request
 * never answered, a capture that starts inside a reply.
 */
function gaps(): GenFrame[] {
  const ns = 'shop.items';
  const frames: GenFrame[] = [];
  const at = (sec: number, pkts: Buffer[]) => frames.push(...timed(eth(pkts), 1_700_000_000 + sec));

  // loss inside a reply of known length, then loss across a boundary
  const c = new TcpConv([{ ip: CLIENT, port: 50004 }, { ip: SERVER, port: 27017 }]);
  const big = opMsg(301, 1, cursorReply(ns, 0n, Array.from({ length: 40 }, (_, i) => ({ _id: i, pad: 'p'.repeat(100) })), true));
  const a: Buffer[] = [...c.handshake(), c.seg(0, F.PSH | F.ACK, opMsg(1, 0, { find: 'items', $db: 'shop' }))];
  a.push(c.seg(1, F.ACK, big.subarray(0, 1500)));
  c.seg(1, F.ACK, big.subarray(1500, 3000)); // lost
  a.push(c.seg(1, F.PSH | F.ACK, big.subarray(3000)));
  a.push(c.seg(0, F.PSH | F.ACK, opMsg(2, 0, { count: 'items', $db: 'shop' })), c.seg(1, F.PSH | F.ACK, opMsg(302, 2, { n: 40, ok: 1 })));
  // the request direction loses the end of one request and the start of the next: the framer scans for a header
  const r3 = opMsg(3, 0, { find: 'items', filter: { a: 'q'.repeat(400) }, $db: 'shop' });
  const r4 = opMsg(4, 0, { find: 'items', filter: { b: 'r'.repeat(400) }, $db: 'shop' });
  const r5 = opMsg(5, 0, { ping: 1, $db: 'admin' });
  const both = Buffer.concat([r3, r4]);
  a.push(c.seg(0, F.ACK, both.subarray(0, 300)));
  c.seg(0, F.ACK, both.subarray(300, 700)); // lost: r3's end and r4's start
  a.push(c.seg(0, F.PSH | F.ACK, Buffer.concat([both.subarray(700), r5])));
  a.push(c.seg(1, F.PSH | F.ACK, Buffer.concat([opMsg(303, 3, cursorReply(ns, 0n, [], true)), opMsg(304, 4, cursorReply(ns, 0n, [], true)), opMsg(305, 5, { ok: 1 })])));
  a.push(...c.close());
  at(0, a);

  // a request the server never answers, the connection open 15 s past it (read in one batch, as
  // a small file is, it is reported at the close; test/mongodb.test.ts drives the timeout)
  const d = new TcpConv([{ ip: CLIENT, port: 50005 }, { ip: SERVER, port: 27017 }]);
  at(10, [...d.handshake(), d.seg(0, F.PSH | F.ACK, opMsg(1, 0, { find: 'slow', filter: { $where: 'sleep(60000)' }, $db: 'shop' }))]);
  at(25, [d.seg(0, F.PSH | F.ACK, opMsg(2, 0, { ping: 1, $db: 'admin' })), d.seg(1, F.PSH | F.ACK, opMsg(402, 2, { ok: 1 })), ...d.close()]);

  // mid-stream: the capture starts with the tail of a reply, then a whole reply to an unseen request
  const e = new TcpConv([{ ip: CLIENT, port: 50006 }, { ip: SERVER, port: 27017 }], [90000, 70000]);
  const tail = opMsg(500, 0x7f, cursorReply(ns, 0n, [{ _id: 'earlier', pad: 'e'.repeat(300) }], true)).subarray(200);
  at(30, [e.seg(1, F.PSH | F.ACK, tail), e.seg(1, F.PSH | F.ACK, opMsg(501, 0x80, { ok: 1 })), e.seg(0, F.PSH | F.ACK, opMsg(9, 0, { ping: 1, $db: 'admin' })), e.seg(1, F.PSH | F.ACK, opMsg(502, 9, { ok: 1 })), ...e.close()]);
  return frames;
}

export function mongodbEdgeCases(): Record<string, Buffer> {
  return {
    'edge-legacy.pcap': writePcap(legacy(), { nano: true }),
    'edge-compressed.pcap': writePcap(compressed(), { nano: true }),
    'edge-opmsg.pcap': writePcap(opMsgCases(), { nano: true }),
    'edge-gaps.pcap': writePcap(gaps(), { nano: true }),
  };
}

if (require.main === module) {
  const dir = path.join(__dirname, '..', '..', 'fixtures', 'mongodb');
  mkdirSync(dir, { recursive: true });
  const files = mongodbEdgeCases();
  for (const [name, data] of Object.entries(files)) writeFileSync(path.join(dir, name), data);
  console.log(`wrote ${Object.keys(files).join(', ')} to ${dir}`);
}
