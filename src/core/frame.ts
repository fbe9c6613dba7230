/**
 * A Frame is one captured link-layer frame exactly as a source delivered it.
 * Every source (pcap, pcapng, live, Kafka) produces Frames, so every stage after
 * the source is indifferent to where the bytes came from.
 *
 * Time is kept as two integers (seconds, nanoseconds): exact, cheap to compare,
 * and never a lossy float.
 */
export interface Frame {
  tsSec: number;
  tsNsec: number;
  linkType: number;
  capLen: number;
  origLen: number;
  iface: number;
  /** exactly capLen bytes; a view, valid for as long as the frame is referenced */
  data: Buffer;
  /** the log the frame was read from, when its source must know which frames are still needed (Kafka), else null */
  log: FrameLog | null;
  /** the frame's position in `log` (a Kafka offset) */
  seq: number;
}

/** Marks a frame as still needed: state made from it has not yet become output. */
export interface Hold {
  release(): void;
}

/**
 * A source that commits positions (Kafka) must not commit past a frame whose state
 * (an open connection, a query waiting for its response) is still held in memory:
 * replayed from a commit, the frames behind that state must come again. Stages take
 * a Hold on the first frame of each such piece of state and release it when the state
 * has become events (or was dropped).
 */
export interface FrameLog {
  hold(seq: number): Hold;
  /** an earlier reader of the log got past this frame (its events were made then) */
  readBefore(seq: number): boolean;
}

/**
 * The frame is read again: its partition restarted from a commit behind what an
 * earlier reader had processed (a rebalance, a restart). A response here whose
 * request lies before the restart point was paired then; it is not an orphan.
 */
export function readBefore(f: Frame): boolean {
  return f.log !== null && f.log.readBefore(f.seq);
}

/** a hold on the frame's position, or null for sources that need none (files, live) */
export function holdFrame(f: Frame): Hold | null {
  return f.log === null ? null : f.log.hold(f.seq);
}

export function makeFrame(
  tsSec: number,
  tsNsec: number,
  linkType: number,
  origLen: number,
  iface: number,
  data: Buffer,
  log: FrameLog | null = null,
  seq = 0,
): Frame {
  // all fields, always in this order: one hidden class for every frame
  return { tsSec, tsNsec, linkType, capLen: data.length, origLen, iface, data, log, seq };
}

/** libpcap LINKTYPE_* values handled by the link decoder */
export const LinkType = {
  NULL: 0,
  ETHERNET: 1,
  RAW: 101,
  LOOP: 108,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

export const NS_PER_SEC = 1_000_000_000;

/** 9999-12-31T23:59:59Z: the last second an RFC 3339 timestamp can write */
export const MAX_TIME_SEC = 253_402_300_799;

/**
 * A capture file may hold a record whose lengths are sound but whose time is not (a
 * damaged byte in its timestamp): the readers pass such a frame on with its time as
 * read, or with tsSec -1 where the time cannot be represented, and the decode stage
 * gives it the time of the frame before it (docs/limits.md).
 */
export function timeValid(f: Frame): boolean {
  return f.tsNsec < NS_PER_SEC && f.tsSec >= 0 && f.tsSec <= MAX_TIME_SEC;
}

/** packet time as a single number of nanoseconds: exact up to 2^53 ns (~104 days) — use only for differences */
export function tsDiffNs(aSec: number, aNsec: number, bSec: number, bNsec: number): number {
  return (aSec - bSec) * NS_PER_SEC + (aNsec - bNsec);
}

/** the seconds part of the last time formatted: events come in time order, so it is nearly always a hit */
let isoSec = -1;
let isoPrefix = '';

/** RFC 3339 with nanoseconds, UTC (packetbeat writes milliseconds; pktflow keeps the exact packet time) */
export function isoTime(sec: number, nsec: number): string {
  if (sec !== isoSec) {
    isoSec = sec;
    isoPrefix = new Date(sec * 1000).toISOString().slice(0, 19) + '.';
  }
  const frac = '' + nsec;
  return isoPrefix + (frac.length === 9 ? frac : '000000000'.slice(frac.length) + frac) + 'Z';
}
