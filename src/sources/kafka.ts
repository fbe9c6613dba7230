import type { Consumer } from 'kafkajs';
import { ReasonCounter } from '../core/counters';
import type { Frame } from '../core/frame';
import type { Stats } from '../core/stage';
import { kafkaClient, type KafkaConnection } from '../kafka/client';
import { FrameMessageError, messageToFrame } from '../kafka/frames';
import type { Source } from './source';

export interface KafkaSourceOptions extends KafkaConnection {
  topic: string;
  /** consumer group (default: a group of its own, pktflow-replay-<time>) */
  groupId?: string;
  /** where a group without committed offsets starts: the beginning (default) or only new frames */
  from?: 'beginning' | 'latest';
  /** start every partition at the first frame at or after this time (ms since the epoch) */
  fromTimestamp?: number;
  /** start at these offsets, by partition */
  offsets?: Record<number, string>;
  /** keep following new frames as a group member (default false: stop at the end offsets seen at start) */
  follow?: boolean;
}

interface Handoff {
  frames: Frame[];
  /** called once the sink has acknowledged what these frames produced */
  done: () => void;
}

/**
 * Replays raw frames from a topic (docs/kafka.md). Each fetched batch of one
 * partition becomes one batch of Frames; its offsets are committed only after the
 * pipeline's sink acknowledged the events made from it (at-least-once), and the
 * next batch is fetched only then (flow control). Without `follow` the replay ends
 * at the end offsets the topic had when it started.
 */
export class KafkaFrameSource implements Source {
  readonly name = 'kafka';
  private consumer: Consumer | null = null;
  private waiting: Handoff | null = null;
  private wake: (() => void) | null = null;
  private ended = false;
  private current: Handoff | null = null;
  private error: Error | null = null;
  messages = 0;
  frames = 0;
  commits = 0;
  readonly bad = new ReasonCounter();

  constructor(private readonly o: KafkaSourceOptions) {}

  acknowledge(): void {
    const c = this.current;
    this.current = null;
    c?.done();
  }

  async *batches(): AsyncIterable<Frame[]> {
    const client = kafkaClient(this.o);
    const admin = client.admin();
    const fail = (err: Error): never => {
      throw new Error(`kafka topic ${this.o.topic} at ${(this.o.brokers ?? ['127.0.0.1:9092']).join(',')}: ${err.message}`);
    };
    await admin.connect().catch(fail);
    const ends = new Map<number, bigint>();
    const pos = new Map<number, bigint>();
    const groupId = this.o.groupId ?? `pktflow-replay-${Date.now()}-${process.pid}`;
    let seeks: { partition: number; offset: string }[] = [];
    try {
      const offsets = await admin.fetchTopicOffsets(this.o.topic);
      for (const p of offsets) ends.set(p.partition, BigInt(p.high));
      // where the group stands: a partition it already consumed to the end needs nothing
      const committed = await admin.fetchOffsets({ groupId, topics: [this.o.topic] });
      for (const p of committed[0]?.partitions ?? []) if (Number(p.offset) >= 0) pos.set(p.partition, BigInt(p.offset));
      if (this.o.fromTimestamp !== undefined) {
        seeks = (await admin.fetchTopicOffsetsByTimestamp(this.o.topic, this.o.fromTimestamp)).map((p) => ({ partition: p.partition, offset: p.offset }));
      } else if (this.o.offsets !== undefined) {
        seeks = Object.entries(this.o.offsets).map(([p, offset]) => ({ partition: Number(p), offset }));
      }
    } catch (err) {
      fail(err as Error);
    } finally {
      await admin.disconnect();
    }
    const follow = this.o.follow === true;
    const finished = () => !follow && [...ends].every(([p, end]) => (pos.get(p) ?? -1n) >= end);
    const startOf = (p: number) => {
      const s = seeks.find((x) => x.partition === p);
      return s !== undefined ? BigInt(s.offset) : -1n;
    };
    // partitions already at their end (empty, or seeked to the end) need nothing
    for (const [p, end] of ends) if (end === 0n || startOf(p) >= end || (seeks.length === 0 && (pos.get(p) ?? -1n) >= end)) pos.set(p, end);
    if (finished()) return;

    const consumer = client.consumer({ groupId, maxBytesPerPartition: 1024 * 1024 });
    this.consumer = consumer;
    await consumer.connect();
    await consumer.subscribe({ topic: this.o.topic, fromBeginning: (this.o.from ?? 'beginning') === 'beginning' });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        if (!isRunning() || isStale() || batch.messages.length === 0) return;
        const frames: Frame[] = [];
        for (const m of batch.messages) {
          this.messages++;
          try {
            frames.push(messageToFrame(m.value, m.headers as Record<string, Buffer | string | undefined>));
          } catch (err) {
            if (!(err instanceof FrameMessageError)) throw err;
            this.bad.add(err.message);
          }
        }
        this.frames += frames.length;
        // hand the batch over and wait until its events are acknowledged
        await new Promise<void>((done) => {
          this.waiting = { frames, done };
          this.wake?.();
        });
        const last = batch.lastOffset();
        resolveOffset(last);
        const next = (BigInt(last) + 1n).toString();
        await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next }]);
        this.commits++;
        pos.set(batch.partition, BigInt(next));
        await heartbeat();
        if (finished()) {
          this.ended = true;
          this.wake?.();
        }
      },
    });
    consumer.on(consumer.events.CRASH, (e: { payload: { error: Error } }) => {
      this.error = e.payload.error;
      this.wake?.();
    });
    for (const s of seeks) consumer.seek({ topic: this.o.topic, partition: s.partition, offset: s.offset });
    try {
      for (;;) {
        if (this.waiting === null && !this.ended && this.error === null) await new Promise<void>((r) => (this.wake = r));
        this.wake = null;
        if (this.error !== null) throw new Error(`kafka topic ${this.o.topic}: ${this.error.message}`);
        const h = this.waiting;
        if (h !== null) {
          this.waiting = null;
          this.current = h;
          yield h.frames;
          // a runner that does not acknowledge (no sink acknowledgement) still moves on
          this.acknowledge();
          continue;
        }
        if (this.ended) break;
      }
    } finally {
      this.acknowledge();
      await consumer.disconnect();
      this.consumer = null;
    }
  }

  stats(): Stats {
    return { messages: this.messages, frames: this.frames, commits: this.commits, bad_messages: this.bad.toJSON() };
  }

  close(): void {
    this.ended = true;
    this.wake?.();
  }
}

export const kafkaSource = (o: KafkaSourceOptions) => new KafkaFrameSource(o);
