import type { Stats } from './stage';

/** Counters keyed by reason, for drops and anomalies: cold paths only. */
export class ReasonCounter {
  private readonly counts = new Map<string, number>();
  total = 0;

  add(reason: string, n = 1): void {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + n);
    this.total += n;
  }

  get(reason: string): number {
    return this.counts.get(reason) ?? 0;
  }

  toJSON(): Stats {
    const out: Stats = {};
    for (const k of [...this.counts.keys()].sort()) out[k] = this.counts.get(k)!;
    return out;
  }
}

/**
 * What every transaction analyzer counts, for the accounting its stats show:
 * `started = transactions (emitted) + dropped + pending` (pending 0 at the end of a run).
 * Each protocol's counters extend it with their own.
 */
export class TransactionCounters {
  started = 0;
  readonly dropped = new ReasonCounter();
  transactions = 0;
  /** transactions waiting over all connections */
  pending = 0;
  /** transactions with bytes lost to the capture */
  partial = 0;
  readonly unmatched = new ReasonCounter();
  readonly violations = new ReasonCounter();
}
