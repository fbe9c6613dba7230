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
    assert.deepEqual(replaced, { grouping: true, recordDecoder: true, request: true });
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
      fc.property(record, context, (r, ctx) => {
        const bytes = RecordEncoder({ ...r, timestampDelta: r.timestampDelta }).buffer;
        const a = new Decoder(bytes);
        a.readVarInt(); // the record's length, read by the batch decoder
        const b = new Decoder(bytes);
        b.readVarInt();
        assert.deepStrictEqual(decodeRecord(a, ctx), theirs(b, ctx));
        assert.equal(a.offset, b.offset);
      }),
      fuzzParams(500, 1),
    );
  });
});

describe('raw-frame messages back into frames', { timeout: 60_000 }, () => {
  it('the fast way and the general way agree, errors included', async () => {
    const { messageToFrame, messageToFrameGeneral, H } = await import('../src/kafka/frames');
    const digitsish = fc.oneof(fc.stringMatching(/^\d{0,21}$/), fc.string({ maxLength: 6 }), fc.constantFrom('', '0', '1e3', ' 7', '-1', '00000', '000001'));
    const header = fc.option(fc.oneof(digitsish.map((x) => Buffer.from(x)), digitsish, fc.array(digitsish.map((x) => Buffer.from(x)), { minLength: 1, maxLength: 2 })), { nil: undefined });
    const outcome = (f: () => unknown) => {
      try {
        return f();
      } catch (err) {
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
