import type { FrameLog, Hold } from '../core/frame';

class HeldOffset implements Hold {
  released = false;
  constructor(
    readonly offset: number,
    private readonly log: PartitionLog,
  ) {}

  release(): void {
    if (this.released) return;
    this.released = true;
    this.log.live--;
  }
}

/**
 * The offsets of one partition that state in the pipeline still needs. Frames are
 * read in offset order, so holds are taken in offset order: the oldest live hold is
 * at the front once released ones are skipped. A commit may go up to that offset and
 * no further. Released holds behind a long-lived one are compacted away, so the queue
 * stays proportional to the live holds.
 */
export class PartitionLog implements FrameLog {
  private queue: HeldOffset[] = [];
  private head = 0;
  live = 0;
  /** offsets below this were processed by an earlier reader (from the group's commit metadata) */
  readMark = 0;

  readBefore(seq: number): boolean {
    return seq < this.readMark;
  }

  hold(offset: number): Hold {
    const h = new HeldOffset(offset, this);
    this.queue.push(h);
    this.live++;
    if (this.queue.length >= 1024 && this.live * 2 < this.queue.length - this.head) this.compact();
    return h;
  }

  /** the oldest offset still held, or -1 when nothing is */
  oldest(): number {
    const q = this.queue;
    while (this.head < q.length && q[this.head].released) this.head++;
    if (this.head === q.length) {
      this.queue = [];
      this.head = 0;
      return -1;
    }
    return q[this.head].offset;
  }

  /** every hold is forgotten (the state behind them was discarded) */
  clear(): void {
    for (let i = this.head; i < this.queue.length; i++) this.queue[i].released = true;
    this.queue = [];
    this.head = 0;
    this.live = 0;
  }

  private compact(): void {
    this.queue = this.queue.filter((h, i) => i >= this.head && !h.released);
    this.head = 0;
  }
}
