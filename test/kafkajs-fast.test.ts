/**
 * src/kafka/kafkajs-fast.ts writes the bytes kafkajs's own Produce encoder writes:
 * compared byte for byte on random requests (kafkajs's encoder is the reference; the
 * broker-level tests in test/kafka*.test.ts send the real thing to a real broker, which
 * checks every batch's CRC). No broker here.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { crc32c, encodeProduce, installProduceEncoder, nativeCrc } from '../src/kafka/kafkajs-fast';
import { frameToMessage } from '../src/kafka/frames';
import { makeFrame } from '../src/core/frame';
import { fuzzParams } from './fuzz-helpers';

/* eslint-disable @typescript-eslint/no-require-imports */
const Long = require('kafkajs/src/utils/long');
const kafkajsV7 = require('kafkajs/src/protocol/requests/produce/v7/request');
const kafkajsCrc = require('kafkajs/src/protocol/recordBatch/crc32C');
const produceDefinition = require('kafkajs/src/protocol/requests/produce');

const NOW = 1_764_000_000_123;

/** kafkajs's own encoding of the request, at a fixed time */
async function reference(args: any): Promise<Buffer> {
  const real = Date.now;
  Date.now = () => NOW;
  try {
    return (await kafkajsV7(args).encode()).buffer;
  } finally {
    Date.now = real;
  }
}

const bytes = fc.oneof(fc.constant(null), fc.string({ unit: 'grapheme', maxLength: 20 }), fc.string({ minLength: 60, maxLength: 100 }), fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)));
const headerValue = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 12 }), fc.uint8Array({ maxLength: 20 }).map((a) => Buffer.from(a)));
const message = fc.record({
  key: bytes,
  value: bytes,
  headers: fc.option(fc.dictionary(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 10 }), fc.oneof(headerValue, fc.array(headerValue, { maxLength: 3 })), { maxKeys: 5 }), { nil: undefined }),
});
const request = fc.record({
  acks: fc.constantFrom(-1, 0, 1),
  timeout: fc.nat(60_000),
  transactionalId: fc.option(fc.string({ maxLength: 10 }), { nil: null }),
  producerId: fc.bigInt(-1n, 2n ** 62n),
  producerEpoch: fc.nat(32767),
  topicData: fc.array(
    fc.record({
      topic: fc.string({ minLength: 1, maxLength: 30 }),
      partitions: fc.array(fc.record({ partition: fc.nat(1000), firstSequence: fc.nat(2 ** 31 - 1000), messages: fc.array(message, { minLength: 1, maxLength: 12 }) }), { minLength: 1, maxLength: 4 }),
    }),
    { minLength: 1, maxLength: 3 },
  ),
});

describe('kafka produce encoder', { timeout: 120_000 }, () => {
  it('CRC-32C: the native one agrees with kafkajs on random data', () => {
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 5000 }), (a) => crc32c(Buffer.from(a)) === kafkajsCrc(Buffer.from(a))), fuzzParams(300, 1));
    // on this machine's platform the prebuilt addon loads (else the benchmark figures mean little)
    assert.ok(nativeCrc);
  });

  it('writes kafkajs bytes for random requests', async () => {
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const args = { ...r, compression: 0, producerId: Long.fromValue(r.producerId) };
        assert.deepEqual(encodeProduce(args, NOW), await reference(args));
      }),
      fuzzParams(300, 1),
    );
  });

  it('writes kafkajs bytes for raw-frame messages', async () => {
    const frames = Array.from({ length: 50 }, (_, i) => makeFrame(1_700_000_000 + i, i * 1000, 1, 1514, 0, Buffer.alloc(60 + i * 29, i)));
    const args = { acks: -1, timeout: 30000, compression: 0, producerId: Long.fromValue(4711), producerEpoch: 3, topicData: [{ topic: 'pktflow.frames', partitions: [{ partition: 2, firstSequence: 1234, messages: frames.map((f) => frameToMessage(f, 'host-ä')) }] }] };
    assert.deepEqual(encodeProduce(args, NOW), await reference(args));
  });

  it('is what kafkajs sends once installed, and leaves other requests to kafkajs', async () => {
    installProduceEncoder();
    const messages = [{ key: 'k', value: 'v', headers: { a: 'b' } }];
    const args = { acks: -1, timeout: 1000, compression: 0, producerId: Long.fromValue(-1), producerEpoch: 0, topicData: [{ topic: 't', partitions: [{ partition: 0, firstSequence: 0, messages }] }] };
    const real = Date.now;
    Date.now = () => NOW;
    try {
      const mine = produceDefinition.protocol({ version: 7 })(args);
      assert.equal(mine.request.apiVersion, 7);
      assert.deepEqual((await mine.request.encode()).buffer, encodeProduce(args, NOW));
      // messages with timestamps and compressed requests keep kafkajs's encoder: same bytes all the same
      const stamped = { ...args, topicData: [{ topic: 't', partitions: [{ partition: 0, firstSequence: 0, messages: [{ ...messages[0], timestamp: String(NOW - 5) }] }] }] };
      assert.deepEqual((await produceDefinition.protocol({ version: 7 })(stamped).request.encode()).buffer, await reference(stamped));
    } finally {
      Date.now = real;
    }
  });
});

describe('kafkajs grouping and partitioner', { timeout: 60_000 }, () => {
  it('the linear grouping replaced kafkajs own before its producer loaded', async () => {
    const { replaced } = await import('../src/kafka/kafkajs-fast');
    assert.deepEqual(replaced, { grouping: true, recordDecoder: true, request: true, batch: true });
    assert.equal(require('kafkajs/src/producer/groupMessagesPerPartition').name, 'groupMessagesPerPartition');
  });

  it('the caching partitioner picks the partitions of kafkajs DefaultPartitioner', async () => {
    const { cachedPartitioner } = await import('../src/kafka/kafkajs-fast');
    const { Partitioners } = require('kafkajs');
    const mine = cachedPartitioner();
    const theirs = Partitioners.DefaultPartitioner();
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.string({ maxLength: 12 }), fc.integer({ min: 1, max: 64 })), { maxLength: 50 }), (keys) => {
        for (const [key, n] of [...keys, ...keys]) {
          const partitionMetadata = Array.from({ length: n }, (_, i) => ({ partitionId: i, leader: 1 }));
          assert.equal(mine({ topic: 't', partitionMetadata, message: { key, value: null } }), theirs({ topic: 't', partitionMetadata, message: { key, value: null } }));
        }
      }),
      fuzzParams(200, 1),
    );
  });
});

describe('kafkajs record decoder', { timeout: 60_000 }, () => {
  const Decoder = require('kafkajs/src/protocol/decoder');
  const RecordEncoder = require('kafkajs/src/protocol/recordBatch/record/v0');
  const record = fc.record({
    key: bytes,
    value: bytes,
    headers: fc.option(fc.dictionary(fc.constantFrom('a', 'b', 'pktflow.ts_ns', '__proto__', 'constructor', 'ü'), fc.oneof(headerValue, fc.array(headerValue, { maxLength: 3 })), { maxKeys: 4 }), { nil: undefined }),
    offsetDelta: fc.nat(2 ** 31 - 1),
    timestampDelta: fc.oneof(fc.constant(0), fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), fc.bigInt(-(2n ** 62n), 2n ** 62n)),
  });
  const context = fc.record({
    firstOffset: fc.oneof(fc.bigInt(0n, 2n ** 40n), fc.bigInt(2n ** 53n, 2n ** 62n)).map(String),
    firstTimestamp: fc.bigInt(-1n, 2n ** 45n).map(String),
    maxTimestamp: fc.bigInt(-1n, 2n ** 45n).map(String),
    timestampType: fc.constantFrom(0, 1),
    isControlBatch: fc.boolean(),
    magicByte: fc.constant(2),
  });

  it('decodes records into the objects kafkajs makes', async () => {
    const { decodeRecord, originals } = await import('../src/kafka/kafkajs-fast');
    const theirs = originals['protocol/recordBatch/record/v0/decoder'] as (d: unknown, c: unknown) => unknown;
    fc.assert(
      fc.property(record, context, (input, ctx) => {
        const bytes = RecordEncoder({ ...input, timestampDelta: input.timestampDelta }).buffer;
        const a = new Decoder(bytes);
        a.readVarInt(); // the record's length, read by the batch decoder
        const b = new Decoder(bytes);
        b.readVarInt();
        const r = decodeRecord(a, ctx);
        const reference = theirs(b, ctx);
        assert.equal(a.offset, b.offset);
        // the timestamp and headers are accessors, made when first read and then kept
        const mine = { magicByte: r.magicByte, attributes: r.attributes, timestamp: r.timestamp, offset: r.offset, key: r.key, value: r.value, headers: r.headers, isControlRecord: r.isControlRecord, batchContext: r.batchContext };
        assert.deepStrictEqual(mine, reference);
        assert.equal(r.headers, mine.headers);
        assert.equal(r.timestamp, mine.timestamp);
      }),
      fuzzParams(500, 1),
    );
  });

  /** a record's bytes after its length, written here: kafkajs's encoder cannot write a header without a value */
  function recordBytes(value: Buffer | null, headers: Record<string, string | Buffer | null | (string | Buffer | null)[]>): Buffer {
    const varint = (n: number) => {
      const out: number[] = [];
      let z = ((n << 1) ^ (n >> 31)) >>> 0;
      while (z >= 0x80) {
        out.push((z & 0x7f) | 0x80);
        z >>>= 7;
      }
      out.push(z);
      return Buffer.from(out);
    };
    const bytesOf = (x: string | Buffer | null) => (x === null ? varint(-1) : Buffer.concat([varint(Buffer.byteLength(x)), Buffer.from(x)]));
    const list = Object.entries(headers).flatMap(([k, x]) => (Array.isArray(x) ? x : [x]).map((one) => Buffer.concat([bytesOf(k), bytesOf(one)])));
    // attributes, timestamp delta, offset delta, key (null), value, headers
    return Buffer.concat([Buffer.from([0]), varint(0), varint(0), varint(-1), bytesOf(value), varint(list.length), ...list]);
  }

  it('reads a frame from a record header bytes as messageToFrame reads its headers', async () => {
    const { decodeRecord } = await import('../src/kafka/kafkajs-fast');
    const { messageToFrame, recordFrame, H } = await import('../src/kafka/frames');
    const digitsish = fc.oneof(fc.stringMatching(/^\d{0,21}$/), fc.constantFrom('', '0', '1e3', ' 7', '-1', '00000', '000001', '1764000000123456789'), fc.string({ maxLength: 4 }));
    const value = fc.oneof(digitsish, digitsish.map((x) => Buffer.from(x)), fc.constant(null));
    const name = fc.constantFrom(H.ts, H.linkType, H.origLen, H.iface, H.host, 'pktflow.ts_nS', 'pktflow.ifacE', 'x');
    const outcome = (f: () => unknown) => {
      try {
        return f();
      } catch (err) {
        return `error: ${(err as Error).message}`;
      }
    };
    const ctx = { firstOffset: '0', firstTimestamp: '0', maxTimestamp: '0', timestampType: 0, isControlBatch: false, magicByte: 2 };
    fc.assert(
      fc.property(fc.option(fc.uint8Array({ maxLength: 40 }).map((x) => Buffer.from(x)), { nil: null }), fc.dictionary(name, fc.oneof(value, fc.array(value, { minLength: 1, maxLength: 2 })), { maxKeys: 6 }), (v, headers) => {
        const r = decodeRecord(new Decoder(recordBytes(v, headers)), ctx);
        const fast = outcome(() => recordFrame(r.value, r.bytes, r.headersAt));
        const general = outcome(() => messageToFrame(r.value, r.headers));
        // null: the headers are not as pktflow writes them, and messageToFrame decides
        if (fast !== null) assert.deepStrictEqual(fast, general);
      }),
      fuzzParams(3000, 1),
    );
    // as pktflow writes them, the fast way takes every frame
    const f = makeFrame(1_764_000_000, 123_456_789, 113, 1514, 2, Buffer.alloc(60, 1));
    const m = frameToMessage(f, 'h');
    const d = new Decoder(RecordEncoder({ key: Buffer.from(m.key), value: m.value, headers: m.headers, offsetDelta: 7, timestampDelta: 3 }).buffer);
    d.readVarInt();
    const r = decodeRecord(d, ctx);
    assert.deepStrictEqual(recordFrame(r.value, r.bytes, r.headersAt), f);
  });
});

describe('kafkajs consumer batch', { timeout: 60_000 }, () => {
  it('keeps the messages kafkajs keeps, with the same fields and answers', async () => {
    const { Batch, originals } = await import('../src/kafka/kafkajs-fast');
    const Theirs = originals['consumer/batch'] as new (...a: unknown[]) => Record<string, any>;
    const offset = fc.oneof(fc.bigInt(0n, 50n), fc.bigInt(2n ** 53n - 5n, 2n ** 53n + 5n), fc.bigInt(2n ** 62n, 2n ** 62n + 3n)).map(String);
    const message = fc.record({ offset, isControlRecord: fc.boolean(), key: fc.constant(null), batchContext: fc.record({ producerId: fc.constantFrom('1', '2'), inTransaction: fc.boolean() }) });
    const partition = fc.record({
      partition: fc.nat(7),
      highWatermark: offset,
      messages: fc.array(message, { maxLength: 12 }),
      abortedTransactions: fc.oneof(fc.constant([]), fc.array(fc.record({ firstOffset: offset, producerId: fc.constantFrom('1', '2') }), { maxLength: 2 })),
    });
    fc.assert(
      fc.property(offset, partition, (fetched, data) => {
        const mine = new (Batch as unknown as typeof Theirs)('t', fetched, data);
        const theirs = new Theirs('t', fetched, data);
        assert.ok(mine instanceof Theirs);
        assert.deepStrictEqual({ ...mine }, { ...theirs });
        for (const method of ['isEmpty', 'isEmptyIncludingFiltered', 'isEmptyDueToFiltering', 'isEmptyControlRecord', 'firstOffset', 'lastOffset', 'offsetLag', 'offsetLagLow']) assert.deepStrictEqual(mine[method](), theirs[method](), method);
      }),
      fuzzParams(2000, 1),
    );
  });
});

describe('raw-frame messages back into frames', { timeout: 60_000 }, () => {
  it('the fast way and the general way agree, errors included', async () => {
    const { messageToFrame, messageToFrameGeneral, FrameMessageError, H } = await import('../src/kafka/frames');
    const digitsish = fc.oneof(fc.stringMatching(/^\d{0,21}$/), fc.string({ maxLength: 6 }), fc.constantFrom('', '0', '1e3', ' 7', '-1', '00000', '000001'));
    // a header without a value comes out of kafkajs as null
    const header = fc.option(fc.oneof(digitsish.map((x) => Buffer.from(x)), digitsish, fc.constant(null), fc.array(digitsish.map((x) => Buffer.from(x)), { minLength: 1, maxLength: 2 })), { nil: undefined });
    // a bad message is a FrameMessageError (counted by the replay), never another error (which ends it)
    const outcome = (f: () => unknown) => {
      try {
        return f();
      } catch (err) {
        if (!(err instanceof FrameMessageError)) throw err;
        return `error: ${(err as Error).message}`;
      }
    };
    fc.assert(
      fc.property(fc.option(fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)), { nil: null }), header, header, header, header, (value, ts, lt, orig, iface) => {
        const headers: Record<string, any> = {};
        if (ts !== undefined) headers[H.ts] = ts;
        if (lt !== undefined) headers[H.linkType] = lt;
        if (orig !== undefined) headers[H.origLen] = orig;
        if (iface !== undefined) headers[H.iface] = iface;
        assert.deepStrictEqual(outcome(() => messageToFrame(value, headers)), outcome(() => messageToFrameGeneral(value, headers)));
      }),
      fuzzParams(2000, 1),
    );
    const f = makeFrame(1_764_000_000, 123_456_789, 113, 1514, 2, Buffer.alloc(60, 1));
    const m = frameToMessage(f, 'h');
    const asFetched = Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k, Buffer.from(v)]));
    assert.deepStrictEqual(messageToFrame(m.value, asFetched), f);
  });
});

describe('kafkajs request framing', { timeout: 60_000 }, () => {
  it('frames requests as kafkajs does', async () => {
    const { createRequest, originals } = await import('../src/kafka/kafkajs-fast');
    const Encoder = require('kafkajs/src/protocol/encoder');
    const theirs = originals['protocol/request'] as typeof createRequest;
    await fc.assert(
      fc.asyncProperty(fc.nat(60), fc.nat(15), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.option(fc.string({ unit: 'grapheme', maxLength: 20 }), { nil: null }), fc.uint8Array({ maxLength: 3000 }), async (apiKey, apiVersion, correlationId, clientId, body) => {
        const request = { apiKey, apiVersion, encode: async () => new Encoder().writeBuffer(Buffer.from(body)) };
        const a = await createRequest({ correlationId, clientId, request });
        const b = await theirs({ correlationId, clientId, request });
        assert.deepEqual(a.buf.subarray(0, a.offset), b.buf.subarray(0, b.offset));
      }),
      fuzzParams(300, 1),
    );
  });
});

describe('kafkajs responses read whole', { timeout: 60_000 }, () => {
  /** Kafka responses: a 4-byte size, then that many bytes */
  const responses = fc.array(fc.oneof(fc.nat(40), fc.nat(70_000), fc.constant(65_532)), { maxLength: 12 }).map((sizes) =>
    sizes.map((n, i) => {
      const r = Buffer.alloc(4 + n, i + 1);
      r.writeInt32BE(n, 0);
      return r;
    }),
  );

  it('cuts reads into responses wherever the reads end, the shared read buffer reused', async () => {
    const { responseFramer } = await import('../src/kafka/kafkajs-fast');
    fc.assert(
      fc.property(responses, fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 20 }), fc.integer({ min: 1, max: 70_000 }), (rs, cuts, readBytes) => {
        const got: Buffer[] = [];
        const framer = responseFramer(
          (f) => got.push(f),
          (e) => assert.fail(e),
          readBytes,
        );
        const shared = framer.next();
        assert.equal(shared.length, readBytes);
        const stream = Buffer.concat(rs);
        for (let at = 0, k = 0; at < stream.length; k++) {
          // a read of at most what the buffer given holds, as the kernel's
          const into = framer.next();
          const n = Math.min(cuts[k % cuts.length], into.length, stream.length - at);
          stream.copy(into, 0, at, at + n);
          assert.equal(framer.push(n, into), true);
          // what the next read brings into the shared buffer: nothing handed on may be a view of it
          if (into === shared) shared.fill(0xee);
          at += n;
        }
        assert.deepEqual(got, rs);
      }),
      fuzzParams(500, 1),
    );
  });

  it('reads a response straight into its own buffer once its size is known', async () => {
    const { responseFramer } = await import('../src/kafka/kafkajs-fast');
    const got: Buffer[] = [];
    const framer = responseFramer(
      (f) => got.push(f),
      (e) => assert.fail(e),
      16,
    );
    const r = Buffer.alloc(4 + 100, 9);
    r.writeInt32BE(100, 0);
    const first = framer.next();
    r.copy(first, 0, 0, 16);
    framer.push(16, first);
    const rest = framer.next();
    assert.equal(rest.length, 104 - 16, 'the rest of the response, no more');
    r.copy(rest, 0, 16);
    framer.push(rest.length, rest);
    assert.deepEqual(got, [r]);
    assert.equal(got[0].buffer, rest.buffer, 'the response is the buffer read into');
    assert.equal(framer.next(), first, 'between responses: the shared buffer');
  });

  it('ends the reading at a negative size, and hands on nothing more', async () => {
    const { responseFramer } = await import('../src/kafka/kafkajs-fast');
    const got: Buffer[] = [];
    const errors: Error[] = [];
    const framer = responseFramer(
      (f) => got.push(f),
      (e) => errors.push(e),
    );
    const ok = Buffer.from([0, 0, 0, 1, 7]);
    const bad = Buffer.from([0xff, 0xff, 0xff, 0xfe, 1, 2, 3]);
    assert.equal(framer.push(17, Buffer.concat([ok, bad, ok])), false);
    assert.equal(framer.push(ok.length, ok), false);
    assert.deepEqual(got, [ok]);
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /^Kafka response unreadable: a response of -2 bytes$/);
  });

  it('a socket of the factory emits each response whole, as a server sends them in pieces', async () => {
    const { framedSocketFactory } = await import('../src/kafka/kafkajs-fast');
    const net = await import('node:net');
    const rs = fc.sample(responses, { numRuns: 20, seed: 7 }).flat();
    const stream = Buffer.concat(rs);
    const server = net.createServer((c) => {
      // the stream in pieces of 1 to 100,000 bytes, each written when the last was taken
      let at = 0;
      let k = 0;
      const next = () => {
        if (at >= stream.length) return c.end();
        const n = Math.min(1 + ((k++ * 7919) % 100_000), stream.length - at);
        c.write(stream.subarray(at, (at += n)), next);
      };
      next();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as import('node:net').AddressInfo).port;
    try {
      const got: Buffer[] = [];
      await new Promise<void>((resolve, reject) => {
        const s = framedSocketFactory()({ host: '127.0.0.1', port, onConnect: () => {} });
        s.on('data', (d: Buffer) => got.push(d));
        s.on('error', reject);
        s.on('end', resolve);
      });
      assert.equal(got.length, rs.length);
      assert.deepEqual(got, rs);
    } finally {
      server.close();
    }
  });
});
