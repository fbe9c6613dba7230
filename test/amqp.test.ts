/**
 * AMQP 0-9-1: field tables and content headers, the frame parser (any split gives the
 * same frames; damage is a violation, never a throw), the analyzer's pairing per
 * channel (replies, asynchronous methods, content, closes, timeouts, loss, limits),
 * its probe, properties over the fixtures' streams, agreement with tshark's AMQP
 * dissector, and a live test against a real RabbitMQ with amqplib and amqp-tools.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { Stats } from '../src/core/stage';
import { amqp, type AmqpOptions } from '../src/protocols/amqp';
import { FrameCounters, FrameInfo, FrameParser } from '../src/protocols/amqp/frames';
import { methodDef } from '../src/protocols/amqp/methods';
import { goTime, readContentHeader, Reader } from '../src/protocols/amqp/wire';
import { protocols } from '../src/protocols/registry';
import { scenarios, startRabbit, type RabbitServer } from '../scripts/fixtures/amqp';
import { recordLoopback } from './capture';
import { analyzeChunks, type Chunk, chunkDamage, damageChunks, fuzzParams, streamsOf } from './fuzz-helpers';
import { body, contentHeader, frame, heartbeat, longstr, M, method, opening, PROTOCOL_HEADER, shortstr, table } from './gen/amqp';
import { analyzerOn, assertAccounting, cli, fixture, ndjson, readFile } from './helpers';
import { freePort } from './net';

/** one analyzer on one connection, driven directly: `send` joins its parts, `at` moves packet time to a second and expires */
function conn(options: Partial<AmqpOptions> = {}, midStream = false) {
  const h = analyzerOn(amqp, options, [40000, 5672], midStream);
  const send = (side: number, ...parts: Buffer[]) => h.send(side, Buffer.concat(parts));
  const at = (s: number) => {
    h.clock.sec = s;
    h.a.expire(s, 0);
  };
  const open = () => {
    for (const [q, r] of opening()) send(0, q), send(1, r);
  };
  return { events: h.events, a: h.a, send, stats: h.stats, done: h.done, at, open };
}

const view = (e: any) => [e.method, e.status, e.amqp.channel, e.error?.message ?? null, e.notes ?? null];

describe('AMQP wire', { timeout: 60_000 }, () => {
  it('reads field tables of every type as RabbitMQ writes them, rendered as packetbeat renders them', () => {
    const entries = Buffer.concat([
      shortstr('t'), Buffer.from('t'), Buffer.from([1]),
      shortstr('b'), Buffer.from('b'), Buffer.from([0xff]),
      shortstr('B'), Buffer.from('B'), Buffer.from([0xff]),
      shortstr('s'), Buffer.from('s'), Buffer.from([0xff, 0xfe]),
      shortstr('u'), Buffer.from('u'), Buffer.from([0xff, 0xfe]),
      shortstr('I'), Buffer.from('I'), Buffer.from([0xff, 0xff, 0xff, 0xfe]),
      shortstr('i'), Buffer.from('i'), Buffer.from([0xff, 0xff, 0xff, 0xfe]),
      shortstr('l'), Buffer.from('l'), Buffer.from([0, 0, 0, 1, 0, 0, 0, 0]),
      shortstr('big'), Buffer.from('l'), Buffer.from([0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
      shortstr('d'), Buffer.from('d'), (() => { const b = Buffer.alloc(8); b.writeDoubleBE(1.5); return b; })(),
      shortstr('D'), Buffer.from('D'), Buffer.from([2, 0, 0, 0x30, 0x39]),
      shortstr('S'), Buffer.from('S'), longstr('héllo'),
      shortstr('x'), Buffer.from('x'), longstr(Buffer.from([1, 2, 3])),
      shortstr('T'), Buffer.from('T'), Buffer.from([0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00]),
      shortstr('V'), Buffer.from('V'),
      shortstr('A'), Buffer.from('A'), longstr(Buffer.concat([Buffer.from('S'), longstr('a'), Buffer.from('I'), Buffer.from([0, 0, 0, 2])])),
      shortstr('F'), Buffer.from('F'), table({ deep: { ok: true } }),
    ]);
    const buf = longstr(entries);
    const r = new Reader(buf, 0, buf.length);
    const t = r.table();
    assert.equal(r.failed, false);
    assert.deepEqual(t, {
      t: true, b: -1, B: 255, s: -2, u: 65534, I: -2, i: 4294967294, l: 4294967296, big: '9223372036854775807', d: 1.5, D: '123.45', S: 'héllo', x: '[1, 2, 3]',
      T: goTime(0x6553f100), V: null, A: { '0': 'a', '1': 2 }, F: { deep: { ok: true } },
    });
    assert.equal(goTime(1700000000), 'November 14 22:13:20 2023');
    assert.equal(goTime(1704067200), 'January  1 00:00:00 2024');
  });

  it('an unknown type or a length past the end fails the read instead of throwing', () => {
    for (const bad of [longstr(Buffer.concat([shortstr('k'), Buffer.from('Z'), Buffer.from([1])])), longstr(Buffer.concat([shortstr('k'), Buffer.from('S'), Buffer.from([0, 0, 0, 50])])), Buffer.from([0, 0, 1, 0])]) {
      const r = new Reader(bad, 0, bad.length);
      r.table();
      assert.equal(r.failed, true);
    }
    // nesting past the bound is left out, and said
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 12; i++) deep = { n: deep };
    const b = table(deep);
    const r = new Reader(b, 0, b.length);
    r.table();
    assert.equal(r.failed, false);
    assert.equal(r.partial, true);
  });

  it('reads content properties by their flags', () => {
    const h = contentHeader(1, 123456789, { contentType: 'application/json', deliveryMode: 2, messageId: 'm-1' });
    const f: Record<string, unknown> = {};
    const got = readContentHeader(h, 7, h.length - 1, f, true);
    assert.deepEqual(got, { bodySize: 123456789, classId: 60, partial: false });
    assert.deepEqual(f, { 'content-type': 'application/json', 'delivery-mode': 'persistent', 'message-id': 'm-1' });
    assert.equal(readContentHeader(h, 7, 14, {}, true).bodySize, -1);
  });

  it('knows every method of the classes packetbeat knows, and confirm', () => {
    for (const [c, m, name] of [[10, 10, 'connection.start'], [20, 40, 'channel.close'], [40, 51, 'exchange.unbind-ok'], [50, 10, 'queue.declare'], [60, 72, 'basic.get-empty'], [60, 120, 'basic.nack'], [85, 10, 'confirm.select'], [90, 31, 'tx.rollback-ok']] as const) {
      assert.equal(methodDef(c, m)?.name, name);
    }
    assert.equal(methodDef(60, 99), undefined);
  });
});

/** the frames a parser makes of `wire`, fed in pieces cut at `cuts` */
function frames(wire: Buffer, cuts: number[] = [], maxFrameBytes = 1 << 20, midStream = false) {
  const got: string[] = [];
  const violations: string[] = [];
  let bodyBytes = '';
  const p = new FrameParser(
    0,
    {
      frame: (_s, f: FrameInfo) => got.push(`${f.type}/${f.channel}/${f.size}/${f.buf === null ? '-' : f.buf.toString('hex', f.off, f.end)}/${f.missing}`),
      bodyData: (_s, _c, b, off, len) => (bodyBytes += b.toString('latin1', off, off + len)),
      protocolHeader: (_s, a, b, c, d) => got.push(`AMQP ${a}-${b}-${c}-${d}`),
      violation: (_s, r) => violations.push(r),
      lost: () => got.push('lost'),
    },
    maxFrameBytes,
    new FrameCounters(),
    midStream,
  );
  const points = [...new Set([0, ...cuts.map((c) => c % (wire.length + 1)), wire.length])].sort((a, b) => a - b);
  for (let i = 0; i + 1 < points.length; i++) {
    const piece = Buffer.concat([Buffer.from('##'), wire.subarray(points[i], points[i + 1]), Buffer.from('##')]);
    p.feed(piece, 2, piece.length - 4, 1, i);
  }
  return { got, violations, bodyBytes, parser: p };
}

describe('AMQP frames', { timeout: 600_000 }, () => {
  const wire = Buffer.concat([PROTOCOL_HEADER, M.startOk(), heartbeat(), M.publish(1, 'ex', 'rk'), contentHeader(1, 10, { contentType: 'text/plain' }), body(1, 'hello'), body(1, 'world'), M.ack(2, 7)]);

  it('reads the protocol header and frames of every type, many in a chunk', () => {
    const { got, violations, bodyBytes } = frames(wire);
    assert.deepEqual(violations, []);
    assert.equal(got[0], 'AMQP 0-0-9-1');
    assert.deepEqual(got.slice(1).map((g) => g.split('/').slice(0, 3).join('/')), ['1/0/' + (M.startOk().length - 8), '8/0/0', '1/1/' + (M.publish(1, 'ex', 'rk').length - 8), '2/1/' + (contentHeader(1, 10, { contentType: 'text/plain' }).length - 8), '3/1/5', '3/1/5', '1/2/13']);
    assert.equal(bodyBytes, 'helloworld');
  });

  it('gives the same frames for any split of the stream (property)', () => {
    const seen = (cuts: number[]) => {
      const { got, violations, bodyBytes } = frames(wire, cuts);
      return JSON.stringify({ got, violations, bodyBytes });
    };
    const reference = seen([]);
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 30 }), (cuts) => {
        assert.equal(seen(cuts), reference);
      }),
      fuzzParams(300, 1),
    );
  });

  it('a bad frame-end octet, an unknown type: a violation, then the next method frame is found', () => {
    const bad = M.queueDeclare(1, 'q');
    bad[bad.length - 1] = 0;
    const { got, violations } = frames(Buffer.concat([bad, Buffer.from([9, 0, 0, 0, 0, 0, 0, 0xce]), M.queueDeclareOk(1, 'q')]));
    assert.deepEqual(violations, ['frame_end']);
    assert.deepEqual(got.map((g) => g.split('/')[0]), ['lost', '1']);
  });

  it('a method frame longer than maxFrameBytes is skipped, counted, and the stream stays in step', () => {
    const big = M.queueDeclare(1, 'x'.repeat(200));
    const { got, violations } = frames(Buffer.concat([big, M.ack(1, 1)]), [3, 100], 64);
    assert.deepEqual(violations, ['frame_too_large']);
    assert.deepEqual(got.map((g) => g.split('/').slice(0, 2).join('/') + (g.includes('/-/') ? ' skipped' : '')), ['1/1 skipped', '1/1']);
  });

  it('mid-stream, the first whole method frame is found', () => {
    const { got } = frames(Buffer.concat([Buffer.from('tail of something'), M.ack(1, 3)]), [5, 9], 1 << 20, true);
    assert.deepEqual(got.map((g) => g.split('/').slice(0, 2).join('/')), ['1/1']);
  });
});

describe('AMQP analyzer', { timeout: 60_000 }, () => {
  it('pairs a request with its -ok on the same channel, replies of several channels in any order', () => {
    const c = conn();
    c.open();
    c.send(0, M.chOpen(2));
    c.send(1, M.chOpenOk(2));
    c.send(0, M.queueDeclare(1, 'a', 0x02, { 'x-max-length': 5 }), M.queueDeclare(2, 'b'));
    c.send(1, M.queueDeclareOk(2, 'b', 3, 1), M.queueDeclareOk(1, 'a'));
    assert.deepEqual(c.events.map(view), [
      ['queue.declare', 'OK', 2, null, null],
      ['queue.declare', 'OK', 1, null, null],
    ]);
    assert.deepEqual(c.events[0].amqp, { channel: 2, queue: 'b', passive: false, durable: false, exclusive: false, 'auto-delete': false, 'no-wait': false, 'message-count': 3, 'consumer-count': 1 });
    assert.deepEqual(c.events[1].amqp.arguments, { 'x-max-length': 5 });
    assert.equal(c.events[1].amqp.durable, true);
    assert.equal(c.stats().transactions_dropped.connection_information, 5);
    c.done();
  });

  it('connection information is emitted when not hidden, server requests included', () => {
    const c = conn({ hideConnectionInformation: false });
    c.open();
    c.done();
    assert.deepEqual(c.events.map((e) => e.method), ['connection.start', 'connection.tune', 'connection.open', 'channel.open']);
    assert.equal(c.events[0].amqp['server-properties'].product, 'RabbitMQ');
    assert.equal(c.events[0].amqp.mechanism, 'PLAIN');
    assert.equal(c.events[1].amqp['frame-max'], 131072);
    assert.equal(JSON.stringify(c.events).includes('guest\\u0000guest'), false, 'the SASL response is not in events');
  });

  it('publish and deliver are transactions of their own with their content; bodies only when asked for', () => {
    const c = conn({ sendRequest: true, sendResponse: true, maxBodyLength: 8 });
    c.open();
    c.send(0, M.publish(1, 'ex', 'rk', 1), contentHeader(1, 11, { contentType: 'text/plain' }), body(1, 'hello'), body(1, ' world'));
    c.send(1, M.deliver(1, 'ctag', 9, '', 'rk'), contentHeader(1, 4, { contentType: 'application/octet-stream' }), body(1, Buffer.from([0, 1, 2, 255])));
    c.send(0, M.ack(1, 9, true));
    c.done();
    assert.deepEqual(c.events.map((e) => [e.method, e.status, e.request ?? null, e.response ?? null, e.source.bytes, e.destination.bytes]), [
      ['basic.publish', 'OK', 'hello wo [...]', null, M.publish(1, 'ex', 'rk', 1).length + contentHeader(1, 11, { contentType: 'text/plain' }).length + 13 + 14, 0],
      ['basic.deliver', 'OK', 'basic.deliver', '0 1 2 255', 0, M.deliver(1, 'ctag', 9, '', 'rk').length + contentHeader(1, 4, { contentType: 'application/octet-stream' }).length + 12],
      ['basic.ack', 'OK', 'basic.ack', null, 21, 0],
    ]);
    assert.deepEqual(c.events[0].amqp, { channel: 1, exchange: 'ex', 'routing-key': 'rk', mandatory: true, immediate: false, 'content-type': 'text/plain', 'body-size': 11 });
    assert.equal(c.events[1].amqp.exchange, undefined, 'the default exchange is left out');
    assert.equal(c.events[2].amqp.multiple, true);

    const quiet = conn();
    quiet.open();
    quiet.send(0, M.publish(1, 'ex', 'rk'), contentHeader(1, 5), body(1, 'hello'));
    quiet.done();
    assert.equal(quiet.events[0].request, undefined);
  });

  it('basic.get: get-ok with its content answers it; get-empty names the transaction', () => {
    const c = conn({ sendResponse: true });
    c.open();
    c.send(0, M.get(1, 'q'));
    c.send(1, M.getOk(1, 4, 'q', 2), contentHeader(1, 2, { contentType: 'text/plain' }));
    assert.equal(c.events.length, 0, 'the content is not complete');
    c.send(1, body(1, 'hi'));
    c.send(0, M.get(1, 'q'));
    c.send(1, M.getEmpty(1));
    c.done();
    assert.deepEqual(c.events.map((e) => [e.method, e.status, e.response, e.amqp['message-count'] ?? null, e.amqp['body-size'] ?? null]), [
      ['basic.get', 'OK', 'hi', 2, 2],
      ['basic.get-empty', 'OK', 'OK', null, null],
    ]);
  });

  it('a close with a reply code of 300 or more is an error and answers the requests waiting on its channel', () => {
    const c = conn();
    c.open();
    c.send(0, M.queueDeclare(1, 'missing', 0x01));
    c.send(1, M.close(1, 404, "NOT_FOUND - no queue 'missing'", 50, 10));
    c.send(0, M.queueDeclare(1, 'late'));
    c.send(0, M.closeOk(1));
    c.send(0, M.close(0, 200, 'Goodbye'));
    c.send(1, M.closeOk(0));
    c.done();
    assert.deepEqual(c.events.map(view), [
      ['queue.declare', 'Error', 1, null, ["answered by channel.close 404 NOT_FOUND - no queue 'missing'"]],
      ['queue.declare', 'Error', 1, 'Unmatched request', ['sent after the peer closed the channel: discarded']],
      ['channel.close', 'Error', 1, null, null],
    ]);
    assert.deepEqual([c.events[0].amqp['reply-code'], c.events[0].amqp['class-id'], c.events[2].amqp['reply-text']], [404, 50, "NOT_FOUND - no queue 'missing'"]);
    assert.equal(c.stats().transactions_dropped.connection_information, 5, 'the normal connection.close is hidden');
  });

  it('asynchronous and no-wait methods are emitted at once; basic.return and basic.reject are errors', () => {
    const c = conn();
    c.open();
    c.send(0, M.queueDeclare(1, 'nw', 0x10));
    c.send(1, method(1, 60, 50, Buffer.from([0x01, 0x38]), shortstr('NO_ROUTE'), shortstr(''), shortstr('nowhere')), contentHeader(1, 0));
    c.send(0, method(1, 60, 90, Buffer.from([0, 0, 0, 0, 0, 0, 0, 3]), Buffer.from([1])));
    c.done();
    assert.deepEqual(c.events.map(view), [
      ['queue.declare', 'OK', 1, null, null],
      ['basic.return', 'Error', 1, null, null],
      ['basic.reject', 'Error', 1, null, null],
    ]);
    assert.deepEqual([c.events[1].amqp['reply-code'], c.events[2].amqp.requeue], [312, true]);
  });

  it('unanswered at close and at the timeout; a reply without a request; a later reply skips the unanswered', () => {
    const c = conn();
    c.open();
    c.send(0, M.queueDeclare(1, 'slow'));
    c.at(1005);
    assert.equal(c.events.length, 0);
    c.at(1011);
    c.send(1, M.queueDeclareOk(1, 'slow'));
    c.send(0, method(1, 50, 30, Buffer.from([0, 0]), shortstr('q'), Buffer.from([0])), M.queueDelete(1, 'q'));
    c.send(1, M.queueDeleteOk(1, 0));
    c.send(0, M.get(1, 'q'));
    c.done();
    assert.deepEqual(c.events.map(view), [
      ['queue.declare', 'Error', 1, 'Unmatched request', ['no response within the transaction timeout']],
      ['queue.declare-ok', 'Error', 1, 'Unmatched response', ['reply without a request']],
      ['queue.purge', 'Error', 1, 'Unmatched request', ['no response: a later request on the channel was answered']],
      ['queue.delete', 'OK', 1, null, null],
      ['basic.get', 'Error', 1, 'Unmatched request', ['no response before the connection closed']],
    ]);
  });

  it('bounds what waits: the oldest request leaves unanswered', () => {
    const c = conn({ maxPending: 3 });
    c.open();
    for (let ch = 1; ch <= 5; ch++) c.send(0, M.queueDeclare(ch, `q${ch}`));
    assert.deepEqual(c.events.map((e) => [e.amqp.queue, e.notes[0]]), [
      ['q1', 'too many requests waiting for replies'],
      ['q2', 'too many requests waiting for replies'],
    ]);
    assert.equal(c.stats().pending, 3);
    c.done();
  });

  it('a gap inside a body keeps the place; a gap elsewhere ends the content and the requests waiting on that side', () => {
    const c = conn();
    c.open();
    const f = frame(3, 1, Buffer.from('0123456789'));
    c.send(1, M.deliver(1, 't', 1, '', 'k'), contentHeader(1, 10), f.subarray(0, 10));
    c.a.gap(1, 4, 1000, 0);
    c.send(1, f.subarray(14));
    c.send(0, M.queueDeclare(1, 'q'));
    c.a.gap(1, 100, 1000, 0);
    c.send(1, Buffer.from('junk'), M.queueDeclareOk(1, 'q'));
    c.done();
    assert.deepEqual(c.events.map(view), [
      ['basic.deliver', 'OK', 1, null, ['packet loss: 4 body bytes missing']],
      ['queue.declare', 'Error', 1, 'Unmatched request', ['reply lost to packet loss']],
      ['queue.declare-ok', 'Error', 1, 'Unmatched response', ['reply without a request']],
    ]);
    assert.equal(c.stats().partial, 1);
  });

  it('frames that span segments are held within a budget shared by all connections', () => {
    const c = conn({ maxBufferedBytes: 30 });
    c.open();
    const decl = M.queueDeclare(1, 'a-queue-with-a-long-name-0123456789');
    c.send(0, decl.subarray(0, 20));
    assert.equal(c.stats().buffered_bytes, 0, 'over the budget: not held');
    c.send(0, decl.subarray(20));
    c.send(1, M.queueDeclareOk(1, 'x'));
    c.send(0, M.ack(1, 1).subarray(0, 9));
    assert.equal(c.stats().buffered_bytes, 13);
    c.done();
    assert.equal(c.stats().buffered_bytes, 0);
    assert.equal(c.stats().frames.budget_exceeded, 1);
    assert.deepEqual(c.events.map(view), [['queue.declare-ok', 'Error', 1, 'Unmatched response', ['reply without a request']]]);
  });

  it('AMQP 1.0 after its protocol header is not analysed', () => {
    const c = conn();
    c.send(0, Buffer.from('AMQP\x00\x01\x00\x00', 'latin1'));
    c.send(1, Buffer.from('AMQP\x00\x01\x00\x00\x00\x00\x00\x1f\x02\x00\x00\x00', 'latin1'));
    c.done();
    assert.deepEqual([c.events.length, c.stats().not_analysed, c.stats().violations], [0, 1, {}]);
  });
});

describe('AMQP probe', { timeout: 60_000 }, () => {
  const probe = (b: Buffer, side = 0) => amqp.probe!(b, 0, b.length, side);
  it('recognises the protocol header, connection.start, and a whole method frame mid-stream', () => {
    assert.ok(probe(PROTOCOL_HEADER));
    assert.ok(probe(M.start(), 1));
    assert.ok(probe(M.queueDeclare(3, 'q')));
    assert.ok(probe(Buffer.concat([M.deliver(1, 't', 1, '', 'k'), contentHeader(1, 1)]), 1));
    assert.equal(probe(PROTOCOL_HEADER, 1), false);
    assert.equal(probe(Buffer.from('AMQP\x00\x01\x00\x00', 'latin1')), false, 'AMQP 1.0');
    assert.equal(probe(M.queueDeclare(3, 'q').subarray(0, 20)), false, 'a frame not whole');
  });

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
  const others: [string, Buffer, number][] = [
    ['http', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 0],
    ['http', Buffer.from('HTTP/1.1 200 OK\r\n\r\n'), 1],
    ['redis', Buffer.from('*1\r\n$4\r\nPING\r\n'), 0],
    ['memcache', Buffer.from('set k 0 0 1\r\nx\r\n'), 0],
    ['memcache', Buffer.from([0x80, 0x00, 0x00, 0x03, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x6b, 0x65, 0x79]), 0],
    ['pgsql', Buffer.concat([be32(8), be32(80877103)]), 0],
    ['pgsql', Buffer.concat([be32(40), be32(196608), Buffer.from('user\0postgres\0database\0db\0\0\0\0\0\0\0\0\0')]), 0],
    ['mysql', Buffer.concat([Buffer.from([74, 0, 0, 0, 10]), Buffer.from('8.0.36\0'), Buffer.alloc(62)]), 1],
    ['mongodb', Buffer.concat([le32(60), le32(1), le32(0), le32(2013), Buffer.alloc(44)]), 0],
    ['cassandra', Buffer.from([0x04, 0x00, 0x00, 0x01, 0x05, 0, 0, 0, 0]), 0],
    ['tls', Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x03, 0x03]), 0],
  ];
  it("does not take the other protocols' first bytes", () => {
    for (const [name, bytes, side] of others) assert.equal(probe(bytes, side), false, name);
  });
  it("the other protocols' probes do not take AMQP's first bytes", () => {
    for (const p of protocols) {
      if (p.name === 'amqp' || p.probe === undefined) continue;
      assert.equal(p.probe(PROTOCOL_HEADER, 0, 8, 0), false, `${p.name} takes the protocol header`);
      const start = M.start();
      assert.equal(p.probe(start, 0, start.length, 1), false, `${p.name} takes connection.start`);
    }
  });
});

// ---------------------------------------------------------------------------
// properties over the fixtures' streams


const REAL = ['messaging', 'confirms', 'errors', 'tools', 'pipelined'].map((n) => `amqp/${n}.pcap`);
const EDGE = ['gaps', 'midstream', 'interleaved', 'violations'].map((n) => `amqp/edge-${n}.pcap`);

/** the chunks through the AMQP analyzer with everything it can report on */
function analyzeAmqp(chunks: Chunk[], pieces?: (i: number, len: number) => number[], expireEvery?: number, options: Partial<AmqpOptions> = {}) {
  return analyzeChunks(amqp, chunks, pieces, expireEvery, { sendRequest: true, sendResponse: true, hideConnectionInformation: false, ...options });
}

describe('AMQP fuzzing', { timeout: 900_000 }, () => {
  const names = [...REAL, ...EDGE];
  const streams = names.map((f) => streamsOf(fixture(f), 5672));
  const reference = streams.map((s) => JSON.stringify(analyzeAmqp(s).events));

  it("random splits of the fixtures' streams give the same events", () => {
    fc.assert(
      fc.property(fc.nat(streams.length - 1), fc.array(fc.tuple(fc.nat(), fc.array(fc.nat(), { minLength: 1, maxLength: 6 })), { maxLength: 40 }), fc.nat(), (which, splits, every) => {
        const cuts = new Map(splits.map(([i, c]) => [i % streams[which].length, c]));
        const dense = every % 7 === 0;
        const { events, stats } = analyzeAmqp(streams[which], (i, len) => (dense ? Array.from({ length: Math.min(len, 40) }, (_, k) => k) : (cuts.get(i) ?? [])));
        assert.equal(JSON.stringify(events), reference[which]);
        assertAccounting({ analyze: { protocols: { amqp: stats } } } as Record<string, Stats>, names[which]);
      }),
      fuzzParams(120, 2),
    );
  });

  it('damaged streams (flipped, inserted and cut bytes, gaps, lost closes) never throw, and the accounting holds', () => {
    const damage = chunkDamage([0x00, 0x01, 0x02, 0x03, 0x08, 0xce, 0xff, 0x41, 0x0a, 0x3c, 0x32, 0x14]);
    fc.assert(
      fc.property(fc.nat(streams.length - 1), fc.array(damage, { minLength: 1, maxLength: 30 }), fc.array(fc.nat(), { maxLength: 10 }), fc.boolean(), (which, damages, cuts, small) => {
        const chunks = damageChunks(streams[which], damages);
        const { stats } = analyzeAmqp(chunks, (i) => cuts.map((x) => x + i), 5, small ? { maxPending: 2, maxFrameBytes: 64, maxBodyLength: 3, maxBufferedBytes: 40 } : {});
        assertAccounting({ analyze: { protocols: { amqp: stats } } } as Record<string, Stats>, 'damaged');
        assert.equal(stats.pending, 0);
        assert.equal(stats.buffered_bytes, 0, 'every byte held is given back');
      }),
      fuzzParams(300, 2),
    );
  });
});

// ---------------------------------------------------------------------------
// agreement with tshark's AMQP dissector

const haveTshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;

/** per client port: the method frames as `side channel name`, in order (tshark reassembles frames across segments) */
function tsharkMethods(file: string, ports: number[] = [5672]): Map<number, string[]> {
  const args = ['-r', file, '-o', 'tcp.desegment_tcp_streams:TRUE', '-Y', 'amqp', '-T', 'fields', '-e', 'tcp.srcport', '-e', 'tcp.dstport', '-e', 'amqp.channel', '-e', 'amqp.type', '-e', 'amqp.method.class', '-e', 'amqp.method.method', '-E', 'occurrence=a', '-E', 'aggregator=,'];
  for (const p of ports) if (p !== 5672) args.push('-d', `tcp.port==${p},amqp`);
  const out = execFileSync('tshark', args, { encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'ignore'] });
  const view = new Map<number, string[]>();
  for (const line of out.split('\n')) {
    if (line === '') continue;
    const [src, dst, channels, types, classes, methods] = line.split('\t').map((f) => (f === '' ? [] : f.split(',')));
    const toServer = ports.includes(Number(dst[0]));
    const client = Number(toServer ? src[0] : dst[0]);
    const list = view.get(client) ?? [];
    let k = 0;
    types.forEach((t, i) => {
      if (t !== '1') return;
      const name = methodDef(Number(classes[k]), Number(methods[k]))?.name ?? `${classes[k]}.${methods[k]}`;
      k++;
      list.push(`${toServer ? 'c' : 's'} ${channels[i]} ${name}`);
    });
    view.set(client, list);
  }
  return view;
}

const counts = (xs: string[]) => xs.reduce<Record<string, number>>((c, x) => ((c[x] = (c[x] ?? 0) + 1), c), {});
const isReply = (name: string) => /-ok$|^basic\.get-empty$/.test(name);

describe('agreement with tshark (AMQP dissector)', { skip: haveTshark ? false : 'tshark not installed', timeout: 600_000 }, () => {
  for (const name of [...REAL, 'amqp/edge-interleaved.pcap', 'amqp/edge-other-port.pcap']) {
    it(`${name}: the same requests and replies, by method and channel, per connection`, async () => {
      const ports = name.includes('other-port') ? [15672, 25672] : [5672];
      const theirs = tsharkMethods(fixture(name), ports);
      const run = await readFile(fixture(name), { ports: { amqp: ports }, options: { amqp: { hideConnectionInformation: false, sendResponse: true } } });
      assertAccounting(run.stats, name);
      const ours = (run.events as any[]).filter((e) => e.type === 'amqp');
      let compared = 0;
      for (const [port, frames] of theirs) {
        const mine = ours.filter((e) => e.client.port === port);
        // requests and asynchronous methods: each starts one transaction of ours, on its channel
        const theirRequests = frames.filter((f) => !isReply(f.split(' ')[2])).map((f) => f.split(' ').slice(1).join(' '));
        const ourRequests = mine.filter((e) => e.error?.message !== 'Unmatched response').map((e) => `${e.amqp.channel} ${e.method === 'basic.get-empty' ? 'basic.get' : e.method}`);
        assert.deepEqual(counts(ourRequests), counts(theirRequests), `requests of client port ${port}`);
        // replies: each answered one transaction of ours (or stood alone)
        const theirReplies = frames.filter((f) => isReply(f.split(' ')[2])).length;
        const ourReplies = mine.filter((e) => e.error?.message === 'Unmatched response' || (e.response !== undefined && !['basic.deliver', 'basic.return'].includes(e.method))).length;
        assert.equal(ourReplies, theirReplies, `replies of client port ${port}`);
        compared += theirRequests.length;
      }
      assert.ok(compared > 0);
      const methods = (run.stats.analyze as any).protocols.amqp.methods;
      const all = [...theirs.values()].flat().map((f) => f.split(' ')[2]);
      assert.deepEqual(methods, Object.fromEntries(Object.entries(counts(all)).sort(([a], [b]) => (a < b ? -1 : 1))), 'method frames by method');
    });
  }
});

// ---------------------------------------------------------------------------
// a real server

const isRoot = process.getuid?.() === 0;
const haveRabbit = existsSync('/usr/lib/rabbitmq/bin/rabbitmq-server') && spawnSync('epmd', ['-help'], { stdio: 'ignore' }).error === undefined;
const haveTools = spawnSync('amqp-publish', ['--help'], { stdio: 'ignore' }).error === undefined;
const liveSkip = !isRoot ? 'needs root (tcpdump on lo)' : !haveRabbit ? 'rabbitmq-server is not installed (scripts/setup.sh installs it)' : !haveTools ? 'amqp-tools is not installed (scripts/setup.sh installs it)' : false;

type Checks = (tx: any[], analyze: any) => void;
const one = (tx: any[], pred: (e: any) => boolean, what: string) => {
  const e = tx.find(pred);
  assert.ok(e !== undefined, `no transaction: ${what}`);
  return e;
};
const expectations: Record<string, Checks> = {
  messaging(tx) {
    const first = one(tx, (e) => e.method === 'basic.publish' && e.amqp['message-id'] === 'msg-1', 'the first publish');
    assert.deepEqual([first.request, first.amqp.headers.nested, first.amqp['delivery-mode'], first.amqp.priority, first.amqp.timestamp], ['order 1 created', { ok: true }, 'persistent', 5, 'November 14 22:13:20 2023']);
    const big = one(tx, (e) => e.method === 'basic.deliver' && e.amqp['body-size'] === 300_000, 'the 300 kB delivery');
    assert.ok(big.destination.bytes > 300_000);
    assert.ok(big.response.endsWith(' [...]'));
    assert.equal(one(tx, (e) => e.method === 'basic.deliver' && e.amqp['content-type'] === 'application/octet-stream' && !e.amqp.redelivered, 'the binary delivery').response, '0 1 2 250 255');
    assert.equal(one(tx, (e) => e.method === 'basic.get-empty', 'get-empty').status, 'OK');
    assert.equal(one(tx, (e) => e.method === 'basic.reject', 'reject').status, 'Error');
    assert.deepEqual(one(tx, (e) => e.method === 'queue.declare' && !e.amqp.passive, 'declare').amqp.arguments, { 'x-message-ttl': 60000, 'x-max-length': 1000 });
    assert.equal(tx.filter((e) => e.method === 'basic.deliver').length, 6);
    assert.ok(tx.every((e) => e.status === 'OK' || e.method === 'basic.reject'), 'no other error');
  },
  confirms(tx, analyze) {
    assert.equal(one(tx, (e) => e.method === 'basic.return', 'return').amqp['reply-code'], 312);
    assert.ok(tx.filter((e) => e.method === 'basic.ack' && e.client.bytes === 0).length >= 2, 'confirms from the server');
    assert.deepEqual(['tx.select', 'tx.commit', 'tx.rollback', 'confirm.select'].map((m) => one(tx, (e) => e.method === m, m).status), ['OK', 'OK', 'OK', 'OK']);
    assert.equal(one(tx, (e) => e.method === 'queue.declare' && e.amqp['no-wait'], 'no-wait declare').destination.bytes, 0);
    assert.match(one(tx, (e) => e.method === 'queue.declare' && e.amqp.exclusive, 'server-named').amqp.queue, /^amq\.gen-/);
    assert.ok(analyze.protocols.amqp.frames.heartbeat >= 2);
  },
  errors(tx) {
    const errs = tx.filter((e) => e.status === 'Error').map((e) => [e.method, e.amqp['reply-code']]);
    for (const want of [['queue.declare', 404], ['channel.close', 404], ['queue.declare', 406], ['exchange.declare', 403], ['channel.close', 403], ['connection.close', 530], ['connection.close', 403]]) {
      assert.ok(errs.some(([m, c]) => m === want[0] && c === want[1]), `${want.join(' ')} in ${JSON.stringify(errs)}`);
    }
    assert.match(one(tx, (e) => e.method === 'channel.close' && /unknown delivery tag/.test(e.amqp['reply-text']), 'ack of an unknown tag').amqp['reply-text'], /42/);
  },
  tools(tx) {
    assert.equal(tx.filter((e) => e.method === 'basic.publish').length, 3);
        // amqp-publish -l sends each line with its newline
    assert.equal(one(tx, (e) => e.method === 'basic.get', 'amqp-get').response, 'line one\n');
    assert.deepEqual(tx.filter((e) => e.method === 'basic.deliver').map((e) => e.response), ['line two\n', 'line three\n']);
  },
  pipelined(tx) {
    assert.equal(tx.filter((e) => e.method === 'basic.publish').length, 300);
    const delivered = tx.filter((e) => e.method === 'basic.deliver');
    assert.equal(delivered.length, 300);
    assert.deepEqual(delivered.map((e) => e.amqp['message-id']), Array.from({ length: 300 }, (_, i) => String(i)));
    assert.equal(tx.filter((e) => e.method === 'basic.ack' && e.amqp.multiple).length, 6);
  },
};

describe('live: RabbitMQ, amqplib and amqp-tools on a port pktflow does not know', { skip: liveSkip, timeout: 900_000 }, () => {
  let server: RabbitServer | null = null;
  let dir = '';
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'pktflow-amqp-live-'));
    server = await startRabbit(await freePort());
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
      const r = await readFile(file, { options: { amqp: { sendRequest: true, sendResponse: true } } });
      assert.equal(r.error, null);
      assertAccounting(r.stats, name);
      const analyze = r.stats.analyze as any;
      assert.equal(analyze.connections.amqp_by_port, undefined, 'no port told');
      assert.ok(analyze.connections.amqp_by_probe > 0);
      const tx = (r.events as any[]).filter((e) => e.type === 'amqp');
      assert.ok(tx.length > 0);
      if (process.env.DEBUG_LIVE) console.log(JSON.stringify(tx.map((e) => [e.client.port, e.method, e.amqp, e.notes])));
      expectations[name](tx, analyze);
      if (haveTshark) {
        // tshark sees the same method frames on this live capture
        const all = [...tsharkMethods(file, [port]).values()].flat().map((f) => f.split(' ')[2]);
        assert.deepEqual(analyze.protocols.amqp.methods, Object.fromEntries(Object.entries(counts(all)).sort(([a], [b]) => (a < b ? -1 : 1))), 'method frames by method, as tshark');
      }
      // the same through the command line, as a user runs it
      const c = await cli(['read', file, '--stats-event', '-q']);
      assert.equal(c.code, 0, c.stderr);
      const events = ndjson(c.stdout) as any[];
      assert.equal(events.filter((e) => e.type === 'amqp').length, tx.length);
    });
  }
});
