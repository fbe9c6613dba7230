import type { DataKind, Stats } from '../core/stage';

/**
 * Where batches end. `write` returns false when the sink wants the pipeline to
 * wait (`drained()`) before the source reads more: that is the flow control.
 */
export interface Sink<T> {
  readonly name: string;
  /** what it takes, for the run-time check of a pipeline (as a stage's `takes`) */
  readonly takes?: DataKind;
  write(batch: T[]): boolean;
  drained(): Promise<void>;
  /** resolves when everything written so far is acknowledged (a broker's acks); absent: writing is acknowledging */
  allAcked?(): Promise<void>;
  /** flush and finish; resolves when everything written has been acknowledged */
  end(): Promise<void>;
  stats(): Stats;
  /** set when the consumer went away (stdout closed): the run stops quietly */
  readonly closed: boolean;
}
