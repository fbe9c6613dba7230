/**
 * Writes fixtures/cassandra/edge-*.pcap: CQL conversations real clients and a
 * healthy server do not produce on demand: responses split byte by byte and out of
 * order, every kind of result, error and pushed event, v5 frames spanning an
 * envelope or damaged, connections first seen mid-stream, lost segments, unknown
 * and broken compression, a request that times out, a server on another port.
 * Deterministic: `npx tsx test/gen/cassandra.ts` rewrites the files byte for byte.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Flag, Op } from '../../src/protocols/cassandra/wire';
import { batchBody, compressBody, Consistency, enc, envelope, executeBody, prepareBody, queryBody, segment, segments } from './cql';
import { ether, F, TcpConv, writePcap, type GenFrame } from './packets';

const RESP = 0x80;

/** frames with their own clock: steps of 1 ms unless told */
class Timeline {
  readonly frames: GenFrame[] = [];
  private ns = 0;
  constructor(private readonly start = 1_700_000_000) {}

  add(ip: Buffer, stepNs = 1_000_000): void {
    this.ns += stepNs;
    this.frames.push({ sec: this.start + Math.floor(this.ns / 1e9), nsec: this.ns % 1e9, data: ether(0x0800, ip) });
  }

  all(ips: Buffer[]): void {
    for (const p of ips) this.add(p);
  }
}

// --- server messages ---------------------------------------------------------------------------

const { short, int, string, stringList, bytes, shortBytes } = enc;
const col = (name: string, type: number) => Buffer.concat([string(name), short(type)]);

/** RESULT rows: `global` names the table once, else each column does; `paging` adds HasMorePages */
function rows(ks: string, table: string, columns: [string, number][], n: number, o: { global?: boolean; paging?: Buffer; noMetadata?: boolean; newMetadataId?: Buffer } = {}): Buffer {
  const global = o.global ?? true;
  let flags = (global ? 0x01 : 0) | (o.paging ? 0x02 : 0) | (o.noMetadata ? 0x04 : 0) | (o.newMetadataId ? 0x08 : 0);
  if (o.noMetadata) flags &= ~0x01;
  const parts = [int(2), int(flags), int(columns.length)];
  if (o.paging) parts.push(bytes(o.paging));
  if (o.newMetadataId) parts.push(shortBytes(o.newMetadataId));
  if (!o.noMetadata) {
    if (global) parts.push(string(ks), string(table));
    for (const [name, type] of columns) parts.push(...(global ? [] : [string(ks), string(table)]), col(name, type));
  }
  parts.push(int(n));
  for (let r = 0; r < n; r++) for (let c = 0; c < columns.length; c++) parts.push(bytes(Buffer.from(`r${r}c${c}`)));
  return Buffer.concat(parts);
}

function prepared(id: Buffer, ks: string, table: string, bound: [string, number][], result: [string, number][], resultMetadataId?: Buffer): Buffer {
  const meta = (cols: [string, number][], pk: boolean) =>
    Buffer.concat([int(1), int(cols.length), ...(pk ? [int(1), short(0)] : []), string(ks), string(table), ...cols.map(([n, t]) => col(n, t))]);
  return Buffer.concat([int(4), shortBytes(id), ...(resultMetadataId ? [shortBytes(resultMetadataId)] : []), meta(bound, true), meta(result, false)]);
}

const voidResult = () => int(1);
const setKeyspace = (ks: string) => Buffer.concat([int(3), string(ks)]);
const schemaChange = (change: string, target: string, ks: string, ...rest: Buffer[]) => Buffer.concat([string(change), string(target), string(ks), ...rest]);
const error = (code: number, msg: string, ...details: Buffer[]) => Buffer.concat([int(code), string(msg), ...details]);

/** a map type: map<text, list<frozen<tuple<int, text>>>>, a UDT and a custom type, to walk nested column types */
const NESTED_TYPE = Buffer.concat([
  short(0x21), short(0x0d), short(0x20), short(0x31), short(2), short(0x09), short(0x0d),
]);
const UDT_TYPE = Buffer.concat([short(0x30), string('ks'), string('address'), short(2), string('street'), short(0x0d), string('zip'), short(0x09)]);
const CUSTOM_TYPE = Buffer.concat([short(0x00), string('org.apache.cassandra.db.marshal.DurationType')]);

// --- conversations ---------------------------------------------------------------------------

function v4Conn(t: Timeline, client: string, port: number, serverPort = 9042, handshake = true): TcpConv {
  const c = new TcpConv([{ ip: client, port }, { ip: '10.90.0.1', port: serverPort }]);
  if (handshake) t.all(c.handshake());
  return c;
}

const req = (v: number, stream: number, op: number, body: Buffer = Buffer.alloc(0), flags = 0) => envelope(v, flags, stream, op, body);
const res = (v: number, stream: number, op: number, body: Buffer = Buffer.alloc(0), flags = 0) => envelope(RESP | v, flags, stream, op, body);

function startup(t: Timeline, c: TcpConv, v: number, compression?: string): void {
  t.add(c.seg(0, F.PSH | F.ACK, req(v, 0, Op.OPTIONS)));
  t.add(c.seg(1, F.PSH | F.ACK, res(v, 0, Op.SUPPORTED, enc.stringMultimap({ CQL_VERSION: ['3.4.6'], COMPRESSION: ['snappy', 'lz4'] }))));
  t.add(c.seg(0, F.PSH | F.ACK, req(v, 1, Op.STARTUP, enc.stringMap({ CQL_VERSION: '3.0.0', ...(compression ? { COMPRESSION: compression } : {}) }))));
  t.add(c.seg(1, F.PSH | F.ACK, res(v, 1, Op.READY)));
}

/** v4: requests written together, answered out of order and in awkward pieces; every kind of result; pushes; custom payload, tracing and warnings */
function pipelined(): GenFrame[] {
  const t = new Timeline();
  const c = v4Conn(t, '10.90.1.1', 50001);
  startup(t, c, 4);
  const id = Buffer.from('0123456789abcdef0123456789abcdef', 'hex');
  const requests = Buffer.concat([
    req(4, 10, Op.QUERY, queryBody(4, 'SELECT * FROM shop.users', { pageSize: 2 })),
    req(4, 11, Op.QUERY, queryBody(4, 'USE shop')),
    req(4, 12, Op.PREPARE, prepareBody(4, 'SELECT name FROM shop.users WHERE id = ?')),
    req(4, 13, Op.QUERY, queryBody(4, 'CREATE FUNCTION shop.plus(a int, b int) RETURNS NULL ON NULL INPUT RETURNS int LANGUAGE java AS \'return a + b;\'')),
    // a custom payload ahead of the query
    req(4, 14, Op.QUERY, Buffer.concat([short(1), string('tenant'), bytes(Buffer.from('blue')), queryBody(4, 'SELECT * FROM shop.kinds')]), Flag.CUSTOM_PAYLOAD),
    req(4, 15, Op.QUERY, queryBody(4, 'SELECT count(*) FROM shop.users'), Flag.TRACING),
    req(4, 16, Op.BATCH, batchBody(4, 2, [{ cql: 'UPDATE shop.counts SET n = n + 1 WHERE k = 1' }, { id, values: [int(1)] }], Consistency.QUORUM)),
  ]);
  t.add(c.seg(0, F.PSH | F.ACK, requests));
  const traceId = Buffer.from('a0b1c2d3e4f5061728394a5b6c7d8e9f', 'hex');
  // the rows result with nested column types, built by hand
  const nested = Buffer.concat([
    int(2), int(0x03), int(5), bytes(Buffer.from('00c0ffee', 'hex')), string('shop'), string('users'),
    col('id', 0x09), col('name', 0x0d), string('tags'), NESTED_TYPE, string('addr'), UDT_TYPE, string('span'), CUSTOM_TYPE,
    int(2), ...Array.from({ length: 10 }, (_, i) => bytes(i % 3 === 0 ? null : Buffer.from(`v${i}`))),
  ]);
  const out = Buffer.concat([
    res(4, 12, Op.RESULT, prepared(id, 'shop', 'users', [['id', 0x09]], [['name', 0x0d]])),
    res(4, 13, Op.RESULT, Buffer.concat([int(5), schemaChange('CREATED', 'FUNCTION', 'shop', string('plus'), stringList(['int', 'int']))])),
    // a push in the middle of the answers
    res(4, -1, Op.EVENT, Buffer.concat([string('SCHEMA_CHANGE'), schemaChange('CREATED', 'FUNCTION', 'shop', string('plus'), stringList(['int', 'int']))])),
    res(4, 11, Op.RESULT, setKeyspace('shop')),
    res(4, 10, Op.RESULT, nested),
    res(4, 14, Op.RESULT, Buffer.concat([short(1), string('tenant'), bytes(Buffer.from('blue')), rows('shop', 'kinds', [['k', 0x0d]], 1, { global: false })]), Flag.CUSTOM_PAYLOAD),
    res(4, 15, Op.RESULT, Buffer.concat([traceId, stringList(['Aggregation query used without partition key']), rows('shop', 'users', [['count', 0x02]], 1)]), Flag.TRACING | Flag.WARNING),
    res(4, 16, Op.RESULT, Buffer.concat([stringList(['Batch for [shop.counts] is of size 6.1KiB, exceeding specified threshold of 5.0KiB by 1.1KiB.']), voidResult()]), Flag.WARNING),
  ]);
  // one byte at a time for a while, then uneven pieces
  let o = 0;
  for (; o < 40; o++) t.add(c.seg(1, F.ACK, out.subarray(o, o + 1)), 10_000);
  for (const n of [7, 300, 2, 9, 1000]) {
    t.add(c.seg(1, F.ACK, out.subarray(o, o + n)), 10_000);
    o += n;
  }
  t.add(c.seg(1, F.PSH | F.ACK, out.subarray(o)));
  // pushes: a new node (IPv6), a node down, a new type
  t.add(c.seg(1, F.PSH | F.ACK, Buffer.concat([
    res(4, -1, Op.EVENT, Buffer.concat([string('TOPOLOGY_CHANGE'), string('NEW_NODE'), Buffer.from([16, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42]), int(9042)])),
    res(4, -1, Op.EVENT, Buffer.concat([string('STATUS_CHANGE'), string('DOWN'), Buffer.from([4, 10, 90, 0, 2]), int(9042)])),
    res(4, -1, Op.EVENT, Buffer.concat([string('SCHEMA_CHANGE'), schemaChange('CREATED', 'TYPE', 'shop', string('address'))])),
  ])));
  // the stream used again before its answer; an answer to nothing
  t.add(c.seg(0, F.PSH | F.ACK, req(4, 20, Op.QUERY, queryBody(4, 'SELECT * FROM shop.slow'))));
  t.add(c.seg(0, F.PSH | F.ACK, req(4, 20, Op.QUERY, queryBody(4, 'SELECT * FROM shop.fast'))));
  t.add(c.seg(1, F.PSH | F.ACK, Buffer.concat([res(4, 20, Op.RESULT, voidResult()), res(4, 77, Op.RESULT, voidResult())])));
  // a request left unanswered at the close
  t.add(c.seg(0, F.PSH | F.ACK, req(4, 21, Op.QUERY, queryBody(4, 'SELECT * FROM shop.never'))));
  t.all(c.close());
  return t.frames;
}

/** every error code with its details, in v4 and (where they differ) v5 */
function errors(): GenFrame[] {
  const t = new Timeline();
  const c = v4Conn(t, '10.90.2.1', 50002);
  startup(t, c, 4);
  const cases: Buffer[] = [
    error(0x1000, 'Cannot achieve consistency level QUORUM', short(4), int(2), int(1)),
    error(0x1100, 'Operation timed out - received only 0 responses.', short(1), int(0), int(1), string('SIMPLE')),
    error(0x1200, 'Operation timed out - received only 0 responses.', short(6), int(1), int(2), Buffer.from([1])),
    error(0x1300, 'Operation failed - received 0 responses and 1 failures', short(1), int(0), int(1), int(1), Buffer.from([0])),
    error(0x1500, 'Operation failed - received 0 responses and 1 failures', short(4), int(1), int(2), int(1), string('BATCH')),
    error(0x1400, 'execution of plus failed', string('shop'), string('plus'), stringList(['int', 'int'])),
    error(0x2400, 'Cannot add already existing table "users" to keyspace "shop"', string('shop'), string('users')),
    error(0x2500, 'Prepared query with ID 0123 not found', shortBytes(Buffer.from('0123456789abcdef', 'hex'))),
    error(0x2100, 'User x has no SELECT permission'),
    error(0x000a, 'Invalid or unsupported protocol version (66); supported versions are (3/v3, 4/v4, 5/v5, 6/v6-beta)'),
    error(0x1001, 'Server is overloaded'),
    error(0x4242, 'a code nobody knows'),
  ];
  cases.forEach((body, i) => {
    t.add(c.seg(0, F.PSH | F.ACK, req(4, 100 + i, Op.QUERY, queryBody(4, `SELECT * FROM shop.t${i}`))));
    t.add(c.seg(1, F.PSH | F.ACK, res(4, 100 + i, Op.ERROR, body)));
  });
  // an EXECUTE of a statement never seen prepared here
  t.add(c.seg(0, F.PSH | F.ACK, req(4, 120, Op.EXECUTE, executeBody(4, Buffer.from('0123456789abcdef', 'hex'), { values: [int(1)] }))));
  t.add(c.seg(1, F.PSH | F.ACK, res(4, 120, Op.ERROR, cases[7])));
  t.all(c.close());

  // v5: failures carry a reason per replica; CDC and CAS errors are new
  const d = v4Conn(t, '10.90.2.2', 50003);
  t.add(d.seg(0, F.PSH | F.ACK, req(5, 1, Op.STARTUP, enc.stringMap({ CQL_VERSION: '3.0.0' }))));
  t.add(d.seg(1, F.PSH | F.ACK, res(5, 1, Op.READY)));
  const reasons = Buffer.concat([int(2), Buffer.from([4, 10, 90, 0, 3]), short(0), Buffer.from([4, 10, 90, 0, 4]), short(1)]);
  const v5cases = [
    error(0x1300, 'Operation failed - received 0 responses and 2 failures', short(1), int(0), int(1), reasons, Buffer.from([1])),
    error(0x1500, 'Operation failed - received 0 responses and 2 failures', short(1), int(0), int(1), reasons, string('SIMPLE')),
    error(0x1600, 'CDC space exhausted'),
    error(0x1700, 'CAS operation result is unknown', short(9), int(1), int(2)),
  ];
  v5cases.forEach((body, i) => {
    t.add(d.seg(0, F.PSH | F.ACK, Buffer.concat(segments([req(5, 10 + i, Op.QUERY, queryBody(5, `UPDATE shop.c${i} SET v = 1 WHERE k = 1 IF v = 0`))]))));
    t.add(d.seg(1, F.PSH | F.ACK, Buffer.concat(segments([res(5, 10 + i, Op.ERROR, body)]))));
  });
  t.all(d.close());
  return t.frames;
}

/** v5: an envelope over three frames, frames holding several envelopes, v5's prepared ids and metadata ids, damaged frames, LZ4 frames stored uncompressed */
function v5Frames(): GenFrame[] {
  const t = new Timeline();
  const c = v4Conn(t, '10.90.3.1', 50004);
  t.add(c.seg(0, F.PSH | F.ACK, req(5, 1, Op.STARTUP, enc.stringMap({ CQL_VERSION: '3.0.0' }))));
  t.add(c.seg(1, F.PSH | F.ACK, res(5, 1, Op.READY)));
  const id = Buffer.from('fedcba9876543210fedcba9876543210', 'hex');
  const metaId = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
  // PREPARE and its answer: the statement id, then the result metadata id
  t.add(c.seg(0, F.PSH | F.ACK, Buffer.concat(segments([req(5, 2, Op.PREPARE, prepareBody(5, 'INSERT INTO shop.blobs (k, v) VALUES (?, ?)'))]))));
  t.add(c.seg(1, F.PSH | F.ACK, Buffer.concat(segments([res(5, 2, Op.RESULT, prepared(id, 'shop', 'blobs', [['k', 0x09], ['v', 0x03]], [], metaId))]))));
  // an EXECUTE of 300 KB: three frames, none self-contained, sent in pieces
  const big = executeBody(5, id, { values: [int(1), Buffer.alloc(300_000, 0x61)] }, metaId);
  const wire = Buffer.concat(segments([req(5, 3, Op.EXECUTE, big)]));
  for (let o = 0; o < wire.length; o += 1448) t.add(c.seg(0, F.ACK, wire.subarray(o, o + 1448)), 50_000);
  // two answers and a push in one frame, the rows with a new metadata id
  t.add(c.seg(0, F.PSH | F.ACK, Buffer.concat(segments([req(5, 4, Op.EXECUTE, executeBody(5, id, { values: [int(2), Buffer.from('b')] }, metaId))]))));
  t.add(c.seg(1, F.PSH | F.ACK, Buffer.concat(segments([
    res(5, 4, Op.RESULT, voidResult()),
    res(5, -1, Op.EVENT, Buffer.concat([string('STATUS_CHANGE'), string('UP'), Buffer.from([4, 10, 90, 0, 1]), int(9042)])),
    res(5, 3, Op.RESULT, voidResult()),
  ]))));
  t.add(c.seg(0, F.PSH | F.ACK, Buffer.concat(segments([req(5, 5, Op.QUERY, queryBody(5, 'SELECT * FROM shop.blobs'))]))));
  t.add(c.seg(1, F.PSH | F.ACK, Buffer.concat(segments([res(5, 5, Op.RESULT, rows('shop', 'blobs', [['k', 0x09]], 3, { newMetadataId: metaId }))]))));
  // a frame whose payload CRC is wrong: it is skipped; the next one is read
  const bad = segment(req(5, 6, Op.QUERY, queryBody(5, 'SELECT * FROM shop.lost')), true);
  bad[bad.length - 1] ^= 0xff;
  t.add(c.seg(0, F.PSH | F.ACK, Buffer.concat([bad, ...segments([req(5, 7, Op.QUERY, queryBody(5, 'SELECT * FROM shop.kept'))])])));
  t.add(c.seg(1, F.PSH | F.ACK, Buffer.concat(segments([res(5, 7, Op.RESULT, voidResult())]))));
  // a frame header whose CRC24 is wrong: the stream is searched for the next frame
  const badHeader = segment(req(5, 8, Op.QUERY, queryBody(5, 'SELECT * FROM shop.gone')), true);
  badHeader[3] ^= 0x55;
  t.add(c.seg(0, F.PSH | F.ACK, Buffer.concat([badHeader, ...segments([req(5, 9, Op.QUERY, queryBody(5, 'SELECT * FROM shop.found'))])])));
  t.add(c.seg(1, F.PSH | F.ACK, Buffer.concat(segments([res(5, 9, Op.RESULT, voidResult()), res(5, 6, Op.RESULT, voidResult())]))));
  t.all(c.close());

  // LZ4 frames, one of them stored as is (not worth compressing: uncompressed length 0)
  const z = v4Conn(t, '10.90.3.2', 50005);
  t.add(z.seg(0, F.PSH | F.ACK, req(5, 1, Op.STARTUP, enc.stringMap({ CQL_VERSION: '3.0.0', COMPRESSION: 'lz4' }))));
  t.add(z.seg(1, F.PSH | F.ACK, res(5, 1, Op.READY)));
  t.add(z.seg(0, F.PSH | F.ACK, segment(req(5, 2, Op.OPTIONS), true, true)));
  t.add(z.seg(1, F.PSH | F.ACK, segment(res(5, 2, Op.SUPPORTED, enc.stringMultimap({ COMPRESSION: ['lz4'], PROTOCOL_VERSIONS: ['5/v5'] })), true, true)));
  t.add(z.seg(0, F.PSH | F.ACK, segment(req(5, 3, Op.QUERY, queryBody(5, `SELECT * FROM shop.users WHERE name = '${'abc'.repeat(40)}'`)), true, true)));
  t.add(z.seg(1, F.PSH | F.ACK, segment(res(5, 3, Op.RESULT, rows('shop', 'users', [['name', 0x0d]], 20)), true, true)));
  t.all(z.close());
  return t.frames;
}

/** connections whose start was not captured: inside a v4 body, inside a v5 frame, inside an LZ4 v5 frame */
function midstream(): GenFrame[] {
  const t = new Timeline();
  const pair = (c: TcpConv, i: number, wrap: (e: Buffer) => Buffer, v: number) => {
    t.add(c.seg(0, F.PSH | F.ACK, wrap(req(v, i, Op.QUERY, queryBody(v, `SELECT * FROM shop.t WHERE k = ${i}`)))));
    t.add(c.seg(1, F.PSH | F.ACK, wrap(res(v, i, Op.RESULT, rows('shop', 't', [['k', 0x09]], 1)))));
  };
  // v4: the first bytes are the tail of a request, and of its response
  const a = v4Conn(t, '10.90.4.1', 50006, 9042, false);
  const tail = req(4, 1, Op.QUERY, queryBody(4, 'SELECT * FROM shop.t WHERE k = 0 AND something_long = 1'));
  t.add(a.seg(0, F.PSH | F.ACK, tail.subarray(20)));
  t.add(a.seg(1, F.PSH | F.ACK, res(4, 1, Op.RESULT, rows('shop', 't', [['k', 0x09]], 1)).subarray(13)));
  for (let i = 2; i < 5; i++) pair(a, i, (e) => e, 4);
  t.all(a.close());
  for (const lz4 of [false, true]) {
    const b = v4Conn(t, lz4 ? '10.90.4.3' : '10.90.4.2', lz4 ? 50008 : 50007, 9042, false);
    const first = segment(req(5, 1, Op.QUERY, queryBody(5, 'SELECT * FROM shop.t WHERE k = 0')), true, lz4);
    t.add(b.seg(0, F.PSH | F.ACK, first.subarray(5)));
    for (let i = 2; i < 5; i++) pair(b, i, (e) => segment(e, true, lz4), 5);
    t.all(b.close());
  }
  return t.frames;
}

/** segments lost for good: inside a request body (kept, partial), over a response header (resynchronised), inside a v5 frame */
function gaps(): GenFrame[] {
  const t = new Timeline();
  const c = v4Conn(t, '10.90.5.1', 50009);
  startup(t, c, 4);
  // a 3000-byte query whose middle segment is never captured
  const long = req(4, 2, Op.QUERY, queryBody(4, `SELECT * FROM shop.t WHERE k IN (${Array.from({ length: 700 }, (_, i) => i).join(',')})`));
  t.add(c.seg(0, F.ACK, long.subarray(0, 1000)));
  c.seg(0, F.ACK, long.subarray(1000, 2000)); // lost
  t.add(c.seg(0, F.PSH | F.ACK, long.subarray(2000)));
  t.add(c.seg(1, F.PSH | F.ACK, res(4, 2, Op.RESULT, rows('shop', 't', [['k', 0x09]], 700))));
  // three answers, the segment with the second one's header and the third one's start lost
  t.add(c.seg(0, F.PSH | F.ACK, Buffer.concat([3, 4, 5, 6].map((s) => req(4, s, Op.QUERY, queryBody(4, `SELECT * FROM shop.t WHERE k = ${s}`))))));
  const answers = Buffer.concat([3, 4, 5].map((s) => res(4, s, Op.RESULT, rows('shop', 't', [['k', 0x09], ['v', 0x0d]], 5))));
  const first = res(4, 3, Op.RESULT, rows('shop', 't', [['k', 0x09], ['v', 0x0d]], 5)).length;
  t.add(c.seg(1, F.ACK, answers.subarray(0, first + 5)));
  c.seg(1, F.ACK, answers.subarray(first + 5, first * 2 + 20)); // lost
  t.add(c.seg(1, F.ACK, answers.subarray(first * 2 + 20)));
  t.add(c.seg(1, F.PSH | F.ACK, res(4, 6, Op.RESULT, voidResult())));
  t.add(c.seg(0, F.ACK));
  t.all(c.close());

  // v5: a frame's middle lost; the frames after it are read
  const v = v4Conn(t, '10.90.5.2', 50010);
  t.add(v.seg(0, F.PSH | F.ACK, req(5, 1, Op.STARTUP, enc.stringMap({ CQL_VERSION: '3.0.0' }))));
  t.add(v.seg(1, F.PSH | F.ACK, res(5, 1, Op.READY)));
  t.add(v.seg(0, F.PSH | F.ACK, Buffer.concat(segments([2, 3].map((s) => req(5, s, Op.QUERY, queryBody(5, `SELECT * FROM shop.t WHERE k = ${s}`)))))));
  const frame = segment(res(5, 2, Op.RESULT, rows('shop', 't', [['k', 0x09]], 200)), true);
  t.add(v.seg(1, F.ACK, frame.subarray(0, 500)));
  v.seg(1, F.ACK, frame.subarray(500, 1000)); // lost
  t.add(v.seg(1, F.ACK, frame.subarray(1000)));
  t.add(v.seg(1, F.PSH | F.ACK, Buffer.concat(segments([res(5, 3, Op.RESULT, voidResult())]))));
  t.add(v.seg(0, F.ACK));
  t.all(v.close());
  return t.frames;
}

/** compression: Snappy on a connection whose STARTUP was not seen, a compression Cassandra does not have, a damaged LZ4 body */
function compression(): GenFrame[] {
  const t = new Timeline();
  const a = v4Conn(t, '10.90.6.1', 50011, 9042, false);
  for (let i = 1; i < 4; i++) {
    t.add(a.seg(0, F.PSH | F.ACK, req(4, i, Op.QUERY, compressBody('snappy', queryBody(4, `SELECT * FROM shop.snappy WHERE k = ${i} AND v = 'aaaaaaaaaaaaaaaaaaaa'`)), Flag.COMPRESSION)));
    t.add(a.seg(1, F.PSH | F.ACK, res(4, i, Op.RESULT, compressBody('snappy', rows('shop', 'snappy', [['k', 0x09]], 10)), Flag.COMPRESSION)));
  }
  t.all(a.close());
  const b = v4Conn(t, '10.90.6.2', 50012);
  startup(t, b, 4, 'zstd');
  t.add(b.seg(0, F.PSH | F.ACK, req(4, 2, Op.QUERY, Buffer.from('not really zstd'), Flag.COMPRESSION)));
  t.add(b.seg(1, F.PSH | F.ACK, res(4, 2, Op.RESULT, Buffer.from('nor this'), Flag.COMPRESSION)));
  t.all(b.close());
  const c = v4Conn(t, '10.90.6.3', 50013);
  startup(t, c, 4, 'lz4');
  const body = compressBody('lz4', queryBody(4, "SELECT * FROM shop.lz4 WHERE v = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'"));
  t.add(c.seg(0, F.PSH | F.ACK, req(4, 2, Op.QUERY, body, Flag.COMPRESSION)));
  const broken = Buffer.from(compressBody('lz4', rows('shop', 'lz4', [['v', 0x0d]], 10)));
  broken.writeUInt32BE(broken.readUInt32BE(0) + 100, 0); // declares more than the block holds
  t.add(c.seg(1, F.PSH | F.ACK, res(4, 2, Op.RESULT, broken, Flag.COMPRESSION)));
  t.all(c.close());
  return t.frames;
}

/** a server on another port (found by its first bytes), v3; a request that outlives the transaction timeout */
function otherPortAndTimeout(): GenFrame[] {
  const t = new Timeline();
  const c = v4Conn(t, '10.90.7.1', 50014, 19042);
  startup(t, c, 3);
  t.add(c.seg(0, F.PSH | F.ACK, req(3, 2, Op.QUERY, queryBody(3, 'SELECT * FROM system.local'))));
  t.add(c.seg(1, F.PSH | F.ACK, res(3, 2, Op.RESULT, rows('system', 'local', [['key', 0x0d]], 1))));
  t.add(c.seg(0, F.PSH | F.ACK, req(3, 3, Op.REGISTER, stringList(['TOPOLOGY_CHANGE', 'STATUS_CHANGE', 'SCHEMA_CHANGE']))));
  t.add(c.seg(1, F.PSH | F.ACK, res(3, 3, Op.READY)));
  // unanswered for 15 s of packet time, then the connection goes on
  t.add(c.seg(0, F.PSH | F.ACK, req(3, 4, Op.QUERY, queryBody(3, 'SELECT * FROM shop.stuck'))));
  t.add(c.seg(0, F.PSH | F.ACK, req(3, 5, Op.QUERY, queryBody(3, 'SELECT * FROM shop.next'))), 15_000_000_000);
  t.add(c.seg(1, F.PSH | F.ACK, res(3, 5, Op.RESULT, voidResult())));
  // authentication, with a challenge round
  t.add(c.seg(0, F.PSH | F.ACK, req(3, 6, Op.AUTH_RESPONSE, bytes(Buffer.from('\0user\0secret')))));
  t.add(c.seg(1, F.PSH | F.ACK, res(3, 6, Op.AUTH_CHALLENGE, bytes(Buffer.from('nonce')))));
  t.add(c.seg(0, F.PSH | F.ACK, req(3, 7, Op.AUTH_RESPONSE, bytes(Buffer.from('proof')))));
  t.add(c.seg(1, F.PSH | F.ACK, res(3, 7, Op.AUTH_SUCCESS, bytes(null))));
  t.all(c.close());
  return t.frames;
}

export function cassandraEdgeCases(): Record<string, Buffer> {
  return {
    'edge-pipelined.pcap': writePcap(pipelined()),
    'edge-errors.pcap': writePcap(errors()),
    'edge-v5-frames.pcap': writePcap(v5Frames()),
    'edge-midstream.pcap': writePcap(midstream()),
    'edge-gaps.pcap': writePcap(gaps()),
    'edge-compression.pcap': writePcap(compression()),
    'edge-port-timeout.pcap': writePcap(otherPortAndTimeout()),
  };
}

if (require.main === module) {
  const dir = path.join(__dirname, '..', '..', 'fixtures', 'cassandra');
  mkdirSync(dir, { recursive: true });
  const files = cassandraEdgeCases();
  for (const [name, data] of Object.entries(files)) writeFileSync(path.join(dir, name), data);
  console.log(`wrote ${Object.keys(files).length} files to ${dir}`);
}
