import * as path from 'node:path';
import type { Writable } from 'node:stream';
import type { Worker } from 'node:worker_threads';
import { timeValid, type Frame } from '../core/frame';
import { ExplainedError, type Stage, type Stats, type StatValue } from '../core/stage';
import { flowHash } from '../kafka/frames';
import { NdjsonSink } from '../sinks/ndjson';
import type { Sink } from '../sinks/sink';
import { captureSecrets } from '../sources/secrets';
import type { Source } from '../sources/source';
import type { Pipeline, PipelineOptions } from './define';
import { eventStages, type EventStagesOptions } from './presets';
import {
  inputSlots,
  MARK_GOOD_TIME,
  MARK_TICK,
  META_FIELDS,
  outputSlots,
  sharedSlots,
  SLOT_DATA,
  SLOT_FRAMES,
  type FromWorker,
  type InputSlot,
  type Output,
  type ToWorker,
  type WorkerInit,
} from './worker';

/**
 * `--workers N`: the main thread reads the frames (and runs the frame stages: filter,
 * dump), deals them to N worker threads by the symmetric flow hash, and writes the
 * NDJSON the workers send back; each worker runs decode → TCP reorderer → analyzers
 * and serialises its events (src/pipeline/worker.ts).
 *
 * Dealing. TCP by the 5-tuple (and VLANs), so both directions of a connection meet in
 * one worker; UDP, other IP protocols and every IP fragment by the address pair and
 * protocol (a fragmented datagram is reassembled where its unfragmented neighbours
 * are analysed); non-IP by the MAC pair (`flowHash`, the Kafka frame key's hash).
 *
 * Clock. Timers run on packet time, and a worker sees only its own frames: so when the
 * packet clock reaches a new second in a frame dealt to one worker, every other worker
 * gets a tick to that frame's time at the same place in its stream (flow reports,
 * idle and transaction timeouts fire where they would in one thread). A frame with an
 * impossible time takes the time of the valid frame before it (decode stage): its
 * worker is told that time, which another worker may have seen.
 *
 * Order. Each batch the source reads is one round: every worker gets its share (or
 * nothing), and the events of round r are written as worker 0's, then worker 1's, ...
 * before those of round r + 1; the flush at the end likewise. The output depends only
 * on the input, its batches (a file's are fixed: 256 KiB reads) and N, so the same
 * file and N give the same bytes. With one worker it is the single-thread order.
 *
 * Flow control. At most WINDOW rounds are in the workers at once, and the runner asks
 * the source for more only when `drained()` says both the window and stdout have room:
 * a slow reader of the output stops the reading, with memory bounded by the window.
 */
export const WINDOW = 8;

export interface WorkersOptions {
  workers: number;
  /** where the NDJSON goes (default stdout) */
  stream?: Writable;
}

/**
 * The pipeline that runs `stages` (the preset's options) in `workers` threads: the
 * source and the frame stages here, then the pool as the sink. The stages seen by the
 * runner after `frames` only report the workers' merged counters (under the preset's
 * stage names), so the counters a user sees are the sums of the workers'.
 */
export function workerPipeline(spec: { source: Source; frames: Stage<Frame, Frame>; stages: EventStagesOptions; options: PipelineOptions }, o: WorkersOptions): Pipeline {
  // made here too: options a worker would refuse are refused before any thread starts, and the names
  const names = eventStages(spec.stages).map((s) => s.name);
  const pool = new WorkerPool(spec.stages, o, names);
  const reporters = names.map((name) => statsOnly(name, pool));
  // a live source's idle tick reaches the last of them (the runner gives the sink no empty batch): on to the workers
  reporters[reporters.length - 1].tick = (sec, nsec) => {
    pool.tick(sec, nsec);
    return [];
  };
  return { source: spec.source, stages: [spec.frames, ...reporters], sink: pool, options: spec.options };
}

/** a stage that passes frames on untouched and reports a worker stage's merged counters */
function statsOnly(name: string, pool: WorkerPool): Stage<Frame, Frame> {
  return { name, push: (b) => b, flush: () => [], stats: () => pool.stageStats(name) };
}

/** where the sources are: the bundle is dist/pktflow.js, the sources src/pipeline/*.ts */
const FROM_SOURCE = __filename.endsWith('.ts');
const ROOT = FROM_SOURCE ? path.join(__dirname, '..', '..') : path.join(__dirname, '..');

const YOUNG_MB = 24;

interface Round {
  /** per worker: its NDJSON, null when it sent none */
  bufs: (Buffer | null)[];
  /** per worker: the output slot its NDJSON is in, -1 for none */
  outSlots: number[];
  left: number;
}

export class WorkerPool implements Sink<Frame> {
  readonly name = 'ndjson';
  private readonly workers: Worker[] = [];
  private readonly n: number;
  private readonly stream: Writable;
  /** the latest counters of each worker */
  private readonly workerStats: Record<string, Stats>[];
  private readonly rounds = new Map<number, Round>();
  private sent = 0;
  /** pcapng Decryption Secrets Blocks the source read (captureSecrets), as far as passed on: each worker gets them with its next frames */
  private secretsGeneration = captureSecrets.generation;
  private secretsSeen = 0;
  private secretsPending: { reset: boolean; blocks: { type: number; data: Buffer }[] }[] = [];
  private written = 0;
  private waiters: (() => void)[] = [];
  private error: Error | null = null;
  private flushed: ((m: FromWorker & { t: 'flushed' | 'clocks' }) => void)[] = [];
  /** the packet clock's second, for the ticks */
  private clockSec = -1;
  /** the last valid frame time, for frames whose time is not */
  private goodSec = -1;
  private goodNsec = 0;
  /** a stats event asked for by the runner: written after the workers' flush */
  private statsEvent: Record<string, Stats> | null = null;
  private ownSink: NdjsonSink<object> | null = null;
  closed = false;

  constructor(
    private readonly options: EventStagesOptions,
    o: WorkersOptions,
    private readonly names: string[],
  ) {
    this.n = o.workers;
    this.stream = o.stream ?? process.stdout;
    this.workerStats = Array.from({ length: this.n }, () => ({}));
    this.stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') this.closed = true;
      else this.fail(err);
      this.wake();
    });
    this.stream.on('drain', () => this.wake());
  }

  private start(): void {
    if (this.workers.length > 0) return;
    // loaded here: a run without --workers does not load worker_threads
    const { Worker } = require('node:worker_threads') as typeof import('node:worker_threads');
    for (let i = 0; i < this.n; i++) {
      const shared = sharedSlots();
      this.inSlots.push(inputSlots(shared));
      this.inFree.push(Array.from({ length: this.inSlots[i].length }, (_, k) => k));
      this.outSlots.push(outputSlots(shared));
      this.freeOut.push([]);
      const init: WorkerInit & { fromSource: boolean } = { options: this.options, index: i, shared, fromSource: FROM_SOURCE };
      // young generation: 3 semi-spaces of 8 MiB (V8's default grows to 16 MiB each; three isolates
      // at that size alone put 2 workers past the 256 MiB budget for no measurable gain)
      const w = new Worker(path.join(ROOT, 'bin', 'worker.js'), { workerData: init, execArgv: [], stdout: false, stderr: false, resourceLimits: { maxYoungGenerationSizeMb: YOUNG_MB } });
      w.unref();
      w.on('message', (m: FromWorker) => this.onMessage(i, m));
      w.on('error', (err) => this.fail(new ExplainedError(`worker ${i + 1}: ${err.message}`)));
      w.on('exit', (code) => {
        if (this.workers.length > 0 && this.error === null) this.fail(new ExplainedError(`worker ${i + 1} exited (${code})`));
      });
      this.workers.push(w);
    }
  }

  private fail(err: Error): void {
    this.error ??= err instanceof ExplainedError ? err : new ExplainedError(err.message);
    this.stop();
    this.wake();
    for (const f of this.flushed) f({ t: 'flushed', outSlot: -1, buf: null, len: 0, stats: {} });
    this.flushed = [];
  }

  /** terminate every worker (after the flush, or on an error) */
  private stop(): void {
    const ws = this.workers.splice(0);
    for (const w of ws) void w.terminate();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** per worker: its input slots, those free, its output slots, those written (to tell it with its next batch) */
  private readonly inSlots: InputSlot[][] = [];
  private readonly inFree: number[][] = [];
  private readonly outSlots: Buffer[][] = [];
  private readonly freeOut: number[][] = [];
  private inputsOutsideSlots = 0;

  /** a worker's NDJSON as a Buffer: a view of its output slot, or the buffer it sent */
  private output(i: number, o: Output): Buffer | null {
    if (o.len === 0) return null;
    return o.outSlot >= 0 ? this.outSlots[i][o.outSlot].subarray(0, o.len) : Buffer.from(o.buf!, 0, o.len);
  }

  private onMessage(i: number, m: FromWorker): void {
    if (m.t === 'error') {
      this.fail(new ExplainedError(m.message));
      return;
    }
    if (m.stats !== null) this.workerStats[i] = m.stats;
    if (m.t === 'flushed' || m.t === 'clocks') {
      this.flushed[i]?.(m);
      return;
    }
    if (m.slot >= 0) this.inFree[i].push(m.slot);
    const r = this.rounds.get(m.round)!;
    r.bufs[i] = this.output(i, m);
    r.outSlots[i] = m.outSlot;
    r.left--;
    this.writeReady();
  }

  /** the rounds all of whose workers replied, in order */
  private writeReady(): void {
    for (let r = this.rounds.get(this.written); r !== undefined && r.left === 0; r = this.rounds.get(this.written)) {
      this.rounds.delete(this.written++);
      for (let k = 0; k < r.bufs.length; k++) {
        const b = r.bufs[k];
        const slot = r.outSlots[k];
        const free = () => {
          if (slot >= 0) this.freeOut[k].push(slot);
        };
        if (b !== null && !this.closed) this.stream.write(b, free);
        else free();
      }
    }
    this.wake();
  }

  write(batch: Frame[]): boolean {
    if (this.error !== null) throw this.error;
    if (this.closed) return false;
    if (batch.length > 0 && !isFrame(batch[0])) {
      // the runner's stats event: it goes after the workers' flush (end())
      this.statsEvent = (batch[0] as unknown as { stats: Record<string, Stats> }).stats;
      return true;
    }
    if (batch.length === 0) return true;
    this.start();
    this.deal(batch, null);
    return this.sent - this.written < WINDOW && !this.stream.writableNeedDrain;
  }

  /** one round: the batch's frames to their workers, with the ticks of the seconds each did not see */
  /** the clock moved on with no frame (a live source's idle tick): to every worker */
  tick(sec: number, nsec: number): void {
    if (this.error !== null || this.closed) return;
    this.start();
    this.deal([], [sec, nsec]);
  }

  private deal(batch: Frame[], idle: [number, number] | null): void {
    const n = this.n;
    const owner = new Int32Array(batch.length);
    const count = new Int32Array(n);
    const bytes = new Float64Array(n);
    // per worker, in order: [frame index, kind, sec, nsec]: a tick (MARK_TICK) before that frame, or the
    // time of the last valid frame before it, a damaged one (MARK_GOOD_TIME)
    const marks: number[][] = Array.from({ length: n }, () => []);
    for (let i = 0; i < batch.length; i++) {
      const f = batch[i];
      const h = flowHash(f, true);
      const w = h <= 0 ? 0 : h % n;
      owner[i] = w;
      let sec = f.tsSec;
      let nsec = f.tsNsec;
      if (timeValid(f)) {
        this.goodSec = sec;
        this.goodNsec = nsec;
      } else {
        // what the decode stage will make of it, as in one thread: the time of the valid frame before
        if (this.goodSec < 0) {
          for (let j = i + 1; j < batch.length; j++) {
            if (timeValid(batch[j])) {
              this.goodSec = batch[j].tsSec;
              this.goodNsec = batch[j].tsNsec;
              break;
            }
          }
        }
        sec = Math.max(0, this.goodSec);
        nsec = this.goodSec < 0 ? 0 : this.goodNsec;
        if (this.goodSec >= 0) marks[w].push(count[w], MARK_GOOD_TIME, sec, nsec);
      }
      if (sec > this.clockSec) {
        this.clockSec = sec;
        for (let k = 0; k < n; k++) if (k !== w) marks[k].push(count[k], MARK_TICK, sec, nsec);
      }
      count[w]++;
      bytes[w] += f.data.length;
    }
    // secrets read since the last round, for every worker before its next frames
    if (captureSecrets.generation !== this.secretsGeneration || captureSecrets.blocks.length > this.secretsSeen) {
      const reset = captureSecrets.generation !== this.secretsGeneration;
      if (reset) this.secretsSeen = 0;
      const blocks = captureSecrets.blocks.slice(this.secretsSeen);
      for (let k = 0; k < n; k++) {
        const p = (this.secretsPending[k] ??= { reset: false, blocks: [] });
        if (reset) p.blocks = [];
        p.reset ||= reset;
        p.blocks.push(...blocks);
      }
      this.secretsGeneration = captureSecrets.generation;
      this.secretsSeen = captureSecrets.blocks.length;
    }
    const round: Round = { bufs: new Array(n).fill(null), outSlots: new Array(n).fill(-1), left: 0 };
    const msgs: (ToWorker & { t: 'batch' })[] = [];
    // each worker's frames go into a free input slot, or (too many, or none free) two new transferred buffers
    const metas: Float64Array[] = [];
    const views: Buffer[] = [];
    for (let k = 0; k < n; k++) {
      const c = count[k];
      const send = c > 0 || marks[k].length > 0 || idle !== null;
      const fits = send && c <= SLOT_FRAMES && bytes[k] <= SLOT_DATA && this.inFree[k].length > 0;
      const slot = fits ? this.inFree[k].pop()! : -1;
      const meta = slot >= 0 ? this.inSlots[k][slot].meta : new Float64Array(send ? c * META_FIELDS + c + 1 : 0);
      const data = slot >= 0 ? null : new ArrayBuffer(send ? bytes[k] : 0);
      metas.push(meta);
      views.push(slot >= 0 ? this.inSlots[k][slot].data : Buffer.from(data!));
      // the secrets read since this worker's last batch go with it, before its frames
      const sp = send ? this.secretsPending[k] : undefined;
      if (send) this.secretsPending[k] = { reset: false, blocks: [] };
      const secrets = sp !== undefined && (sp.reset || sp.blocks.length > 0) ? sp : null;
      msgs.push({ t: 'batch', round: this.sent, slot, meta: slot >= 0 ? null : meta, data, n: c, marks: marks[k], idle, freeOut: [], secrets });
      if (send) round.left++;
      if (send && slot < 0) this.inputsOutsideSlots++;
    }
    // the frames' fields and bytes into each worker's slot
    const at = new Int32Array(n);
    const off = new Float64Array(n);
    for (let i = 0; i < batch.length; i++) {
      const w = owner[i];
      const f = batch[i];
      const j = at[w]++;
      const meta = metas[w];
      const b = j * META_FIELDS;
      meta[b] = f.tsSec;
      meta[b + 1] = f.tsNsec;
      meta[b + 2] = f.linkType;
      meta[b + 3] = f.origLen;
      meta[b + 4] = f.iface;
      meta[count[w] * META_FIELDS + j] = off[w];
      f.data.copy(views[w], off[w]);
      off[w] += f.data.length;
    }
    this.rounds.set(this.sent, round);
    for (let k = 0; k < n; k++) {
      const m = msgs[k];
      if (count[k] === 0 && marks[k].length === 0 && idle === null) continue;
      metas[k][m.n * META_FIELDS + m.n] = off[k];
      m.freeOut = this.freeOut[k].splice(0);
      this.workers[k].postMessage(m, m.slot >= 0 ? [] : [m.meta!.buffer as ArrayBuffer, m.data!]);
    }
    this.sent++;
    if (round.left === 0) this.writeReady();
  }

  drained(): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.error !== null || this.closed || (this.sent - this.written < WINDOW && !this.stream.writableNeedDrain)) resolve();
        else this.waiters.push(check);
      };
      check();
    });
  }

  /** everything dealt so far is written (a committing source may then commit) */
  allAcked(): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.error !== null || this.closed || this.written === this.sent) resolve();
        else this.waiters.push(check);
      };
      check();
    });
  }

  async end(): Promise<void> {
    if (this.workers.length > 0 && this.error === null) {
      await this.allAcked();
      const ask = <T>(m: ToWorker) =>
        Promise.all(
          this.workers.map(
            (w, i) =>
              new Promise<T>((resolve) => {
                this.flushed[i] = resolve as (m: FromWorker) => void;
                w.postMessage(m);
              }),
          ),
        );
      // every stage flushes at the latest packet time any worker's copy of it reached, as the one copy would
      const clocks: Record<string, [number, number]> = {};
      for (const r of await ask<{ clocks?: Record<string, [number, number]> }>({ t: 'clocks' })) {
        for (const [name, [sec, nsec]] of Object.entries(r.clocks ?? {})) {
          const c = clocks[name];
          if (c === undefined || sec > c[0] || (sec === c[0] && nsec > c[1])) clocks[name] = [sec, nsec];
        }
      }
      const replies = this.error === null ? await ask<FromWorker & { t: 'flushed' }>({ t: 'flush', clocks }) : [];
      this.stop();
      if (this.error === null) {
        for (let i = 0; i < replies.length; i++) {
          const b = this.output(i, replies[i]);
          if (b !== null && !this.closed) this.stream.write(b);
        }
      }
    }
    this.stop();
    if (this.error !== null) throw this.error;
    if (this.statsEvent !== null && !this.closed) {
      // the runner's counters, with the workers' final ones
      const stats: Record<string, Stats> = { ...this.statsEvent };
      for (const name of this.names) stats[name] = this.stageStats(name);
      stats.sink = this.stats();
      this.ownSink = new NdjsonSink<object>({ stream: this.stream });
      this.ownSink.write([{ type: 'stats', stats }]);
    }
    if (this.closed) return;
    const s = this.stream;
    if (s === process.stdout || s === process.stderr) {
      await new Promise<void>((resolve) => s.write('', () => resolve()));
      return;
    }
    await new Promise<void>((resolve) => s.end(resolve));
  }

  /** a worker stage's counters, summed over the workers */
  stageStats(name: string): Stats {
    return sumStats(this.workerStats.map((w) => w[name]).filter((s) => s !== undefined));
  }

  stats(): Stats {
    const s = sumStats(this.workerStats.map((w) => w.sink).filter((x) => x !== undefined));
    // batches too large for a slot (shown only when some were: they mean the slots are too small for the input's batches)
    if (this.inputsOutsideSlots > 0) s.inputs_outside_slots = this.inputsOutsideSlots;
    if (this.ownSink !== null) {
      const own = this.ownSink.stats();
      return sumStats([s, own]);
    }
    return Object.keys(s).length > 0 ? s : { events: 0, bytes: 0 };
  }
}

function isFrame(x: unknown): x is Frame {
  return typeof x === 'object' && x !== null && (x as Frame).data instanceof Uint8Array && typeof (x as Frame).tsNsec === 'number';
}

/** counters summed key by key (a key missing in one counts as 0); the shape is the first's */
export function sumStats(all: Stats[]): Stats {
  const out: Stats = {};
  for (const s of all) add(out, s);
  return out;
}

function add(into: Stats, s: Stats): void {
  for (const k of Object.keys(s)) {
    const v: StatValue = s[k];
    if (typeof v === 'number') into[k] = ((into[k] as number | undefined) ?? 0) + v;
    else {
      const sub = (into[k] ??= {}) as Stats;
      add(sub, v);
    }
  }
}
