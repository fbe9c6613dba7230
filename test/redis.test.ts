/**
 * Redis: the RESP parser, the analyzer's pairing (pipelines, pub/sub, CLIENT REPLY,
 * MONITOR, timeouts, loss, limits), its probe, properties over the fixtures' streams
 * (any split gives the same events; damage never throws), agreement with tshark's
 * RESP dissector, and a live test against a real redis-server.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { makeEndpoints } from '../src/events/endpoints';
import type { Stats } from '../src/core/stage';
import { redis, type RedisOptions } from '../src/protocols/redis';
import { splitInline } from '../src/protocols/redis/commands';
import type { RespMessage } from '../src/protocols/redis/message';
import { MAX_DEPTH, MAX_LINE, RespParser } from '../src/protocols/redis/resp';
import { Connection } from '../src/tcp/connection';
import { scenarios, startRedis, type RedisServer } from '../scripts/fixtures/redis';
import { recordLoopback } from './capture';
import { cmd } from './gen/redis';
import { analyzerOn, assertAccounting, cli, fixture, ndjson, readFile } from './helpers';
import { freePort } from './net';
import { analyzeChunks, chunkDamage, damageChunks, streamsOf } from './fuzz-helpers';

const SECONDS = Number(process.env.PKTFLOW_FUZZ_SECONDS ?? 0);
const runs = (n: number): fc.Parameters<unknown> => {
  const replay = process.env.PKTFLOW_FUZZ_SEED !== undefined ? { seed: Number(process.env.PKTFLOW_FUZZ_SEED), path: process.env.PKTFLOW_FUZZ_PATH } : {};
  return SECONDS > 0 ? { numRuns: 2 ** 31 - 1, interruptAfterTimeLimit: (SECONDS * 1000) / 4, markInterruptAsFailure: false, ...replay } : { numRuns: n, ...replay };
};

/** the messages a parser makes of `wire`, fed in pieces cut at `cuts` */
function parse(wire: string | Buffer, o: { request?: boolean; max?: number; cuts?: number[] } = {}): { msgs: RespMessage[]; violations: string[]; parser: RespParser } {
  const msgs: RespMessage[] = [];
  const violations: string[] = [];
  const parser = new RespParser(o.request ?? false, o.max ?? 1 << 20, { message: (m) => msgs.push(m), violation: (r) => violations.push(r) });
  const buf = typeof wire === 'string' ? Buffer.from(wire, 'latin1') : wire;
  const points = [...new Set([0, ...(o.cuts ?? []).map((c) => c % (buf.length + 1)), buf.length])].sort((a, b) => a - b);
  for (let i = 0; i + 1 < points.length; i++) {
    // each piece in a buffer of its own, with bytes around it that are not its own
    const piece = Buffer.concat([Buffer.from('##'), buf.subarray(points[i], points[i + 1]), Buffer.from('##')]);
    parser.feed(piece, 2, piece.length - 4, 1, i);
  }
  return { msgs, violations, parser };
}

/** one analyzer on one connection, driven directly (text as latin1) */
function conn(options: Partial<RedisOptions> = {}, midStream = false) {
  const h = analyzerOn(redis, options, [40000, 6379], midStream);
  return { ...h, send: (side: number, s: string | Buffer, at?: number) => h.send(side, typeof s === 'string' ? Buffer.from(s, 'latin1') : s, at) };
}

const view = (e: any) => [e.status, e.query ?? null, e.redis?.return_value ?? e.redis?.error ?? null, e.error?.message ?? null, e.notes ?? null];
const bulk = (s: string) => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;

describe('RESP parser', { timeout: 600_000 }, () => {
  it('renders every RESP2 and RESP3 type as packetbeat renders values', () => {
    const cases: [string, string, number?][] = [
      ['+OK\r\n', 'OK'],
      ['-ERR no such thing\r\n', 'ERR no such thing', 45],
      [':-42\r\n', '-42'],
      ['$5\r\nhello\r\n', 'hello'],
      ['$0\r\n\r\n', ''],
      ['$-1\r\n', 'nil'],
      ['*-1\r\n', 'nil'],
      ['*0\r\n', '[]'],
      ['*3\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n+c\r\n', '[a, [1, nil], c]'],
      ['_\r\n', 'nil'],
      ['#t\r\n', 'true'],
      ['#f\r\n', 'false'],
      [',3.14\r\n', '3.14'],
      [',-inf\r\n', '-inf'],
      ['(-123456789012345678901234567890\r\n', '-123456789012345678901234567890'],
      ['!11\r\nOOPS broken\r\n', 'OOPS broken', 33],
      ['=15\r\ntxt:Some string\r\n', 'Some string'],
      ['%2\r\n+k\r\n:1\r\n$2\r\nk2\r\n~2\r\n#t\r\n_\r\n', '{k: 1, k2: [true, nil]}'],
      ['%0\r\n', '{}'],
      ['~2\r\n:1\r\n:2\r\n', '[1, 2]'],
      ['>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n', '[message, ch, hi]', 62],
      ['|1\r\n+ttl\r\n:3600\r\n$5\r\nvalue\r\n', 'value'],
      ['*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n', '[1, 2]'],
      ['$?\r\n;3\r\nHel\r\n;2\r\nlo\r\n;0\r\n', 'Hello'],
      ['*?\r\n:1\r\n*?\r\n:2\r\n.\r\n.\r\n', '[1, [2]]'],
      ['%?\r\n+a\r\n:1\r\n.\r\n', '{a: 1}'],
      ['$9\r\nh\xc3\xa9 \xe4\xb8\x96\r\n\r\n', 'hé 世\r\n'],
    ];
    for (const [wire, text, type] of cases) {
      const { msgs, violations } = parse(wire);
      assert.deepEqual(violations, [], wire);
      assert.equal(msgs.length, 1, wire);
      assert.equal(msgs[0].text, text, wire);
      assert.equal(msgs[0].wireBytes, Buffer.byteLength(wire, 'latin1'), wire);
      if (type !== undefined) assert.equal(msgs[0].type, type, wire);
    }
  });

  it('reads commands: arrays of bulk strings and inline lines, words joined by spaces, secrets redacted', () => {
    const wire = cmd('SET', 'k', 'a b') + 'PING\r\n' + '\r\n' + 'set "with space" \'it\\\'s\'\n' + cmd('AUTH', 'user', 'pass') + cmd('HELLO', '3', 'AUTH', 'u', 'p', 'SETNAME', 'n') + 'auth secret\r\n' + cmd('CONFIG', 'SET', 'requirepass', 'pw');
    const { msgs } = parse(wire, { request: true });
    assert.deepEqual(
      msgs.map((m) => m.text),
      ['SET k a b', 'PING', "set with space it's", 'AUTH (redacted) (redacted)', 'HELLO 3 AUTH (redacted) (redacted) SETNAME n', 'auth (redacted)', 'CONFIG SET requirepass (redacted)'],
    );
    assert.deepEqual(msgs[0].args, ['SET', 'k', 'a b']);
    assert.equal(msgs[0].count, 3);
    assert.equal(msgs[1].type, 0);
    assert.equal(msgs[3].args[1], '(redacted)');
  });

  it('splits inline commands as Redis does (quotes, escapes, unbalanced quotes)', () => {
    assert.deepEqual(splitInline('SET k "a b\\n\\x41" \'it\\\'s\'  x'), ['SET', 'k', 'a b\nA', "it's", 'x']);
    assert.deepEqual(splitInline('  '), []);
    assert.equal(splitInline('SET k "open'), null);
    assert.equal(splitInline('SET k "a"b'), null);
  });

  it('streams a 10 MB bulk string: only maxValueBytes of it are kept', () => {
    const size = 10 * 1024 * 1024;
    const body = Buffer.alloc(size, 0x61);
    const wire = Buffer.concat([Buffer.from(`$${size}\r\n`), body, Buffer.from('\r\n+OK\r\n')]);
    const cuts = Array.from({ length: 160 }, (_, i) => i * 65536 + 3);
    const { msgs, violations } = parse(wire, { max: 100, cuts });
    assert.deepEqual(violations, []);
    assert.equal(msgs.length, 2);
    assert.equal(msgs[0].text, 'a'.repeat(100));
    assert.ok(msgs[0].truncated);
    assert.equal(msgs[0].wireBytes, wire.length - 5);
    assert.equal(msgs[1].text, 'OK');
  });

  it('bounds what it holds: a line past 64 KiB and nesting past 32 levels are violations, and it resumes', () => {
    const long = parse('+' + 'x'.repeat(MAX_LINE + 10) + '\r\n', { cuts: [1000, 40000] });
    assert.deepEqual(long.violations, ['line_too_long']);
    assert.equal(long.msgs.length, 0);
    const deep = parse('*1\r\n'.repeat(MAX_DEPTH + 1) + ':1\r\n');
    assert.deepEqual(deep.violations, ['too_deep']);
    const ok = parse('*1\r\n'.repeat(MAX_DEPTH) + ':1\r\n');
    assert.equal(ok.msgs[0].text, '['.repeat(MAX_DEPTH) + '1' + ']'.repeat(MAX_DEPTH));
    // a command after garbage on the client side is found again
    const scan = parse('junk\r\n*x\r\n' + cmd('GET', 'k'), { request: true, cuts: [3] });
    assert.deepEqual(scan.violations, ['bad_length']);
    assert.deepEqual(scan.msgs.map((m) => m.text), ['junk', 'GET k']);
    const resumed: string[] = [];
    const p = new RespParser(true, 100, { message: (m) => resumed.push(m.text), violation: () => {} });
    p.lose();
    const bytes = Buffer.from('S\r\n$5\r\nvalue\r\n' + cmd('GET', 'k') + cmd('PING'));
    p.feed(bytes, 0, 6, 1, 0);
    p.feed(bytes, 6, bytes.length - 6, 1, 1);
    assert.deepEqual(resumed, ['GET k', 'PING']);
  });

  it('gives the same messages for any split of a stream of random RESP3 values (property)', () => {
    type V = { wire: string; text: string };
    const safe = fc.string({ unit: fc.constantFrom(...'abcXYZ 0189:_-.'.split('')), maxLength: 12 });
    const anyBytes = fc.string({ unit: fc.constantFrom('a', '\r', '\n', 'é', '世', ' ', '$', '*'), maxLength: 12 });
    const { value } = fc.letrec<{ value: V; scalar: V }>((tie) => ({
      scalar: fc.oneof(
        safe.map((s) => ({ wire: `+${s}\r\n`, text: s })),
        fc.integer().map((n) => ({ wire: `:${n}\r\n`, text: String(n) })),
        anyBytes.map((s) => ({ wire: `$${Buffer.byteLength(s)}\r\n${Buffer.from(s).toString('latin1')}\r\n`, text: s })),
        fc.constant({ wire: '$-1\r\n', text: 'nil' }),
        fc.constant({ wire: '_\r\n', text: 'nil' }),
        fc.boolean().map((t) => ({ wire: t ? '#t\r\n' : '#f\r\n', text: String(t) })),
        fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => ({ wire: `,${d}\r\n`, text: String(d) })),
        fc.bigInt().map((n) => ({ wire: `(${n}\r\n`, text: String(n) })),
        safe.map((s) => ({ wire: `=${s.length + 4}\r\ntxt:${s}\r\n`, text: s })),
        fc.array(safe, { minLength: 1, maxLength: 3 }).map((cs) => ({ wire: `$?\r\n${cs.map((c) => (c === '' ? '' : `;${c.length}\r\n${c}\r\n`)).join('')};0\r\n`, text: cs.join('') })),
      ),
      value: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        tie('scalar') as fc.Arbitrary<V>,
        fc.tuple(fc.constantFrom('*', '~', '>'), fc.array(tie('value') as fc.Arbitrary<V>, { maxLength: 4 }), fc.boolean()).map(([t, items, streamed]) => ({
          wire: (streamed && t !== '>' ? `${t}?\r\n` : `${t}${items.length}\r\n`) + items.map((i) => i.wire).join('') + (streamed && t !== '>' ? '.\r\n' : ''),
          text: `[${items.map((i) => i.text).join(', ')}]`,
        })),
        fc.array(fc.tuple(tie('scalar') as fc.Arbitrary<V>, tie('value') as fc.Arbitrary<V>), { maxLength: 3 }).map((pairs) => ({
          wire: `%${pairs.length}\r\n` + pairs.map(([k, v]) => k.wire + v.wire).join(''),
          text: `{${pairs.map(([k, v]) => `${k.text}: ${v.text}`).join(', ')}}`,
        })),
        fc.tuple(fc.array(fc.tuple(tie('scalar') as fc.Arbitrary<V>, tie('scalar') as fc.Arbitrary<V>), { minLength: 1, maxLength: 2 }), tie('value') as fc.Arbitrary<V>).map(([pairs, v]) => ({
          wire: `|${pairs.length}\r\n` + pairs.map(([k, x]) => k.wire + x.wire).join('') + v.wire,
          text: v.text,
        })),
      ),
    }));
    fc.assert(
      fc.property(fc.array(value, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 12 }), (values, cuts) => {
        const wire = values.map((v) => v.wire).join('');
        const whole = parse(wire);
        assert.deepEqual(whole.violations, []);
        assert.deepEqual(whole.msgs.map((m) => m.text), values.map((v) => v.text));
        const split = parse(wire, { cuts });
        assert.deepEqual(split.violations, []);
        assert.deepEqual(split.msgs.map((m) => [m.text, m.type, m.count, m.wireBytes, m.args, m.nulls]), whole.msgs.map((m) => [m.text, m.type, m.count, m.wireBytes, m.args, m.nulls]));
      }),
      runs(300),
    );
  });
});

describe('Redis analyzer', { timeout: 600_000 }, () => {
  it('pairs pipelined commands in order, with packetbeat fields', () => {
    const r = conn();
    r.send(0, cmd('SET', 'user:1', 'Ada') + cmd('GET', 'user:1') + cmd('INCR', 'user:1') + cmd('CONFIG', 'GET', 'maxmemory') + cmd('EVAL', 'return 1', '1', 'the-key'));
    r.send(1, '+OK\r\n$3\r\nAda\r\n-ERR value is not an integer or out of range\r\n*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n:1\r\n');
    r.done();
    assert.deepEqual(r.events.map((e) => [e.method, e.resource, e.status, e.event.action, e.event.outcome]), [
      ['SET', 'user:1', 'OK', 'redis.set', undefined],
      ['GET', 'user:1', 'OK', 'redis.get', undefined],
      ['INCR', 'user:1', 'Error', 'redis.incr', 'failure'],
      ['CONFIG GET', 'maxmemory', 'OK', 'redis.config get', undefined],
      ['EVAL', 'the-key', 'OK', 'redis.eval', undefined],
    ]);
    const [set, get, incr, config] = r.events;
    assert.equal(set.query, 'SET user:1 Ada');
    assert.deepEqual(set.redis, { return_value: 'OK' });
    assert.equal(set.source.bytes, cmd('SET', 'user:1', 'Ada').length);
    assert.equal(set.destination.bytes, 5);
    assert.equal(set.destination.port, 6379);
    assert.equal(set.network.protocol, 'redis');
    assert.equal(get.redis.return_value, 'Ada');
    assert.deepEqual(incr.redis, { error: 'ERR value is not an integer or out of range' });
    assert.equal(incr.error, undefined);
    assert.equal(config.redis.return_value, '[maxmemory, 0]');
    assert.equal(set.event.duration, 1000);
  });

  it('MULTI/EXEC: each queued command is answered QUEUED, EXEC by their results (nil when a WATCH aborted it)', () => {
    const r = conn();
    r.send(0, cmd('MULTI') + cmd('SET', 'a', '1') + cmd('INCR', 'a') + cmd('EXEC') + cmd('MULTI') + cmd('SET', 'w', '1') + cmd('EXEC'));
    r.send(1, '+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n-ERR boom\r\n+OK\r\n+QUEUED\r\n*-1\r\n');
    r.done();
    assert.deepEqual(r.events.map(view).map((v) => v.slice(0, 3)), [
      ['OK', 'MULTI', 'OK'],
      ['OK', 'SET a 1', 'QUEUED'],
      ['OK', 'INCR a', 'QUEUED'],
      ['OK', 'EXEC', '[OK, ERR boom]'],
      ['OK', 'MULTI', 'OK'],
      ['OK', 'SET w 1', 'QUEUED'],
      ['OK', 'EXEC', 'nil'],
    ]);
  });

  it('RESP2 pub/sub: confirmations answer the SUBSCRIBE family, published messages pair with nothing', () => {
    const r = conn();
    r.send(0, cmd('SUBSCRIBE', 'a', 'b'));
    r.send(1, '*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n');
    r.send(1, '*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$5\r\nhello\r\n*4\r\n$8\r\npmessage\r\n$2\r\nb*\r\n$1\r\nb\r\n$1\r\nx\r\n');
    r.send(0, cmd('PING'));
    r.send(1, '*3\r\n$7\r\nmessage\r\n$1\r\nb\r\n$3\r\nbye\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n');
    r.send(0, cmd('UNSUBSCRIBE'));
    r.send(1, '*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n');
    // out of subscribed mode, an array that starts with "message" is a reply like any other
    r.send(0, cmd('LRANGE', 'l', '0', '-1'));
    r.send(1, '*3\r\n$7\r\nmessage\r\n$1\r\nx\r\n$1\r\ny\r\n');
    r.send(0, cmd('UNSUBSCRIBE'));
    r.send(1, '*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n');
    r.done();
    assert.deepEqual(r.events.map((e) => [e.method, e.redis.return_value]), [
      ['SUBSCRIBE', '[[subscribe, a, 1], [subscribe, b, 2]]'],
      ['PING', '[pong, ]'],
      ['UNSUBSCRIBE', '[[unsubscribe, b, 1], [unsubscribe, a, 0]]'],
      ['LRANGE', '[message, x, y]'],
      ['UNSUBSCRIBE', '[unsubscribe, nil, 0]'],
    ]);
    assert.deepEqual(r.stats().pushes, { message: 2, pmessage: 1 });
  });

  it('RESP3: pushes anywhere between replies are not replies; confirmations are pushes too', () => {
    const r = conn();
    r.send(0, cmd('HELLO', '3') + cmd('SUBSCRIBE', 'c') + cmd('GET', 'k') + cmd('GET', 'j'));
    r.send(1, '%1\r\n$5\r\nproto\r\n:3\r\n>3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n>3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n$1\r\nv\r\n');
    r.send(1, '>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n>3\r\n$12\r\nsunsubscribe\r\n$1\r\ns\r\n:0\r\n_\r\n');
    r.done();
    assert.deepEqual(r.events.map((e) => [e.query, e.redis.return_value]), [
      ['HELLO 3', '{proto: 3}'],
      ['SUBSCRIBE c', '[subscribe, c, 1]'],
      ['GET k', 'v'],
      ['GET j', 'nil'],
    ]);
    assert.deepEqual(r.stats().pushes, { invalidate: 1, message: 1, unsolicited_confirmation: 1 });
  });

  it('CLIENT REPLY OFF / SKIP: the commands the server will not answer are emitted at once, OK, without redis', () => {
    const r = conn();
    r.send(0, cmd('CLIENT', 'REPLY', 'SKIP') + cmd('SET', 'a', '1') + cmd('GET', 'a'));
    r.send(1, '$1\r\n1\r\n');
    r.send(0, cmd('CLIENT', 'REPLY', 'OFF') + cmd('INCR', 'a') + cmd('CLIENT', 'REPLY', 'ON') + cmd('GET', 'a'));
    r.send(1, '+OK\r\n$1\r\n2\r\n');
    r.done();
    assert.deepEqual(r.events.map(view), [
      ['OK', 'CLIENT REPLY SKIP', null, null, ['no reply expected: CLIENT REPLY SKIP']],
      ['OK', 'SET a 1', null, null, ['no reply expected: CLIENT REPLY SKIP']],
      ['OK', 'GET a', '1', null, null],
      ['OK', 'CLIENT REPLY OFF', null, null, ['no reply expected: CLIENT REPLY OFF']],
      ['OK', 'INCR a', null, null, ['no reply expected: CLIENT REPLY OFF']],
      ['OK', 'CLIENT REPLY ON', 'OK', null, null],
      ['OK', 'GET a', '2', null, null],
    ]);
    assert.equal(r.events[1].redis, undefined);
    assert.equal(r.stats().no_reply, 4);
  });

  it('MONITOR: the lines streamed after its OK are not replies', () => {
    const r = conn();
    r.send(0, cmd('MONITOR'));
    r.send(1, '+OK\r\n+1700000000.123456 [0 127.0.0.1:5555] "get" "k"\r\n+1700000000.2 [0 127.0.0.1:5555] "ping"\r\n');
    r.send(0, cmd('QUIT'));
    r.send(1, '+OK\r\n');
    r.done();
    assert.deepEqual(r.events.map((e) => [e.query, e.redis.return_value]), [['MONITOR', 'OK'], ['QUIT', 'OK']]);
    assert.equal(r.stats().pushes.monitor, 2);
  });

  it('times out an unanswered command, consumes its late reply, and pairs the next one', () => {
    const r = conn();
    r.send(0, cmd('GET', 'slow'), 1000);
    r.a.expire(1005, 0);
    assert.equal(r.events.length, 0);
    r.a.expire(1010, 0);
    assert.deepEqual(view(r.events[0]), ['Error', 'GET slow', null, 'Unmatched request', ['no response within the transaction timeout']]);
    r.send(1, bulk('late'), 1012);
    r.send(0, cmd('GET', 'next'), 1013);
    r.send(1, bulk('next'), 1013);
    r.done();
    assert.deepEqual(view(r.events[1]).slice(0, 3), ['OK', 'GET next', 'next']);
    assert.equal(r.stats().late_replies, 1);
    assert.equal(r.stats().unmatched.timeout, 1);
  });

  it("waits out a blocking command's own timeout before the transaction timeout (never, for 0)", () => {
    const r = conn();
    r.send(0, cmd('BLPOP', 'q', '0'), 1000);
    r.a.expire(5000, 0);
    assert.equal(r.events.length, 0);
    r.send(1, '*2\r\n$1\r\nq\r\n$3\r\njob\r\n', 5001);
    r.send(0, cmd('XREAD', 'BLOCK', '30000', 'STREAMS', 's', '$'), 6000);
    r.a.expire(6035, 0);
    assert.equal(r.events.length, 1);
    r.a.expire(6040, 0);
    assert.equal(r.events.length, 2);
    r.done();
    assert.equal(r.events[0].event.duration, 4001e9);
    assert.equal(r.events[1].error.message, 'Unmatched request');
  });

  it('emits what waits at close, and a reply without a command', () => {
    const r = conn();
    r.send(1, '+OK\r\n');
    r.send(0, cmd('GET', 'a') + cmd('GET', 'b'));
    r.send(1, '$6\r\npart');
    r.done();
    assert.deepEqual(r.events.map(view), [
      ['Error', null, 'OK', 'Unmatched response', ['response without a request']],
      ['Error', 'GET a', null, 'Unmatched request', ['connection closed inside the response']],
      ['Error', 'GET b', null, 'Unmatched request', ['no response before the connection closed']],
    ]);
    assert.equal(r.events[0].source.bytes, 0);
    assert.equal(r.events[0].method, undefined);
  });

  it('a gap inside a bulk string keeps the place; anywhere else the replies waiting are lost and pairing resumes on a new command', () => {
    const r = conn();
    r.send(0, cmd('GET', 'big') + cmd('PING'));
    r.send(1, '$20\r\n0123');
    r.a.gap(1, 10, 1000, 5);
    r.send(1, 'efghij\r\n+PONG\r\n');
    assert.deepEqual(r.events.map(view), [
      ['OK', 'GET big', '0123', null, ['packet loss: 10 response bytes missing']],
      ['OK', 'PING', 'PONG', null, null],
    ]);
    assert.equal(r.events[0].destination.bytes, 27);
    r.send(0, cmd('GET', 'a') + cmd('GET', 'b'));
    r.send(1, '$1\r\n');
    r.a.gap(1, 7, 1000, 6);
    r.send(1, '$1\r\nb\r\n'); // would pair with GET a: skipped
    r.send(0, cmd('GET', 'c'));
    r.send(1, 'junk\r\n'); // does not start like a reply
    r.send(1, '$1\r\nc\r\n');
    r.done();
    assert.deepEqual(r.events.slice(2).map(view), [
      ['Error', 'GET a', null, 'Unmatched request', ['response lost to packet loss']],
      ['Error', 'GET b', null, 'Unmatched request', ['response lost to packet loss']],
      ['OK', 'GET c', 'c', null, null],
    ]);
    assert.deepEqual(r.stats().lost, { response_gap: 1 });
  });

  it('a container command cut by loss after its first word is named by that word (found by the fuzz suite)', () => {
    const r = conn();
    r.send(0, '*3\r\n$6\r\nCONFIG\r\n$3\r\nG');
    r.a.gap(0, 20, 1000, 1);
    r.done();
    assert.deepEqual(r.events.map((e) => [e.method, e.notes]), [['CONFIG', ['request cut by packet loss']]]);
  });

  it('commands lost to a gap: the replies of those before still pair, those after are not guessed', () => {
    const r = conn();
    r.send(0, cmd('GET', 'a') + cmd('GET', 'b'));
    r.a.gap(0, 20, 1000, 1);
    r.send(0, cmd('GET', 'd'));
    r.send(1, bulk('a') + bulk('b') + bulk('c') + bulk('d'));
    r.send(0, cmd('PING'));
    r.send(1, '+PONG\r\n');
    r.done();
    assert.deepEqual(r.events.map(view), [
      ['OK', 'GET a', 'a', null, null],
      ['OK', 'GET b', 'b', null, null],
      ['Error', 'GET d', null, 'Unmatched request', ['response not identified: commands before it were lost to packet loss']],
      ['OK', 'PING', 'PONG', null, null],
    ]);
  });

  it('a capture that starts inside a connection: finds the next command, and the first reply after it', () => {
    const r = conn({}, true);
    r.send(1, 'lo\r\n+OK\r\n');
    r.send(0, 'ue\r\n' + cmd('GET', 'k'));
    r.send(1, bulk('v'));
    r.done();
    assert.deepEqual(r.events.map(view), [['OK', 'GET k', 'v', null, null]]);
  });

  it('bounds the commands waiting: the oldest leave unanswered, their replies are consumed when they come', () => {
    const r = conn({ maxPending: 2 });
    r.send(0, cmd('GET', '1') + cmd('GET', '2') + cmd('GET', '3'));
    assert.deepEqual(view(r.events[0]), ['Error', 'GET 1', null, 'Unmatched request', ['too many commands waiting for replies']]);
    r.send(1, bulk('1') + bulk('2') + bulk('3'));
    r.done();
    assert.deepEqual(r.events.slice(1).map((e) => [e.query, e.redis.return_value]), [['GET 2', '2'], ['GET 3', '3']]);
    assert.deepEqual(r.stats().unmatched, { pending_limit: 1 });

    const bytes = conn({ maxPendingBytes: 12 });
    bytes.send(0, cmd('GET', 'abcdef') + cmd('GET', 'ghijkl'));
    assert.equal(bytes.stats().unmatched.pending_bytes_limit, 1);
    bytes.done();

    // over all connections: each keeps its newest
    const events: any[] = [];
    const out = { emit: (e: any) => events.push(e) };
    const inst = redis.create({ maxPendingTotal: 3 }, out);
    const conns = [1, 2].map((i) => {
      const c = new Connection(i, 0, 4, 0, 0, 0, 0x0a000001, 0, 0, 0, 0x0a000002, 40000 + i, 6379, -1, -1, 'syn', 1000, 0);
      return inst.tcp!({ conn: c, endpoints: makeEndpoints(c, 6), out, midStream: false });
    });
    const b = Buffer.from(cmd('GET', 'x') + cmd('GET', 'y'));
    conns[0].data(0, b, 0, b.length, 1000, 0);
    conns[1].data(0, b, 0, b.length, 1000, 1);
    assert.equal((inst.stats() as any).unmatched.pending_limit_total, 1);
    assert.equal((inst.stats() as any).pending, 3);
    for (const a of conns) a.close(1001, 0);
    assert.equal((inst.stats() as any).pending, 0);
  });

  it('options: sendRequest, sendResponse, maxValueBytes', () => {
    const r = conn({ sendRequest: true, sendResponse: true, maxValueBytes: 8 });
    r.send(0, cmd('SET', 'key', 'a long value') + cmd('GET', 'k'));
    r.send(1, '+OK\r\n' + bulk('0123456789'));
    r.done();
    const [set, get] = r.events;
    assert.equal(set.query, 'SET key ');
    assert.equal(set.request, 'SET key ');
    assert.equal(set.response, 'OK');
    assert.deepEqual(set.notes, ['query cut at 8 bytes']);
    assert.equal(get.redis.return_value, '01234567');
    assert.deepEqual(get.notes, ['return value cut at 8 bytes']);
    assert.equal(get.destination.bytes, 17);
    assert.deepEqual(Object.keys(set).slice(-5), ['query', 'redis', 'request', 'response', 'notes']);
  });

  it('stops at a replication stream (after PSYNC is answered, at SYNC)', () => {
    const r = conn();
    r.send(0, cmd('PSYNC', '?', '-1'));
    r.send(1, '+FULLRESYNC abc 0\r\n$5\r\nREDIS' + cmd('SET', 'k', 'v'));
    r.send(0, cmd('REPLCONF', 'ACK', '0'));
    r.done();
    assert.deepEqual(r.events.map(view), [['OK', 'PSYNC ? -1', 'FULLRESYNC abc 0', null, null]]);
    assert.equal(r.stats().replication_streams, 1);
  });
});

describe('Redis probe', { timeout: 60_000 }, () => {
  const probe = (s: string | Buffer, side = 0) => {
    const b = typeof s === 'string' ? Buffer.from(s, 'latin1') : s;
    return redis.probe!(b, 0, b.length, side);
  };
  it('recognises commands as every client sends them, and the replies to an inline PING or HELLO 3', () => {
    assert.ok(probe(cmd('PING')));
    assert.ok(probe(cmd('HELLO', '3')));
    assert.ok(probe(cmd('set', 'k', 'v')));
    assert.ok(probe('+PONG\r\n', 1));
    assert.ok(probe('%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n', 1));
  });
  it('does not take HTTP, DNS, memcache, PostgreSQL, MySQL, MongoDB, Cassandra or POP3 for Redis', () => {
    const le32 = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeInt32LE(n);
      return b;
    };
    const be32 = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeInt32BE(n);
      return b;
    };
    const others: [string | Buffer, number][] = [
      ['GET / HTTP/1.1\r\nHost: x\r\n\r\n', 0],
      ['HTTP/1.1 200 OK\r\n\r\n', 1],
      [Buffer.from([0, 29, 0x12, 0x34, 1, 0, 0, 1, 0, 0]), 0],
      ['get key\r\n', 0],
      ['set k 0 0 1\r\nx\r\n', 0],
      ['VALUE key 0 1\r\nx\r\nEND\r\n', 1],
      [Buffer.from([0x80, 0x00, 0x00, 0x03, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0]), 0],
      [Buffer.concat([be32(8), be32(80877103)]), 0],
      [Buffer.concat([be32(40), be32(196608), Buffer.from('user\0postgres\0')]), 0],
      [Buffer.concat([Buffer.from([74, 0, 0, 0, 10]), Buffer.from('8.0.36\0')]), 1],
      [Buffer.concat([Buffer.from([42, 0, 0, 1]), Buffer.alloc(38)]), 0],
      [Buffer.concat([le32(60), le32(1), le32(0), le32(2013), Buffer.alloc(44)]), 0],
      [Buffer.from([0x04, 0x00, 0x00, 0x01, 0x05, 0, 0, 0, 0]), 0],
      ['+OK POP3 server ready\r\n', 1],
      ['*x\r\n', 0],
      ['*1\r\n:1\r\n', 0],
    ];
    for (const [bytes, side] of others) assert.equal(probe(bytes, side), false, JSON.stringify(bytes.toString()));
  });
});

// ---------------------------------------------------------------------------
// properties over the fixtures' streams

const REAL = ['commands', 'pipeline', 'pubsub', 'resp3', 'raw'].map((n) => `redis/${n}.pcap`);


describe('Redis fuzzing', { timeout: (2 * SECONDS + 600) * 1000 }, () => {
  const streams = REAL.map((f) => streamsOf(fixture(f), 6379));
  const reference = streams.map((s) => JSON.stringify(analyzeChunks(redis, s).events));

  it("random splits of the fixtures' streams give the same events", () => {
    fc.assert(
      fc.property(fc.nat(streams.length - 1), fc.array(fc.tuple(fc.nat(), fc.array(fc.nat(), { minLength: 1, maxLength: 6 })), { maxLength: 40 }), fc.nat(), (which, splits, every) => {
        const cuts = new Map(splits.map(([i, c]) => [i % streams[which].length, c]));
        const denseCut = every % 7 === 0; // sometimes: every chunk cut byte by byte for its first bytes
        const { events, stats } = analyzeChunks(redis, streams[which], (i, len) => (denseCut ? Array.from({ length: Math.min(len, 40) }, (_, k) => k) : (cuts.get(i) ?? [])));
        assert.equal(JSON.stringify(events), reference[which]);
        assertAccounting({ analyze: { protocols: { redis: stats } } } as Record<string, Stats>, REAL[which]);
      }),
      runs(150),
    );
  });

  it('damaged streams (flipped, inserted and cut bytes, gaps, lost closes) never throw, and the accounting holds', () => {
    const damage = chunkDamage([0x0d, 0x0a, 0x2a, 0x24, 0x3e, 0x25, 0x7c, 0x3f, 0x2e, 0x3b, 0x30, 0x2d, 0x00, 0xff]);
    fc.assert(
      fc.property(fc.nat(streams.length - 1), fc.array(damage, { minLength: 1, maxLength: 30 }), fc.array(fc.nat(), { maxLength: 10 }), (which, damages, cuts) => {
        const chunks = damageChunks(streams[which], damages);
        const { stats } = analyzeChunks(redis, chunks, (i) => cuts.map((x) => x + i), 5);
        assertAccounting({ analyze: { protocols: { redis: stats } } } as Record<string, Stats>, 'damaged');
        assert.equal(stats.pending, 0);
      }),
      runs(300),
    );
  });
});

// ---------------------------------------------------------------------------
// agreement with tshark's RESP dissector

const haveTshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;

interface TsharkView {
  /** per client port: the commands' words joined by spaces, in order (tshark 4.0 does not dissect inline commands) */
  commands: Map<number, string[]>;
  /** per client port: the top-level values the server sent (replies and pushes) */
  values: Map<number, number>;
  errors: string[];
}

function tsharkView(file: string, ports: number[] = [6379]): TsharkView {
  const args = ['-r', file, '-o', 'tcp.desegment_tcp_streams:TRUE', '-o', 'tcp.reassemble_out_of_order:TRUE', '-Y', 'resp', '-T', 'json', '--no-duplicate-keys'];
  for (const p of ports) if (p !== 6379) args.push('-d', `tcp.port==${p},resp`);
  const packets = JSON.parse(execFileSync('tshark', args, { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] }));
  const list = (x: unknown): any[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);
  const text = (hex: string | undefined) => Buffer.from((hex ?? '').replace(/:/g, ''), 'hex').toString('utf8');
  // a partly dissected array is shown again, whole, in the frame that completes it
  const whole = (v: any) => !(typeof v === 'object' && v?._ws?.expert !== undefined && JSON.stringify(v['_ws.expert'] ?? v._ws).includes('reassembled_in_next_frame')) && !JSON.stringify(v).includes('resp.reassembled_in_next_frame');
  const view: TsharkView = { commands: new Map(), values: new Map(), errors: [] };
  for (const p of packets) {
    const layers = p._source.layers;
    const src = Number(layers.tcp['tcp.srcport']);
    const dst = Number(layers.tcp['tcp.dstport']);
    for (const r of list(layers.resp)) {
      if (ports.includes(dst)) {
        const cmds = view.commands.get(src) ?? [];
        for (const a of list(r['resp.array']).filter(whole)) cmds.push(list(a['resp.bulk_string']).map((s) => text(s['resp.bulk_string.value'])).join(' '));
        view.commands.set(src, cmds);
      } else {
        let n = 0;
        for (const k of ['resp.array', 'resp.string', 'resp.error', 'resp.integer', 'resp.bulk_string']) n += list(r[k]).filter(whole).length;
        view.values.set(dst, (view.values.get(dst) ?? 0) + n);
        view.errors.push(...list(r['resp.error']));
      }
    }
  }
  return view;
}

const counts = (xs: string[]) => xs.reduce<Record<string, number>>((c, x) => ((c[x] = (c[x] ?? 0) + 1), c), {});

describe('agreement with tshark (RESP dissector)', { skip: haveTshark ? false : 'tshark not installed', timeout: 600_000 }, () => {
  // server values are compared on RESP2 connections only: tshark 4.0 knows no RESP3 type
  for (const [name, resp2] of [['redis/commands.pcap', true], ['redis/pipeline.pcap', true], ['redis/pubsub.pcap', true], ['redis/raw.pcap', true], ['redis/resp3.pcap', false], ['redis/edge-other-port.pcap', false]] as const) {
    it(`${name}: the same commands in the same order per connection${resp2 ? ', the same replies and pushes, the same errors' : ''}`, async () => {
      const ports = name.includes('other-port') ? [16379, 16380] : [6379];
      const theirs = tsharkView(fixture(name), ports);
      const run = await readFile(fixture(name), { ports: { redis: ports } });
      const ours = (run.events as any[]).filter((e) => e.type === 'redis');
      let compared = 0;
      for (const [port, theirCommands] of theirs.commands) {
        const mine = ours.filter((e) => e.client.port === port && e.query !== undefined);
        if (theirCommands.length === 0) continue; // inline commands only: tshark shows none
        // a word of ours cut at the value limit or redacted is compared by the command alone
        const norm = (q: string, e: any) => (e.notes?.some((n: string) => n.startsWith('query cut')) || e.query.includes('(redacted)') ? q.split(' ')[0] : q);
        assert.deepEqual(theirCommands.map((q, i) => norm(q, mine[i] ?? { query: '' })), mine.map((e) => norm(e.query, e)), `commands of client port ${port}`);
        compared += mine.length;
      }
      assert.ok(compared > 0);
      if (resp2) {
        const stats = (run.stats.analyze as any).protocols.redis;
        const pushes = Object.values<number>(stats.pushes).reduce((a, b) => a + b, 0);
        const values = [...theirs.values.values()].reduce((a, b) => a + b, 0);
        assert.equal(values, stats.replies + pushes, 'top-level values from the server: replies and pushes');
        assert.deepEqual(counts(theirs.errors), counts(ours.filter((e) => e.redis?.error !== undefined).map((e) => e.redis.error)), 'error replies');
      }
    });
  }
});

// ---------------------------------------------------------------------------
// a real server

const isRoot = process.getuid?.() === 0;
const haveRedis = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
const liveSkip = !isRoot ? 'needs root (tcpdump on lo)' : !haveRedis ? 'redis-server is not installed (scripts/setup.sh installs it)' : false;

type Checks = (tx: any[], analyze: any) => void;
const find = (tx: any[], query: string) => {
  const e = tx.find((x) => x.query === query);
  assert.ok(e !== undefined, `no transaction for ${query}`);
  return e;
};
const expectations: Record<string, Checks> = {
  commands(tx) {
    assert.equal(find(tx, 'GET user:1:name').redis.return_value, 'Ada Lovelace');
    assert.equal(find(tx, 'HGETALL user:1').redis.return_value, '[name, Ada, lang, en]');
    assert.equal(find(tx, 'MGET a b missing').redis.return_value, '[1, 2, nil]');
    assert.match(find(tx, 'LPUSH user:1:name x').redis.error, /^WRONGTYPE /);
    assert.match(find(tx, 'NOSUCHCOMMAND arg').redis.error, /^ERR unknown command/);
    assert.equal(find(tx, 'EVAL ' + "return {1, 2, {3, 'x'}, redis.status_reply('fine')} 0").redis.return_value, '[1, 2, [3, x], fine]');
    assert.equal(find(tx, 'BLPOP nothing-here 0.1').redis.return_value, 'nil');
    assert.match(find(tx, 'AUTH (redacted) (redacted)').redis.error, /^WRONGPASS/);
    const big = find(tx, 'GET big');
    assert.equal(big.destination.bytes, 200_000 + '$200000\r\n\r\n'.length);
    assert.deepEqual(big.notes, ['return value cut at 4096 bytes']);
    const execs = tx.filter((e) => e.query === 'EXEC').map((e) => e.redis.return_value ?? e.redis.error);
    assert.deepEqual(execs, ['[OK, 2, 2]', 'EXECABORT Transaction discarded because of previous errors.', 'nil']);
    assert.ok(tx.every((e) => e.redis !== undefined), 'every command answered');
  },
  pipeline(tx) {
    const sets = tx.filter((e) => /^SET item:/.test(e.query));
    const gets = tx.filter((e) => /^GET item:/.test(e.query));
    assert.equal(sets.length, 250);
    assert.equal(gets.length, 250);
    for (const g of gets) assert.ok(g.redis.return_value.startsWith(g.query.slice('GET item:'.length).padStart(4, '0') + ':chunk-'), g.query);
    assert.equal(tx.filter((e) => /^SET mass:/.test(e.query) && e.redis.return_value === 'OK').length, 100);
    assert.ok(tx.every((e) => e.redis !== undefined));
  },
  pubsub(tx, analyze) {
    assert.equal(find(tx, 'subscribe news sport').redis.return_value, '[[subscribe, news, 1], [subscribe, sport, 2]]');
    assert.equal(find(tx, 'PING').redis.return_value, '[pong, ]');
    assert.match(find(tx, 'UNSUBSCRIBE').redis.return_value, /^\[\[unsubscribe, (alpha|beta), 1\], \[unsubscribe, (alpha|beta), 0\]\]$/);
    assert.equal(find(tx, 'PUBLISH nobody-listens lost').redis.return_value, '0');
    const pushes = analyze.protocols.redis.pushes;
    assert.deepEqual([pushes.message, pushes.pmessage], [3, 1]);
    assert.ok(pushes.monitor >= 1);
    assert.ok(tx.every((e) => e.redis !== undefined));
  },
  resp3(tx, analyze) {
    assert.equal(tx.filter((e) => e.query === 'HGETALL profile').map((e) => e.redis.return_value)[0], '{name: Grace, born: 1906}');
    assert.equal(find(tx, 'DEBUG PROTOCOL bignum').redis.return_value, '1234567999999999999999999999999999999');
    assert.equal(find(tx, 'DEBUG PROTOCOL attrib').redis.return_value, 'Some real reply following the attribute');
    assert.equal(find(tx, 'DEBUG PROTOCOL verbatim').redis.return_value, 'This is a verbatim\nstring');
    assert.equal(find(tx, 'subscribe chat').redis.return_value, '[subscribe, chat, 1]');
    const pushes = analyze.protocols.redis.pushes;
    assert.deepEqual([pushes.message, pushes.pmessage, pushes.invalidate], [1, 1, 1]);
    assert.ok(tx.every((e) => e.redis !== undefined));
  },
  raw(tx, analyze) {
    // the inline-only connection is recognised by its first reply (+PONG): the PING the probe held is handed over first
    assert.deepEqual([tx[0].query, tx[0].redis.return_value, tx[0].error], ['PING', 'PONG', undefined]);
    assert.equal(analyze.tcp_probe_chunks.replayed >= 1, true);
    assert.equal(find(tx, 'GET greeting').redis.return_value, 'hello world');
    assert.equal(tx.filter((e) => e.notes?.[0]?.startsWith('no reply expected')).length, 5);
    assert.equal(find(tx, 'GET quiet').redis.return_value, '3');
    // an inline command with unbalanced quotes, alone on its connection, is not recognisable
    assert.equal(analyze.connections.redis_by_probe, 2);
    assert.ok(!tx.some((e) => e.query?.startsWith('SET broken')));
  },
};

describe('live: redis-server, node-redis, redis-cli and raw sockets on a port pktflow does not know', { skip: liveSkip, timeout: 600_000 }, () => {
  let server: RedisServer | null = null;
  let dir = '';
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'pktflow-redis-live-'));
    server = await startRedis(await freePort());
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  for (const [name, s] of Object.entries(scenarios)) {
    it(`${name}: found by probe, every transaction as expected`, async () => {
      const port = server!.port;
      const file = path.join(dir, `${name}.pcap`);
      await recordLoopback({ filter: `tcp port ${port}`, file }, () => s.run(port));
      const r = await cli(['read', file, '--stats-event', '-q']);
      assert.equal(r.code, 0, r.stderr);
      const events = ndjson(r.stdout) as any[];
      const stats = events.pop();
      assert.equal(stats.type, 'stats');
      assertAccounting(stats.stats, name);
      const analyze = stats.stats.analyze;
      assert.equal(analyze.connections.redis_by_port, undefined, 'no port told');
      assert.ok(analyze.connections.redis_by_probe > 0);
      const tx = events.filter((e) => e.type === 'redis');
      assert.ok(tx.length > 0);
      if (process.env.DEBUG_LIVE) console.log(JSON.stringify(tx.map((e) => [e.client.port, e.query, e.redis, e.notes])));
      expectations[name](tx, analyze);
    });
  }
});
