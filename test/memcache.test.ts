/**
 * Memcache: the analyzer driven directly (text, binary, gaps, limits), over UDP,
 * the content probe, the real fixtures, property tests (random splits of the
 * fixtures' streams, damaged conversations), a live memcached recorded with real
 * clients, and tshark's dissector on the same captures.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LinkType, makeFrame, type Frame } from '../src/core/frame';
import { makeEndpoints } from '../src/events/endpoints';
import type { Event } from '../src/events/types';
import type { TcpAnalyzer } from '../src/protocols/analyzer';
import { memcache, type MemcacheOptions } from '../src/protocols/memcache';
import { probe } from '../src/protocols/memcache/probe';
import { Connection } from '../src/tcp/connection';
import { recordLoopback } from './capture';
import { bin } from './gen/memcache';
import { ipv4, udp } from './gen/packets';
import { assertAccounting, fixture, pushThroughStages, readFile } from './helpers';
import { binarySession, haveLibmemcachedTools, haveMemcached, startMemcached, textDriverSession, textRawSession, udpSession } from './memcached';
import { conversations, mutate, mutation, rebuild } from './fuzz-helpers';
import { freePort } from './net';

const x = (e: unknown) => e as any;
const b = (s: string) => Buffer.from(s, 'latin1');
const NONE = Buffer.alloc(0);
const ext = (...words: number[]) => {
  const e = Buffer.alloc(words.length * 4);
  words.forEach((w, i) => e.writeUInt32BE(w, i * 4));
  return e;
};

/** one memcache TCP connection, driven directly */
function conn(options: Partial<MemcacheOptions> = {}, midStream = false) {
  const events: Event[] = [];
  const out = { emit: (e: Event) => events.push(e) };
  const inst = memcache.create(options, out);
  const c = new Connection(1, 0, 4, 0, 0, 0, 0x0a000001, 0, 0, 0, 0x0a000002, 40000, 11211, -1, -1, 'syn', 1000, 0);
  const a: TcpAnalyzer = inst.tcp!({ conn: c, endpoints: makeEndpoints(c, 6), out, midStream });
  let t = 0;
  const send = (side: number, s: string | Buffer) => {
    const buf = typeof s === 'string' ? b(s) : s;
    a.data(side, buf, 0, buf.length, 1000, ++t * 1000);
  };
  return { events, a, send, stats: () => inst.stats() as any, ev: () => events.map(x) };
}

/** the parts of an event that do not depend on how the bytes were cut */
const essence = (e: any) => JSON.stringify([e.status, e.query, e.memcache, e.notes, e.error, e.source.bytes, e.destination.bytes]);

const TEXT_REQ = 'set a 5 0 3\r\nabc\r\nget a b\r\ngets a\r\ncas a 0 0 1 99\r\nz\r\nincr n 7\r\nstats\r\nversion\r\ndelete a noreply\r\ntouch a 10\r\n';
const TEXT_RESP = 'STORED\r\nVALUE a 5 3\r\nabc\r\nEND\r\nVALUE a 5 3 42\r\nabc\r\nEND\r\nEXISTS\r\n8\r\nSTAT pid 9\r\nSTAT uptime 3\r\nEND\r\nVERSION 1.6.18\r\nNOT_FOUND\r\n';

describe('memcache text protocol', { timeout: 600_000 }, () => {
  it('pairs requests with responses in order, with packetbeat fields', () => {
    const h = conn({ maxValues: 4 });
    h.send(0, TEXT_REQ);
    h.send(1, TEXT_RESP);
    const e = h.ev();
    // a noreply request is a transaction as soon as it is sent
    assert.deepEqual(e.map((v) => [v.method, v.status, v.memcache.response?.command ?? null]), [
      ['DELETE', 'OK', null], ['SET', 'OK', 'STORED'], ['GET', 'OK', 'VALUE'], ['GETS', 'OK', 'VALUE'], ['CAS', 'Error', 'EXISTS'], ['INCR', 'OK', '<counter_op_res>'],
      ['STATS', 'OK', 'STAT'], ['VERSION', 'OK', 'VERSION'], ['TOUCH', 'Error', 'NOT_FOUND'],
    ]);
    const [del, set, get, gets, cas, incr, stats, version] = e;
    assert.deepEqual(set.memcache.request, { command: 'set', type: 'Store', keys: ['a'], count_values: 1, values: ['YWJj'], bytes: 3, flags: 5, exptime: 0, noreply: false });
    assert.equal(set.query, 'set a 5 0 3');
    assert.equal(set.resource, 'a');
    assert.equal(set.event.action, 'memcache.store');
    assert.equal(set.source.bytes, 'set a 5 0 3\r\nabc\r\n'.length);
    assert.deepEqual(get.memcache.request.keys, ['a', 'b']);
    assert.deepEqual(get.memcache.response, { command: 'VALUE', type: 'Load', keys: ['a'], count_values: 1, values: ['YWJj'], bytes: 3, flags: 5 });
    assert.equal(gets.memcache.response.cas_unique, 42);
    assert.equal(cas.memcache.request.cas_unique, 99);
    assert.equal(incr.memcache.request.delta, 7);
    assert.equal(incr.memcache.response.value, 8);
    assert.deepEqual(stats.memcache.response.stats, [{ name: 'pid', value: '9' }, { name: 'uptime', value: '3' }]);
    assert.equal(version.memcache.response.version, '1.6.18');
    assert.equal(del.memcache.request.noreply, true);
    assert.equal(del.error, undefined);
    assert.equal(h.stats().transactions_started, 9);
  });

  it('gives the same events whatever the segmentation: every split point of both streams', () => {
    const ref = conn({ maxValues: 2 });
    ref.send(0, TEXT_REQ);
    ref.send(1, TEXT_RESP);
    const want = ref.events.map(essence);
    for (let i = 1; i < TEXT_RESP.length; i += 3) {
      const j = i % TEXT_REQ.length;
      const h = conn({ maxValues: 2 });
      h.send(0, TEXT_REQ.slice(0, j));
      h.send(0, TEXT_REQ.slice(j));
      h.send(1, TEXT_RESP.slice(0, i));
      h.send(1, TEXT_RESP.slice(i));
      assert.deepEqual(h.events.map(essence), want, `split at ${j}/${i}`);
    }
    // byte by byte
    const h = conn({ maxValues: 2 });
    for (const c of TEXT_REQ) h.send(0, c);
    for (const c of TEXT_RESP) h.send(1, c);
    assert.deepEqual(h.events.map(essence), want);
  });

  it('a gap inside a value: the transaction is partial, the next ones in step', () => {
    const h = conn({ maxValues: 1 });
    h.send(0, 'get big\r\nget small\r\n');
    h.send(1, 'VALUE big 0 100\r\n' + 'a'.repeat(30));
    h.a.gap(1, 50, 1000, 0);
    h.send(1, 'b'.repeat(20) + '\r\nEND\r\nVALUE small 0 1\r\nx\r\nEND\r\n');
    const [big, small] = h.ev();
    assert.deepEqual(big.notes, ['packet loss: 50 response bytes missing']);
    assert.equal(big.memcache.response.bytes, 100);
    assert.equal(big.memcache.response.values, undefined, 'a value with a hole is not kept');
    assert.equal(small.memcache.response.values[0], 'eA==');
    assert.equal(h.stats().partial, 1);
  });

  it('a request lost to a gap: its response pairs with a placeholder; a response lost: its request is unmatched', () => {
    const h = conn();
    h.send(0, 'get a\r\n');
    h.a.gap(0, 9, 1000, 0); // "get lost\r\n" minus a byte, say
    h.send(0, 'get c\r\n');
    h.send(1, 'END\r\nEND\r\nVALUE c 0 1\r\n1\r\nEND\r\n');
    h.send(0, 'get d\r\nget e\r\n');
    h.a.gap(1, 5, 1000, 0);
    h.send(1, 'END\r\n');
    const e = h.ev();
    assert.deepEqual(e.map((v) => [v.query ?? null, v.memcache.response?.command ?? null, v.notes ?? null]), [
      ['get a', 'END', null],
      [null, 'END', ['request lost to packet loss']],
      ['get c', 'VALUE', null],
      ['get d', null, ['response lost to packet loss']],
      ['get e', 'END', null],
    ]);
  });

  it('a line past maxLineBytes is cut and noted, and pairing stays in step', () => {
    const h = conn({ maxLineBytes: 64 });
    const keys = Array.from({ length: 40 }, (_, i) => `key${i}`).join(' ');
    h.send(0, `get ${keys}\r\nversion\r\n`);
    h.send(1, 'END\r\nVERSION 1\r\n');
    const [g, v] = h.ev();
    assert.ok(g.query.length <= 64);
    assert.match(g.notes[0], /request line longer than 64 bytes: cut/);
    assert.equal(v.memcache.response.version, '1');
    assert.equal(h.stats().violations.request_line_too_long, 1);
  });

  it('unknown commands are counted as dropped, or emitted with parseUnknown', () => {
    const h = conn();
    h.send(0, 'frobnicate x\r\nversion\r\n');
    h.send(1, 'ERROR\r\nVERSION 1\r\n');
    assert.deepEqual(h.ev().map((v) => v.query), ['version']);
    assert.deepEqual(h.stats().transactions_dropped, { unknown_command: 1 });
    assertAccounting({ analyze: { protocols: { memcache: h.stats() } } } as any);
    const u = conn({ parseUnknown: true });
    u.send(0, 'frobnicate x\r\n');
    u.send(1, 'ERROR\r\n');
    assert.deepEqual(x(u.events[0]).memcache.request, { command: 'UNKNOWN', type: 'UNKNOWN', line: 'frobnicate x', noreply: false });
    assert.equal(x(u.events[0]).status, 'Error');
  });

  it('unanswered requests at the timeout (packet time) and at close; the pending limit', () => {
    const h = conn({ maxPending: 2 });
    h.send(0, 'get 1\r\nget 2\r\nget 3\r\n');
    assert.deepEqual(h.ev().map((v) => v.notes), [['too many requests waiting for responses']]);
    h.a.expire(1011, 0);
    assert.equal(h.events.length, 3);
    assert.deepEqual(x(h.events[1]).notes, ['no response within the transaction timeout']);
    assert.equal(x(h.events[1]).error.message, 'Unmatched request');
    h.send(0, 'get 4\r\n');
    h.a.close(1012, 0);
    assert.deepEqual(x(h.events[3]).notes, ['no response before the connection closed']);
    assertAccounting({ analyze: { protocols: { memcache: h.stats() } } } as any);
    assert.equal(h.stats().pending, 0);
  });

  it('a connection first seen inside a value finds the next command', () => {
    const h = conn({}, true);
    h.send(0, 'lue-of-a-set\r\nget k\r\n');
    h.send(1, 'ta\r\nSTORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n');
    assert.deepEqual(h.ev().map((v) => [v.query ?? null, v.memcache.response?.command]), [[null, 'STORED'], ['get k', 'VALUE']]);
  });

  it('keeps values only as asked: maxValues, maxBytesPerValue; bounds STAT lines', () => {
    const h = conn({ maxValues: 1, maxBytesPerValue: 2, maxStats: 2 });
    h.send(0, 'get a b\r\nstats\r\n');
    h.send(1, 'VALUE a 0 3\r\nabc\r\nVALUE b 0 3\r\ndef\r\nEND\r\nSTAT a 1\r\nSTAT b 2\r\nSTAT c 3\r\nEND\r\n');
    const [g, s] = h.ev();
    assert.deepEqual([g.memcache.response.values, g.memcache.response.count_values, g.memcache.response.bytes], [['YWI='], 2, 6]);
    assert.equal(s.memcache.response.stats.length, 2);
    assert.deepEqual(s.notes, ['more than 2 stats: the rest left out']);
  });
});

describe('memcache binary protocol', { timeout: 600_000 }, () => {
  const req = (op: number, key: string, opaque: number, e = NONE, v = NONE) => bin(0x80, op, key, e, v, opaque);
  const res = (op: number, key: string, opaque: number, status = 0, e = NONE, v = NONE) => bin(0x81, op, key, e, v, opaque, status);
  const requests = Buffer.concat([
    req(0x01, 'k', 1, ext(7, 60), b('val')),
    req(0x09, 'miss', 2),
    req(0x09, 'k', 3),
    req(0x05, 'n', 4, Buffer.concat([ext(0, 5, 0, 1, 0)])),
    req(0x10, '', 5),
    req(0x00, 'gone', 6),
    req(0x0a, '', 7),
  ]);
  const responses = Buffer.concat([
    res(0x01, '', 1),
    res(0x09, '', 3, 0, ext(7), b('val')),
    res(0x05, '', 4, 0, NONE, Buffer.from([0, 0, 0, 0, 0, 0, 0, 6])),
    res(0x10, 'pid', 5, 0, NONE, b('1')),
    res(0x10, 'uptime', 5, 0, NONE, b('2')),
    res(0x10, '', 5),
    res(0x00, '', 6, 1, NONE, b('Not found')),
    res(0x0a, '', 7),
  ]);

  it('pairs by opaque and opcode: quiet misses alone and OK, stat parts merged, statuses named', () => {
    const h = conn({ maxValues: 1 });
    h.send(0, requests);
    h.send(1, responses);
    const e = h.ev();
    assert.deepEqual(e.map((v) => [v.query, v.status, v.memcache.response?.status ?? null]), [
      ['set k', 'OK', 'Success'], ['get miss', 'OK', null], ['get k', 'OK', 'Success'], ['incr n', 'OK', 'Success'],
      ['stats', 'OK', 'Success'], ['get gone', 'Error', 'Key not found'], ['noop', 'OK', 'Success'],
    ]);
    assert.deepEqual(e[0].memcache.request, { command: 'set', type: 'Store', opcode: 'Set', opcode_value: 1, opaque: 1, vbucket: 0, quiet: false, keys: ['k'], count_values: 1, values: ['dmFs'], bytes: 3, flags: 7, exptime: 60 });
    assert.equal(e[1].memcache.request.quiet, true);
    assert.equal(e[1].error, undefined);
    assert.deepEqual([e[2].memcache.response.flags, e[2].memcache.response.values], [7, ['dmFs']]);
    assert.deepEqual([e[3].memcache.request.delta, e[3].memcache.request.initial, e[3].memcache.response.value], [5, 1, 6]);
    assert.deepEqual(e[4].memcache.response.stats, [{ name: 'pid', value: '1' }, { name: 'uptime', value: '2' }]);
    assert.equal(e[5].memcache.response.error_msg, 'Not found');
    assert.equal(e[0].memcache.protocol_type, 'binary');
  });

  it('gives the same events at every split point', () => {
    const ref = conn();
    ref.send(0, requests);
    ref.send(1, responses);
    const want = ref.events.map(essence);
    for (let i = 1; i < responses.length; i += 2) {
      const j = i % requests.length;
      const h = conn();
      h.send(0, requests.subarray(0, j));
      h.send(0, requests.subarray(j));
      h.send(1, responses.subarray(0, i));
      h.send(1, responses.subarray(i));
      assert.deepEqual(h.events.map(essence), want, `split at ${j}/${i}`);
    }
  });

  it('a gap inside a value costs only its bytes; one outside resynchronises at the next header', () => {
    const h = conn();
    h.send(0, Buffer.concat([req(0x00, 'a', 1), req(0x00, 'b', 2), req(0x00, 'c', 3)]));
    const first = res(0x00, '', 1, 0, ext(0), b('x'.repeat(100)));
    h.send(1, first.subarray(0, 60));
    h.a.gap(1, 40, 1000, 0);
    h.send(1, first.subarray(100));
    const second = res(0x00, '', 2, 0, ext(0), b('y'));
    h.send(1, second.subarray(0, 10));
    h.a.gap(1, second.length - 10, 1000, 0);
    h.send(1, res(0x00, '', 3, 0, ext(0), b('z')));
    const e = h.ev();
    assert.deepEqual(e.map((v) => [v.query, v.notes ?? null]), [
      ['get a', ['packet loss: 40 response bytes missing']],
      ['get b', ['no response: the server answered a later request']],
      ['get c', null],
    ]);
  });
});

describe('memcache over UDP', { timeout: 600_000 }, () => {
  const frame = (from: 'c' | 's', id: number, seq: number, total: number, payload: Buffer, i: number): Frame => {
    const h = Buffer.alloc(8);
    h.writeUInt16BE(id, 0);
    h.writeUInt16BE(seq, 2);
    h.writeUInt16BE(total, 4);
    const d = from === 'c' ? ipv4('10.9.0.1', '10.9.0.2', 17, udp(50000, 11211, Buffer.concat([h, payload]))) : ipv4('10.9.0.2', '10.9.0.1', 17, udp(11211, 50000, Buffer.concat([h, payload])));
    return makeFrame(1_700_000_000, i * 1000, LinkType.RAW, d.length, 0, d);
  };

  it('puts a response together from datagrams in any order and from several messages', () => {
    const value = b(`VALUE v 0 3000\r\n${'v'.repeat(3000)}\r\n`);
    const parts = [0, 1, 2].map((i) => value.subarray(i * 1400, (i + 1) * 1400));
    const run = (order: number[]) => {
      const frames = [frame('c', 7, 0, 1, b('get v w\r\n'), 0), ...order.map((s, i) => frame('s', 7, s, 3, parts[s], i + 1)), frame('s', 7, 0, 1, b('VALUE w 0 1\r\nw\r\nEND\r\n'), 9)];
      const { events, stats } = pushThroughStages(frames);
      assertAccounting(stats, 'udp');
      return events.map(x);
    };
    for (const order of [[0, 1, 2], [2, 0, 1], [1, 2, 0]]) {
      const [e] = run(order);
      assert.deepEqual([e.status, e.memcache.response.keys, e.memcache.response.bytes, e.network.transport, e.destination.bytes], ['OK', ['v', 'w'], 3001, 'udp', value.length + 24 + 'VALUE w 0 1\r\nw\r\nEND\r\n'.length + 8]);
    }
  });
});

describe('memcache content probe', { timeout: 600_000 }, () => {
  const p = (s: string | Buffer, side = 0) => {
    const buf = typeof s === 'string' ? b(s) : s;
    return probe(buf, 0, buf.length, side);
  };

  it('recognises text requests and responses, binary headers, and UDP frames', () => {
    for (const s of ['set k 0 0 5\r\nhello\r\n', 'gets a b\r\n', 'get a b\r\n', 'incr n 1\r\n', 'delete k noreply\r\n', 'stats\r\n', 'version\r\n', 'cas k 0 0 1 5\r\n', 'gat 10 k\r\n']) assert.ok(p(s), s);
    for (const s of ['VALUE k 0 5\r\nhello\r\nEND\r\n', 'END\r\n', 'STORED\r\n', 'STAT pid 1\r\n', 'VERSION 1.6.18\r\n', 'NOT_FOUND\r\n']) assert.ok(p(s, 1), s);
    assert.ok(p(bin(0x80, 0x00, 'key', NONE, NONE, 1)));
    assert.ok(p(bin(0x80, 0x01, 'key', Buffer.alloc(8), b('v'), 1)));
    assert.ok(p(bin(0x81, 0x00, '', ext(0), b('v'), 1), 1));
    assert.ok(p(Buffer.concat([Buffer.from([0, 1, 0, 0, 0, 1, 0, 0]), b('gets a\r\n')])), 'a UDP request');
  });

  it('says no to HTTP, DNS, Redis (RESP and inline commands both protocols have) and to binary lookalikes', () => {
    for (const s of ['GET / HTTP/1.1\r\nHost: a\r\n\r\n', 'HTTP/1.1 200 OK\r\n', '*2\r\n$3\r\nGET\r\n$1\r\na\r\n', 'get a\r\n', 'touch a 10\r\n', 'quit\r\n', '+OK\r\n', '$3\r\nabc\r\n', 'set a b\r\n']) {
      assert.ok(!p(s) && !p(s, 1), s);
    }
    const dns = Buffer.from('001d12340100000100000000000003777777076578616d706c6503636f6d0000010001', 'hex');
    assert.ok(!p(dns) && !p(dns, 1));
    // a Get with extras, a Set without: not what memcached clients send
    assert.ok(!p(bin(0x80, 0x00, 'k', Buffer.alloc(4), NONE, 1)));
    assert.ok(!p(bin(0x80, 0x01, 'k', NONE, b('v'), 1)));
    // MySQL's greeting: 3-byte length, sequence 0, protocol 10
    assert.ok(!p(Buffer.concat([Buffer.from([0x80, 0, 0, 0, 10]), b('8.0.36\0'), Buffer.alloc(40)]), 1));
  });

  it('finds memcache on another port by its first bytes (fixtures read with other ports)', async () => {
    const { stats } = await readFile(fixture('memcache/text.pcap'), { ports: { memcache: [1] } });
    // the memcached driver's connection and memccp's, memccat's and memcstat's
    assert.deepEqual((stats.analyze as any).connections, { memcache_by_probe: 4 });
  });
});

describe('memcache fixtures from memcached 1.6 and real clients', { timeout: 600_000 }, () => {
  it('text: every storage command, multi-key get, cas conflict, counters, a delete miss, stats, a 100 KB value', async () => {
    const { events, stats } = await readFile(fixture('memcache/text.pcap'));
    assertAccounting(stats, 'text');
    const e = events.map(x);
    const cmds = new Set(e.map((v) => v.memcache.request.command));
    for (const c of ['flush_all', 'set', 'add', 'replace', 'append', 'prepend', 'get', 'gets', 'cas', 'incr', 'decr', 'touch', 'delete', 'stats', 'version']) assert.ok(cmds.has(c), c);
    const multi = e.find((v) => v.query === 'get user:1 user:2 user:3 user:404');
    assert.deepEqual(multi.memcache.response.keys, ['user:1', 'user:2', 'user:3']);
    assert.deepEqual(e.filter((v) => v.memcache.request.command === 'cas').map((v) => v.memcache.response.command), ['STORED', 'EXISTS']);
    assert.equal(e.find((v) => v.query === 'get big').memcache.response.bytes, 100_000);
    assert.ok(e.find((v) => v.query === 'stats').memcache.response.stats.length > 50);
    assert.equal(e.filter((v) => v.status === 'Error').length, 4);
  });

  it('text, raw: pipelining, noreply, gat, errors, stats sub-commands', async () => {
    const { events, stats } = await readFile(fixture('memcache/text-raw.pcap'));
    assertAccounting(stats, 'text-raw');
    const e = events.map(x);
    assert.equal(e.filter((v) => v.memcache.request.noreply).length, 4);
    assert.ok(e.filter((v) => v.memcache.request.noreply).every((v) => v.status === 'OK' && v.memcache.response === undefined));
    assert.deepEqual(e.find((v) => v.query === 'gat 300 g1 g2').memcache.request.exptime, 300);
    assert.equal(e.find((v) => v.query === 'set bad 0 0 2').memcache.response.error_msg, 'bad data chunk');
    assert.equal(e.find((v) => v.query === 'stats cachedump 1 2').memcache.response.stats[0].name, 'ITEM');
  });

  it('binary: quiet gets and sets answered by No-op, statuses, stats parts merged', async () => {
    const { events, stats } = await readFile(fixture('memcache/binary.pcap'));
    assertAccounting(stats, 'binary');
    const e = events.map(x);
    assert.ok(e.every((v) => v.memcache.protocol_type === 'binary'));
    const quiet = e.filter((v) => v.memcache.request.quiet);
    assert.deepEqual(quiet.map((v) => [v.memcache.request.opcode, v.memcache.response?.status ?? null]), [
      ['SetQ', null], ['GetQ', 'Success'], ['GetQ', null], ['DeleteQ', 'Key not found'], ['GetKQ', 'Success'], ['GetKQ', null], ['QuitQ', null],
    ]);
    assert.equal(e.find((v) => v.query === 'get bin:big').memcache.response.bytes, 50_000);
    assert.ok(e.filter((v) => v.query === 'stats').every((v) => v.memcache.response.stats.length > 50));
  });

  it('UDP: a value in several datagrams and messages, noreply, binary over UDP', async () => {
    const { events, stats } = await readFile(fixture('memcache/udp.pcap'));
    assertAccounting(stats, 'udp');
    const e = events.map(x);
    assert.ok(e.every((v) => v.status === 'OK' && v.network.transport === 'udp'));
    assert.deepEqual(e.find((v) => v.query === 'get u:big u:1').memcache.response.keys, ['u:big', 'u:1']);
    assert.equal((stats.analyze as any).protocols.memcache.udp.reassembled, 2);
  });
});


describe('memcache properties', { timeout: 600_000 }, () => {
  const convs = ['text.pcap', 'text-raw.pcap', 'binary.pcap'].map((f) => conversations(fixture(`memcache/${f}`), 11211));

  it('random splits of the fixtures\' streams give the same events', () => {
    const want = convs.map((c) => pushThroughStages(rebuild(c, [], 11211)).events.map(essence));
    assert.deepEqual(want.map((w) => w.length), [31, 21, 37]);
    fc.assert(
      fc.property(fc.nat(convs.length - 1), fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 12 }), (which, cuts) => {
        const { events, stats } = pushThroughStages(rebuild(convs[which], cuts, 11211));
        assertAccounting(stats, 'split');
        assert.deepEqual(events.map(essence), want[which]);
      }),
      { numRuns: 25 },
    );
  });

  it('damaged conversations never throw out of a stage and keep the accounting', () => {
    const turns = convs.flat();
    fc.assert(
      fc.property(fc.nat(turns.length - 1), fc.array(fc.tuple(fc.nat(), mutation), { maxLength: 6 }), fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 6 }), (which, muts, cuts) => {
        const conv = turns[which].map(([side, data]) => [side, data] as [number, Buffer]);
        for (const [i, m] of muts) {
          const t = conv[i % conv.length];
          t[1] = mutate(t[1], m);
        }
        const { stats } = pushThroughStages(rebuild([conv], cuts, 11211));
        assertAccounting(stats, 'damaged memcache');
      }),
      { numRuns: 150 },
    );
  });

  it('random UDP datagrams on the memcache port never throw and keep the accounting', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.uint8Array({ maxLength: 120 })), { minLength: 1, maxLength: 30 }), (dgrams) => {
        const frames = dgrams.map(([toServer, bytes], i) => {
          const d = toServer ? ipv4('10.9.0.1', '10.9.0.2', 17, udp(50000, 11211, Buffer.from(bytes))) : ipv4('10.9.0.2', '10.9.0.1', 17, udp(11211, 50000, Buffer.from(bytes)));
          return makeFrame(1_700_000_000 + i, 0, LinkType.RAW, d.length, 0, d);
        });
        assertAccounting(pushThroughStages(frames).stats, 'udp');
      }),
      { numRuns: 200 },
    );
  });
});

const root = process.getuid?.() === 0;
const haveTcpdump = spawnSync('tcpdump', ['--version'], { stdio: 'ignore' }).status === 0;

describe('live memcached, real clients, recognised by content', { skip: !root ? 'needs root (tcpdump on lo)' : !haveTcpdump ? 'tcpdump not installed' : !haveMemcached ? 'memcached not installed' : !haveLibmemcachedTools ? 'libmemcached-tools not installed' : false, timeout: 600_000 }, () => {
  it('text and binary over TCP on a free port, UDP on the same port', async () => {
    const port = await freePort();
    const dir = mkdtempSync(path.join(tmpdir(), 'pktflow-memcache-live-'));
    const server = await startMemcached(port);
    try {
      const notes = path.join(dir, 'notes.txt');
      writeFileSync(notes, 'live\n'.repeat(100));
      const tcpFile = path.join(dir, 'tcp.pcap');
      await recordLoopback({ filter: `tcp port ${port}`, file: tcpFile }, async () => {
        await textDriverSession(port);
        await textRawSession(port);
        await binarySession(port, notes);
      });
      // no --ports: the probe must find every connection
      const { events, stats } = await readFile(tcpFile);
      assertAccounting(stats, 'live tcp');
      const a = stats.analyze as any;
      assert.equal(a.connections.unrecognised, undefined, JSON.stringify(a.connections));
      assert.ok(a.connections.memcache_by_probe >= 10, JSON.stringify(a.connections));
      const e = events.map(x).filter((v) => v.type === 'memcache');
      const text = e.filter((v) => v.memcache.protocol_type === 'text');
      const binary = e.filter((v) => v.memcache.protocol_type === 'binary');
      assert.ok(text.length >= 45 && binary.length >= 30, `${text.length} text, ${binary.length} binary`);
      assert.deepEqual(text.filter((v) => v.memcache.request.command === 'cas').map((v) => v.memcache.response.command), ['STORED', 'EXISTS']);
      assert.equal(e.filter((v) => v.error !== undefined).length, 0, 'every request answered, every response paired');
      // UDP is recognised by port for now: content probes for UDP are another change
      const udpFile = path.join(dir, 'udp.pcap');
      await recordLoopback({ filter: `udp port ${port}`, file: udpFile }, () => udpSession(port, notes));
      const u = await readFile(udpFile, { ports: { memcache: [port] } });
      assertAccounting(u.stats, 'live udp');
      const ue = u.events.map(x).filter((v) => v.type === 'memcache');
      assert.equal(ue.length, 10);
      assert.ok(ue.every((v) => v.status === 'OK'));
      assert.equal(ue.find((v) => v.query === 'get u:big u:1').memcache.response.bytes, 10_005);
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const haveTshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;

/** tshark's fields, one row per frame that has the first of them */
function tshark(file: string, filter: string, fields: string[]): string[][] {
  const out = execFileSync('tshark', ['-r', file, '-o', 'tcp.desegment_tcp_streams:TRUE', '-Y', filter, '-T', 'fields', ...fields.flatMap((f) => ['-e', f])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 << 20 });
  return out.split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
}

function counts(values: string[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const v of values) c[v] = (c[v] ?? 0) + 1;
  return c;
}

describe('memcache agrees with tshark', { skip: haveTshark ? false : 'tshark not installed', timeout: 600_000 }, () => {
  // tshark 4.0 names no touch, gat, gats or verbosity requests, nor counter values, VALUE or
  // VERSION lines; it loses pipelined text messages (text-raw.pcap is left out) and does
  // not decode memcache over UDP (read below from udp.payload)
  const TSHARK_COMMANDS = new Set(['get', 'gets', 'set', 'add', 'replace', 'append', 'prepend', 'cas', 'incr', 'decr', 'delete', 'stats', 'flush_all', 'version', 'quit']);
  const TSHARK_RESPONSES = new Set(['STORED', 'NOT_STORED', 'EXISTS', 'NOT_FOUND', 'DELETED', 'OK']);

  it('text.pcap: request commands with their keys, response keywords', async () => {
    const f = fixture('memcache/text.pcap');
    const rows = tshark(f, 'memcache', ['memcache.command', 'memcache.response', 'memcache.key']);
    const theirRequests = rows.filter((r) => TSHARK_COMMANDS.has(r[0])).map((r) => `${r[0]} ${r[2] ?? ''}`.trim());
    const theirResponses = rows.filter((r) => TSHARK_RESPONSES.has(r[1])).map((r) => r[1]);
    const ours = (await readFile(f)).events.map(x);
    const ourRequests = ours.filter((e) => TSHARK_COMMANDS.has(e.memcache.request.command)).map((e) => `${e.memcache.request.command} ${(e.memcache.request.keys ?? []).join(',')}`.trim());
    const ourResponses = ours.filter((e) => TSHARK_RESPONSES.has(e.memcache.response?.command)).map((e) => e.memcache.response.command);
    assert.equal(theirRequests.length, 30);
    assert.deepEqual(counts(ourRequests), counts(theirRequests));
    assert.deepEqual(counts(ourResponses), counts(theirResponses));
  });

  it('binary.pcap: request opcodes and keys, response opcodes and statuses, stat parts', async () => {
    const f = fixture('memcache/binary.pcap');
    const theirs = { requests: [] as string[], responses: [] as string[], statParts: 0 };
    for (const [magic, opcode, status] of tshark(f, 'memcache', ['memcache.magic', 'memcache.opcode', 'memcache.status'])) {
      const ops = opcode.split(',');
      const statuses = (status ?? '').split(',');
      magic.split(',').forEach((m, i) => {
        if (m === '128') theirs.requests.push(ops[i]);
        else if (ops[i] === '16') theirs.statParts++;
        else theirs.responses.push(`${ops[i]}/${statuses[i]}`);
      });
    }
    const ours = (await readFile(f)).events.map(x);
    const ourRequests = ours.map((e) => String(e.memcache.request.opcode_value));
    const ourResponses = ours.filter((e) => e.memcache.response && e.memcache.response.opcode_value !== 16).map((e) => `${e.memcache.response.opcode_value}/${e.memcache.response.status_code}`);
    const ourStatParts = ours.filter((e) => e.memcache.response?.opcode_value === 16).reduce((n, e) => n + e.memcache.response.stats.length + 1, 0);
    assert.equal(theirs.requests.length, 37);
    assert.deepEqual(counts(ourRequests), counts(theirs.requests));
    assert.deepEqual(counts(ourResponses), counts(theirs.responses));
    assert.equal(ourStatParts, theirs.statParts);
  });

  it('udp.pcap: the requests tshark shows the bytes of (frame header, then the command)', async () => {
    const f = fixture('memcache/udp.pcap');
    const theirs = tshark(f, 'udp.dstport == 11211', ['udp.payload']).map(([hex]) => {
      const p = Buffer.from(hex.replace(/:/g, ''), 'hex');
      return p[8] === 0x80 ? `binary ${p[9]}` : /^[a-z_]+/.exec(p.toString('latin1', 8))![0];
    });
    const ours = (await readFile(f)).events.map(x).map((e) => (e.memcache.protocol_type === 'binary' ? `binary ${e.memcache.request.opcode_value}` : e.memcache.request.command));
    assert.equal(theirs.length, 10);
    assert.deepEqual(counts(ours), counts(theirs));
  });
});
