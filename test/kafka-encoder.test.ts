/**
 * src/kafka/produce-encoder.ts writes the bytes kafkajs's own Produce encoder writes:
 * compared byte for byte on random requests (kafkajs's encoder is the reference; the
 * broker-level tests in test/kafka*.test.ts send the real thing to a real broker, which
 * checks every batch's CRC). No broker here.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { crc32c, encodeProduce, installProduceEncoder, nativeCrc } from '../src/kafka/produce-encoder';
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
    const { groupingReplaced } = await import('../src/kafka/produce-encoder');
    assert.ok(groupingReplaced);
    assert.equal(require('kafkajs/src/producer/groupMessagesPerPartition').name, 'groupMessagesPerPartition');
  });

  it('the caching partitioner picks the partitions of kafkajs DefaultPartitioner', async () => {
    const { cachedPartitioner } = await import('../src/kafka/produce-encoder');
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
