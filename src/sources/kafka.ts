import type { Admin, Consumer, EachBatchPayload } from 'kafkajs';
import { ReasonCounter } from '../core/counters';
import type { Frame } from '../core/frame';
import type { Stats } from '../core/stage';
import { kafkaClient, requireTopic, type KafkaConnection } from '../kafka/client';
import { FrameMessageError, messageToFrame } from '../kafka/frames';
import { PartitionLog } from '../kafka/offsets';
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
  /** bytes fetched per partition per request: the size of a batch (default 1 MiB) */
  maxBytesPerPartition?: number;
}

interface Handoff {
  frames: Frame[];
  /** called once the sink has acknowledged what these frames produced */
  done: () => void;
  /** the group generation (join) the batch was fetched in */
  gen: number;
}

/**
 * Replays raw frames from a topic (docs/kafka.md) as a member of a consumer group.
 *
 * Each fetched batch of one partition becomes one batch of Frames, and the next batch
 * is fetched only after the pipeline's sink acknowledged the events made from it
 * (flow control). Offsets are committed then, but never past a frame that state in
 * the pipeline still holds (the first frame of an open connection, a query waiting
 * for its response): at-least-once even for events not yet emitted.
 *
 * When the group's partitions are reassigned (another analyzer joined or left), the
 * pipeline's state is discarded unemitted and every assigned partition restarts from
 * its committed offset, where all the frames behind that state are read again: the
 * group's events together are what one process would make, with events made twice
 * around a rebalance (counted: `frames_read_again`).
 *
 * Without `follow`, a member ends once its assigned partitions reach the end offsets
 * the topic had when it started (a member assigned nothing ends at once); the final
 * offsets are committed after the pipeline has flushed (finish()).
 */
export class KafkaFrameSource implements Source {
  readonly name = 'kafka';
  private consumer: Consumer | null = null;
  private admin: Admin | null = null;
  /** batches fetched and not yet taken by the pipeline (kafkajs may fetch while a rebalance goes on) */
  private waiting: Handoff[] = [];
  private wake: (() => void) | null = null;
  private ended = false;
  private current: Handoff | null = null;
  private error: Error | null = null;
  private discardState: (() => void) | null = null;
  /** the partitions assigned at the last join (null before the first) */
  private assigned: number[] | null = null;
  private joinPending = false;
  /** joins so far: a batch fetched in an earlier one is stale */
  private gen = 0;
  private readonly logs = new Map<number, PartitionLog>();
  /** next offset to read, per assigned partition */
  private readonly pos = new Map<number, number>();
  private readonly committed = new Map<number, number>();
  /** past the highest offset this process has read, per partition (to count frames read again) */
  private readonly seen = new Map<number, number>();
  private readonly ends = new Map<number, number>();
  messages = 0;
  frames = 0;
  commits = 0;
  commitErrors = 0;
  rebalances = 0;
  restarts = 0;
  readAgain = 0;
  readonly bad = new ReasonCounter();

  constructor(private readonly o: KafkaSourceOptions) {}

  acknowledge(): void {
    const c = this.current;
    this.current = null;
    c?.done();
  }

  setStateDiscarder(discard: () => void): void {
    this.discardState = discard;
  }

  private where(): string {
    return `kafka topic ${this.o.topic} at ${(this.o.brokers ?? ['127.0.0.1:9092']).join(',')}`;
  }

  async *batches(): AsyncIterable<Frame[]> {
    const client = kafkaClient(this.o);
    const admin = (this.admin = client.admin());
    const fail = (err: Error): never => {
      throw new Error(`${this.where()}: ${err.message}`);
    };
    await admin.connect().catch(fail);
    const groupId = this.o.groupId ?? `pktflow-replay-${Date.now()}-${process.pid}`;
    const starts = new Map<number, number>();
    const follow = this.o.follow === true;
    try {
      await requireTopic(admin, this.o.topic);
      for (const p of await admin.fetchTopicOffsets(this.o.topic)) {
        this.ends.set(p.partition, Number(p.high));
        starts.set(p.partition, (this.o.from ?? 'beginning') === 'beginning' ? Number(p.low) : Number(p.high));
      }
      if (this.o.fromTimestamp !== undefined) {
        for (const p of await admin.fetchTopicOffsetsByTimestamp(this.o.topic, this.o.fromTimestamp)) starts.set(p.partition, Number(p.offset));
      } else if (this.o.offsets !== undefined) {
        for (const [p, offset] of Object.entries(this.o.offsets)) starts.set(Number(p), Number(offset));
      }
      // a group that already consumed every partition to the end needs no consumer at all
      if (!follow && this.o.offsets === undefined && this.o.fromTimestamp === undefined) {
        const done = await this.groupPositions(groupId, starts);
        if ([...this.ends].every(([p, end]) => (done.get(p) ?? 0) >= end)) {
          await this.closeClients();
          return;
        }
      }
    } catch (err) {
      await this.closeClients();
      fail(err as Error);
    }
    const seeks = this.o.offsets !== undefined || this.o.fromTimestamp !== undefined ? [...starts] : [];

    // heartbeats every second: a rebalance is noticed within about a second. A fetch waits
    // at most 500 ms for new frames (kafkajs: 5 s), which is also how long leaving takes.
    const consumer = client.consumer({
      groupId,
      maxBytesPerPartition: this.o.maxBytesPerPartition ?? 1024 * 1024,
      heartbeatInterval: 1000,
      maxWaitTimeInMs: 500,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e: { payload: { memberAssignment: Record<string, number[]> } }) => {
      this.assigned = [...(e.payload.memberAssignment[this.o.topic] ?? [])].sort((a, b) => a - b);
      this.gen++;
      this.joinPending = true;
      this.wake?.();
    });
    consumer.on(consumer.events.CRASH, (e: { payload: { error: Error; restart: boolean } }) => {
      // a retriable failure (the broker went away): kafkajs starts the consumer again and it rejoins
      if (e.payload.restart) {
        this.restarts++;
        return;
      }
      this.error = e.payload.error;
      this.wake?.();
    });
    let clean = false;
    try {
      await consumer.connect();
      await consumer.subscribe({ topic: this.o.topic, fromBeginning: (this.o.from ?? 'beginning') === 'beginning' });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        eachBatch: (args) => this.eachBatch(args),
      });
      for (const [partition, offset] of seeks) consumer.seek({ topic: this.o.topic, partition, offset: String(offset) });
      for (;;) {
        if (this.waiting.length === 0 && !this.joinPending && !this.ended && this.error === null) await new Promise<void>((r) => (this.wake = r));
        this.wake = null;
        if (this.error !== null) throw new Error(`${this.where()}: ${this.error.message}`);
        if (this.joinPending) {
          await this.joined(groupId, starts, seeks.length > 0);
          continue;
        }
        const h = this.waiting.shift();
        if (h !== undefined) {
          if (h.gen !== this.gen) {
            // fetched before the partitions were reassigned: read again from the group's offsets
            h.done();
            continue;
          }
          this.current = h;
          yield h.frames;
          // a runner that does not acknowledge (no sink acknowledgement) still moves on
          this.acknowledge();
          continue;
        }
        if (this.ended) break;
      }
      clean = true;
    } finally {
      this.acknowledge();
      for (const h of this.waiting.splice(0)) h.done();
      if (clean) consumer.pause([{ topic: this.o.topic }]);
      // after an error nothing is committed: the frames behind the failure are read again
      else await this.closeClients();
    }
  }

  /** the group's partitions were (re)assigned: start from what the group committed */
  private async joined(groupId: string, starts: Map<number, number>, seeked: boolean): Promise<void> {
    this.joinPending = false;
    let held = false;
    for (const log of this.logs.values()) held ||= log.live > 0;
    if (this.pos.size > 0 || held) {
      // state made from partitions that may now belong to another member: it will be made again
      this.rebalances++;
      this.discardState?.();
      for (const log of this.logs.values()) log.clear();
    }
    const marks = new Map<number, number>();
    const committed = await this.groupPositions(groupId, starts, marks);
    this.pos.clear();
    this.committed.clear();
    for (const p of this.assigned ?? []) {
      // an explicit start (offsets, time) applies to the first assignment only
      const at = seeked && this.rebalances === 0 ? (starts.get(p) ?? 0) : (committed.get(p) ?? 0);
      this.pos.set(p, at);
      this.committed.set(p, committed.get(p) ?? -1);
      this.log(p).readMark = marks.get(p) ?? 0;
    }
    if (this.finished()) this.ended = true;
  }

  /**
   * where the group stands on each partition: its committed offset, else where a new
   * member starts; and into `marks`, how far the committer had read (commit metadata)
   */
  private async groupPositions(groupId: string, starts: Map<number, number>, marks?: Map<number, number>): Promise<Map<number, number>> {
    const out = new Map(starts);
    const committed = await this.admin!.fetchOffsets({ groupId, topics: [this.o.topic] });
    for (const p of committed[0]?.partitions ?? []) {
      if (Number(p.offset) >= 0) out.set(p.partition, Number(p.offset));
      const m = /^read=(\d+)$/.exec(p.metadata ?? '');
      if (m !== null) marks?.set(p.partition, Number(m[1]));
    }
    return out;
  }

  private log(partition: number): PartitionLog {
    let log = this.logs.get(partition);
    if (log === undefined) this.logs.set(partition, (log = new PartitionLog()));
    return log;
  }

  private finished(): boolean {
    return this.o.follow !== true && this.assigned !== null && this.assigned.every((p) => (this.pos.get(p) ?? 0) >= (this.ends.get(p) ?? 0));
  }

  private async eachBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (!isRunning() || isStale() || batch.messages.length === 0 || this.ended) return;
    const gen = this.gen;
    const partition = batch.partition;
    const log = this.log(partition);
    const seen = this.seen.get(partition) ?? 0;
    const frames: Frame[] = [];
    for (const m of batch.messages) {
      this.messages++;
      const offset = Number(m.offset);
      if (offset < seen) this.readAgain++;
      try {
        const f = messageToFrame(m.value, m.headers as Record<string, Buffer | string | undefined>);
        f.log = log;
        f.seq = offset;
        frames.push(f);
      } catch (err) {
        if (!(err instanceof FrameMessageError)) throw err;
        this.bad.add(err.message);
      }
    }
    this.frames += frames.length;
    const next = Number(batch.lastOffset()) + 1;
    if (next > seen) this.seen.set(partition, next);
    // hand the batch over and wait until its events are acknowledged, staying alive in the group meanwhile
    const beat = setInterval(() => heartbeat().catch(() => {}), 3000);
    try {
      await new Promise<void>((done) => {
        this.waiting.push({ frames, done, gen });
        this.wake?.();
      });
    } finally {
      clearInterval(beat);
    }
    // the partitions were reassigned meanwhile: this batch counts for nothing
    if (gen !== this.gen || this.ended) return;
    resolveOffset(batch.lastOffset());
    this.pos.set(partition, next);
    await this.commit(false);
    await heartbeat();
    if (this.finished()) {
      this.ended = true;
      this.wake?.();
    }
  }

  /**
   * Commit, for every assigned partition, up to the oldest frame still held (or all it
   * read), noting in the metadata how far it was read (`read=N`): whoever restarts from
   * the commit knows which frames were processed before (readBefore). A failed commit leaves the group's offsets behind: frames are read again,
   * never lost. Inside a batch a failure goes to kafkajs, which rejoins the group.
   */
  private async commit(final: boolean): Promise<void> {
    const list: { topic: string; partition: number; offset: string; metadata: string }[] = [];
    for (const [p, next] of this.pos) {
      const log = this.log(p);
      const oldest = log.oldest();
      const upTo = oldest >= 0 && oldest < next ? oldest : next;
      if (upTo > (this.committed.get(p) ?? -1)) list.push({ topic: this.o.topic, partition: p, offset: String(upTo), metadata: `read=${Math.max(next, log.readMark)}` });
    }
    if (list.length === 0 || this.consumer === null) return;
    try {
      await this.consumer.commitOffsets(list);
    } catch (err) {
      this.commitErrors++;
      if (!final) throw err;
      return;
    }
    this.commits++;
    for (const c of list) this.committed.set(c.partition, Number(c.offset));
  }

  /** after the pipeline flushed and its sink acknowledged: commit the final offsets and leave the group */
  async finish(commit: boolean): Promise<void> {
    if (commit && this.consumer !== null) await this.commit(true);
    await this.closeClients();
  }

  private async closeClients(): Promise<void> {
    const c = this.consumer;
    const a = this.admin;
    this.consumer = null;
    this.admin = null;
    await c?.disconnect().catch(() => {});
    await a?.disconnect().catch(() => {});
  }

  stats(): Stats {
    return {
      messages: this.messages,
      frames: this.frames,
      commits: this.commits,
      commit_errors: this.commitErrors,
      rebalances: this.rebalances,
      consumer_restarts: this.restarts,
      frames_read_again: this.readAgain,
      bad_messages: this.bad.toJSON(),
    };
  }

  close(): void {
    this.ended = true;
    this.wake?.();
  }
}

export const kafkaSource = (o: KafkaSourceOptions) => new KafkaFrameSource(o);
