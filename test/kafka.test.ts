/**
 * Against a real Apache Kafka broker on 127.0.0.1:9092 (scripts/kafka.sh, started
 * by npm test). No mock of Kafka anywhere.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Admin } from 'kafkajs';
import { definePipeline } from '../src/pipeline/define';
import { runPipeline } from '../src/pipeline/runner';
import { eventStages } from '../src/pipeline/presets';
import { kafkaClient } from '../src/kafka/client';
import { frameKey } from '../src/kafka/frames';
import { KafkaFrameSink, kafkaEvents } from '../src/sinks/kafka';
import { collect } from '../src/sinks/collect';
import { captureFile } from '../src/sources/file';
import { kafkaSource } from '../src/sources/kafka';
import type { Event } from '../src/events/transaction';
import type { Frame } from '../src/core/frame';
import { fixture, readFile, summary } from './helpers';

const BROKERS = [process.env.PKTFLOW_KAFKA ?? '127.0.0.1:9092'];
const run = `${Date.now()}-${process.pid}`;
let admin: Admin;

async function topic(name: string, partitions = 4): Promise<string> {
  const t = `${name}-${run}`;
  await admin.createTopics({ topics: [{ topic: t, numPartitions: partitions }], waitForLeaders: true });
  return t;
}

/** a capture file into a raw-frame topic */
async function produce(file: string, t: string): Promise<void> {
  const r = await runPipeline(definePipeline({ source: captureFile({ path: file }), stages: [], sink: new KafkaFrameSink({ brokers: BROKERS, topic: t }), options: { printStats: false } })).done;
  assert.equal(r.error, null);
}

async function replay(t: string, groupId?: string): Promise<{ events: Event[]; stats: any }> {
  const sink = collect<Event>();
  const r = await runPipeline(definePipeline({ source: kafkaSource({ brokers: BROKERS, topic: t, groupId }), stages: [...eventStages()], sink, options: { printStats: false } })).done;
  assert.equal(r.error, null);
  return { events: sink.items, stats: r.stats };
}

const sorted = (events: Event[]) => events.map(summary).sort();

describe('Kafka', () => {
  before(async () => {
    admin = kafkaClient({ brokers: BROKERS }).admin();
    await admin.connect().catch((err: Error) => {
      throw new Error(`no Kafka broker on ${BROKERS[0]} (start one with: bash scripts/kafka.sh start): ${err.message}`);
    });
  });
  after(async () => {
    await admin?.disconnect();
  });

  it('keys both directions of a connection alike', async () => {
    const frames: Frame[] = [];
    for await (const b of captureFile({ path: fixture('http-dns.pcap') }).batches()) frames.push(...b);
    // the first TCP connection: SYN (client→server) and SYN-ACK (server→client)
    assert.equal(frameKey(frames[0]), frameKey(frames[1]));
    assert.notEqual(frameKey(frames[0]), '0');
  });

  it('pcap → raw-frame topic → replay gives the events pcap → events gives', async () => {
    for (const [i, file] of ['http-dns.pcap', 'edge/tcp-reorder.pcap', 'edge/vlan-qinq.pcap', 'edge/ipv4-frag.pcap'].entries()) {
      const t = await topic(`raw${i}`);
      await produce(fixture(file), t);
      const direct = await readFile(fixture(file));
      const replayed = await replay(t);
      assert.deepEqual(sorted(replayed.events), sorted(direct.events), file);
      assert.equal(replayed.stats.source.frames, direct.stats.decode.frames);
    }
  });

  it('commits offsets after the sink took the events: the same group resumes past them', async () => {
    const t = await topic('commit');
    await produce(fixture('http-dns.pcap'), t);
    const group = `g-${run}`;
    const first = await replay(t, group);
    assert.equal(first.events.length, 21);
    assert.ok(first.stats.source.commits > 0);
    const offsets = await admin.fetchOffsets({ groupId: group, topics: [t] });
    const committed = offsets[0].partitions.reduce((n, p) => n + Number(p.offset), 0);
    assert.equal(committed, 102, 'every message committed');
    // nothing new: a second run of the group reads nothing
    const second = await replay(t, group);
    assert.equal(second.events.length, 0);
  });

  it('writes events to a topic, keyed by community id', async () => {
    const t = await topic('events', 2);
    const r = await runPipeline(definePipeline({ source: captureFile({ path: fixture('http-dns.pcap') }), stages: [...eventStages()], sink: kafkaEvents({ brokers: BROKERS, topic: t }), options: { printStats: false } })).done;
    assert.equal(r.error, null);
    const offsets = await admin.fetchTopicOffsets(t);
    assert.equal(offsets.reduce((n, p) => n + Number(p.high), 0), 21);
  });
});

