import { Writable } from 'node:stream';
import { makeFrame, type Frame } from '../core/frame';
import { sequence, StageError, type Stage, type Stats } from '../core/stage';
import type { Event } from '../events/types';
import { NdjsonSink } from '../sinks/ndjson';
import { captureSecrets } from '../sources/secrets';
import { eventStages, type EventStagesOptions } from './presets';

/**
 * One worker thread of `--workers N` (src/pipeline/workers.ts is the main thread's
 * side): decode → TCP reorderer → analyzers over the frames the main thread deals
 * it, and the events serialised to NDJSON here, so serialisation runs on every core
 * too.
 *
 * Memory shared, not passed. Each worker has two SharedArrayBuffers made once by the
 * main thread, cut into SLOTS slots: input slots (a Float64Array of per-frame fields,
 * then the frames' bytes one after another) and output slots (a batch's NDJSON).
 * A batch message names its input slot and the output slots the main thread has
 * written since (free again); the reply names the input slot (free again) and the
 * output slot that holds the NDJSON. The frames are views into the slot, not copies
 * (valid during the batch, as the pipeline's frames always are: the reorderer copies
 * what it keeps). A batch too large for a slot, or one that finds none free, travels
 * in transferred ArrayBuffers instead, and so does NDJSON that outgrows its slot.
 * Passing a fresh ArrayBuffer per batch each way (about 1 MB per round) made V8 count
 * it as external memory: twice the collections and ~0.5 s of GC threads per run.
 */

/** per-frame fields in the meta array */
export const META_FIELDS = 5; // tsSec, tsNsec, linkType, origLen, iface (capLen: the next offset)

/** slots per worker each way: the rounds in flight (WINDOW, 8) and those being written */
export const SLOTS = 10;
/** frames and frame bytes one input slot holds (a 256 KiB file read gives a few hundred frames) */
export const SLOT_FRAMES = 4096;
export const SLOT_DATA = 512 * 1024;
/** doubles of an input slot's meta: META_FIELDS per frame, then n + 1 byte offsets */
const SLOT_META = SLOT_FRAMES * (META_FIELDS + 1) + 1;
const IN_SLOT_BYTES = SLOT_META * 8 + SLOT_DATA;
/** bytes of one output slot (a round's NDJSON is typically 100–400 KB) */
export const OUT_SLOT = 1024 * 1024;

export interface SharedSlots {
  input: SharedArrayBuffer;
  output: SharedArrayBuffer;
}

export function sharedSlots(): SharedSlots {
  return { input: new SharedArrayBuffer(SLOTS * IN_SLOT_BYTES), output: new SharedArrayBuffer(SLOTS * OUT_SLOT) };
}

export interface InputSlot {
  meta: Float64Array;
  data: Buffer;
}

export function inputSlots(s: SharedSlots): InputSlot[] {
  return Array.from({ length: SLOTS }, (_, i) => ({
    meta: new Float64Array(s.input, i * IN_SLOT_BYTES, SLOT_META),
    data: Buffer.from(s.input, i * IN_SLOT_BYTES + SLOT_META * 8, SLOT_DATA),
  }));
}

export function outputSlots(s: SharedSlots): Buffer[] {
  return Array.from({ length: SLOTS }, (_, i) => Buffer.from(s.output, i * OUT_SLOT, OUT_SLOT));
}

export interface WorkerInit {
  options: EventStagesOptions;
  index: number;
  shared: SharedSlots;
}

export const MARK_TICK = 0;
export const MARK_GOOD_TIME = 1;

/** main → worker */
export type ToWorker =
  | {
      t: 'batch';
      round: number;
      /** the input slot holding the frames; -1: they are in `meta` and `data` */
      slot: number;
      /** META_FIELDS numbers per frame, then n + 1 byte offsets into `data` */
      meta: Float64Array | null;
      data: ArrayBuffer | null;
      n: number;
      /**
       * [frame index, kind, sec, nsec]...: MARK_TICK, the packet clock reached a new second in a
       * frame dealt elsewhere (the tick comes before that frame); MARK_GOOD_TIME, that frame's time
       * is damaged and the last valid one before it, in any worker, was this
       */
      marks: number[];
      /** a live source's idle tick (wall clock: sec, nsec) after the frames */
      idle: [number, number] | null;
      /** output slots written since the last batch: free again */
      freeOut: number[];
      /** pcapng Decryption Secrets Blocks the source read since this worker's last batch (reset: a new capture), before its frames */
      secrets: { reset: boolean; blocks: { type: number; data: Uint8Array }[] } | null;
    }
  /** the stages' clocks, asked before the flush */
  | { t: 'clocks' }
  /** end of input: each stage's clock set to the latest over the workers, then flushed */
  | { t: 'flush'; clocks: Record<string, [number, number]> };

/** NDJSON back to the main thread: `len` bytes in output slot `outSlot`, or in `buf` (outSlot -1) */
export interface Output {
  outSlot: number;
  buf: ArrayBuffer | null;
  len: number;
}

/** worker → main */
export type FromWorker =
  | ({ t: 'out'; round: number; slot: number; stats: Record<string, Stats> | null } & Output)
  | { t: 'clocks'; clocks: Record<string, [number, number]>; stats: null }
  | ({ t: 'flushed'; stats: Record<string, Stats> } & Output)
  | { t: 'error'; message: string };

/** what the events of one batch serialise to: UTF-8 in a free output slot (or, past its size, a buffer of its own) */
class Collector extends Writable {
  private out: Buffer | null = null;
  private outSlot = -1;
  private len = 0;
  /** outputs too large for a slot, or that found none free */
  outside = 0;
  /** output slots the main thread has written (all of them at first) */
  readonly free: number[];
  constructor(private readonly slots: Buffer[]) {
    // the NDJSON sink writes Buffers (a string would be made one by the stream)
    super({ highWaterMark: 1 << 30 });
    this.free = slots.map((_, i) => i);
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    const need = this.len + chunk.length;
    if (this.out === null || need > this.out.length) this.grow(need);
    this.len += chunk.copy(this.out!, this.len);
    cb();
  }
  /** room for `need` bytes: a free slot to start with, a buffer of its own past a slot's size */
  private grow(need: number): void {
    const slot = this.out === null && need <= OUT_SLOT && this.free.length > 0 ? this.free.pop()! : -1;
    const next = slot >= 0 ? this.slots[slot] : Buffer.allocUnsafeSlow(Math.max(OUT_SLOT, need * 2));
    if (this.out !== null) this.out.copy(next, 0, 0, this.len);
    if (this.outSlot >= 0) this.free.push(this.outSlot);
    if (slot < 0 && (this.out === null || this.outSlot >= 0)) this.outside++;
    this.out = next;
    this.outSlot = slot;
  }
  /** everything written since the last take */
  take(): Output {
    if (this.len === 0) return { outSlot: -1, buf: null, len: 0 };
    const r: Output = { outSlot: this.outSlot, buf: this.outSlot >= 0 ? null : (this.out!.buffer as ArrayBuffer), len: this.len };
    this.out = null;
    this.outSlot = -1;
    this.len = 0;
    return r;
  }
}

/** the worker's loop: set up from workerData, then one reply per message */
export function workerMain(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { parentPort, workerData } = require('node:worker_threads') as typeof import('node:worker_threads');
  const init = workerData as WorkerInit;
  const port = parentPort!;
  const fail = (err: unknown) => port.postMessage({ t: 'error', message: (err as Error)?.message ?? String(err) } satisfies FromWorker);
  let stages: ReturnType<typeof eventStages>;
  try {
    stages = eventStages(init.options);
  } catch (err) {
    fail(err);
    return;
  }
  // the stages as one, of frames to events (sequence's chaining: push, tick and flush through all three)
  const decoder = stages[0];
  const all = sequence<unknown>('worker', stages as unknown as Stage<unknown, unknown>[]) as unknown as Stage<Frame, Event>;
  const input = inputSlots(init.shared);
  const collector = new Collector(outputSlots(init.shared));
  const reply = (o: Output, base: object, transfer: ArrayBuffer[]) => {
    if (o.buf !== null) transfer.push(o.buf);
    port.postMessage({ ...base, ...o }, transfer);
  };
  const sink = new NdjsonSink({ stream: collector });
  const stats = () => {
    const s: Record<string, Stats> = {};
    for (const st of stages) s[st.name] = st.stats();
    s.sink = sink.stats();
    if (collector.outside > 0) s.sink.outputs_outside_slots = collector.outside;
    return s;
  };
  let lastStats = 0;
  // for test/workers.test.ts only: the first worker fails at its first batch, as a stage that throws or a thread that dies
  const fault = process.env.PKTFLOW_TEST_WORKER_FAULT;
  let failed = false;
  port.on('message', (m: ToWorker) => {
    if (failed) return;
    try {
      if (m.t === 'clocks') {
        const clocks: Record<string, [number, number]> = {};
        for (const st of stages) if (hasClock(st)) clocks[st.name] = st.clock();
        port.postMessage({ t: 'clocks', clocks, stats: null } satisfies FromWorker);
        return;
      }
      if (m.t === 'flush') {
        for (const st of stages) if (hasClock(st) && m.clocks[st.name] !== undefined) st.setClock(...m.clocks[st.name]);
        const events = all.flush();
        for (let i = 0; i < events.length; i += 1024) sink.write(events.slice(i, i + 1024));
        reply(collector.take(), { t: 'flushed', stats: stats() }, []);
        return;
      }
      if (fault !== undefined && init.index === 0) {
        if (fault === 'exit') process.exit(3);
        throw new StageError('decode', new Error('test fault'));
      }
      if (m.secrets !== null) {
        if (m.secrets.reset) captureSecrets.reset();
        for (const b of m.secrets.blocks) captureSecrets.add(b.type, Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength));
      }
      for (const k of m.freeOut) collector.free.push(k);
      const frames = m.slot >= 0 ? framesOf(input[m.slot].meta, input[m.slot].data, m.n) : framesOf(m.meta!, Buffer.from(m.data!), m.n);
      let from = 0;
      const mk = m.marks;
      for (let i = 0; i < mk.length; i += 4) {
        const at = mk[i];
        if (at > from) sink.write(all.push(frames.slice(from, at)));
        from = at;
        if (mk[i + 1] === MARK_TICK) sink.write(all.tick!(mk[i + 2], mk[i + 3]));
        else decoder.goodTime(mk[i + 2], mk[i + 3]);
      }
      if (from < frames.length) sink.write(all.push(from === 0 ? frames : frames.slice(from)));
      if (m.idle !== null) sink.write(all.tick!(m.idle[0], m.idle[1]));
      const now = Date.now();
      let s: Record<string, Stats> | null = null;
      if (now - lastStats >= 500) {
        lastStats = now;
        s = stats();
      }
      // the input slot is free again (transferred input buffers are simply dropped)
      reply(collector.take(), { t: 'out', round: m.round, slot: m.slot, stats: s }, []);
    } catch (err) {
      failed = true;
      fail(err);
    }
  });
}

interface Clocked {
  name: string;
  clock(): [number, number];
  setClock(sec: number, nsec: number): void;
}

function hasClock(s: object): s is Clocked {
  return typeof (s as Clocked).setClock === 'function';
}

function framesOf(meta: Float64Array, data: Buffer, n: number): Frame[] {
  const frames: Frame[] = new Array(n);
  const offs = n * META_FIELDS;
  for (let i = 0, m = 0; i < n; i++, m += META_FIELDS) {
    const start = meta[offs + i];
    const bytes = data.subarray(start, meta[offs + i + 1]);
    frames[i] = makeFrame(meta[m], meta[m + 1], meta[m + 2], meta[m + 3], meta[m + 4], bytes);
  }
  return frames;
}
