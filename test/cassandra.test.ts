/**
 * Cassandra (CQL native protocol v3–v5): the framing and compression pieces, the
 * content probe, the transactions on the fixtures (real Cassandra 4.1 traffic from
 * scripts/fixtures/cassandra.ts, generated edge cases from test/gen/cassandra.ts),
 * the options and bounds, fuzzing (random splits give the same events, damage never
 * escapes a stage), agreement with tshark's `cql` dissector, and a live test against
 * a real server on a port of its own.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import snappy from 'snappyjs';
import { makeFrame, type Frame } from '../src/core/frame';
import { decodeRequest, decodeResponse, Reader } from '../src/protocols/cassandra/body';
import { looksLikeCql } from '../src/protocols/cassandra/probe';
import { crc24, decompress, lz4Block as lz4Decode, Op, payloadCrc32 } from '../src/protocols/cassandra/wire';
import { PcapReader } from '../src/sources/pcap';
import { cassandraAvailable, driverSession, rawSession, startCassandra, type Server } from './cassandra-env';
import { recordLoopback } from './capture';
import { enc, envelope, lz4Block, queryBody, segment } from './gen/cql';
import { ether, ipv4, tcp } from './gen/packets';
import { assertAccounting, cli, fixture, ndjson, pushThroughStages, readFile } from './helpers';
import { freePort } from './net';

const FIXTURES = ['driver-v4', 'driver-v3', 'auth', 'raw-v5', 'raw-v5-lz4', 'raw-v4-lz4', 'raw-v4-snappy'];
const EDGE = ['edge-pipelined', 'edge-errors', 'edge-v5-frames', 'edge-midstream', 'edge-gaps', 'edge-compression', 'edge-port-timeout'];
const file = (name: string) => fixture(`cassandra/${name}.pcap`);

function frames(name: string): Frame[] {
  return new PcapReader(name).push(readFileSync(file(name)));
}

async function events(name: string, options: Record<string, unknown> = {}): Promise<any[]> {
  const r = await readFile(file(name), { options: { cassandra: options } });
  assert.equal(r.error, null);
  assertAccounting(r.stats, name);
  return r.events as any[];
}

const stats = async (name: string, options: Record<string, unknown> = {}) => ((await readFile(file(name), { options: { cassandra: options } })).stats.analyze as any).protocols.cassandra;

describe('cassandra: framing pieces', { timeout: 60_000 }, () => {
  it('CRC24 and CRC32 of v5 frames match what Cassandra sends', () => {
    // every v5 frame of the real captures passed both checks, or the transactions below would be missing
    const h = Buffer.from([0x2a, 0x00, 0x02]); // 42 bytes, self-contained
    const crc = crc24(h, 0, 3);
    assert.ok(crc >= 0 && crc < 1 << 24);
    const seg = segment(Buffer.alloc(42, 7), true);
    assert.equal(seg.readUIntLE(3, 3), crc);
    assert.equal(seg.readUInt32LE(6 + 42), payloadCrc32(seg, 6, 42));
  });

  it('LZ4 and Snappy bodies decompress to what was compressed; damage gives null, never an exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.nat(4), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 }), (raw, alphabet, flips) => {
        // small alphabets make matches, random bytes make literals
        const src = alphabet === 0 ? Buffer.from(raw) : Buffer.from(raw.map((b) => 97 + (b % alphabet)));
        const z = lz4Block(src);
        assert.deepEqual(lz4Decode(z, 0, z.length, src.length), src);
        const s = Buffer.from(snappy.compress(src));
        assert.deepEqual(decompress('snappy', s, 0, s.length, 1 << 20), src);
        for (const body of [Buffer.concat([enc.int(src.length), z]), s]) {
          const damaged = Buffer.from(body);
          for (const [i, v] of flips) if (damaged.length > 0) damaged[i % damaged.length] = v;
          decompress('lz4', damaged, 0, damaged.length, 1 << 20);
          decompress('snappy', damaged, 0, damaged.length, 1 << 20);
        }
      }),
      { numRuns: 300 },
    );
    // a declared size beyond the limit is refused before any work
    const big = Buffer.concat([enc.int(100 << 20), lz4Block(Buffer.alloc(10))]);
    assert.equal(decompress('lz4', big, 0, big.length, 1 << 20), null);
  });

  it('bodies cut anywhere decode to what fits, without throwing', () => {
    const bodies: [number, number, Buffer][] = [];
    for (const name of [...FIXTURES, ...EDGE]) {
      for (const f of frames(name)) {
        // Ethernet, IPv4, TCP: the payloads that start with an envelope header
        const ihl = (f.data[14] & 0x0f) * 4;
        const p = 14 + ihl + (f.data[14 + ihl + 12] >> 4) * 4;
        if (f.data.length - p < 9 || (f.data[p] & 0x7f) < 3 || (f.data[p] & 0x7f) > 5 || f.data[p + 1] !== 0) continue;
        bodies.push([f.data[p], f.data[p + 4], f.data.subarray(p + 9, p + 9 + f.data.readUInt32BE(p + 5))]);
      }
    }
    assert.ok(bodies.length > 100);
    for (const [v, op, body] of bodies) {
      for (let cut = 0; cut <= body.length; cut += Math.max(1, Math.floor(body.length / 17))) {
        const r = new Reader(body, 0, cut);
        if (v & 0x80) decodeResponse(v & 0x7f, 0, op, r);
        else decodeRequest(v, 0, op, r, 1 << 14, () => undefined);
      }
    }
  });
});

describe('cassandra: the content probe', { timeout: 60_000 }, () => {
  it('recognises the first payload of every CQL connection of the captures', async () => {
    for (const name of [...FIXTURES, 'edge-port-timeout']) {
      const seen = new Set<string>();
      for (const f of frames(name)) {
        const ihl = (f.data[14] & 0x0f) * 4;
        const t = 14 + ihl;
        const p = t + (f.data[t + 12] >> 4) * 4;
        // TCP with a payload (the recordings end with a UDP sentinel)
        if (f.data[23] !== 6 || p >= f.data.length) continue;
        const sport = f.data.readUInt16BE(t);
        const dport = f.data.readUInt16BE(t + 2);
        const key = `${Math.min(sport, dport)}-${Math.max(sport, dport)}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const side = dport === 9042 || dport === 19042 ? 0 : 1;
        assert.ok(looksLikeCql(f.data, p, f.data.length - p, side), `${name}: first payload of ${key}`);
      }
      assert.ok(seen.size > 0);
    }
  });

  it('does not take the other protocols for CQL, either side', () => {
    const le32 = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(n);
      return b;
    };
    const be32 = (n: number) => enc.int(n);
    const others = [
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'),
      Buffer.from('\x00\x1d\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x04test\x00\x00\x01\x00\x01', 'latin1'), // DNS over TCP
      Buffer.from('*1\r\n$4\r\nPING\r\n'),
      Buffer.from('+PONG\r\n'),
      Buffer.concat([be32(41), be32(196608), Buffer.from('user\0postgres\0database\0db\0\0')]), // PostgreSQL startup
      Buffer.from([0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f]), // SSLRequest
      Buffer.from('R\0\0\0\x08\0\0\0\0', 'latin1'),
      Buffer.concat([Buffer.from([0x4a, 0, 0, 0, 0x0a]), Buffer.from('8.0.36\0'), Buffer.alloc(60, 1)]), // MySQL greeting
      Buffer.concat([Buffer.from([0x85, 0, 0, 0, 0x0a]), Buffer.from('5.7.44\0'), Buffer.alloc(60, 1)]),
      Buffer.concat([Buffer.from([0x04, 0, 0, 1, 0x05, 0xa6, 0xff, 0x01, 0x00]), Buffer.alloc(40, 0)]), // MySQL handshake response
      Buffer.from('get foo\r\n'),
      Buffer.concat([Buffer.from([0x80, 0x00, 0x00, 0x03, 0, 0, 0, 0, 0, 0, 0, 3]), Buffer.alloc(12), Buffer.from('foo')]), // memcached binary
      Buffer.concat([Buffer.from([0x81, 0x00, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]), Buffer.alloc(12)]),
      Buffer.concat([le32(58), le32(4), le32(0), le32(2013), le32(0), Buffer.from([0]), Buffer.alloc(37, 1)]), // MongoDB OP_MSG
      Buffer.concat([le32(5 + 16), le32(7), le32(0), le32(2004), Buffer.alloc(5)]),
    ];
    for (const [i, b] of others.entries()) for (const side of [0, 1]) assert.equal(looksLikeCql(b, 0, b.length, side), false, `#${i} side ${side}`);
    let hits = 0;
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 9, maxLength: 200 }), fc.nat(1), (bytes, side) => {
        const b = Buffer.from(bytes);
        if (looksLikeCql(b, 0, b.length, side)) hits++;
      }),
      { numRuns: 20_000, seed: 42 },
    );
    assert.ok(hits <= 2, `${hits} random buffers taken for CQL`);
  });
});

describe('cassandra: transactions from a real Cassandra 4.1', { timeout: 600_000 }, () => {
  it('the driver (v4): many requests at once on one connection, answered out of order, all paired but one past the timeout', async () => {
    const ev = await events('driver-v4');
    // all paired but the DROP KEYSPACE that a busy machine's Cassandra answered after 11.8 s, past the
    // 10 s transaction timeout: its request is reported then, its response late, both with the query
    const unmatched = ev.filter((e) => e.error?.message !== undefined);
    assert.deepEqual(unmatched.map((e) => [e.query, e.error.message, e.notes]), [
      ['DROP KEYSPACE shop', 'Unmatched request', ['no response within the transaction timeout']],
      ['DROP KEYSPACE shop', 'Unmatched response', ['response after the transaction timeout']],
    ]);
    const concurrent = ev.filter((e) => e.method === 'EXECUTE' && e.cassandra.request.headers.stream !== undefined);
    assert.ok(concurrent.length >= 200);
    // responses came in another order than the requests: sorted by request start, their ends are not sorted
    const byStart = [...concurrent].sort((a, b) => (a.event.start < b.event.start ? -1 : 1));
    assert.ok(byStart.some((e, i) => i > 0 && e.event.end < byStart[i - 1].event.end), 'out-of-order responses');
    assert.ok(new Set(concurrent.map((e) => e.cassandra.request.headers.stream)).size > 50, 'many stream ids in flight');
    // the driver tries DataStax's version first: the protocol error is paired with its request
    const negotiation = ev.find((e) => e.cassandra.response?.error?.type === 'errProtocol');
    assert.equal(negotiation.cassandra.request.headers.version, 0x42);
    assert.equal(negotiation.status, 'Error');
  });

  it('the driver: schema changes and their pushed events, paging, prepared statements, batches, tracing, warnings, errors', async () => {
    for (const name of ['driver-v4', 'driver-v3']) {
      const ev = await events(name);
      const version = name === 'driver-v4' ? 4 : 3;
      assert.ok(ev.filter((e) => e.cassandra.request?.headers.version === version).length > 30);
      const created = ev.find((e) => e.query?.startsWith('CREATE TABLE users'));
      assert.deepEqual(created.cassandra.response.result.schema_change, { change: 'CREATED', target: 'TABLE', keyspace: created.resource.split('.')[0], object: 'users' });
      const pushes = ev.filter((e) => e.cassandra.no_request);
      assert.ok(pushes.length >= 3 && pushes.every((e) => e.status === 'OK' && e.cassandra.response.headers.stream === -1 && e.error === undefined));
      assert.ok(pushes.some((e) => e.cassandra.response.event.schema_change?.object === 'users'));
      const pages = ev.filter((e) => e.query === 'SELECT id, name FROM users');
      assert.ok(pages.length >= 4);
      assert.match(pages[0].cassandra.response.result.rows.meta.flags, /HasMorePages/);
      assert.match(pages[0].cassandra.response.result.rows.meta.paging_state, /^[0-9A-F]+$/);
      assert.equal(pages[0].cassandra.response.result.rows.num_rows, 3);
      assert.equal(pages[pages.length - 1].cassandra.response.result.rows.meta.paging_state, undefined);
      const prepare = ev.find((e) => e.method === 'PREPARE' && e.query.startsWith('INSERT INTO users'));
      const id = prepare.cassandra.response.result.prepared.prepared_id;
      const execs = ev.filter((e) => e.cassandra.request?.prepared_id === id);
      assert.ok(execs.length >= 5 && execs.every((e) => e.query === prepare.query && e.status === 'OK'));
      const batch = ev.find((e) => e.method === 'BATCH' && e.cassandra.request.batch.type === 'LOGGED');
      assert.equal(batch.cassandra.request.batch.statements, 10);
      // warnings came with v4
      if (version === 4) assert.match(batch.cassandra.response.warnings[0], /Batch for \[.*users\] is of size/);
      assert.equal(ev.find((e) => e.cassandra.request?.headers.flags === 'Tracing').cassandra.response.headers.flags, 'Tracing');
      const errs = Object.fromEntries(ev.filter((e) => e.cassandra.response?.error).map((e) => [e.query, e.cassandra.response.error]));
      assert.equal(errs['SELEC * FROM users'].type, 'errSyntax');
      assert.equal(errs['SELECT * FROM no_such_table'].code, 0x2200);
      assert.deepEqual(errs['CREATE TABLE users (id int PRIMARY KEY)'].details?.table, 'users');
      assert.equal(ev.find((e) => e.query === 'USE "' + created.resource.split('.')[0] + '"')?.cassandra.response.result.type, 'set_keyspace');
    }
  });

  it('v5 frames (self-contained and split), LZ4 and Snappy: the same transactions whatever the framing', async () => {
    const summary = (e: any) => [e.method ?? 'push', e.status, (e.query ?? '').replace(/raw\w+/g, 'KS'), e.cassandra.response?.result?.type, e.cassandra.response?.result?.rows?.num_rows, e.cassandra.response?.error?.code].join('|');
    const reference = (await events('raw-v4-lz4')).map(summary).sort();
    assert.equal(reference.length, 25);
    for (const name of ['raw-v5', 'raw-v5-lz4', 'raw-v4-snappy']) assert.deepEqual((await events(name)).map(summary).sort(), reference, name);
    const s5 = await stats('raw-v5');
    assert.ok(s5.v5_frames > 20);
    assert.deepEqual(s5.unmatched, {});
    // the 200 KB EXECUTE spans frames that are not self-contained, and so does its SELECT
    const big = (await events('raw-v5')).find((e) => e.method === 'EXECUTE' && e.cassandra.request.headers.length > 200_000);
    assert.equal(big.status, 'OK');
    assert.ok((await stats('raw-v4-lz4')).compressed_bodies.lz4 > 20);
    assert.ok((await stats('raw-v4-snappy')).compressed_bodies.snappy > 20);
  });

  it('authentication: AUTHENTICATE, AUTH_RESPONSE and AUTH_SUCCESS, and bad credentials', async () => {
    const ev = await events('auth');
    const ask = ev.find((e) => e.cassandra.response?.headers.op === 'AUTHENTICATE');
    assert.equal(ask.cassandra.response.authentication.class, 'org.apache.cassandra.auth.PasswordAuthenticator');
    assert.ok(ev.some((e) => e.method === 'AUTH_RESPONSE' && e.cassandra.response.headers.op === 'AUTH_SUCCESS' && e.status === 'OK'));
    const bad = ev.find((e) => e.method === 'AUTH_RESPONSE' && e.status === 'Error');
    assert.equal(bad.cassandra.response.error.type, 'errCredentials');
    // credentials are never put in events
    assert.ok(!JSON.stringify(ev).includes('wrong'));
  });
});

describe('cassandra: generated edge cases', { timeout: 600_000 }, () => {
  it('pipelined requests, answers split byte by byte and out of order, pushes, reuse of a stream, an answer to nothing', async () => {
    const ev = await events('edge-pipelined');
    const q = (text: string) => ev.find((e) => e.query === text);
    assert.equal(q('SELECT * FROM shop.users').cassandra.response.result.rows.meta.col_count, 5);
    assert.equal(q('SELECT * FROM shop.users').cassandra.response.result.rows.num_rows, 2);
    assert.equal(q('SELECT * FROM shop.kinds').cassandra.request.headers.flags, 'CustomPayload');
    assert.equal(q('SELECT count(*) FROM shop.users').cassandra.response.headers.flags, 'Tracing|Warning');
    assert.equal(q('USE shop').cassandra.response.result.keyspace, 'shop');
    assert.deepEqual(ev.filter((e) => e.cassandra.no_request).map((e) => e.cassandra.response.event.host ?? e.cassandra.response.event.type), ['SCHEMA_CHANGE', '2001:db8::42', '10.90.0.2', 'SCHEMA_CHANGE']);
    assert.deepEqual(q('SELECT * FROM shop.slow').notes, ['another request on the same stream before a response']);
    assert.equal(q('SELECT * FROM shop.fast').status, 'OK');
    assert.equal(ev.filter((e) => e.error?.message === 'Unmatched response').length, 1);
    assert.deepEqual(q('SELECT * FROM shop.never').notes, ['no response before the connection closed']);
  });

  it('errors of every kind with their details, v4 and v5', async () => {
    const ev = (await events('edge-errors')).filter((e) => e.cassandra.response?.error);
    const types = ev.map((e) => e.cassandra.response.error.type);
    for (const t of ['errUnavailable', 'errWriteTimeout', 'errReadTimeout', 'errReadFailure', 'errWriteFailure', 'errFunctionFailure', 'errAlreadyExists', 'errUnprepared', 'errCDCWriteFailure', 'errCASWriteUnknown', 'ErrUnknown']) assert.ok(types.includes(t), t);
    const v5failure = ev.find((e) => e.cassandra.response.headers.version === 5 && e.cassandra.response.error.type === 'errReadFailure');
    assert.deepEqual(v5failure.cassandra.response.error.details, { read_consistency: 'ONE', received: 0, blockfor: 1, num_failures: 2, data_present: true });
    assert.ok(ev.every((e) => e.status === 'Error' && e.error === undefined));
  });

  it('v5: an envelope over three frames, damaged frames skipped, the stream found again', async () => {
    const ev = await events('edge-v5-frames');
    assert.equal(ev.find((e) => e.cassandra.request?.headers.length > 300_000).status, 'OK');
    assert.ok(ev.some((e) => e.query === 'SELECT * FROM shop.kept' && e.status === 'OK'));
    assert.ok(ev.some((e) => e.query === 'SELECT * FROM shop.found' && e.status === 'OK'));
    assert.ok(!ev.some((e) => e.query === 'SELECT * FROM shop.lost' || e.query === 'SELECT * FROM shop.gone'));
    assert.equal(ev.find((e) => e.query === 'SELECT * FROM shop.blobs').cassandra.response.result.rows.meta.flags, 'GlobalTableSpec|MetadataChanged');
    const s = await stats('edge-v5-frames');
    assert.deepEqual(s.violations, { request_frame_header_crc: 1, request_frame_payload_crc: 1 });
  });

  it('connections first seen mid-stream, in v4, v5 and v5 with LZ4', async () => {
    const ev = await events('edge-midstream');
    for (const port of [50006, 50007, 50008]) {
      const ok = ev.filter((e) => e.client.port === port && e.status === 'OK').map((e) => e.query);
      assert.deepEqual(ok, [2, 3, 4].map((k) => `SELECT * FROM shop.t WHERE k = ${k}`), `port ${port}`);
    }
  });

  it('lost segments: a request with a hole is still paired (partial); after a lost header the stream is found again', async () => {
    const ev = await events('edge-gaps');
    const long = ev.find((e) => e.query?.startsWith('SELECT * FROM shop.t WHERE k IN'));
    assert.equal(long.status, 'OK');
    assert.deepEqual(long.notes, ['packet loss: 1000 request bytes missing']);
    assert.equal(long.cassandra.response.result.rows.num_rows, 700);
    const status = Object.fromEntries(ev.filter((e) => e.query?.includes('k = ')).map((e) => [`${e.client.port} ${e.query}`, e.status]));
    assert.deepEqual(status, {
      '50009 SELECT * FROM shop.t WHERE k = 3': 'OK',
      '50009 SELECT * FROM shop.t WHERE k = 4': 'Error',
      '50009 SELECT * FROM shop.t WHERE k = 5': 'Error',
      '50009 SELECT * FROM shop.t WHERE k = 6': 'OK',
      '50010 SELECT * FROM shop.t WHERE k = 2': 'Error',
      '50010 SELECT * FROM shop.t WHERE k = 3': 'OK',
    });
  });

  it('compression: guessed without the STARTUP, or chosen by the compressor option; unsupported and damaged bodies noted', async () => {
    const ev = await events('edge-compression');
    assert.equal(ev.filter((e) => e.query?.startsWith('SELECT * FROM shop.snappy') && e.cassandra.response.result.rows.num_rows === 10).length, 3);
    const zstd = ev.find((e) => e.client.port === 50012 && e.method === 'QUERY');
    assert.deepEqual(zstd.notes, ['compressed request body not decoded: its compression is not supported', 'compressed response body not decoded: its compression is not supported']);
    const broken = ev.find((e) => e.query?.startsWith('SELECT * FROM shop.lz4'));
    assert.deepEqual(broken.notes, ['compressed response body not decoded: it does not decompress']);
    const s = await stats('edge-compression');
    assert.deepEqual(s.unreadable_bodies, { compressed_unsupported: 2, decompression_failed: 1 });
    // told LZ4, the Snappy connection is not guessed: its bodies do not decompress
    const told = await events('edge-compression', { compressor: 'lz4' });
    assert.equal(told.filter((e) => e.client.port === 50011 && e.notes?.length === 2).length, 3);
  });

  it('a server on another port is found by its first bytes; a request unanswered for 15 s times out (packet time)', async () => {
    assert.equal(((await readFile(file('edge-port-timeout'))).stats.analyze as any).connections.cassandra_by_probe, 1);
    // small batches, so that time passes between them as it does in a long capture
    const { events: ev, stats: st } = pushThroughStages(frames('edge-port-timeout'), {}, 1);
    assertAccounting(st);
    const stuck = (ev as any[]).find((e) => e.query === 'SELECT * FROM shop.stuck');
    assert.deepEqual(stuck.notes, ['no response within the transaction timeout']);
    assert.equal(stuck.error.message, 'Unmatched request');
    assert.equal((st.analyze as any).protocols.cassandra.unmatched.timeout, 1);
    // AUTH_RESPONSE tokens are never put in events
    assert.ok(!JSON.stringify(ev).includes('secret'));
  });
});

describe('cassandra: options and bounds', { timeout: 600_000 }, () => {
  it('sendRequest, sendResponse and the header options leave their parts out', async () => {
    const ev = await events('edge-pipelined', { sendRequest: false, sendResponseHeader: false });
    assert.ok(ev.every((e) => e.cassandra.request === undefined && e.cassandra.response?.headers === undefined));
    assert.ok(ev.some((e) => e.query === 'USE shop'), 'the query is still the transaction\'s');
    const ev2 = await events('edge-pipelined', { sendResponse: false, sendRequestHeader: false });
    assert.ok(ev2.every((e) => e.cassandra.response === undefined && e.cassandra.request?.headers === undefined));
  });

  it('ignoredOps drops transactions with those opcodes, counted', async () => {
    const all = await events('raw-v4-snappy');
    const ev = await events('raw-v4-snappy', { ignoredOps: ['options', 'REGISTER'] });
    assert.equal(ev.length, all.length - 3);
    assert.ok(!ev.some((e) => e.method === 'OPTIONS' || e.method === 'REGISTER'));
    assert.deepEqual((await stats('raw-v4-snappy', { ignoredOps: ['OPTIONS', 'REGISTER'] })).transactions_dropped, { ignored_op: 3 });
  });

  it('requests waiting per connection are bounded: the oldest leave unanswered, counted', async () => {
    const s = await stats('driver-v4', { maxPending: 16 });
    assert.ok(s.unmatched.pending_limit > 0);
    const t = await stats('driver-v4', { maxPendingTotal: 16 });
    assert.ok(t.unmatched.pending_limit_total > 0);
  });

  it('bodies and queries longer than kept are decoded from their start, with a note', async () => {
    const ev = await events('raw-v5', { maxBodyBytes: 1000, maxQueryBytes: 20 });
    const q = ev.find((e) => e.query?.startsWith('CREATE KEYSPACE'));
    assert.equal(q.query.length, 20);
    assert.ok(q.notes.includes('query text cut at 20 bytes'));
    const big = ev.find((e) => e.method === 'EXECUTE' && e.cassandra.request.headers.length > 200_000);
    assert.ok(big.notes.some((n: string) => /request body of \d+ bytes: only its first 1000 decoded/.test(n)));
    // over the shared budget a body keeps its first 4 KiB: the 200 KB request is still decoded
    const s = await stats('raw-v5', { maxBufferedBytes: 10_000 });
    assert.ok(s.buffer_budget_exceeded > 0);
  });
});

// --- fuzzing ----------------------------------------------------------------------------------

/** a fixture's frames with every TCP payload cut into pieces at the given points (same times) */
function resegment(fs: Frame[], cuts: number[]): Frame[] {
  const out: Frame[] = [];
  let k = 0;
  for (const f of fs) {
    const d = f.data;
    const ihl = (d[14] & 0x0f) * 4;
    const t = 14 + ihl;
    if (d.readUInt16BE(12) !== 0x0800 || d[14 + 9] !== 6) {
      out.push(f);
      continue;
    }
    const hl = (d[t + 12] >> 4) * 4;
    const payload = d.subarray(t + hl);
    if (payload.length < 2) {
      out.push(f);
      continue;
    }
    const src = `${d[26]}.${d[27]}.${d[28]}.${d[29]}`;
    const dst = `${d[30]}.${d[31]}.${d[32]}.${d[33]}`;
    const seq = d.readUInt32BE(t + 4);
    for (let o = 0; o < payload.length; ) {
      const n = Math.max(1, cuts[k++ % cuts.length] % (payload.length - o + 1));
      const seg = tcp(d.readUInt16BE(t), d.readUInt16BE(t + 2), seq + o, d.readUInt32BE(t + 8), d[t + 13] & ~0x01, payload.subarray(o, o + n));
      const data = ether(0x0800, ipv4(src, dst, 6, seg));
      out.push(makeFrame(f.tsSec, f.tsNsec, f.linkType, data.length, 0, data));
      o += n;
    }
    if (d[t + 13] & 0x01) {
      // the FIN after the data
      const fin = ether(0x0800, ipv4(src, dst, 6, tcp(d.readUInt16BE(t), d.readUInt16BE(t + 2), seq + payload.length, d.readUInt32BE(t + 8), d[t + 13])));
      out.push(makeFrame(f.tsSec, f.tsNsec, f.linkType, fin.length, 0, fin));
    }
  }
  return out;
}

const cassandraEvents = (fs: Frame[], batch = 16) => {
  // timeouts fire between batches: with a long one, how the frames are batched does not matter
  const r = pushThroughStages(fs, { options: { cassandra: { transactionTimeoutSec: 3600 } } }, batch);
  assertAccounting(r.stats);
  return r.events.filter((e) => e.type === 'cassandra').map((e) => JSON.stringify(e));
};

describe('cassandra: fuzzing', { timeout: 600_000 }, () => {
  const small = ['raw-v5-lz4', 'raw-v4-lz4', 'raw-v4-snappy', 'driver-v3', 'auth', 'edge-pipelined', 'edge-errors', 'edge-midstream', 'edge-gaps', 'edge-compression'];
  const reference = new Map(small.map((n) => [n, cassandraEvents(frames(n))]));

  it('random splits of the fixtures\' streams give the same events', () => {
    fc.assert(
      fc.property(fc.constantFrom(...small), fc.array(fc.integer({ min: 1, max: 600 }), { minLength: 1, maxLength: 12 }), fc.integer({ min: 1, max: 64 }), (name, cuts, batch) => {
        assert.deepEqual(cassandraEvents(resegment(frames(name), cuts), batch), reference.get(name));
      }),
      { numRuns: 60 },
    );
  });

  it('damaged payloads and dropped segments never escape a stage; the accounting holds', () => {
    const all = small.map((n) => frames(n));
    fc.assert(
      fc.property(fc.nat(all.length - 1), fc.array(fc.tuple(fc.nat(), fc.nat(), fc.nat(255)), { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 5 }), (which, flips, drops) => {
        const fs = all[which].map((f) => makeFrame(f.tsSec, f.tsNsec, f.linkType, f.origLen, 0, Buffer.from(f.data)));
        for (const [i, at, v] of flips) {
          const f = fs[i % fs.length];
          // past the Ethernet, IP and TCP headers, mostly
          const o = 54 + (at % Math.max(1, f.data.length - 54));
          if (o < f.data.length) f.data[o] = v;
        }
        const kept = fs.filter((_, i) => !drops.some((d) => d % fs.length === i));
        cassandraEvents(kept);
      }),
      { numRuns: 150 },
    );
  });

  it('random bytes on the CQL port, in any framing state, never escape a stage', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.uint8Array({ maxLength: 300 })), { maxLength: 20 }), fc.boolean(), (chunks, v5) => {
        // a v5 handshake first (or not), then whatever comes
        let seq = [1000, 5000];
        const pk: Buffer[] = [];
        const send = (side: number, payload: Buffer, flags = 0x18) => {
          const [a, b] = side === 0 ? ['10.99.0.1', '10.99.0.2'] : ['10.99.0.2', '10.99.0.1'];
          pk.push(ether(0x0800, ipv4(a, b, 6, tcp(side === 0 ? 40000 : 9042, side === 0 ? 9042 : 40000, seq[side], seq[1 - side], flags, payload))));
          seq = side === 0 ? [seq[0] + payload.length, seq[1]] : [seq[0], seq[1] + payload.length];
        };
        send(0, envelope(v5 ? 5 : 4, 0, 1, Op.STARTUP, enc.stringMap({ CQL_VERSION: '3.0.0' })));
        send(1, envelope(v5 ? 0x85 : 0x84, 0, 1, Op.READY));
        send(0, v5 ? segment(envelope(5, 0, 2, Op.QUERY, queryBody(5, 'SELECT 1')), true) : envelope(4, 0, 2, Op.QUERY, queryBody(4, 'SELECT 1')));
        for (const [side, bytes] of chunks) send(side ? 1 : 0, Buffer.from(bytes));
        cassandraEvents(pk.map((p, i) => makeFrame(1_700_000_000, i * 1000, 1, p.length, 0, p)));
      }),
      { numRuns: 300 },
    );
  });
});

// --- tshark -----------------------------------------------------------------------------------

const haveTshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;

/** tshark's CQL messages: [direction (0 request), opcode, query or '', result kind, row count, error code] per message */
function tsharkMessages(f: string, port: number): string[][] {
  const out = execFileSync('tshark', ['-r', f, '-d', `tcp.port==${port},cql`, '-o', 'tcp.desegment_tcp_streams:TRUE', '-Y', 'cql', '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=|', '-e', 'cql.version', '-e', 'cql.opcode'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const rows: string[][] = [];
  for (const line of out.split('\n').filter((l) => l !== '')) {
    const [versions, ops] = line.split('\t').map((c) => c.split('|'));
    versions.forEach((v, i) => rows.push([String(Number(v) & 0x80 ? 1 : 0), ops[i]]));
  }
  return rows;
}

function counts(xs: string[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const x of xs) c[x] = (c[x] ?? 0) + 1;
  return c;
}

/** tshark values of one field, several messages of a frame split */
function tsharkField(f: string, filter: string, field: string): string[] {
  const out = execFileSync('tshark', ['-r', f, '-o', 'tcp.desegment_tcp_streams:TRUE', '-Y', filter, '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=\u0001', '-e', field], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return out.split('\n').filter((l) => l !== '').flatMap((l) => l.split('\u0001'));
}

describe('cassandra: agreement with tshark (cql dissector)', { skip: haveTshark ? false : 'tshark not installed', timeout: 600_000 }, () => {
  // tshark 4.0 dissects v3 and v4 (LZ4 and Snappy too) but not v5: the v5 captures are pktflow's
  // alone. It misreads a response body after a tracing id or warnings, a rows result with a paging
  // state ("Malformed Packet") and a request with a custom payload: row counts are compared on the
  // results it reads, and edge-pipelined (made of such messages) only by its golden output.
  for (const name of ['driver-v4', 'driver-v3', 'raw-v4-lz4', 'raw-v4-snappy', 'auth', 'edge-errors']) {
    it(name, async () => {
      const f = file(name);
      const ev = (await events(name)).filter((e) => e.cassandra.request?.headers.version !== 5 && e.cassandra.response?.headers.version !== 5);
      const ours: string[] = [];
      for (const e of ev) {
        if (e.cassandra.request) ours.push(`0 ${Op[e.cassandra.request.headers.op as keyof typeof Op]}`);
        if (e.cassandra.response) ours.push(`1 ${Op[e.cassandra.response.headers.op as keyof typeof Op]}`);
      }
      const theirs = tsharkMessages(f, 9042).filter(([, op]) => op !== undefined).map(([d, op]) => `${d} ${op}`);
      assert.deepEqual(counts(ours), counts(theirs), 'messages by direction and opcode');
      // query texts, row counts, error codes
      const queries = ev.filter((e) => (e.method === 'QUERY' || e.method === 'PREPARE') && e.cassandra.request).map((e) => e.cassandra.request.query);
      assert.deepEqual(counts(queries), counts(tsharkField(f, 'cql.opcode == 7 || cql.opcode == 9', 'cql.string').filter((q) => queries.includes(q) || /^[A-Z]{3,} /.test(q))), 'query texts');
      const rows = ev.filter((e) => e.cassandra.response?.result?.rows?.num_rows !== undefined && !/Tracing|Warning/.test(e.cassandra.response.headers.flags) && !e.cassandra.response.result.rows.meta.paging_state);
      const theirRows = tsharkField(f, 'cql.result.rows.row_count && !(cql.flags.tracing == 1 || cql.flags.warning == 1 || cql.result.rows.flags.has_more_pages == 1)', 'cql.result.rows.row_count');
      assert.ok(rows.length > 0 || name === 'edge-errors');
      assert.deepEqual(counts(rows.map((e) => String(e.cassandra.response.result.rows.num_rows))), counts(theirRows), 'row counts');
      const codes = ev.filter((e) => e.cassandra.response?.error).map((e) => String(e.cassandra.response.error.code));
      assert.deepEqual(counts(codes), counts(tsharkField(f, 'cql.opcode == 0', 'cql.error_code')), 'error codes');
    });
  }
});

// --- live -------------------------------------------------------------------------------------

const root = typeof process.getuid === 'function' && process.getuid() === 0;
const liveSkip = !root ? 'needs root (tcpdump on lo)' : !cassandraAvailable() ? 'Java or Maven (for Cassandra 4.1) missing' : false;

describe('cassandra: live, against a real Cassandra 4.1 on a port of its own', { skip: liveSkip, timeout: 900_000 }, () => {
  let dir = '';
  let server: Server | null = null;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'pktflow-cassandra-live-'));
    server = await startCassandra(dir, await freePort(), await freePort());
  });

  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the driver and the raw client (v5, LZ4) are found by their first bytes, every request paired', async () => {
    const port = server!.port;
    const pcap = path.join(dir, 'live.pcap');
    await recordLoopback({ filter: `tcp port ${port}`, file: pcap }, async () => {
      await driverSession(port, 'live', { concurrent: 50 });
      await rawSession(port, 'live5', 5);
      await rawSession(port, 'live5z', 5, 'lz4');
    });
    // no --ports: the probe must find the server
    const r = await cli(['read', pcap, '--stats-event']);
    assert.equal(r.code, 0, r.stderr);
    const all = ndjson(r.stdout) as any[];
    const st = all.find((e) => e.type === 'stats').stats;
    assert.ok(st.analyze.connections.cassandra_by_probe >= 3, JSON.stringify(st.analyze.connections));
    const ev = all.filter((e) => e.type === 'cassandra');
    assert.deepEqual(ev.filter((e) => e.error !== undefined).map((e) => e.notes), []);
    assert.ok(ev.filter((e) => e.method === 'EXECUTE' && e.status === 'OK').length >= 50);
    assert.ok(ev.some((e) => e.cassandra.no_request && e.cassandra.response.event.type === 'SCHEMA_CHANGE'));
    assert.ok(ev.filter((e) => e.cassandra.request?.headers.version === 5).length >= 40);
    assert.ok(st.analyze.protocols.cassandra.v5_frames > 40);
    assert.equal(ev.find((e) => e.query === 'SELEC * FROM users').cassandra.response.error.type, 'errSyntax');
    const c = st.analyze.protocols.cassandra;
    assert.equal(c.transactions_started, c.transactions + c.pending);
  });
});
