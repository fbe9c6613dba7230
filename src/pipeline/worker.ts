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
 * too. Frames arrive as two transferred ArrayBuffers (a Float64Array of per-frame
 * fields and the frames' bytes, one after another); the frames are views into them,
 * not copies. The NDJSON goes back as one transferred ArrayBuffer per batch.
 */

/** per-frame fields in the meta array */
export const META_FIELDS = 5; // tsSec, tsNsec, linkType, origLen, iface (capLen: the next offset)

export interface WorkerInit {
  options: EventStagesOptions;
  index: number;
}

export const MARK_TICK = 0;
export const MARK_GOOD_TIME = 1;

/** main → worker */
export type ToWorker =
  | {
      t: 'batch';
      round: number;
      /** META_FIELDS numbers per frame, then n + 1 byte offsets into `data` */
      meta: Float64Array;
      data: ArrayBuffer;
      n: number;
      /**
       * [frame index, kind, sec, nsec]...: MARK_TICK, the packet clock reached a new second in a
       * frame dealt elsewhere (the tick comes before that frame); MARK_GOOD_TIME, that frame's time
       * is damaged and the last valid one before it, in any worker, was this
       */
      marks: number[];
      /** a live source's idle tick (wall clock: sec, nsec) after the frames */
      idle: [number, number] | null;
      /** pcapng Decryption Secrets Blocks the source read since this worker's last batch (reset: a new capture), before its frames */
      secrets: { reset: boolean; blocks: { type: number; data: Uint8Array }[] } | null;
    }
  /** the stages' clocks, asked before the flush */
  | { t: 'clocks' }
  /** end of input: each stage's clock set to the latest over the workers, then flushed */
  | { t: 'flush'; clocks: Record<string, [number, number]> };

/** worker → main */
export type FromWorker =
  | { t: 'out'; round: number; buf: ArrayBuffer | null; len: number; stats: Record<string, Stats> | null; meta: Float64Array; data: ArrayBuffer }
  | { t: 'clocks'; clocks: Record<string, [number, number]>; stats: null }
  | { t: 'flushed'; buf: ArrayBuffer | null; len: number; stats: Record<string, Stats> }
  | { t: 'error'; message: string };

/** what the events of one batch serialise to: the chunks a sink writes, collected */
class Collector extends Writable {
  chunks: (string | Buffer)[] = [];
  constructor() {
    super({ decodeStrings: false, highWaterMark: 1 << 30 });
  }
  override _write(chunk: string | Buffer, _enc: BufferEncoding, cb: () => void): void {
    // a sink may reuse its buffers after the write: a Buffer is copied
    this.chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk));
    cb();
  }
  /** everything written since the last take, as one buffer of its own (transferable) */
  take(): { buf: ArrayBuffer | null; len: number } {
    const c = this.chunks;
    if (c.length === 0) return { buf: null, len: 0 };
    this.chunks = [];
    let len = 0;
    for (const x of c) len += typeof x === 'string' ? Buffer.byteLength(x) : x.length;
    const out = Buffer.allocUnsafeSlow(len);
    let off = 0;
    for (const x of c) off += typeof x === 'string' ? out.write(x, off) : x.copy(out, off);
    return { buf: out.buffer as ArrayBuffer, len };
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
  const collector = new Collector();
  const sink = new NdjsonSink({ stream: collector });
  const stats = () => {
    const s: Record<string, Stats> = {};
    for (const st of stages) s[st.name] = st.stats();
    s.sink = sink.stats();
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
        const { buf, len } = collector.take();
        port.postMessage({ t: 'flushed', buf, len, stats: stats() } satisfies FromWorker, buf ? [buf] : []);
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
      const frames = framesOf(m.meta, m.data, m.n);
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
      const { buf, len } = collector.take();
      const now = Date.now();
      let s: Record<string, Stats> | null = null;
      if (now - lastStats >= 500) {
        lastStats = now;
        s = stats();
      }
      // the input buffers go back with the output, for the main thread to fill again
      const back: ArrayBuffer[] = [m.meta.buffer as ArrayBuffer, m.data];
      if (buf !== null) back.push(buf);
      port.postMessage({ t: 'out', round: m.round, buf, len, stats: s, meta: m.meta, data: m.data } satisfies FromWorker, back);
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

function framesOf(meta: Float64Array, data: ArrayBuffer, n: number): Frame[] {
  const frames: Frame[] = new Array(n);
  const offs = n * META_FIELDS;
  for (let i = 0, m = 0; i < n; i++, m += META_FIELDS) {
    const start = meta[offs + i];
    const bytes = Buffer.from(data, start, meta[offs + i + 1] - start);
    frames[i] = makeFrame(meta[m], meta[m + 1], meta[m + 2], meta[m + 3], meta[m + 4], bytes);
  }
  return frames;
}
