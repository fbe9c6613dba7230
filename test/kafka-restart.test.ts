/**
 * A broker stopped and restarted in the middle of production and of consumption.
 * The test runs a broker of its own (scripts/kafka.sh with KAFKA_DIR and other
 * ports), so stopping it disturbs no other test. Real Apache Kafka; no mock.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { Frame } from '../src/core/frame';
import type { Event } from '../src/events/transaction';
import { kafkaClient } from '../src/kafka/client';
import { definePipeline } from '../src/pipeline/define';
import { eventStages } from '../src/pipeline/presets';
import { runPipeline } from '../src/pipeline/runner';
import { KafkaFrameSink } from '../src/sinks/kafka';
import type { Source } from '../src/sources/source';
import { kafkaSource } from '../src/sources/kafka';
import { scaleOutFrames } from './gen/load';
import { memorySource, ROOT, runStages, SlowCollect, summary } from './helpers';

const PORT = 19092;
const BROKERS = [`127.0.0.1:${PORT}`];
const dir = mkdtempSync(path.join(tmpdir(), 'pktflow-kafka-restart-'));
const env = { ...process.env, KAFKA_DIR: dir, KAFKA_PORT: String(PORT), KAFKA_CONTROLLER_PORT: String(PORT + 1) };
const sh = promisify(execFile);
const broker = (cmd: 'start' | 'stop') => sh('bash', [path.join(ROOT, 'scripts/kafka.sh'), cmd], { env, timeout: 120_000 });
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** frames in batches of 64, `ms` apart: production that lasts long enough to restart the broker under it */
function paced(frames: Frame[], ms: number): Source & { sent: number } {
  const s = {
    name: 'paced',
    sent: 0,
    async *batches() {
      for (let i = 0; i < frames.length; i += 64) {
        if (i > 0) await sleep(ms);
        s.sent = Math.min(frames.length, i + 64);
        yield frames.slice(i, i + 64);
      }
    },
    stats: () => ({ frames: s.sent }),
    close() {},
  };
  return s;
}

/** once progress() passes a quarter of the frames, stop and restart the broker; returns progress() at the stop */
async function restartAtQuarter(progress: () => number, total: number): Promise<number> {
  while (progress() < total / 4) await sleep(20);
  await broker('stop');
  const atStop = progress();
  await broker('start');
  return atStop;
}

describe('Kafka broker restarts', () => {
  const frames = scaleOutFrames();
  let topic = '';
  let single: Event[] = [];

  before(async () => {
    await broker('start');
    const admin = kafkaClient({ brokers: BROKERS }).admin();
    await admin.connect();
    topic = `restart-${Date.now()}`;
    await admin.createTopics({ topics: [{ topic, numPartitions: 4 }], waitForLeaders: true });
    await admin.disconnect();
    single = (await runStages(memorySource(frames))).events;
  });
  after(async () => {
    await broker('stop').catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  it('production goes on across a restart: every frame is in the topic once', async () => {
    const source = paced(frames, 40);
    const sink = new KafkaFrameSink({ brokers: BROKERS, topic, maxRequestBytes: 16 * 1024 });
    const run = runPipeline(definePipeline({ source, stages: [], sink, options: { printStats: false } })).done;
    const sentAtStop = await restartAtQuarter(() => source.sent, frames.length);
    const r = await run;
    assert.equal(r.error, null);
    assert.ok(sentAtStop < frames.length, 'the broker stopped in the middle of production');
    const admin = kafkaClient({ brokers: BROKERS }).admin();
    await admin.connect();
    const offsets = await admin.fetchTopicOffsets(topic);
    await admin.disconnect();
    // the idempotent producer writes a retried request once: no frame lost, none doubled
    assert.equal(offsets.reduce((n, p) => n + Number(p.high), 0), frames.length);
  });

  it('consumption goes on across a restart: the events are all there, frames read twice are counted', async () => {
    const source = kafkaSource({ brokers: BROKERS, topic, groupId: `restart-${Date.now()}`, maxBytesPerPartition: 8 * 1024 });
    const sink = new SlowCollect(25);
    const run = runPipeline(definePipeline({ source, stages: [...eventStages()], sink, options: { printStats: false } })).done;
    const readAtStop = await restartAtQuarter(() => source.frames, frames.length);
    const r = await run;
    assert.equal(r.error, null);
    assert.ok(readAtStop < frames.length, 'the broker stopped in the middle of consumption');
    assert.ok(source.frames >= frames.length);
    assert.deepEqual([...new Set(sink.items.map(summary))].sort(), [...new Set(single.map(summary))].sort());
    const twice = sink.items.length - single.length;
    assert.ok(twice >= 0);
    assert.ok(twice === 0 || source.readAgain > 0, 'events made twice come from frames read again, which are counted');
  });
});
