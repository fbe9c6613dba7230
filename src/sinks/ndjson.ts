import type { Writable } from 'node:stream';
import { appendByte, appendJson, pendingBytes, takeOutput } from '../core/json';
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
    // writes of ~64 KiB: large enough to be few, small enough not to hold much. The JSON
    // is written as bytes into large chunks (core/json): no string to build or encode
    let ok = true;
    for (let i = 0; i < batch.length; i++) {
      appendJson(batch[i]);
      appendByte(10);
      if (pendingBytes() >= 65_536) ok = this.flush() && ok;
    }
    this.events += batch.length;
    if (pendingBytes() > 0) ok = this.flush() && ok;
    return ok;
  }

  private flush(): boolean {
    const bytes = takeOutput();
    this.bytes += bytes.length;
    return this.stream.write(bytes);
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
