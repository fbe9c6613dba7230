import type { Admin, Consumer, EachBatchPayload } from 'kafkajs';
import { ReasonCounter } from '../core/counters';
import type { Frame } from '../core/frame';
import type { Stats } from '../core/stage';
import { bounded, DEFAULT_TIMEOUT_MS, isCoordinatorError, isRetriable, kafkaClient, requireTopic, retryCoordinator, RETRY, type KafkaConnection } from '../kafka/client';
import { FrameMessageError, messageToFrame, recordFrame } from '../kafka/frames';
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
  /** bytes fetched per partition per request (default FETCH_BYTES_PER_PARTITION, 4 MiB) */
  maxBytesPerPartition?: number;
  /** frame bytes fetched ahead of the pipeline over all assigned partitions; a partition past its share is paused (default 32 MiB) */
  maxBufferedBytes?: number;
  /**
   * how long the time merge waits for a partition whose frames are in Kafka but not yet
   * fetched before going on without it (default: until they come, at most timeoutMs, so
   * the merge's order, and the events, do not depend on how fast fetches are). A
   * smaller value trades exact time order for latency, as Kafka Streams'
   * max.task.idle.ms does.
   */
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

interface Commit {
  topic: string;
  partition: number;
  offset: string;
  metadata: string;
}

const earlier = (a: Frame, b: Frame) => a.tsSec < b.tsSec || (a.tsSec === b.tsSec && a.tsNsec < b.tsNsec);

/** the longest the source sleeps before it looks again at its own state and the time */
const TICK_MS = 1000;

/**
 * The longest a fetch waits for new frames (the broker's long poll), following a topic
 * and replaying it to the end. At the end of a replay kafkajs waits out the fetch under
 * way before it leaves the group: at 100 ms, a replay of a 102-frame topic
 * (fixtures/http-dns.pcap) took 0.44 s (median of 10), at 20 ms 0.36 s, at 10 ms the
 * same (docs/performance.md).
 */
const FOLLOW_WAIT_MS = 100;
const REPLAY_WAIT_MS = 20;

/**
 * Bytes fetched per partition per request. The broker cuts an answer at this size, not at a
 * record batch's end, and kafkajs drops the partial batch at the end and fetches it again.
 * pktflow's producer writes batches of about 580 KB (512 KiB of frames and their headers):
 * at 1 MiB, every answer was one batch and 45 % of the next, and a replay of the bench
 * topic moved 288 MB over the socket for 175 MB of batches, the broker spending 0.6–1.2
 * CPU s on it; at 4 MiB, 210 MB and 0.3 s (docs/performance.md).
 */
const FETCH_BYTES_PER_PARTITION = 4 * 1024 * 1024;

/**
 * Replays raw frames from a topic (docs/kafka.md) as a member of a consumer group.
 *
 * kafkajs fills one buffer per assigned partition; a partition whose buffer is past
 * its share of maxBufferedBytes is paused until the pipeline has taken from it (flow
 * control, bounded memory). The pipeline gets the buffered frames merged by capture
 * time, so packet time advances as it did on the wire whatever order Kafka delivers
 * the partitions in; the merge waits for a partition that has frames in Kafka but
 * none fetched yet, rather than run ahead of it.
 *
 * Offsets are committed once the sink acknowledged the events made from a merged
 * batch, but never past a frame that state in the pipeline still holds (the first
 * frame of an open connection, a query waiting for its response): at-least-once
 * even for events not yet emitted. What a commit may cover is taken at the moment of
 * the acknowledgement, when the pipeline has processed exactly the acknowledged
 * batches, however late the commit itself goes out.
 *
 * When the group's partitions are reassigned (another analyzer joined or left, or
 * kafkajs restarted the consumer after the broker went away), the pipeline's state is
 * discarded unemitted and every assigned partition restarts from its committed
 * offset, where all the frames behind that state are read again: the group's events
 * together are what one process would make, with events made twice around a
 * rebalance (counted: `frames_read_again`).
 *
 * Nothing waits on Kafka forever: retriable failures (a broker restart, a group
 * coordinator that is loading or moved) are retried, but once `timeoutMs` pass
 * without progress (a fetch, a join, an acknowledged commit) the replay ends with an
 * error that says what it was waiting for.
 *
 * Without `follow`, a member ends once its assigned partitions reach the end offsets
 * the topic had when it started (a member assigned nothing ends at once); the final
 * offsets are committed after the pipeline has flushed (finish()).
 */
export class KafkaFrameSource implements Source {
  readonly name = 'kafka';
  private consumer: Consumer | null = null;
  private admin: Admin | null = null;
  private readonly timeoutMs: number;
  private groupId = '';
  private readonly buffers = new Map<number, PartitionBuffer>();
  /** per partition, the offset it is read to once the batch the pipeline is working on is acknowledged */
  private inFlight = new Map<number, number>();
  private wake: (() => void) | null = null;
  private ended = false;
  /** the commit under way, and the newest one waiting for it (a newer one replaces it) */
  private committing: Promise<void> | null = null;
  private nextCommit: Commit[] | null = null;
  private error: Error | null = null;
  /** the last error kafkajs recovered from by restarting the consumer */
  private lastCrash: Error | null = null;
  /** Date.now() of the last sign of progress: a fetch, a join, a batch taken by the pipeline */
  private lastProgress = 0;
  private discardState: (() => void) | null = null;
  /** the clients were let go of: kafkajs must not start the consumer again */
  private released = false;
  /** the partitions assigned at the last join (null before the first) */
  private assigned: number[] | null = null;
  private joinPending = false;
  /** joins so far: a batch fetched in an earlier one is stale */
  private gen = 0;
  private readonly logs = new Map<number, PartitionLog>();
  /** next offset to read, per assigned partition */
  private readonly pos = new Map<number, number>();
  /** what the group has committed, as far as this member knows (confirmed by kafkajs) */
  private readonly committed = new Map<number, number>();
  /** past the highest offset this process has read, per partition (to count frames read again) */
  private readonly seen = new Map<number, number>();
  private readonly ends = new Map<number, number>();
  /** where each partition starts when the group has no commit for it */
  private readonly starts = new Map<number, number>();
  /** an explicit start (offsets, time) that overrides the group's commits at the first join */
  private explicitStart = false;
  messages = 0;
  frames = 0;
  commits = 0;
  commitErrors = 0;
  requestRetries = 0;
  rebalances = 0;
  restarts = 0;
  readAgain = 0;
  readonly bad = new ReasonCounter();

  constructor(private readonly o: KafkaSourceOptions) {
    this.timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** the sink acknowledged the events of the last merged batch: its frames are processed */
  acknowledge(): void {
    if (this.inFlight.size === 0) return;
    for (const [p, next] of this.inFlight) if (this.pos.has(p)) this.pos.set(p, next);
    this.inFlight = new Map();
    this.commit(false);
  }

  setStateDiscarder(discard: () => void): void {
    this.discardState = discard;
  }

  private where(): string {
    return `kafka topic ${this.o.topic} at ${(this.o.brokers ?? ['127.0.0.1:9092']).join(',')}`;
  }

  /**
   * a call to Kafka: bounded by timeoutMs, retried on group-coordinator errors (or, for a
   * call that may be repeated at will, on any retriable error: `anyRetriable`)
   */
  private call<T>(what: string, f: () => Promise<T>, anyRetriable = false): Promise<T> {
    return retryCoordinator(f, this.timeoutMs, what, () => this.requestRetries++, anyRetriable ? isRetriable : isCoordinatorError);
  }

  async *batches(): AsyncIterable<Frame[]> {
    const client = kafkaClient(this.o);
    const admin = (this.admin = client.admin());
    const groupId = (this.groupId = this.o.groupId ?? `pktflow-replay-${Date.now()}-${process.pid}`);
    const follow = this.o.follow === true;
    try {
      await bounded(admin.connect(), this.timeoutMs, 'connect');
      await bounded(requireTopic(admin, this.o.topic), this.timeoutMs, 'a metadata request');
      for (const p of await bounded(admin.fetchTopicOffsets(this.o.topic), this.timeoutMs, 'an offset request')) {
        this.ends.set(p.partition, Number(p.high));
        this.starts.set(p.partition, (this.o.from ?? 'beginning') === 'beginning' ? Number(p.low) : Number(p.high));
      }
      if (this.o.fromTimestamp !== undefined) {
        const at = await bounded(admin.fetchTopicOffsetsByTimestamp(this.o.topic, this.o.fromTimestamp), this.timeoutMs, 'an offset request');
        for (const p of at) this.starts.set(p.partition, Number(p.offset));
        this.explicitStart = true;
      } else if (this.o.offsets !== undefined) {
        for (const [p, offset] of Object.entries(this.o.offsets)) this.starts.set(Number(p), Number(offset));
        this.explicitStart = true;
      }
      // a group that already consumed every partition to the end needs no consumer at all
      if (!follow && !this.explicitStart) {
        const done = await this.groupPositions();
        if ([...this.ends].every(([p, end]) => (done.get(p) ?? 0) >= end)) {
          await this.closeClients();
          return;
        }
      }
    } catch (err) {
      await this.closeClients();
      throw new Error(`${this.where()}: ${(err as Error).message}`);
    }

    // heartbeats every second: a rebalance is noticed within about a second. A fetch waits
    // at most FOLLOW_WAIT_MS for new frames with --follow (kafkajs: 5 s; an idle member
    // asks the broker ten times a second, which costs it nothing to speak of), and
    // REPLAY_WAIT_MS without: kafkajs lets go of the group only after the fetch under way,
    // and sleeps that long while every partition is paused, so a replay's end and a
    // resumed partition wait that long.
    const consumer = client.consumer({
      groupId,
      maxBytesPerPartition: this.o.maxBytesPerPartition ?? FETCH_BYTES_PER_PARTITION,
      heartbeatInterval: 1000,
      maxWaitTimeInMs: follow ? FOLLOW_WAIT_MS : REPLAY_WAIT_MS,
      // kafkajs restarts a consumer that crashed on a retriable error, from a timer of its
      // own; once the replay has let go of it, a restart would keep a consumer (and the
      // process) alive with nobody reading
      retry: { ...RETRY, restartOnFailure: async () => !this.released },
    });
    const idleMs = this.o.idleWaitMs ?? Infinity;
    this.consumer = consumer;
    const alive = () => {
      this.lastProgress = Date.now();
    };
    consumer.on(consumer.events.FETCH, alive);
    consumer.on(consumer.events.GROUP_JOIN, (e: { payload: { memberAssignment: Record<string, number[]> } }) => {
      this.assigned = [...(e.payload.memberAssignment[this.o.topic] ?? [])].sort((a, b) => a - b);
      this.gen++;
      this.joinPending = true;
      alive();
      this.wake?.();
    });
    consumer.on(consumer.events.COMMIT_OFFSETS, (e: { payload: { topics: { topic: string; partitions: { partition: number; offset: string }[] }[] } }) => {
      for (const t of e.payload.topics) {
        if (t.topic !== this.o.topic) continue;
        for (const p of t.partitions) this.committed.set(p.partition, Math.max(this.committed.get(p.partition) ?? -1, Number(p.offset)));
      }
    });
    const runOptions = { autoCommit: false, eachBatchAutoResolve: false, eachBatch: (args: EachBatchPayload) => this.eachBatch(args) };
    consumer.on(consumer.events.CRASH, (e: { payload: { error: Error; restart: boolean } }) => {
      // a retriable failure (the broker went away): kafkajs starts the consumer again and it
      // rejoins; if it never gets back, the stall check below ends the replay
      if (e.payload.restart) {
        this.restarts++;
        this.lastCrash = e.payload.error;
        return;
      }
      if (isCoordinatorError(e.payload.error) && !this.released) {
        // no broker could name the coordinator (all of them restarting): kafkajs calls that
        // final, but it is the same wait for the broker; started again here as kafkajs would
        this.restarts++;
        this.lastCrash = e.payload.error;
        setTimeout(() => {
          if (this.released) return;
          consumer.run(runOptions).catch((err: Error) => {
            this.error = err;
            this.wake?.();
          });
        }, RETRY.initialRetryTime);
        return;
      }
      this.error = e.payload.error;
      this.wake?.();
    });
    let clean = false;
    try {
      await bounded(consumer.connect(), this.timeoutMs, 'connect');
      await bounded(consumer.subscribe({ topic: this.o.topic, fromBeginning: (this.o.from ?? 'beginning') === 'beginning' }), this.timeoutMs, 'subscribe');
      alive();
      // resolves once the first join was tried (a failure is a CRASH event)
      await bounded(
        consumer.run(runOptions),
        this.timeoutMs,
        'joining the group',
      );
      let idleSince = 0;
      for (;;) {
        if (this.error !== null) throw this.error;
        if (this.joinPending) {
          await this.joined();
          continue;
        }
        this.skipUnreadable();
        if (this.ended || this.finished()) break;
        const buffered = [...this.buffers.values()].some((b) => b.size > 0);
        if (!buffered) {
          this.checkStall();
          await this.sleep(TICK_MS);
          continue;
        }
        const lag = this.lagging();
        if (lag >= 0) {
          // a partition with frames still in Kafka has none buffered: its next frames may be
          // earlier than the others' rest, so the merge waits for them
          if (idleSince === 0) idleSince = Date.now();
          const waited = Date.now() - idleSince;
          if (waited < idleMs) {
            if (waited >= this.timeoutMs) throw new Error(`partition ${lag} has frames in Kafka that were not fetched within ${Math.round(this.timeoutMs / 1000)} s`);
            await this.sleep(Math.min(idleMs - waited, TICK_MS));
            continue;
          }
        }
        idleSince = 0;
        const frames = this.merge();
        if (frames.length > 0) yield frames;
        // the pipeline took the batch: time spent there is not time spent waiting on Kafka
        alive();
        // a runner that does not acknowledge (no sink acknowledgement) still moves on
        this.acknowledge();
      }
      clean = true;
    } catch (err) {
      throw new Error(`${this.where()}: ${(err as Error).message}`);
    } finally {
      // a batch handed out and not acknowledged (the reader went away) is not committed
      this.inFlight = new Map();
      if (clean) this.setPaused(null, true);
      // after an error nothing is committed: the frames behind the failure are read again
      else await this.closeClients();
    }
  }

  /** fails the replay once it has waited on Kafka for timeoutMs without any progress */
  private checkStall(): void {
    const waited = Date.now() - this.lastProgress;
    if (waited < this.timeoutMs) return;
    const why = this.lastCrash !== null ? ` (last error: ${this.lastCrash.message})` : '';
    throw new Error(`no progress for ${Math.round(waited / 1000)} s: no fetch answered and the group did not rejoin${why}`);
  }

  /** pause (or resume) a partition, or the whole topic (null); a consumer between a crash and its restart has no group to pause */
  private setPaused(partition: number | null, paused: boolean): void {
    const c = this.consumer;
    if (c === null) return;
    const tp = [partition === null ? { topic: this.o.topic } : { topic: this.o.topic, partitions: [partition] }];
    try {
      if (paused) c.pause(tp);
      else c.resume(tp);
    } catch {
      // kafkajs restarts the consumer with nothing paused, and the rejoin resets the buffers
    }
  }

  /** the group's partitions were (re)assigned: start from what the group committed */
  private async joined(): Promise<void> {
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
    this.setPaused(null, false);
    this.buffers.clear();
    this.inFlight = new Map();
    this.nextCommit = null;
    this.committed.clear();
    const marks = new Map<number, number>();
    const committed = await this.groupPositions(marks);
    if (this.gen !== gen) return; // another join meanwhile: handled next
    const first = this.pos.size === 0 && this.rebalances === 0;
    this.pos.clear();
    for (const p of this.assigned ?? []) {
      // an explicit start (offsets, time) applies to the first assignment only
      const at = this.explicitStart && first ? (this.starts.get(p) ?? 0) : (committed.get(p) ?? 0);
      this.pos.set(p, at);
      this.log(p).readMark = marks.get(p) ?? 0;
      // kafkajs fetches from where this member stands, whatever it had resolved before
      try {
        this.consumer?.seek({ topic: this.o.topic, partition: p, offset: String(at) });
      } catch {
        // the consumer crashed meanwhile: its restart joins again, and this runs again
      }
    }
    this.joinPending = false;
    this.lastProgress = Date.now();
  }

  /** until woken (a batch, a join, the end, an error), or for ms */
  private async sleep(ms: number): Promise<void> {
    if (this.joinPending || this.ended || this.error !== null) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((r) => {
      this.wake = r;
      timer = setTimeout(r, ms);
    });
    clearTimeout(timer);
    this.wake = null;
  }

  /** an assigned partition with frames known to be waiting in Kafka that has none buffered, or -1 */
  private lagging(): number {
    for (const p of this.assigned ?? []) {
      const b = this.buffers.get(p);
      if ((b === undefined || b.size === 0) && this.moreInKafka(p, b)) return p;
    }
    return -1;
  }

  /** Kafka holds frames of the partition past those fetched (as far as the last fetch or the start knew) */
  private moreInKafka(p: number, b: PartitionBuffer | undefined): boolean {
    const end = this.ends.get(p) ?? 0;
    const known = this.o.follow === true ? Math.max(end, b?.high ?? -1) : end;
    return (b !== undefined && b.fetchedTo >= 0 ? b.fetchedTo : (this.pos.get(p) ?? 0)) < known;
  }

  /**
   * A partition whose fetched messages ended in messages that are not frames (counted
   * in bad_messages) has nothing to hand on, yet is read past them: its position moves
   * there (nothing of it is in flight when the loop gets here).
   */
  private skipUnreadable(): void {
    let moved = false;
    for (const [p, b] of this.buffers) {
      const at = this.pos.get(p);
      if (at !== undefined && b.size === 0 && b.fetchedTo > at) {
        this.pos.set(p, b.fetchedTo);
        moved = true;
      }
    }
    if (moved) this.commit(false);
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
        this.setPaused(p, false);
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
  private async groupPositions(marks?: Map<number, number>): Promise<Map<number, number>> {
    const out = new Map(this.starts);
    const admin = this.admin;
    if (admin === null) throw new Error('the replay was closed');
    const committed = await this.call('an offset fetch', () => admin.fetchOffsets({ groupId: this.groupId, topics: [this.o.topic] }), true);
    for (const p of committed[0]?.partitions ?? []) {
      if (Number(p.offset) >= 0) {
        out.set(p.partition, Number(p.offset));
        this.committed.set(p.partition, Number(p.offset));
      }
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
        // a record of pktflow's decoder (kafkajs-fast.ts) is read from its bytes, its header object never made
        const r = m as { bytes?: Buffer; headersAt?: number };
        const f = (r.bytes !== undefined && r.headersAt !== undefined ? recordFrame(m.value, r.bytes, r.headersAt) : null) ?? messageToFrame(m.value, m.headers as Record<string, Buffer | null>);
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
      this.setPaused(partition, true);
    }
    this.wake?.();
    await heartbeat();
  }

  /**
   * What may be committed now, for every assigned partition: up to the oldest frame
   * still held (or all it processed), noting in the metadata how far it was read
   * (`read=N`): whoever restarts from the commit knows which frames were processed
   * before (readBefore). `all` includes partitions whose commit is already confirmed.
   */
  private commitList(all: boolean): Commit[] {
    const list: Commit[] = [];
    for (const [p, next] of this.pos) {
      const log = this.log(p);
      const oldest = log.oldest();
      const upTo = oldest >= 0 && oldest < next ? oldest : next;
      if (all || upTo > (this.committed.get(p) ?? -1)) list.push({ topic: this.o.topic, partition: p, offset: String(upTo), metadata: `read=${Math.max(next, log.readMark)}` });
    }
    return list;
  }

  /**
   * Commit what the pipeline has processed, as it stands now. One commit at a time, so
   * none overtakes a later one; while one is under way the newest waits (older ones
   * waiting are dropped: the newer covers them). A failed commit (a rebalance under
   * way, the broker away) leaves the group's offsets behind: frames are read again,
   * never lost.
   */
  private commit(final: boolean): Promise<void> {
    const list = this.commitList(final);
    if (list.length > 0) this.nextCommit = list;
    if (this.committing === null && this.nextCommit !== null) {
      this.committing = this.drainCommits().finally(() => {
        this.committing = null;
      });
    }
    return this.committing ?? Promise.resolve();
  }

  private async drainCommits(): Promise<void> {
    while (this.nextCommit !== null) {
      const list = this.nextCommit;
      this.nextCommit = null;
      if (await this.commitNow(list)) this.lastProgress = Date.now();
    }
  }

  /** true when kafkajs confirmed the whole commit */
  private async commitNow(list: Commit[]): Promise<boolean> {
    const c = this.consumer;
    if (c === null) return false;
    try {
      await this.call('an offset commit', () => c.commitOffsets(list));
    } catch {
      this.commitErrors++;
      return false;
    }
    // kafkajs skips a commit silently while its consumer restarts: only its own event confirms one
    if (list.some((x) => (this.committed.get(x.partition) ?? -1) < Number(x.offset))) {
      this.commitErrors++;
      return false;
    }
    this.commits++;
    return true;
  }

  /** after the pipeline flushed and its sink acknowledged: commit the final offsets and leave the group */
  async finish(commit: boolean): Promise<void> {
    try {
      // commits of acknowledged batches still under way complete before the group is left
      await this.committing;
      if (commit && this.consumer !== null && this.pos.size > 0) await this.finalCommit();
    } finally {
      await this.closeClients();
    }
  }

  /**
   * The last commit must land, or the next replay of the group reads the last frames
   * again: retried (a consumer restarting after a crash commits nothing) until
   * timeoutMs, then an error.
   */
  private async finalCommit(): Promise<void> {
    const deadline = Date.now() + this.timeoutMs;
    for (let wait = 200; ; wait = Math.min(2000, wait * 2)) {
      const list = this.commitList(false);
      if (list.length === 0) return;
      this.nextCommit = list;
      await this.commit(false);
      if (this.commitList(false).length === 0) return;
      if (Date.now() + wait >= deadline) {
        throw new Error(`${this.where()}: the final offsets of group ${this.groupId} were not committed within ${Math.round(this.timeoutMs / 1000)} s; its next replay reads the last frames again`);
      }
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  private async closeClients(): Promise<void> {
    this.released = true;
    const c = this.consumer;
    const a = this.admin;
    this.consumer = null;
    this.admin = null;
    // leaving waits for the fetch under way; a broker that went away does not keep the process
    await bounded(c?.disconnect() ?? Promise.resolve(), this.timeoutMs, 'leaving the group').catch(() => {});
    await bounded(a?.disconnect() ?? Promise.resolve(), this.timeoutMs, 'disconnect').catch(() => {});
  }

  stats(): Stats {
    return {
      messages: this.messages,
      frames: this.frames,
      commits: this.commits,
      commit_errors: this.commitErrors,
      request_retries: this.requestRetries,
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
