/**
 * Thrift: the streaming decoder (binary and compact, socket and framed, every type
 * rendered as packetbeat renders it), the analyzer's pairing (sequence ids, oneway,
 * timeouts, loss, limits), IDL names, the probe, properties over the fixtures'
 * streams (any split gives the same events; damage never throws), agreement with
 * tshark's Thrift dissector, and a live test against the `thrift` npm package's
 * server and client over both protocols and both transports.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { Stats } from '../src/core/stage';
import { thrift, THRIFT_DEFAULTS, type ThriftOptions } from '../src/protocols/thrift';
import { loadIdl, parseIdl } from '../src/protocols/thrift/idl';
import type { ThriftMessage } from '../src/protocols/thrift/message';
import { goFloat, goQuote, ThriftDecoder } from '../src/protocols/thrift/wire';
import { captures, generate, IDL, runClient, startServer } from '../scripts/fixtures/thrift';
import { recordLoopback } from './capture';
import { analyzeChunks, chunkDamage, damageChunks, fuzzParams, streamsOf } from './fuzz-helpers';
import { bool, CALL, EXCEPTION, i32, message, ONEWAY, REPLY, str, struct, type Field, type Proto } from './gen/thrift';
import { analyzerOn, assertAccounting, cli, fixture, ndjson, readFile } from './helpers';
import { freePort } from './net';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const lib = require('thrift');
const T = lib.Thrift.Type;

/** the messages a decoder makes of `wire`, fed in pieces cut at `cuts` */
function decode(wire: Buffer, o: { cuts?: number[]; opts?: Partial<ThriftOptions> } = {}): { msgs: ThriftMessage[]; violations: string[] } {
  const msgs: ThriftMessage[] = [];
  const violations: string[] = [];
  const d = new ThriftDecoder({ ...THRIFT_DEFAULTS, ...o.opts }, { message: (m) => msgs.push(m), violation: (r) => violations.push(r) });
  const points = [...new Set([0, ...(o.cuts ?? []).map((c) => c % (wire.length + 1)), wire.length])].sort((a, b) => a - b);
  for (let i = 0; i + 1 < points.length; i++) {
    // each piece in a buffer of its own, with bytes around it that are not its own
    const piece = Buffer.concat([Buffer.from('##'), wire.subarray(points[i], points[i + 1]), Buffer.from('##')]);
    d.feed(piece, 2, piece.length - 4, 1, i);
  }
  return { msgs, violations };
}

const field = (id: number, type: number, w: (p: any) => void): Field => [id, type, w];
/** every Thrift type once */
const everything: Field[] = [
  bool(1, true),
  bool(2, false),
  field(3, T.BYTE, (p) => p.writeByte(-5)),
  field(4, T.I16, (p) => p.writeI16(-300)),
  i32(5, -2_000_000_000),
  field(6, T.I64, (p) => p.writeI64(new lib.Int64('fffffffffffffffe'))),
  field(7, T.I64, (p) => p.writeI64(new lib.Int64('7fffffffffffffff'))),
  field(8, T.DOUBLE, (p) => p.writeDouble(1e21)),
  field(9, T.DOUBLE, (p) => p.writeDouble(-1.25e-7)),
  str(10, 'tab\there "q" é世\u0001'),
  str(11, Buffer.from([0, 1, 0xfe, 0xff])),
  str(12, ''),
  field(13, T.LIST, (p) => {
    p.writeListBegin(T.BOOL, 3);
    p.writeBool(true);
    p.writeBool(false);
    p.writeBool(true);
    p.writeListEnd();
  }),
  field(14, T.SET, (p) => {
    p.writeSetBegin(T.STRING, 2);
    p.writeString('a');
    p.writeString('b');
    p.writeSetEnd();
  }),
  field(15, T.MAP, (p) => {
    p.writeMapBegin(T.I32, T.LIST, 2);
    p.writeI32(1);
    p.writeListBegin(T.I16, 0);
    p.writeListEnd();
    p.writeI32(-2);
    p.writeListBegin(T.I16, 1);
    p.writeI16(7);
    p.writeListEnd();
    p.writeMapEnd();
  }),
  field(16, T.MAP, (p) => {
    p.writeMapBegin(T.STRING, T.STRING, 0);
    p.writeMapEnd();
  }),
  struct(17, [i32(1, 1), struct(2, [str(1, 'nested')]), struct(3, [])]),
  field(300, T.LIST, (p) => {
    p.writeListBegin(T.I32, 20);
    for (let i = 0; i < 20; i++) p.writeI32(i);
    p.writeListEnd();
  }),
];
const EVERYTHING =
  '(1: true, 2: false, 3: -5, 4: -300, 5: -2000000000, 6: -2, 7: 9223372036854775807, 8: 1000000000000000000000, 9: -0.000000125, ' +
  '10: "tab\\there \\"q\\" é世\\x01", 11: 0001feff, 12: "", 13: [true, false, true], 14: {"a", "b"}, 15: {1: [], -2: [7]}, ...)';

describe('Thrift decoder', { timeout: 600_000 }, () => {
  it('renders every type as packetbeat renders values, in both protocols, both transports', () => {
    for (const proto of ['binary', 'compact'] as Proto[]) {
      for (const framed of [false, true]) {
        const wire = message(proto, framed, 'everything', CALL, 42, everything);
        const { msgs, violations } = decode(wire);
        assert.deepEqual(violations, [], `${proto} framed=${framed}`);
        assert.equal(msgs.length, 1);
        const m = msgs[0];
        assert.deepEqual([m.method, m.type, m.seqId, m.protocol, m.framed, m.wireBytes, m.fieldCount], ['everything', CALL, 42, proto, framed, wire.length, 18]);
        const text = '(' + m.fieldValues.map((v, i) => `${m.fieldIds[i]}: ${v}`).join(', ') + ', ...)';
        assert.equal(text, EVERYTHING, `${proto} framed=${framed}`);
      }
    }
    const nested = decode(message('compact', false, 'n', CALL, 1, [everything[15], everything[16], everything[17]])).msgs[0];
    assert.deepEqual(nested.fieldValues, ['{}', '(1: 1, 2: (1: "nested"), 3: ())', '[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, ...]']);
    assert.deepEqual(nested.fieldIds, [16, 17, 300]);
    assert.deepEqual([nested.stringsCut, nested.collectionsCut], [0, 1]);
  });

  it("Go's strconv.Quote and FormatFloat(x, 'f', -1, 64)", () => {
    assert.equal(goQuote('a"b\\c\n\x00\x7f é\u00a0😀'), '"a\\"b\\\\c\\n\\x00\\x7f é\\u00a0😀"');
    assert.deepEqual([1.5, 1e21, 1e-7, -0, 123456789012345680000, 5e-324, NaN, Infinity, -Infinity].map(goFloat), [
      '1.5',
      '1000000000000000000000',
      '0.0000001',
      '-0',
      '123456789012345680000',
      '0.' + '0'.repeat(323) + '5',
      'NaN',
      '+Inf',
      '-Inf',
    ]);
  });

  it('keeps stringMaxSize bytes of a 10 MB string, cut before a split character; streams it', () => {
    const big = 'é'.repeat(5 * 1024 * 1024);
    const wire = Buffer.concat([message('binary', true, 'put', CALL, 1, [str(1, big)]), message('binary', true, 'ping', CALL, 2, [])]);
    const cuts = Array.from({ length: 160 }, (_, i) => i * 65536 + 3);
    const { msgs, violations } = decode(wire, { cuts, opts: { stringMaxSize: 5 } });
    assert.deepEqual(violations, []);
    assert.deepEqual(msgs.map((m) => [m.method, m.fieldValues[0]]), [
      ['put', '"éé..."'],
      ['ping', undefined],
    ]);
    assert.equal(msgs[0].wireBytes, wire.length - msgs[1].wireBytes);
    assert.equal(msgs[0].stringsCut, 1);
    const hidden = decode(message('compact', false, 'p', CALL, 1, [str(1, 'secret'), str(2, '')]), { opts: { obfuscateStrings: true } }).msgs[0];
    assert.deepEqual(hidden.fieldValues, ['"*"', '""']);
  });

  it('bounds: nesting past maxDepth, too many struct fields, a frame shorter or longer than its message, bad sizes; each resumes at the next message', () => {
    let deep: Field = i32(1, 1);
    for (let i = 0; i < 40; i++) deep = struct(1, [deep]);
    const ping = message('compact', false, 'ping', CALL, 9, []);
    const d = decode(Buffer.concat([message('compact', false, 'deep', CALL, 1, [deep]), ping]));
    assert.deepEqual(d.violations, ['too_deep']);
    assert.deepEqual(d.msgs.map((m) => [m.method, m.partial]), [
      ['deep', 'unreadable'],
      ['ping', ''],
    ]);
    const many = Array.from({ length: 20 }, (_, i) => i32(i + 1, i));
    const f = decode(Buffer.concat([message('binary', true, 'many', CALL, 1, many), message('binary', true, 'ping', CALL, 2, [])]), { opts: { dropAfterNStructFields: 10 } });
    assert.deepEqual(f.violations, ['too_many_fields']);
    assert.deepEqual(f.msgs.map((m) => [m.method, m.partial, m.fieldCount]), [
      ['many', 'unreadable', 10],
      ['ping', '', 0],
    ]);
    const short = message('binary', true, 'x', CALL, 1, [i32(1, 1)]);
    short.writeUInt32BE(short.length - 4 - 3, 0);
    const s = decode(Buffer.concat([short.subarray(0, short.length - 3), message('binary', true, 'ping', CALL, 2, [])]));
    assert.deepEqual(s.violations, ['frame_too_short']);
    assert.deepEqual(s.msgs.map((m) => m.method), ['x', 'ping']);
    const neg = message('binary', false, 'neg', CALL, 1, [str(1, 'abc')]);
    neg.writeInt32BE(-1, 4 + 4 + 3 + 4 + 3);
    const n = decode(Buffer.concat([neg, message('binary', false, 'ping', CALL, 2, [])]));
    assert.deepEqual(n.violations, ['negative_length']);
    assert.deepEqual(n.msgs.map((m) => m.method), ['neg', 'ping']);
    const big = decode(message('binary', false, 'big', CALL, 1, [str(1, 'x'.repeat(5000))]), { opts: { maxMessageBytes: 1000 }, cuts: [100, 2000] });
    assert.deepEqual(big.violations, ['message_too_large']);
  });

  it('leaves out values past maxTextBytes, with the message marked cut', () => {
    const fields = Array.from({ length: 10 }, (_, i) => str(i + 1, 'v'.repeat(100)));
    const m = decode(message('binary', false, 'wide', CALL, 1, [struct(1, fields)]), { opts: { maxTextBytes: 350 } }).msgs[0];
    assert.ok(m.cut);
    assert.equal(m.fieldValues[0], `(1: "${'v'.repeat(100)}", 2: "${'v'.repeat(100)}", 3: "${'v'.repeat(100)}", ...)`);
  });

  it('gives the same messages for any split of a stream of random messages (property)', () => {
    const leaf = fc.oneof(
      fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((v) => ({ f: (id: number) => i32(id, v), text: String(v) })),
      fc.boolean().map((v) => ({ f: (id: number) => bool(id, v), text: String(v) })),
      fc.string({ maxLength: 8 }).map((v) => ({ f: (id: number) => str(id, v), text: goQuote(v) })),
      // (the thrift library writes -0 as 0)
      fc.double({ noNaN: true }).filter((v) => !Object.is(v, -0)).map((v) => ({ f: (id: number) => field(id, T.DOUBLE, (p) => p.writeDouble(v)), text: goFloat(v) })),
    );
    const msg = fc.record({
      proto: fc.constantFrom<Proto>('binary', 'compact'),
      framed: fc.boolean(),
      type: fc.constantFrom(CALL, REPLY, EXCEPTION, ONEWAY),
      seq: fc.integer({ min: -5, max: 2 ** 31 - 1 }),
      name: fc.constantFrom('a', 'getStruct', 'Svc:call'),
      fields: fc.array(fc.tuple(fc.integer({ min: -10, max: 400 }), leaf), { maxLength: 6 }),
    });
    fc.assert(
      fc.property(fc.array(msg, { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { maxLength: 12 }), (ms, cuts) => {
        const wire = Buffer.concat(ms.map((m) => message(m.proto, m.framed, m.name, m.type, m.seq, m.fields.map(([id, l]) => l.f(id)))));
        const whole = decode(wire);
        assert.deepEqual(whole.violations, []);
        assert.deepEqual(
          whole.msgs.map((m) => [m.method, m.type, m.seqId, m.fieldValues]),
          ms.map((m) => [m.name, m.type, m.seq, m.fields.slice(0, 15).map(([, l]) => l.text)]),
        );
        const split = decode(wire, { cuts });
        // the same messages (their times are each piece's own)
        const strip = (ms: ThriftMessage[]) => ms.map(({ startNsec, endNsec, ...m }) => m);
        assert.deepEqual(split.violations, []);
        assert.deepEqual(strip(split.msgs), strip(whole.msgs));
      }),
      fuzzParams(300, 1),
    );
  });
});

// ---------------------------------------------------------------------------

/** one analyzer on one connection, driven directly */
function conn(options: Partial<ThriftOptions> = {}, midStream = false) {
  return analyzerOn(thrift, options, [40000, 9090], midStream);
}

const view = (e: any) => [e.status, e.query ?? null, e.thrift.return_value ?? null, e.thrift.exceptions ?? null, e.error?.message ?? null];

describe('Thrift analyzer', { timeout: 600_000 }, () => {
  it("pairs calls and replies with packetbeat's fields; declared exceptions and TApplicationExceptions are errors; oneway calls need no reply", () => {
    const r = conn({ sendRequest: true, sendResponse: true });
    r.send(0, message('binary', false, 'add', CALL, 1, [i32(1, 1), i32(2, 2)]));
    r.send(1, message('binary', false, 'add', REPLY, 1, [i32(0, 3)]));
    r.send(0, message('binary', false, 'calculate', CALL, 2, [i32(1, 1), struct(2, [i32(1, 1), i32(2, 0), i32(3, 4)])]));
    r.send(1, message('binary', false, 'calculate', REPLY, 2, [struct(1, [i32(1, 4), str(2, 'Cannot divide by 0')])]));
    r.send(0, message('binary', false, 'nope', CALL, 3, []));
    r.send(1, message('binary', false, 'nope', EXCEPTION, 3, [str(1, 'Invalid method name'), i32(2, 1)]));
    r.send(0, message('binary', false, 'zip', ONEWAY, 4, []));
    r.send(0, message('binary', false, 'ping', CALL, 5, []));
    r.send(1, message('binary', false, 'ping', REPLY, 5, []));
    r.done();
    assert.deepEqual(r.events.map(view), [
      ['OK', 'add(1: 1, 2: 2)', '3', null, null],
      ['Error', 'calculate(1: 1, 2: (1: 1, 2: 0, 3: 4))', '', '(1: (1: 4, 2: "Cannot divide by 0"))', null],
      ['Error', 'nope()', '', '(1: "Invalid method name", 2: 1)', null],
      ['OK', 'zip()', null, null, null],
      ['OK', 'ping()', '', null, null],
    ]);
    const [add, calc] = r.events;
    assert.equal(add.method, 'add');
    assert.equal(add.thrift.params, '(1: 1, 2: 2)');
    assert.deepEqual([add.thrift.seq_id, add.thrift.request_type, add.thrift.response_type, add.thrift.protocol, add.thrift.transport], [1, 'call', 'reply', 'binary', 'socket']);
    assert.equal(add.request, 'add(1: 1, 2: 2)');
    assert.equal(add.response, '3');
    assert.equal(calc.response, 'Exceptions: (1: (1: 4, 2: "Cannot divide by 0"))');
    assert.equal(add.source.bytes, message('binary', false, 'add', CALL, 1, [i32(1, 1), i32(2, 2)]).length);
    assert.equal(add.destination.port, 9090);
    assert.equal(add.network.protocol, 'thrift');
    assert.equal(add.event.duration, 1000);
    assert.equal(r.events[3].thrift.request_type, 'oneway');
    assert.deepEqual(r.stats().messages, { call: 4, exception: 1, oneway: 1, reply: 3 });
  });

  it('pairs by sequence id and method: replies out of order, sequence id 0 reused, multiplexed names', () => {
    const r = conn();
    r.send(0, Buffer.concat([1, 2, 3].map((s) => message('compact', true, 'slow', CALL, s, [i32(1, s)]))));
    r.send(1, Buffer.concat([3, 1, 2].map((s) => message('compact', true, 'slow', REPLY, s, [i32(0, s * 10)]))));
    r.send(0, Buffer.concat([message('binary', false, 'get', CALL, 0, []), message('binary', false, 'put', CALL, 0, [])]));
    r.send(1, Buffer.concat([message('binary', false, 'put', REPLY, 0, []), message('binary', false, 'get', REPLY, 0, [str(0, 'g')])]));
    r.send(0, message('compact', true, 'Calculator:add', CALL, 7, [i32(1, 2)]));
    r.send(1, message('compact', true, 'Calculator:add', REPLY, 7, [i32(0, 2)]));
    r.done();
    assert.deepEqual(r.events.map((e) => [e.query, e.thrift.return_value, e.path ?? null]), [
      ['slow(1: 3)', '30', null],
      ['slow(1: 1)', '10', null],
      ['slow(1: 2)', '20', null],
      ['put()', '', null],
      ['get()', '"g"', null],
      ['Calculator:add(1: 2)', '2', 'Calculator'],
    ]);
    assert.equal(r.events[5].thrift.service, 'Calculator');
  });

  it('unanswered calls: at close, after the timeout (the late reply consumed), past maxPending; replies without calls', () => {
    const r = conn({ maxPending: 2 });
    r.send(0, message('binary', false, 'a', CALL, 1, []), 1000);
    r.a.expire(1009, 0);
    assert.equal(r.events.length, 0);
    r.a.expire(1011, 0);
    assert.deepEqual(r.events.map(view), [['Error', 'a()', null, null, 'Unmatched request']]);
    assert.deepEqual(r.events[0].notes, ['no response within the transaction timeout']);
    r.send(1, message('binary', false, 'a', REPLY, 1, []));
    assert.equal(r.stats().late_replies, 1);
    r.send(0, Buffer.concat([2, 3, 4].map((s) => message('binary', false, 'b', CALL, s, []))));
    assert.deepEqual(r.events[1].notes, ['too many calls waiting for replies']);
    r.send(1, message('binary', false, 'c', REPLY, 77, [i32(0, 1)]));
    r.done();
    assert.deepEqual(r.events.slice(2).map(view), [
      ['Error', null, '1', null, 'Unmatched response'],
      ['Error', 'b()', null, null, 'Unmatched request'],
      ['Error', 'b()', null, null, 'Unmatched request'],
    ]);
    assert.equal(r.events[2].thrift.seq_id, 77);
    assert.equal(r.events[2].method, undefined);
    assert.deepEqual(r.stats().unmatched, { no_response: 2, pending_limit: 1, response_without_request: 1, timeout: 1 });
    // the argument text held over all connections is bounded: the oldest call leaves
    const b = conn({ maxPendingBytesTotal: 100 });
    b.send(0, Buffer.concat([1, 2].map((s) => message('binary', false, 'put', CALL, s, [str(1, 'v'.repeat(60))]))));
    assert.deepEqual(b.events.map(view), [['Error', `put(1: "${'v'.repeat(60)}")`, null, null, 'Unmatched request']]);
    assert.equal(b.stats().pending_bytes, 3 + 62);
    b.done();
    assert.equal(b.stats().pending_bytes, 0);
    assert.deepEqual(b.stats().unmatched, { no_response: 1, pending_bytes_limit_total: 1 });
    // a connection seen from its middle (no reply yet, the server side still looking for a message start) times out too
    const m = conn({}, true);
    m.send(0, message('binary', false, 'a', CALL, 1, []), 2000);
    m.send(1, Buffer.from('the end of something'));
    m.a.expire(2011, 0);
    assert.deepEqual(m.events.map(view), [['Error', 'a()', null, null, 'Unmatched request']]);
    m.done();
  });

  it('packet loss: inside a string the place is kept; inside a frame the message is cut and the next frame read; unframed, the next message is found', () => {
    const r = conn();
    const big = message('binary', false, 'get', REPLY, 1, [str(0, 'x'.repeat(3000))]);
    r.send(0, message('binary', false, 'get', CALL, 1, []));
    r.send(1, big.subarray(0, 1000));
    r.a.gap(1, 1000, 1000, 0);
    r.send(1, big.subarray(2000));
    r.done();
    assert.deepEqual(r.events.map((e) => [e.status, e.query, e.thrift.return_value, e.notes]), [['OK', 'get()', `"${'x'.repeat(200)}..."`, ['packet loss: 1000 response bytes missing']]]);
    assert.equal(r.events[0].destination.bytes, big.length);
    assert.equal(r.stats().partial, 0);

    const f = conn();
    const framed = message('compact', true, 'put', CALL, 2, [str(1, 'k'), i32(2, 5), str(3, 'y'.repeat(500))]);
    f.send(0, framed.subarray(0, 14));
    f.a.gap(0, 100, 1000, 0);
    f.send(0, Buffer.concat([framed.subarray(114), message('compact', true, 'ping', CALL, 3, [])]));
    f.send(1, Buffer.concat([message('compact', true, 'put', REPLY, 2, [bool(0, true)]), message('compact', true, 'ping', REPLY, 3, [])]));
    f.done();
    assert.deepEqual(f.events.map((e) => [e.status, e.query, e.thrift.return_value, e.notes ?? null]), [
      ['OK', 'put(1: "k")', 'true', ['packet loss: 100 request bytes missing', 'request cut by packet loss']],
      ['OK', 'ping()', '', null],
    ]);
    assert.equal(f.events[0].source.bytes, framed.length);
    assert.equal(f.stats().partial, 1);

    const u = conn();
    const lost = message('binary', false, 'q', CALL, 3, [str(1, 'zzz')]);
    u.send(0, message('binary', false, 'first', CALL, 1, []));
    u.send(1, message('binary', false, 'first', REPLY, 1, []));
    u.send(0, lost.subarray(0, 10));
    u.a.gap(0, 5, 1000, 0);
    u.send(0, Buffer.concat([lost.subarray(15), message('binary', false, 'after', CALL, 4, [])]));
    u.send(1, Buffer.concat([message('binary', false, 'q', REPLY, 3, []), message('binary', false, 'after', REPLY, 4, [])]));
    u.done();
    assert.deepEqual(u.events.map(view), [
      ['OK', 'first()', '', null, null],
      ['Error', null, '', null, 'Unmatched response'],
      ['OK', 'after()', '', null, null],
    ]);
    assert.deepEqual(u.stats().lost, { request_gap: 1 });
  });

  it('a capture that starts inside a message finds the next one', () => {
    const r = conn({}, true);
    const call = message('binary', true, 'get', CALL, 5, [str(1, 'key')]);
    r.send(0, Buffer.concat([call.subarray(9), message('binary', true, 'get', CALL, 6, [str(1, 'k2')])]));
    r.send(1, Buffer.concat([message('binary', true, 'get', REPLY, 5, [str(0, 'v')]).subarray(3), message('binary', true, 'get', REPLY, 6, [str(0, 'v2')])]));
    r.done();
    // the reply to the call cut by the capture's start is one without a call
    assert.deepEqual(r.events.map(view), [
      ['Error', null, '"v"', null, 'Unmatched response'],
      ['OK', 'get(1: "k2")', '"v2"', null, null],
    ]);
  });

  it('IDL files name arguments, exceptions and the service (methods of a base service included)', () => {
    const r = conn({ idlFiles: [IDL] });
    r.send(0, message('binary', false, 'calculate', CALL, 1, [i32(1, 7), struct(2, [i32(1, 1)])]));
    r.send(1, message('binary', false, 'calculate', REPLY, 1, [struct(1, [i32(1, 4), str(2, 'no')])]));
    r.send(0, message('binary', false, 'getStruct', CALL, 2, [i32(1, 5), i32(9, 9)]));
    r.send(1, message('binary', false, 'getStruct', REPLY, 2, [struct(0, [i32(1, 5)])]));
    r.send(0, message('binary', false, 'unknown', CALL, 3, [i32(1, 5)]));
    r.send(1, message('binary', false, 'unknown', REPLY, 3, []));
    r.done();
    assert.deepEqual(r.events.map((e) => [e.path ?? null, e.query, e.thrift.exceptions ?? null]), [
      ['Calculator', 'calculate(logid: 7, w: (1: 1))', '(ouch: (1: 4, 2: "no"))'],
      ['SharedService', 'getStruct(key: 5, 9: 9)', null],
      [null, 'unknown(1: 5)', null],
    ]);
    const idl = loadIdl([IDL]);
    assert.deepEqual([...idl.methods.keys()].sort(), ['add', 'calculate', 'echo', 'fail', 'getStruct', 'ping', 'stats', 'zip']);
    assert.equal(idl.methods.get('zip')!.oneway, true);
  });

  it('IDL syntax errors name the file and place, never hang (property over random token soup)', () => {
    assert.throws(() => parseIdl('service {', 'x.thrift'), /^Error: Thrift IDL: x\.thrift:1:1: /);
    assert.throws(() => parseIdl('}}}', 'y.thrift'), /Thrift IDL: y\.thrift/);
    assert.throws(() => loadIdl(['/nonexistent.thrift']), /Thrift IDL: \/nonexistent\.thrift: ENOENT/);
    const tok = fc.constantFrom('service', 'struct', 'S', '{', '}', '(', ')', '1:', 'i32', 'x', ',', 'throws', 'extends', 'oneway', 'void', 'list<', '>', '=', '"s"', 'include', 'typedef', 'enum', 'const', ';', '//c\n');
    fc.assert(
      fc.property(fc.array(tok, { maxLength: 20 }), (toks) => {
        try {
          parseIdl(toks.join(' '));
        } catch (e) {
          assert.match((e as Error).message, /^Thrift IDL: /);
        }
      }),
      fuzzParams(300, 1),
    );
  });

  it('pktflow read --thrift-idl: names from the file; a file that is not one is a usage error naming it', async () => {
    const ok = await cli(['read', fixture('thrift/binary-framed.pcap'), '-q', '--thrift-idl', IDL]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(ndjson(ok.stdout).some((e: any) => e.query === 'add(num1: 1, num2: 1)' && e.path === 'Calculator'));
    const dir = mkdtempSync(path.join(tmpdir(), 'pktflow-thrift-idl-'));
    try {
      const bad = path.join(dir, 'bad.thrift');
      writeFileSync(bad, 'service {');
      const r = await cli(['read', fixture('thrift/binary-framed.pcap'), '-q', '--thrift-idl', bad]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /^pktflow: Thrift IDL: .*bad\.thrift:1:1: Unable to find identifier for service\n/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('captureReply off: replies pair, their values are not shown (exceptions are)', () => {
    const r = conn({ captureReply: false });
    r.send(0, message('binary', false, 'get', CALL, 1, []));
    r.send(1, message('binary', false, 'get', REPLY, 1, [str(0, 'secret')]));
    r.send(0, message('binary', false, 'bad', CALL, 2, []));
    r.send(1, message('binary', false, 'bad', EXCEPTION, 2, [str(1, 'boom')]));
    r.send(0, message('binary', false, 'div', CALL, 3, []));
    r.send(1, message('binary', false, 'div', REPLY, 3, [struct(1, [str(1, 'by zero')])]));
    r.done();
    assert.deepEqual(r.events.map(view), [
      ['OK', 'get()', '', null, null],
      ['Error', 'bad()', '', '(1: "boom")', null],
      ['Error', 'div()', '', '(1: (1: "by zero"))', null],
    ]);
  });
});

describe('Thrift probe', { timeout: 60_000 }, () => {
  const probe = (b: Buffer, side = 0) => thrift.probe!(b, 0, b.length, side);
  it('recognises calls (binary, compact, framed or not) from clients and replies from servers', () => {
    for (const proto of ['binary', 'compact'] as Proto[]) {
      for (const framed of [false, true]) {
        assert.ok(probe(message(proto, framed, 'getStruct', CALL, 0, [i32(1, 1)])), `${proto} ${framed}`);
        assert.ok(probe(message(proto, framed, 'zip', ONEWAY, 1, [])), `${proto} ${framed}`);
        assert.ok(probe(message(proto, framed, 'getStruct', REPLY, 0, []), 1), `${proto} ${framed}`);
        assert.ok(!probe(message(proto, framed, 'getStruct', REPLY, 0, []), 0), `${proto} ${framed}`);
      }
    }
  });
  it('does not take HTTP, DNS, memcache (text and binary), PostgreSQL, MySQL, MongoDB, Cassandra, Redis or POP3 for Thrift', () => {
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
    const others: [Buffer, number][] = [
      [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 0],
      [Buffer.from('HTTP/1.1 200 OK\r\n\r\n'), 1],
      [Buffer.from([0, 29, 0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 0x77, 0x77, 0x77]), 0],
      [Buffer.from('set k 0 0 1\r\nx\r\n'), 0],
      [Buffer.from([0x80, 0x01, 0x00, 0x01, 0x08, 0, 0, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0x6b, 0x76]), 0],
      [Buffer.from([0x81, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 1],
      [Buffer.concat([be32(8), be32(80877103)]), 0],
      [Buffer.concat([be32(40), be32(196608), Buffer.from('user\0postgres\0')]), 0],
      [Buffer.concat([Buffer.from([74, 0, 0, 0, 10]), Buffer.from('8.0.36\0')]), 1],
      [Buffer.concat([le32(60), le32(1), le32(0), le32(2013), Buffer.alloc(44)]), 0],
      [Buffer.from([0x04, 0x00, 0x00, 0x01, 0x05, 0, 0, 0, 0]), 0],
      [Buffer.from('*1\r\n$4\r\nPING\r\n'), 0],
      [Buffer.from('+OK POP3 server ready\r\n'), 1],
    ];
    for (const [bytes, side] of others) assert.equal(probe(bytes, side), false, bytes.toString('hex'));
  });
});

// ---------------------------------------------------------------------------
// properties over the fixtures' streams


const REAL = Object.keys(captures).map((n) => `thrift/${n}.pcap`);
const EDGE = ['gaps', 'midstream', 'pairing', 'violations'].map((n) => `thrift/edge-${n}.pcap`);


describe('Thrift fuzzing', { timeout: 1_200_000 }, () => {
  const files = [...REAL, ...EDGE];
  const streams = files.map((f) => streamsOf(fixture(f), 9090));
  const reference = streams.map((s) => JSON.stringify(analyzeChunks(thrift, s).events));

  it("random splits of the fixtures' streams give the same events", () => {
    fc.assert(
      fc.property(fc.nat(streams.length - 1), fc.array(fc.tuple(fc.nat(), fc.array(fc.nat(), { minLength: 1, maxLength: 6 })), { maxLength: 40 }), fc.nat(), (which, splits, every) => {
        const cuts = new Map(splits.map(([i, c]) => [i % streams[which].length, c]));
        const denseCut = every % 7 === 0; // sometimes: every chunk cut byte by byte for its first bytes
        const { events, stats } = analyzeChunks(thrift, streams[which], (i, len) => (denseCut ? Array.from({ length: Math.min(len, 40) }, (_, k) => k) : (cuts.get(i) ?? [])));
        assert.equal(JSON.stringify(events), reference[which]);
        assertAccounting({ analyze: { protocols: { thrift: stats } } } as Record<string, Stats>, files[which]);
      }),
      fuzzParams(150, 2),
    );
  });

  it('damaged streams (flipped, inserted and cut bytes, gaps, lost closes) never throw, and the accounting holds', () => {
    const damage = chunkDamage([0x00, 0x01, 0x02, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x80, 0x82, 0x21, 0x7f, 0xff, 0x19, 0x29]);
    fc.assert(
      fc.property(fc.nat(streams.length - 1), fc.array(damage, { minLength: 1, maxLength: 30 }), fc.array(fc.nat(), { maxLength: 10 }), (which, damages, cuts) => {
        const chunks = damageChunks(streams[which], damages);
        const { stats } = analyzeChunks(thrift, chunks, (i) => cuts.map((x) => x + i), 5);
        assertAccounting({ analyze: { protocols: { thrift: stats } } } as Record<string, Stats>, 'damaged');
        assert.equal(stats.pending, 0);
      }),
      fuzzParams(300, 2),
    );
  });
});

// ---------------------------------------------------------------------------
// agreement with tshark's Thrift dissector

const haveTshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;
const TYPES: Record<string, string> = { '0x01': 'call', '0x02': 'reply', '0x03': 'exception', '0x04': 'oneway' };

/**
 * tshark's messages as `port|seq|type|method` (the client's port): distinct, since
 * on the unframed transport tshark shows a message again in every segment that
 * carries part of it
 */
function tsharkMessages(file: string, ports: number[], compact: (serverPort: number) => boolean): string[] {
  const args = ['-r', file, '-T', 'fields', '-E', 'separator=|', '-E', 'occurrence=a', '-E', 'aggregator=,', '-e', 'tcp.srcport', '-e', 'tcp.dstport', '-e', 'thrift.seq_id', '-e', 'thrift.mtype', '-e', 'thrift.method'];
  for (const p of ports) args.push('-d', `tcp.port==${p},thrift`);
  const out = execFileSync('tshark', args, { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] });
  const set = new Set<string>();
  for (const line of out.split('\n')) {
    const [src, dst, seqs, types, methods] = line.split('|');
    if (!seqs) continue;
    const client = ports.includes(Number(dst)) ? src : dst;
    const s = seqs.split(',');
    const t = types.split(',');
    const m = methods.split(',');
    // tshark 4.0 reads the compact protocol's sequence id (a plain varint) as a zigzag one: 1 as -1, 2 as 1; undone here
    const seq = (x: string) => (compact(ports.includes(Number(dst)) ? Number(dst) : Number(src)) ? String(((Number(x) << 1) ^ (Number(x) >> 31)) >>> 0) : x);
    for (let i = 0; i < s.length; i++) set.add(`${client}|${seq(s[i])}|${TYPES[t[i]]}|${m[i]}`);
  }
  return [...set].sort();
}

function ourMessages(events: any[]): string[] {
  const out: string[] = [];
  for (const e of events) {
    if (e.type !== 'thrift') continue;
    const method = e.method ?? null;
    if (e.thrift.request_type !== undefined) out.push(`${e.client.port}|${e.thrift.seq_id}|${e.thrift.request_type}|${method}`);
    // a multiplexed server answers `Calculator:add` as `add`
    if (e.thrift.response_type !== undefined) out.push(`${e.client.port}|${e.thrift.seq_id}|${e.thrift.response_type}|${method === null ? null : method.replace(/^.*:/, '')}`);
  }
  return out.sort();
}

describe('agreement with tshark (Thrift dissector)', { skip: haveTshark ? false : 'tshark not installed', timeout: 600_000 }, () => {
  for (const name of [...REAL, 'thrift/edge-other-port.pcap']) {
    it(`${name}: the same calls, replies, exceptions and oneway calls (sequence id, method, message type) per connection`, async () => {
      const ports = name.includes('other-port') ? [19090, 19091] : [9090];
      const theirs = tsharkMessages(fixture(name), ports, (port) => name.includes('compact') || port === 19090);
      const run = await readFile(fixture(name), { ports: { thrift: ports } });
      const ours = ourMessages(run.events);
      assert.ok(ours.length > 0);
      assert.deepEqual(ours, theirs);
      const counts = (xs: string[]) => xs.reduce<Record<string, number>>((c, x) => ((c[x.split('|')[2]] = (c[x.split('|')[2]] ?? 0) + 1), c), {});
      assert.deepEqual(counts(theirs), (run.stats.analyze as any).protocols.thrift.messages, 'message counts by type');
    });
  }
});

// ---------------------------------------------------------------------------
// a real server and client: the thrift npm package, code generated by the Thrift compiler

const isRoot = process.getuid?.() === 0;
const haveCompiler = spawnSync('thrift', ['--version'], { stdio: 'ignore' }).status === 0;
const liveSkip = !isRoot ? 'needs root (tcpdump on lo)' : !haveCompiler ? 'the thrift compiler is not installed (scripts/setup.sh installs thrift-compiler)' : false;

describe('live: the thrift npm server and client over both protocols and both transports, on a port pktflow does not know', { skip: liveSkip, timeout: 600_000 }, () => {
  let gen: ReturnType<typeof generate> | null = null;
  let dir = '';
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'pktflow-thrift-live-'));
    gen = generate();
  });
  after(() => {
    gen?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  for (const [name, c] of Object.entries(captures)) {
    it(`${name}: found by probe, every call answered as the IDL says`, async () => {
      const port = await freePort();
      const server = await startServer(gen!, port, c.protocol, c.transport, c.multiplexed);
      const file = path.join(dir, `${name}.pcap`);
      try {
        await recordLoopback({ filter: `tcp port ${port}`, file }, () => runClient(gen!, port, c.protocol, c.transport, server, c.multiplexed));
      } finally {
        await server.stop();
      }
      const r = await cli(['read', file, '--stats-event', '-q', '--thrift-idl', IDL]);
      assert.equal(r.code, 0, r.stderr);
      const events = ndjson(r.stdout) as any[];
      const stats = events.pop();
      assertAccounting(stats.stats, name);
      assert.ok(stats.stats.analyze.connections.thrift_by_probe > 0);
      const tx = events.filter((e) => e.type === 'thrift');
      const mx = c.multiplexed ? 'Calculator:' : '';
      const find = (q: string) => {
        const e = tx.find((x) => x.query === mx + q);
        assert.ok(e !== undefined, `no transaction ${q}: ${tx.map((x) => x.query).join('; ')}`);
        return e;
      };
      assert.equal(tx.length, 32);
      assert.equal(find('add(num1: 1, num2: 1)').thrift.return_value, '2');
      assert.equal(find('calculate(logid: 1, w: (1: 1, 2: 0, 3: 4, 4: "divide by zero"))').thrift.exceptions, '(ouch: (1: 4, 2: "Cannot divide by 0"))');
      assert.equal(find('stats(keys: {"alpha", "beta", "gamma"}, limit: 3)').thrift.return_value, '{"alpha": [0, 5, 10], "beta": [0, 4, 8], "gamma": [0, 5, 10]}');
      assert.equal(find('fail(why: "not declared")').thrift.response_type, 'exception');
      assert.equal(find('zip()').thrift.request_type, 'oneway');
      assert.equal(find('getStruct(key: 5)').path, 'SharedService');
      const echo = tx.filter((e) => e.method === mx + 'echo');
      assert.match(echo[0].thrift.return_value, /^\(1: "Ada \\"the countess\\" Lovelace\\n", 2: \["math", "poetry", "é世"\], 3: \{7, -3, 42\}, 4: \{"analytical": 0\.5, "engine": 1000000000000000000000, "tiny": -0\.000000125\}, 5: true, 6: -5, 7: -2, 8: 000102feff, 9: \(1: 3, 2: 4, 3: 3\), 10: \[\[1, 2\], \[\], \[3\]\], 11: \{1: \(1: 1, 2: "one"\)\}\)$/);
      assert.ok(echo[1].destination.bytes > 100_000);
      assert.equal(tx.filter((e) => e.method === mx + 'add').length, 22);
      if (c.multiplexed) assert.equal(find('add(num1: 1, num2: 1)').path, 'Calculator');
      assert.ok(tx.every((e) => e.thrift.protocol === c.protocol && e.thrift.transport === (c.transport === 'framed' ? 'framed' : 'socket')));
      assert.deepEqual(tx.filter((e) => e.status === 'Error').map((e) => e.method).sort(), [mx + 'calculate', mx + 'fail']);
    });
  }
});
