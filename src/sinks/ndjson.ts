import type { Writable } from 'node:stream';
import type { Stats } from '../core/stage';
import type { Event } from '../events/types';
import type { Sink } from './sink';

export interface NdjsonOptions {
  /** where to write (default process.stdout) */
  stream?: Writable;
}

/** bytes of one output buffer (an event longer than that gets one of its own size) */
const ARENA_BYTES = 1 << 20;
/** output buffers kept for reuse */
const ARENAS_KEPT = 4;

/**
 * One JSON object per line. A batch becomes one write (pino's lesson: few, large
 * writes); the stream's own buffer is the bound, and a full buffer pauses the
 * source. The lines are encoded as UTF-8 straight into large output buffers that are
 * reused once the stream has written them: no concatenated text, and no Buffer made
 * from it for every write (which was a copy of the whole output, and as external
 * memory a cause of V8's collections). A reader that goes away (`pktflow read x | head`) ends the run quietly.
 * It takes events; a pipeline whose last stage makes objects of its own says so:
 * `stdoutNdjson<Summary>()`.
 */
export class NdjsonSink<T extends object = Event> implements Sink<T> {
  readonly name = 'ndjson';
  readonly takes = 'Event';
  private readonly stream: Writable;
  private waiting: Promise<void> | null = null;
  /** the output buffer being filled, from `off`; the bytes before were written, or handed to the stream */
  private arena: Buffer = Buffer.allocUnsafeSlow(ARENA_BYTES);
  private off = 0;
  /** full output buffers whose bytes the stream may still hold, and free ones */
  private busy: Buffer[] = [];
  private readonly free: Buffer[] = [];
  events = 0;
  bytes = 0;
  closed = false;

  constructor(options: NdjsonOptions = {}) {
    this.stream = options.stream ?? process.stdout;
    this.stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') this.closed = true;
      else throw err;
    });
  }

  write(batch: T[]): boolean {
    if (this.closed || batch.length === 0) return !this.closed;
    if (this.stream.writableLength === 0) this.recycle();
    let from = this.off;
    let ok = true;
    for (let i = 0; i < batch.length; i++) {
      const line = JSON.stringify(batch[i]);
      // UTF-8 is at most 3 bytes per UTF-16 unit; counted exactly only when that bound does not fit
      if (this.off + line.length * 3 + 1 > this.arena.length) {
        const need = Buffer.byteLength(line) + 1;
        if (this.off + need > this.arena.length) {
          ok = this.put(from) && ok;
          this.next(need);
          from = 0;
        }
      }
      this.off += this.arena.write(line, this.off);
      this.arena[this.off++] = 10;
    }
    this.events += batch.length;
    return this.put(from) && ok;
  }

  /**
   * Write the current buffer's bytes from `from` on. A stream that holds nothing
   * afterwards has written them (a file, /dev/null, a pipe with room: written at once),
   * so every buffer is free again; one that holds some (a pipe being read slowly) keeps
   * the buffers until it holds nothing (at the latest when it drains, which the runner
   * waits for before the next batch): its own backpressure bounds them.
   */
  private put(from: number): boolean {
    if (this.off === from) return true;
    this.bytes += this.off - from;
    const ok = this.stream.write(this.arena.subarray(from, this.off));
    if (this.stream.writableLength === 0) this.recycle();
    return ok;
  }

  /** the stream holds none of the bytes handed to it: every buffer is free again */
  private recycle(): void {
    this.off = 0;
    for (const b of this.busy) if (this.free.length < ARENAS_KEPT) this.free.push(b);
    this.busy = [];
  }

  /** the current buffer is full: a free one (or a new one) with room for `need` bytes takes its place */
  private next(need: number): void {
    if (this.off > 0) this.busy.push(this.arena);
    else if (this.free.length < ARENAS_KEPT) this.free.push(this.arena);
    const i = this.free.findIndex((b) => b.length >= need);
    this.arena = i >= 0 ? this.free.splice(i, 1)[0] : Buffer.allocUnsafeSlow(Math.max(ARENA_BYTES, need));
    this.off = 0;
  }

  drained(): Promise<void> {
    if (this.closed || !this.stream.writableNeedDrain) return Promise.resolve();
    this.waiting ??= new Promise<void>((resolve) => {
      const done = () => {
        this.stream.off('drain', done);
        this.stream.off('close', done);
        this.stream.off('error', done);
        this.waiting = null;
        resolve();
      };
      this.stream.on('drain', done);
      this.stream.on('close', done);
      this.stream.on('error', done);
    });
    return this.waiting;
  }

  async end(): Promise<void> {
    if (this.closed) return;
    const s = this.stream;
    if (s === process.stdout || s === process.stderr) {
      // stdout is never ended; wait until what was written is handed to the OS
      await new Promise<void>((resolve) => {
        s.write('', () => resolve());
      });
      return;
    }
    await new Promise<void>((resolve) => s.end(resolve));
  }

  stats(): Stats {
    return { events: this.events, bytes: this.bytes };
  }
}

export function stdoutNdjson<T extends object = Event>(options: NdjsonOptions = {}): NdjsonSink<T> {
  return new NdjsonSink<T>(options);
}
