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
  /** frame bytes fetched ahead of the pipeline over all assigned partitions; a partition past its share is paused (default 32 MiB) */
  maxBufferedBytes?: number;
  /** how long the time merge waits for a partition with nothing fetched before going on without it (default 200 ms) */
  idleWaitMs?: number;
  /** frames per batch handed to the pipeline (default 2048) */
  batchFrames?: number;
}

/** frames of one partition fetched and not yet handed to the pipeline, in offset order */
class PartitionBuffer {
  frames: Frame[] = [];
  head = 0;
  bytes = 0;
  paused = false;
  /** offset after the last message fetched (bad messages included) */
  fetchedTo = -1;
  /** the partition's end offset when it was last fetched */
  high = -1;

  get size(): number {
    return this.frames.length - this.head;
  }

  push(f: Frame): void {
    this.frames.push(f);
    this.bytes += f.capLen + 100;
  }

  take(): Frame {
    const f = this.frames[this.head++];
    this.bytes -= f.capLen + 100;
    if (this.head === this.frames.length) {
      this.frames = [];
      this.head = 0;
    } else if (this.head >= 4096 && this.head * 2 >= this.frames.length) {
      this.frames = this.frames.slice(this.head);
      this.head = 0;
    }
    return f;
  }

  /** the offset the partition is read to once everything taken so far is processed */
  nextOffset(): number {
    return this.size > 0 ? this.frames[this.head].seq : this.fetchedTo;
  }
}

const earlier = (a: Frame, b: Frame) => a.tsSec < b.tsSec || (a.tsSec === b.tsSec && a.tsNsec < b.tsNsec);

/**
 * Replays raw frames from a topic (docs/kafka.md) as a member of a consumer group.
 *
 * kafkajs fills one buffer per assigned partition; a partition whose buffer is past
 * its share of maxBufferedBytes is paused until the pipeline has taken from it (flow
 * control, bounded memory). The pipeline gets the buffered frames merged by capture
 * time, so packet time advances as it did on the wire whatever order Kafka delivers
 * the partitions in; the merge waits (up to idleWaitMs) for a partition that has
 * nothing buffered yet, rather than run ahead of it.
 *
 * Offsets are committed once the sink acknowledged the events made from a merged
 * batch, but never past a frame that state in the pipeline still holds (the first
 * frame of an open connection, a query waiting for its response): at-least-once
 * even for events not yet emitted.
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
  private readonly buffers = new Map<number, PartitionBuffer>();
  /** per partition, the offset it is read to once the batch the pipeline is working on is acknowledged */
  private inFlight = new Map<number, number>();
  private wake: (() => void) | null = null;
  private ended = false;
  private committing: Promise<void> = Promise.resolve();
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

  /** the sink acknowledged the events of the last merged batch: its frames are processed */
  acknowledge(): void {
    if (this.inFlight.size === 0) return;
    for (const [p, next] of this.inFlight) if (this.pos.has(p)) this.pos.set(p, next);
    this.inFlight = new Map();
    void this.commit();
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
    const idleMs = this.o.idleWaitMs ?? 200;
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
      let idleSince = 0;
      for (;;) {
        if (this.error !== null) throw new Error(`${this.where()}: ${this.error.message}`);
        if (this.joinPending) {
          await this.joined(groupId, starts, seeks.length > 0);
          continue;
        }
        if (this.ended || this.finished()) break;
        const buffered = [...this.buffers.values()].some((b) => b.size > 0);
        if (!buffered) {
          await this.sleep(0);
          continue;
        }
        if (this.lagging()) {
          // a partition with frames still to come has none buffered: wait for it a little
          if (idleSince === 0) idleSince = Date.now();
          const left = idleMs - (Date.now() - idleSince);
          if (left > 0) {
            await this.sleep(left);
            continue;
          }
        }
        idleSince = 0;
        const frames = this.merge();
        if (frames.length > 0) yield frames;
        // a runner that does not acknowledge (no sink acknowledgement) still moves on
        this.acknowledge();
      }
      clean = true;
    } finally {
      // a batch handed out and not acknowledged (the reader went away) is not committed
      this.inFlight = new Map();
      if (clean) consumer.pause([{ topic: this.o.topic }]);
      // after an error nothing is committed: the frames behind the failure are read again
      else await this.closeClients();
    }
  }

  /** the group's partitions were (re)assigned: start from what the group committed */
  private async joined(groupId: string, starts: Map<number, number>, seeked: boolean): Promise<void> {
    // batches are turned away until the new positions are known (kafkajs fetches them again)
    const gen = this.gen;
    let held = false;
    for (const log of this.logs.values()) held ||= log.live > 0;
    if (this.pos.size > 0 || held) {
      // state made from partitions that may now belong to another member: it will be made again
      this.rebalances++;
      this.discardState?.();
      for (const log of this.logs.values()) log.clear();
    }
    // what was fetched before is fetched again from the group's offsets
    const paused = [...this.buffers].filter(([, b]) => b.paused).map(([p]) => p);
    if (paused.length > 0) this.consumer?.resume([{ topic: this.o.topic, partitions: paused }]);
    this.buffers.clear();
    this.inFlight = new Map();
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
    // another join meanwhile is handled next
    if (this.gen === gen) this.joinPending = false;
  }

  /** until woken (a batch, a join, the end, an error), or for ms when ms > 0 */
  private async sleep(ms: number): Promise<void> {
    if (this.joinPending || this.ended || this.error !== null) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((r) => {
      this.wake = r;
      if (ms > 0) timer = setTimeout(r, ms);
    });
    clearTimeout(timer);
    this.wake = null;
  }

  /** an assigned partition with frames known to be waiting in Kafka has none buffered */
  private lagging(): boolean {
    for (const p of this.assigned ?? []) {
      const b = this.buffers.get(p);
      if ((b === undefined || b.size === 0) && this.moreInKafka(p, b)) return true;
    }
    return false;
  }

  /** Kafka holds frames of the partition past those fetched (as far as the last fetch or the start knew) */
  private moreInKafka(p: number, b: PartitionBuffer | undefined): boolean {
    const end = this.ends.get(p) ?? 0;
    const known = this.o.follow === true ? Math.max(end, b?.high ?? -1) : end;
    return (b !== undefined && b.fetchedTo >= 0 ? b.fetchedTo : (this.pos.get(p) ?? 0)) < known;
  }

  /**
   * Buffered frames in capture-time order, until the batch is full or a partition
   * that has more frames to come runs out (its next frames may be earlier than the
   * others' rest). Paused partitions that fell below half their share resume.
   */
  private merge(): Frame[] {
    const open = [...this.buffers].filter(([, b]) => b.size > 0);
    const out: Frame[] = [];
    const max = this.o.batchFrames ?? 2048;
    while (out.length < max && open.length > 0) {
      let best = 0;
      for (let i = 1; i < open.length; i++) if (earlier(open[i][1].frames[open[i][1].head], open[best][1].frames[open[best][1].head])) best = i;
      const [p, b] = open[best];
      out.push(b.take());
      if (b.size === 0) {
        open.splice(best, 1);
        if (this.moreInKafka(p, b)) break;
      }
    }
    const share = this.share();
    for (const [p, b] of this.buffers) {
      if (!this.pos.has(p)) continue;
      this.inFlight.set(p, b.nextOffset());
      if (b.paused && b.bytes < share / 2) {
        b.paused = false;
        this.consumer?.resume([{ topic: this.o.topic, partitions: [p] }]);
      }
    }
    return out;
  }

  /** the bytes one partition may buffer */
  private share(): number {
    const total = this.o.maxBufferedBytes ?? 32 * 1024 * 1024;
    return Math.max(Math.min(256 * 1024, total), total / Math.max(1, this.assigned?.length ?? 1));
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
    const partition = batch.partition;
    // a batch fetched for an assignment that has since changed: the new one fetches again
    if (this.assigned === null || !this.pos.has(partition) || this.joinPending) return;
    const log = this.log(partition);
    let buf = this.buffers.get(partition);
    if (buf === undefined) this.buffers.set(partition, (buf = new PartitionBuffer()));
    const seen = this.seen.get(partition) ?? 0;
    for (const m of batch.messages) {
      this.messages++;
      const offset = Number(m.offset);
      if (offset < seen) this.readAgain++;
      try {
        const f = messageToFrame(m.value, m.headers as Record<string, Buffer | string | undefined>);
        f.log = log;
        f.seq = offset;
        buf.push(f);
        this.frames++;
      } catch (err) {
        if (!(err instanceof FrameMessageError)) throw err;
        this.bad.add(err.message);
      }
    }
    const next = Number(batch.lastOffset()) + 1;
    buf.fetchedTo = next;
    buf.high = Number(batch.highWatermark);
    if (next > seen) this.seen.set(partition, next);
    resolveOffset(batch.lastOffset());
    if (!buf.paused && buf.bytes >= this.share()) {
      buf.paused = true;
      this.consumer?.pause([{ topic: this.o.topic, partitions: [partition] }]);
    }
    this.wake?.();
    await heartbeat();
  }

  /**
   * Commit, for every assigned partition, up to the oldest frame still held (or all it
   * processed), noting in the metadata how far it was read (`read=N`): whoever restarts
   * from the commit knows which frames were processed before (readBefore). One commit
   * at a time, so none overtakes a later one. A failed commit (a rebalance under way,
   * the broker away) leaves the group's offsets behind: frames are read again, never
   * lost.
   */
  private commit(): Promise<void> {
    const run = this.committing.then(() => this.commitNow());
    this.committing = run.catch(() => {});
    return run;
  }

  private async commitNow(): Promise<void> {
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
    } catch {
      this.commitErrors++;
      return;
    }
    this.commits++;
    for (const c of list) this.committed.set(c.partition, Number(c.offset));
  }

  /** after the pipeline flushed and its sink acknowledged: commit the final offsets and leave the group */
  async finish(commit: boolean): Promise<void> {
    // commits of acknowledged batches still under way complete before the group is left
    await this.committing;
    if (commit && this.consumer !== null) await this.commit();
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
