import type { Stats } from '../core/stage';
import type { Sink } from './sink';

/** Keeps every item in memory: for tests and for embedding pktflow in a program. */
export class CollectSink<T> implements Sink<T> {
  readonly name = 'collect';
  readonly items: T[] = [];
  readonly closed = false;

  write(batch: T[]): boolean {
    for (let i = 0; i < batch.length; i++) this.items.push(batch[i]);
    return true;
  }

  drained(): Promise<void> {
    return Promise.resolve();
  }

  end(): Promise<void> {
    return Promise.resolve();
  }

  stats(): Stats {
    return { items: this.items.length };
  }
}

export function collect<T>(): CollectSink<T> {
  return new CollectSink<T>();
}
