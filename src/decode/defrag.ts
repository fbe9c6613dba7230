import { ReasonCounter } from '../core/counters';
import type { Stats } from '../core/stage';
import { holdFrame, type Frame, type Hold } from '../core/frame';

export interface DefragOptions {
  /** datagrams being reassembled at once (default 4096) */
  maxTrackers?: number;
  /** bytes held by all trackers together (default 32 MiB) */
  maxBytes?: number;
  /** seconds of packet time a datagram may take to complete (default 30, as Linux) */
  timeoutSec?: number;
}

interface Part {
  start: number;
  end: number;
  bytes: Buffer;
}

interface Tracker {
  firstSec: number;
  /** disjoint, sorted by start */
  parts: Part[];
  /** length of the whole payload once the last fragment was seen, else -1 */
  total: number;
  held: number;
  /** the first fragment's frame stays needed until the datagram is done with */
  hold: Hold | null;
  /** fragments added, and their frames' original lengths: what the datagram cost on the wire */
  frames: number;
  wireBytes: number;
}

/** the largest IP payload a fragment may describe */
const MAX_DATAGRAM = 65_535;

/**
 * IPv4 and IPv6 fragment reassembly. The first copy of a byte wins (later
 * overlapping fragments are trimmed and counted). Bounded by tracker count, bytes
 * held and packet-time timeout; each bound has its counter.
 */
export class Defragmenter {
  private readonly trackers = new Map<string, Tracker>();
  private readonly maxTrackers: number;
  private readonly maxBytes: number;
  private readonly timeoutSec: number;
  private held = 0;
  fragments = 0;
  reassembled = 0;
  overlaps = 0;
  readonly discarded = new ReasonCounter();
  /** set by add() when it rejects the fragment itself ('' otherwise) */
  badReason = '';
  /** set by add() when it completes a datagram: the frames of all its fragments and their wire bytes */
  doneFrames = 0;
  doneWireBytes = 0;

  constructor(options: DefragOptions = {}) {
    this.maxTrackers = options.maxTrackers ?? 4096;
    this.maxBytes = options.maxBytes ?? 32 * 1024 * 1024;
    this.timeoutSec = options.timeoutSec ?? 30;
  }

  /**
   * Add one fragment's payload (bytes [off, off+len) of b) at `fragOffset`.
   * Returns the whole payload when this fragment completes the datagram, else
   * null; `badReason` is set when the fragment itself is rejected.
   */
  add(key: string, frame: Frame, fragOffset: number, more: boolean, b: Buffer, off: number, len: number): Buffer | null {
    const nowSec = frame.tsSec;
    this.fragments++;
    this.badReason = '';
    const end = fragOffset + len;
    if (end > MAX_DATAGRAM || (more && len % 8 !== 0) || (more && len === 0)) {
      this.badReason = 'bad_ip_fragment';
      return null;
    }
    let t = this.trackers.get(key);
    if (t === undefined) {
      if (this.trackers.size >= this.maxTrackers) this.evictOldest('tracker_limit');
      t = { firstSec: nowSec, parts: [], total: -1, held: 0, hold: holdFrame(frame), frames: 0, wireBytes: 0 };
      this.trackers.set(key, t);
    }
    if (t.total >= 0 && end > t.total) {
      // bytes past the end a last fragment already set
      this.badReason = 'ip_fragment_beyond_end';
      return null;
    }
    if (!more) {
      if (t.total >= 0 && t.total !== end) {
        this.badReason = 'conflicting_ip_fragment_end';
        return null;
      }
      if (t.parts.length > 0 && t.parts[t.parts.length - 1].end > end) {
        // an end before bytes already seen
        this.badReason = 'ip_fragment_beyond_end';
        return null;
      }
      t.total = end;
    }
    this.insert(t, fragOffset, end, b, off);
    t.frames++;
    t.wireBytes += frame.origLen;
    while (this.held > this.maxBytes && this.trackers.size > 1) this.evictOldest('byte_limit');
    if (t.total < 0) return null;
    let covered = 0;
    for (const part of t.parts) covered += part.end - part.start;
    if (covered < t.total) return null;
    // complete: parts are disjoint and sorted, so they tile [0, total)
    const out = Buffer.allocUnsafe(t.total);
    for (const part of t.parts) part.bytes.copy(out, part.start, 0, Math.min(part.end, t.total) - part.start);
    this.doneFrames = t.frames;
    this.doneWireBytes = t.wireBytes;
    this.drop(key, t);
    this.reassembled++;
    return out;
  }

  /** forget datagrams older than the timeout (packet time); Infinity: all of them */
  expire(nowSec: number, reason = 'timeout'): void {
    for (const [key, t] of this.trackers) {
      if (nowSec - t.firstSec < this.timeoutSec) break; // insertion order is age order
      this.drop(key, t);
      this.discarded.add(reason);
    }
  }

  stats(): Stats {
    return {
      fragments: this.fragments,
      reassembled: this.reassembled,
      overlaps: this.overlaps,
      trackers: this.trackers.size,
      bytes_held: this.held,
      discarded: this.discarded.toJSON(),
    };
  }

  private insert(t: Tracker, start: number, end: number, b: Buffer, off: number): void {
    // keep only the sub-ranges no earlier fragment covers
    let s = start;
    const parts = t.parts;
    let i = 0;
    while (s < end) {
      while (i < parts.length && parts[i].end <= s) i++;
      const next = i < parts.length ? parts[i] : null;
      if (next !== null && next.start <= s) {
        this.overlaps++;
        s = next.end;
        continue;
      }
      const e = next !== null && next.start < end ? next.start : end;
      if (e < end) this.overlaps++;
      const copy = Buffer.from(b.subarray(off + (s - start), off + (e - start)));
      parts.splice(i, 0, { start: s, end: e, bytes: copy });
      t.held += e - s;
      this.held += e - s;
      i++;
      s = e;
    }
  }

  private evictOldest(reason: string): void {
    const first = this.trackers.entries().next();
    if (first.done) return;
    this.drop(first.value[0], first.value[1]);
    this.discarded.add(reason);
  }

  /** forget every datagram without counting it: its frames will be read again (a Kafka rebalance) */
  discard(): void {
    for (const [key, t] of this.trackers) this.drop(key, t);
  }

  private drop(key: string, t: Tracker): void {
    this.held -= t.held;
    t.hold?.release();
    this.trackers.delete(key);
  }
}
