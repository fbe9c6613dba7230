/**
 * Against a real Apache Kafka broker of this file's own (test/broker.ts: scripts/kafka.sh
 * on ports and in a directory of its own). No mock of Kafka anywhere.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Admin } from 'kafkajs';
import { definePipeline } from '../src/pipeline/define';
import { runPipeline } from '../src/pipeline/runner';
import { eventStages } from '../src/pipeline/presets';
import { bounded, isCoordinatorError, isRetriable, kafkaClient, KafkaTimeoutError, retryCoordinator } from '../src/kafka/client';
import { frameKey, frameToMessage } from '../src/kafka/frames';
import { KafkaFrameSink, kafkaEvents } from '../src/sinks/kafka';
import { collect } from '../src/sinks/collect';
import { captureFile } from '../src/sources/file';
import { kafkaSource } from '../src/sources/kafka';
import type { Event } from '../src/events/types';
import type { Frame } from '../src/core/frame';
import { PartitionLog } from '../src/kafka/offsets';
import { makeFrame } from '../src/core/frame';
import { dnsMessage, ether, ipv4, udp } from './gen/packets';
import { scaleOutFrames } from './gen/load';
import { cli, fixture, memorySource, readFile, runStages, SlowCollect, summary } from './helpers';
import { testBroker, type TestBroker } from './broker';

const run = `${Date.now()}-${process.pid}`;
let broker: TestBroker;
let BROKERS: string[] = [];
let admin: Admin;

const topic = (name: string, partitions = 4) => broker.topic(name, partitions);

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

describe('PartitionLog (what a commit may pass)', { timeout: 600_000 }, () => {
  it('gives the oldest offset still held, through releases and compaction behind a long-lived hold', () => {
    const log = new PartitionLog();
    assert.equal(log.oldest(), -1);
    const first = log.hold(10);
    const later = Array.from({ length: 5000 }, (_, i) => log.hold(11 + i));
    assert.equal(log.oldest(), 10);
    for (const h of later.slice(0, 4999)) h.release();
    assert.equal(log.oldest(), 10, 'the long-lived hold still pins the commit');
    assert.ok(log.live === 2);
    first.release();
    assert.equal(log.oldest(), 5010);
    later[4999].release();
    later[4999].release();
    assert.equal(log.live, 0);
    assert.equal(log.oldest(), -1);
  });

  it('a discarded pipeline lets go of every hold it had', async () => {
    const log = new PartitionLog();
    const frames = scaleOutFrames().slice(0, 600);
    frames.forEach((f, i) => {
      f.log = log;
      f.seq = i;
    });
    const stages = eventStages();
    let items: unknown[] = frames;
    for (const s of stages) items = s.push(items as never[]);
    assert.ok(log.live > 0, 'open connections and unanswered queries hold their first frames');
    for (const s of stages) s.discard?.();
    assert.equal(log.live, 0);
    assert.equal(log.oldest(), -1);
  });
});

describe('Kafka calls (no broker)', { timeout: 600_000 }, () => {
  const coordinatorError = (type: string) => Object.assign(new Error(type), { name: 'KafkaJSProtocolError', type, retriable: true });

  it('retries the group-coordinator errors Kafka documents as retriable, with backoff, and counts them', async () => {
    for (const type of ['NOT_COORDINATOR_FOR_GROUP', 'GROUP_COORDINATOR_NOT_AVAILABLE', 'GROUP_LOAD_IN_PROGRESS']) {
      let calls = 0;
      let retries = 0;
      const r = await retryCoordinator(
        async () => {
          if (++calls < 3) throw coordinatorError(type);
          return 'ok';
        },
        60_000,
        'an offset fetch',
        () => retries++,
      );
      assert.equal(r, 'ok', type);
      assert.equal(calls, 3);
      assert.equal(retries, 2);
    }
    // kafkajs wraps an error its own retries gave up on: the cause counts
    const wrapped = Object.assign(new Error('retries exceeded'), { name: 'KafkaJSNumberOfRetriesExceeded', cause: coordinatorError('NOT_COORDINATOR_FOR_GROUP') });
    assert.ok(isCoordinatorError(wrapped));
  });

  it('does not retry other errors, and gives up at the deadline', async () => {
    let calls = 0;
    await assert.rejects(
      retryCoordinator(async () => {
        calls++;
        throw Object.assign(new Error('The group is rebalancing'), { type: 'REBALANCE_IN_PROGRESS' });
      }, 60_000, 'x'),
      /rebalancing/,
    );
    assert.equal(calls, 1);
    calls = 0;
    await assert.rejects(
      retryCoordinator(async () => {
        calls++;
        throw coordinatorError('GROUP_LOAD_IN_PROGRESS');
      }, 300, 'x'),
      /GROUP_LOAD_IN_PROGRESS/,
    );
    assert.ok(calls >= 1 && calls <= 3, `${calls} calls within 300 ms of backoff`);
  });

  it('bounds a wait that never ends with an error naming what it waited for', async () => {
    await assert.rejects(bounded(new Promise(() => {}), 50, 'an offset commit'), (err: Error) => err instanceof KafkaTimeoutError && /no answer to an offset commit within 0 s/.test(err.message));
    assert.equal(await bounded(Promise.resolve(7), 50, 'x'), 7);
    assert.ok(isRetriable(new KafkaTimeoutError('x')));
    assert.ok(!isRetriable(new Error('topic authorization failed')));
  });
});

describe('Kafka', { timeout: 1_800_000 }, () => {
  before(async () => {
    broker = await testBroker('main');
    BROKERS = broker.brokers;
    admin = await broker.admin();
  });
  after(async () => {
    await broker?.destroy();
  });

  it('keys both directions of a connection alike', async () => {
    const frames: Frame[] = [];
    for await (const b of captureFile({ path: fixture('http-dns.pcap') }).batches()) frames.push(...b);
    // the first TCP connection: SYN (client→server) and SYN-ACK (server→client)
    assert.equal(frameKey(frames[0]), frameKey(frames[1]));
    assert.notEqual(frameKey(frames[0]), '0');
    // DHCP's exchanges cross address pairs (0.0.0.0 → broadcast, the server's answers, a
    // relay): all of it has one key, so a replay consumer sees whole exchanges
    const dhcp: Frame[] = [];
    for await (const b of captureFile({ path: fixture('dhcpv4/relay.pcap') }).batches()) dhcp.push(...b.filter((f) => f.data[23] === 17 && [67, 68].includes(f.data.readUInt16BE(36)))); // DHCP (not the relay's other datagrams)
    assert.ok(new Set(dhcp.map((f) => `${f.data.readUInt32BE(26)} ${f.data.readUInt32BE(30)}`)).size > 2, 'several address pairs');
    assert.equal(new Set(dhcp.map(frameKey)).size, 1);
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

  it('two analyzers in one group, the second joining mid-replay, together make the single-process events', async () => {
    const frames = scaleOutFrames();
    const t = await topic('scale', 4);
    // small produce requests make small record batches, so the replay goes in many small steps
    const sink = new KafkaFrameSink({ brokers: BROKERS, topic: t, maxRequestBytes: 16 * 1024 });
    const load = await runPipeline(definePipeline({ source: memorySource(frames, 256), stages: [], sink, options: { printStats: false } })).done;
    assert.equal(load.error, null);
    const single = (await runStages(memorySource(frames))).events;
    assert.equal(single.length, 2300);

    const group = `scale-${run}`;
    const member = () => {
      // small fetches, buffers and batches: the replay goes in many small steps
      const source = kafkaSource({ brokers: BROKERS, topic: t, groupId: group, maxBytesPerPartition: 8 * 1024, maxBufferedBytes: 32 * 1024, batchFrames: 64 });
      const sink = new SlowCollect(30);
      const done = runPipeline(definePipeline({ source, stages: [...eventStages()], sink, options: { printStats: false } })).done;
      return { source, sink, done };
    };
    const a = member();
    // the second member joins once the first is well into its partitions
    while (a.source.frames < 1000) await new Promise((r) => setTimeout(r, 20));
    const b = member();
    const [ra, rb] = await Promise.all([a.done, b.done]);
    assert.equal(ra.error, null);
    assert.equal(rb.error, null);
    assert.ok(a.source.rebalances >= 1, 'the first member saw its partitions reassigned');
    assert.ok(b.source.frames > 0, 'the second member took a share');

    const union = new Set([...a.sink.items, ...b.sink.items].map(summary));
    assert.deepEqual([...union].sort(), [...new Set(single.map(summary))].sort());
    // every event is there at least once; those made twice around the rebalance are counted, not lost
    const twice = a.sink.items.length + b.sink.items.length - single.length;
    assert.ok(twice >= 0);
    assert.ok(twice === 0 || a.source.readAgain + b.source.readAgain > 0);
    const offsets = await admin.fetchOffsets({ groupId: group, topics: [t] });
    assert.equal(offsets[0].partitions.reduce((n, p) => n + Number(p.offset), 0), frames.length, 'the group committed every frame');
  });

  it('merges partitions by capture time: a partition that runs ahead does not time out another one\'s queries', async () => {
    // partition 0: 1,500 DNS queries answered 5 ms later, every 40 ms for 60 s; partition 1: a frame every 20 s for 20 minutes
    const at = (ms: number, data: Buffer): Frame => makeFrame(1_700_000_000 + Math.floor(ms / 1000), (ms % 1000) * 1e6, 1, data.length, 0, data);
    const dense: Frame[] = [];
    for (let i = 0; i < 1500; i++) {
      const q = dnsMessage(i + 1, `h${i}.merge.test`, 1, false);
      const r = dnsMessage(i + 1, `h${i}.merge.test`, 1, true, ['10.8.0.1']);
      dense.push(at(i * 40, ether(0x0800, ipv4('10.8.1.1', '10.8.0.53', 17, udp(20000 + (i % 1000), 53, q)))));
      dense.push(at(i * 40 + 5, ether(0x0800, ipv4('10.8.0.53', '10.8.1.1', 17, udp(53, 20000 + (i % 1000), r)))));
    }
    const sparse = Array.from({ length: 60 }, (_, i) => at(i * 20_000, ether(0x0800, ipv4('10.8.2.1', '10.8.2.2', 17, udp(9999, 9999, Buffer.alloc(32))))));
    const t = await topic('merge', 2);
    const producer = kafkaClient({ brokers: BROKERS }).producer();
    await producer.connect();
    for (const [partition, frames] of [[0, dense], [1, sparse]] as const) {
      // record batches (what a fetch returns at least) of 33 dense frames, so queries and their
      // responses fall into different batches, and of one sparse frame (20 s) each, so the sparse
      // partition's time runs ahead of the dense one's 0.7 s per fetch round
      const per = partition === 0 ? 33 : 1;
      for (let i = 0; i < frames.length; i += per) {
        await producer.send({ topic: t, messages: frames.slice(i, i + per).map((f) => ({ ...frameToMessage(f), partition })) });
      }
    }
    await producer.disconnect();
    const single = (await runStages(memorySource([...dense, ...sparse].sort((a, b) => a.tsSec - b.tsSec || a.tsNsec - b.tsNsec)))).events;
    assert.equal(single.filter((e: any) => e.status === 'OK').length, 1500);
    const sink = collect<Event>();
    const r = await runPipeline(definePipeline({ source: kafkaSource({ brokers: BROKERS, topic: t, maxBytesPerPartition: 4096 }), stages: [...eventStages()], sink, options: { printStats: false } })).done;
    assert.equal(r.error, null);
    assert.deepEqual(sorted(sink.items), sorted(single));
  });

  it('pktflow replay --events-topic: the CLI replays a raw topic into an event topic', async () => {
    const raw = await topic('cli-raw');
    const events = await topic('cli-events', 2);
    await produce(fixture('http-dns.pcap'), raw);
    const r = await cli(['replay', '--topic', raw, '--brokers', BROKERS[0], '--group', `cli-${run}`, '--events-topic', events, '-q']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    const offsets = await admin.fetchTopicOffsets(events);
    assert.equal(offsets.reduce((n, p) => n + Number(p.high), 0), 21);
  });

  it('a topic that does not exist: one line, after one metadata request, for replay and for production', async () => {
    for (const args of [['replay', '--topic', `missing-${run}`], ['read', fixture('http-dns.pcap'), '--kafka-topic', `missing-${run}`]]) {
      const r = await cli([...args, '--brokers', BROKERS[0], '-q']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^pktflow: kafka topic missing-\S+( at \S+)?: no such topic \(create it first/);
      assert.equal(r.stderr.trim().split('\n').length, 1);
      // kafkajs's own log counts the requests: a missing topic is not retried (kafkajs would
      // ask for its metadata again and again for ~20 s)
      const logged = await cli([...args, '--brokers', BROKERS[0], '-q'], { env: { PKTFLOW_KAFKA_LOG: 'debug' } });
      assert.equal(logged.code, 1);
      const metadata = logged.stderr.split('\n').filter((l) => /Request Metadata\(/.test(l)).length;
      assert.ok(metadata >= 1 && metadata <= 2, `${metadata} metadata requests`);
    }
  });

  it('writes events to a topic, keyed by community id', async () => {
    const t = await topic('events', 2);
    const r = await runPipeline(definePipeline({ source: captureFile({ path: fixture('http-dns.pcap') }), stages: [...eventStages()], sink: kafkaEvents({ brokers: BROKERS, topic: t }), options: { printStats: false } })).done;
    assert.equal(r.error, null);
    const offsets = await admin.fetchTopicOffsets(t);
    assert.equal(offsets.reduce((n, p) => n + Number(p.high), 0), 21);
  });
});

