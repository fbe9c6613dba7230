import type { Stats } from '../core/stage';
import type { Sink } from './sink';

/** Counts what arrives and keeps nothing: for measuring the stages alone. */
export class DiscardSink<T> implements Sink<T> {
  readonly name: string = 'discard';
  readonly closed = false;
  count = 0;

  write(batch: T[]): boolean {
    this.count += batch.length;
    return true;
  }

  drained(): Promise<void> {
    return Promise.resolve();
  }

  end(): Promise<void> {
    return Promise.resolve();
  }

  stats(): Stats {
    return { items: this.count };
  }
}

export function discard<T>(): DiscardSink<T> {
  return new DiscardSink<T>();
}
