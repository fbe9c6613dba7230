import type { Stats } from '../core/stage';
import { DiscardSink } from './discard';

/** Keeps every item in memory: for tests and for embedding pktflow in a program. */
export class CollectSink<T> extends DiscardSink<T> {
  override readonly name: string = 'collect';
  readonly items: T[] = [];

  override write(batch: T[]): boolean {
    for (let i = 0; i < batch.length; i++) this.items.push(batch[i]);
    return super.write(batch);
  }

  override stats(): Stats {
    return { items: this.items.length };
  }
}

export function collect<T>(): CollectSink<T> {
  return new CollectSink<T>();
}
