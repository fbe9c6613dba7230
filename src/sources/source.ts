import type { Frame } from '../core/frame';
import type { Stats } from '../core/stage';

/**
 * A source yields batches of Frames. Pulling is the flow control: a source reads
 * nothing more until the next batch is asked for, so a slow sink slows the source.
 */
export interface Source {
  readonly name: string;
  batches(): AsyncIterable<Frame[]>;
  stats(): Stats;
  /** stop early (shutdown); batches() then ends */
  close(): void;
  /**
   * the sink acknowledged everything made from the last batch: a source that commits
   * (Kafka) commits that batch's offsets now (at-least-once)
   */
  acknowledge?(): void;
  /**
   * the runner hands over a function that drops all state in the stages unemitted: a
   * source whose frames are read again (a Kafka group rebalance) calls it first
   */
  setStateDiscarder?(discard: () => void): void;
  /**
   * after the pipeline flushed and the sink ended: release connections, and when
   * `commit` (everything was delivered) make the final commits
   */
  finish?(commit: boolean): Promise<void>;
  /** how far a source of known size has got, for progress displays */
  progress?(): { done: number; total: number } | null;
}
