import type { Writable } from 'node:stream';
import type { Stats } from '../core/stage';
import type { Event } from '../events/types';
import type { Sink } from './sink';

export interface NdjsonOptions {
  /** where to write (default process.stdout) */
  stream?: Writable;
}

/**
 * One JSON object per line. A batch becomes one write (pino's lesson: few, large
 * writes); the stream's own buffer is the bound, and a full buffer pauses the
 * source. A reader that goes away (`pktflow read x | head`) ends the run quietly.
 * It takes events; a pipeline whose last stage makes objects of its own says so:
 * `stdoutNdjson<Summary>()`.
 */
export class NdjsonSink<T extends object = Event> implements Sink<T> {
  readonly name = 'ndjson';
  readonly takes = 'Event';
  private readonly stream: Writable;
  private waiting: Promise<void> | null = null;
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
    // writes of up to ~64 KiB: large enough to be few, small enough that the text stays in
    // V8's young generation (a string past 128 KiB is allocated as an old object, and a
    // batch of a flood's events made one per batch that only a full collection frees)
    let text = '';
    let ok = true;
    for (let i = 0; i < batch.length; i++) {
      text += JSON.stringify(batch[i]) + '\n';
      if (text.length >= 65_536) {
        this.bytes += text.length;
        ok = this.stream.write(text) && ok;
        text = '';
      }
    }
    this.events += batch.length;
    if (text.length > 0) {
      this.bytes += text.length;
      ok = this.stream.write(text) && ok;
    }
    return ok;
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
