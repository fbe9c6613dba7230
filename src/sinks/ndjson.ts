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
/** output buffers kept for reuse once written */
const ARENAS_KEPT = 4;

/** an output buffer: events are encoded at `off`, the pieces before it are written or being written */
class Arena {
  readonly buf: Buffer;
  off = 0;
  /** writes of its pieces the stream has not called back yet */
  pending = 0;
  /** no longer appended to: free for reuse when `pending` reaches 0 */
  retired = false;
  constructor(n: number) {
    this.buf = Buffer.allocUnsafeSlow(n);
  }
}

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
  private arena = new Arena(ARENA_BYTES);
  private readonly free: Arena[] = [];
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
    let a = this.arena;
    let from = a.off;
    let ok = true;
    for (let i = 0; i < batch.length; i++) {
      const line = JSON.stringify(batch[i]);
      // UTF-8 is at most 3 bytes per UTF-16 unit; counted exactly only when that bound does not fit
      if (a.off + line.length * 3 + 1 > a.buf.length) {
        const need = Buffer.byteLength(line) + 1;
        if (a.off + need > a.buf.length) {
          ok = this.put(a, from) && ok;
          a = this.next(need);
          from = 0;
        }
      }
      a.off += a.buf.write(line, a.off);
      a.buf[a.off++] = 10;
    }
    this.events += batch.length;
    return this.put(a, from) && ok;
  }

  /** write the arena's bytes from `from` on */
  private put(a: Arena, from: number): boolean {
    if (a.off === from) return true;
    this.bytes += a.off - from;
    a.pending++;
    return this.stream.write(a.buf.subarray(from, a.off), () => {
      if (--a.pending === 0 && a.retired) this.reuse(a);
    });
  }

  /** the current arena is full: a free one (or a new one) with room for `need` bytes takes its place */
  private next(need: number): Arena {
    const old = this.arena;
    old.retired = true;
    if (old.pending === 0) this.reuse(old);
    const i = this.free.findIndex((f) => f.buf.length >= need);
    this.arena = i >= 0 ? this.free.splice(i, 1)[0] : new Arena(Math.max(ARENA_BYTES, need));
    return this.arena;
  }

  private reuse(a: Arena): void {
    a.retired = false;
    a.off = 0;
    if (this.free.length < ARENAS_KEPT) this.free.push(a);
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
