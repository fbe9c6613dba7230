/**
 * A broker stopped and restarted in the middle of production and of consumption, a
 * replay started the moment a broker is up, and a broker that never comes back. The
 * file runs a broker of its own (test/broker.ts), so stopping it disturbs no other
 * test. Real Apache Kafka; no mock.
 *
 * Nothing here depends on how fast the machine is: the pipelines wait, at a quarter
 * of their work, until the broker is down, and go on while it starts again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Frame } from '../src/core/frame';
import type { Event } from '../src/events/types';
import { definePipeline } from '../src/pipeline/define';
import { eventStages } from '../src/pipeline/presets';
import { runPipeline } from '../src/pipeline/runner';
import { collect } from '../src/sinks/collect';
import { KafkaFrameSink } from '../src/sinks/kafka';
import { captureFile } from '../src/sources/file';
import type { Source } from '../src/sources/source';
import { kafkaSource } from '../src/sources/kafka';
import { testBroker, type TestBroker } from './broker';
import { scaleOutFrames } from './gen/load';
import { cli, fixture, memorySource, ndjson, readFile, runStages, summary } from './helpers';
import { CollectSink } from '../src/sinks/collect';

/** a restart takes as long as the machine makes it take: the pipelines under test wait that long */
const PATIENT = 600_000;

/** resolves when opened */
function gate(): { wait: Promise<void>; open(): void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

/** frames in batches of 64; at a quarter of them, waits for `down` before going on */
function gated(frames: Frame[], quarter: () => void, down: Promise<void>): Source & { sent: number } {
  const s = {
    name: 'gated',
    sent: 0,
    async *batches() {
      let waited = false;
      for (let i = 0; i < frames.length; i += 64) {
        if (!waited && i >= frames.length / 4) {
          waited = true;
          quarter();
          await down;
        }
        s.sent = Math.min(frames.length, i + 64);
        yield frames.slice(i, i + 64);
      }
    },
    stats: () => ({ frames: s.sent }),
    close() {},
  };
  return s;
}

/** collects events; once it holds a quarter of `total`, waits for `down` before taking more */
class GatedCollect extends CollectSink<Event> {
  constructor(
    private readonly total: number,
    private readonly quarter: () => void,
    private readonly down: Promise<void>,
  ) {
    super();
  }
  override async drained(): Promise<void> {
    if (this.items.length >= this.total / 4) {
      this.quarter();
      await this.down;
    }
  }
}

/** runs `run` to the quarter, stops the broker, lets the run go on, starts the broker again */
async function restartAtQuarter<T>(broker: TestBroker, start: (quarter: () => void, down: Promise<void>) => Promise<T>): Promise<T> {
  const atQuarter = gate();
  const down = gate();
  const run = start(atQuarter.open, down.wait);
  // a run that fails before its quarter must not leave the test waiting
  await Promise.race([atQuarter.wait, run]);
  await broker.stop();
  down.open();
  await broker.start();
  return run;
}

describe('Kafka broker restarts', { timeout: 1_800_000 }, () => {
  const frames = scaleOutFrames();
  let broker: TestBroker;
  let topic = '';
  let single: Event[] = [];

  before(async () => {
    broker = await testBroker('restart');
    single = (await runStages(memorySource(frames))).events;
  });
  after(async () => {
    await broker?.destroy();
  });

  it('a replay started the moment a new broker is up works (group coordinator still loading)', async () => {
    // the broker of this file has just started: its offsets topic does not exist yet, and the
    // first group request meets a coordinator that is created and loaded on demand
    const t = await broker.topic('fresh');
    const w = await cli(['read', fixture('http-dns.pcap'), '--kafka-topic', t, '--brokers', broker.address, '-q']);
    assert.equal(w.code, 0, w.stderr);
    const r = await cli(['replay', '--topic', t, '--brokers', broker.address]);
    assert.equal(r.code, 0, r.stderr);
    const direct = await readFile(fixture('http-dns.pcap'));
    assert.deepEqual(ndjson(r.stdout).map(summary).sort(), direct.events.map(summary).sort());
  });

  it('production goes on across a restart: every frame is in the topic once', async () => {
    topic = await broker.topic('restart');
    let source!: ReturnType<typeof gated>;
    let sentAtQuarter = 0;
    const r = await restartAtQuarter(broker, (quarter, down) => {
      source = gated(
        frames,
        () => {
          sentAtQuarter = source.sent;
          quarter();
        },
        down,
      );
      const sink = new KafkaFrameSink({ brokers: broker.brokers, topic, maxRequestBytes: 16 * 1024, timeoutMs: PATIENT });
      return runPipeline(definePipeline({ source, stages: [], sink, options: { printStats: false } })).done;
    });
    assert.equal(r.error, null);
    assert.ok(sentAtQuarter > 0 && sentAtQuarter < frames.length, 'the broker stopped in the middle of production');
    const offsets = await (await broker.admin()).fetchTopicOffsets(topic);
    // the idempotent producer writes a retried request once: no frame lost, none doubled
    assert.equal(offsets.reduce((n, p) => n + Number(p.high), 0), frames.length);
  });

  it('consumption goes on across a restart: the events are all there, frames read twice are counted', async () => {
    // small fetches and buffers: at the stop, most frames are still in Kafka
    const groupId = `restart-${Date.now()}`;
    const source = kafkaSource({ brokers: broker.brokers, topic, groupId, maxBytesPerPartition: 8 * 1024, maxBufferedBytes: 64 * 1024, batchFrames: 256, timeoutMs: PATIENT });
    let sink!: GatedCollect;
    let readAtQuarter = 0;
    const r = await restartAtQuarter(broker, (quarter, down) => {
      sink = new GatedCollect(
        single.length,
        () => {
          readAtQuarter ||= source.frames;
          quarter();
        },
        down,
      );
      return runPipeline(definePipeline({ source, stages: [...eventStages()], sink, options: { printStats: false } })).done;
    });
    assert.equal(r.error, null);
    assert.ok(readAtQuarter > 0 && readAtQuarter < frames.length, `the broker stopped in the middle of consumption (${readAtQuarter} of ${frames.length} frames read)`);
    assert.ok(source.frames >= frames.length);
    assert.deepEqual([...new Set(sink.items.map(summary))].sort(), [...new Set(single.map(summary))].sort());
    const twice = sink.items.length - single.length;
    assert.ok(twice >= 0);
    assert.ok(twice === 0 || source.readAgain > 0, 'events made twice come from frames read again, which are counted');
    // the group's final commit landed after the restart
    const offsets = await (await broker.admin()).fetchOffsets({ groupId, topics: [topic] });
    assert.equal(offsets[0].partitions.reduce((n, p) => n + Number(p.offset), 0), frames.length);
  });

  it('a broker that never comes back: replay and production end with one line each, not a hang', async () => {
    const t = await broker.topic('gone');
    const w = await runPipeline(definePipeline({ source: captureFile({ path: fixture('http-dns.pcap') }), stages: [], sink: new KafkaFrameSink({ brokers: broker.brokers, topic: t }), options: { printStats: false } })).done;
    assert.equal(w.error, null);
    // the replay waits at its first batch until the broker is gone for good
    const down = gate();
    const sink = collect<Event>();
    sink.drained = () => down.wait;
    const replay = runPipeline(
      definePipeline({ source: kafkaSource({ brokers: broker.brokers, topic: t, timeoutMs: 5000 }), stages: [...eventStages()], sink, options: { printStats: false } }),
    ).done;
    await broker.stop();
    down.open();
    const r = await replay;
    assert.match(r.error?.message ?? '', new RegExp(`^kafka topic ${t} at ${broker.address}: `));

    // production to a broker that is gone
    const p = await cli(['read', fixture('http-dns.pcap'), '--kafka-topic', t, '--brokers', broker.address, '--kafka-timeout', '5', '-q']);
    assert.equal(p.code, 1);
    assert.equal(p.stderr.trim().split('\n').length, 1, p.stderr);
    assert.match(p.stderr, new RegExp(`^pktflow: kafka topic ${t}`));
    await broker.start();
  });
});
