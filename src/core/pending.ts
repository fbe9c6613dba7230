import type { Hold } from './frame';

/**
 * Requests waiting for their responses, keyed, oldest first (a Map keeps insertion
 * order), bounded. Whatever leaves without a response goes to `unanswered` with the
 * reason, so the analyzer can emit it.
 * An entry's `hold` (its request's frame, for Kafka commits) is released when it leaves.
 */
export class PendingTable<V extends { sec: number; hold: Hold | null }> {
  private readonly map = new Map<string, V>();

  constructor(
    private readonly max: number,
    private readonly unanswered: (v: V, reason: 'replaced' | 'pending_limit' | 'timeout' | 'flushed') => void,
  ) {}

  get size(): number {
    return this.map.size;
  }

  /** a new request; one already waiting under the same key leaves unanswered */
  add(key: string, v: V): void {
    const old = this.map.get(key);
    if (old !== undefined) {
      this.map.delete(key);
      this.leave(old, 'replaced');
    }
    if (this.map.size >= this.max) {
      const [k, o] = this.map.entries().next().value as [string, V];
      this.map.delete(k);
      this.leave(o, 'pending_limit');
    }
    this.map.set(key, v);
  }

  /** the request waiting under this key, left waiting (a response that comes in parts) */
  get(key: string): V | undefined {
    return this.map.get(key);
  }

  /** the response came: the request it answers, if one waits */
  take(key: string): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      v.hold?.release();
    }
    return v;
  }

  /** requests older than timeoutSec (packet time) leave unanswered */
  expire(nowSec: number, timeoutSec: number): void {
    for (const [k, v] of this.map) {
      if (nowSec - v.sec < timeoutSec) break;
      this.map.delete(k);
      this.leave(v, 'timeout');
    }
  }

  /** one request, or all (end of input), leave unanswered */
  flush(key?: string): void {
    if (key !== undefined) {
      const v = this.take(key);
      if (v !== undefined) this.unanswered(v, 'flushed');
      return;
    }
    for (const [k, v] of this.map) {
      this.map.delete(k);
      this.leave(v, 'flushed');
    }
  }

  /** forget every request without a word (their frames will be read again) */
  discard(): void {
    for (const v of this.map.values()) v.hold?.release();
    this.map.clear();
  }

  private leave(v: V, reason: 'replaced' | 'pending_limit' | 'timeout' | 'flushed'): void {
    v.hold?.release();
    this.unanswered(v, reason);
  }
}
