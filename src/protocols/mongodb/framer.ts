/**
 * Cuts one direction of a MongoDB connection into messages by their length
 * prefix. A message inside one payload chunk is handed on in place (no copy); one
 * split across chunks is copied once into a buffer of its length. Bounded: a message
 * longer than `maxMessageBytes`, or one that would take the buffers of all
 * connections past `maxBufferedBytes`, keeps only its first bytes (up to 64 KiB,
 * where an OP_MSG's command and collection are) and the rest is counted and skipped.
 *
 * A gap inside a message of known length is skipped exactly: the message is cut
 * (decoded as far as it goes) and the next one starts where the length says. Where
 * the framing is lost (a gap at or across a boundary, a header that makes no sense,
 * a capture that starts mid-stream), the framer scans for the next plausible header
 * (`plausibleHeader`) and starts again there.
 */
import { HEADER_BYTES, knownOpcode, MAX_WIRE_MESSAGE, Op } from './wire';

/** why a message handed on is not whole */
export const enum Cut {
  none = 0,
  /** longer than maxMessageBytes: only its first bytes kept */
  tooLarge,
  /** the buffers of all connections were full: only its first bytes kept */
  bufferLimit,
  /** the capture lost bytes inside it */
  gap,
  /** the connection ended inside it */
  closed,
}

export interface FrameSink {
  /**
   * One message: `len` bytes at off (the whole message, or its first bytes when cut),
   * `total` its length by its header, `missing` bytes of it the capture lost.
   */
  message(side: number, b: Buffer, off: number, len: number, total: number, cut: Cut, missing: number, startSec: number, startNsec: number, endSec: number, endNsec: number): void;
  violation(reason: string): void;
}

/** The bytes held by the framers of all connections of one analyzer stage. */
export class FrameBudget {
  held = 0;
  peak = 0;
  resyncSkipped = 0;
  constructor(
    readonly maxMessageBytes: number,
    readonly maxBufferedBytes: number,
  ) {}

  take(n: number): boolean {
    if (this.held + n > this.maxBufferedBytes) return false;
    this.held += n;
    if (this.held > this.peak) this.peak = this.held;
    return true;
  }
}

/** bytes of an oversized message kept for decoding its start */
export const PREFIX_BYTES = 64 * 1024;
/** the most bytes a plausibility check reads: header, and a namespace of up to 255 bytes */
const PLAUSIBLE_WINDOW = HEADER_BYTES + 4 + 256;

const enum S {
  header,
  body,
  resync,
}

export class Framer {
  private state = S.header;
  private hdr: Buffer | null = null;
  private hdrHave = 0;
  /** the message being assembled: `keep` bytes wanted in `msg`, `have` there, `consumed` of `total` passed */
  private msg: Buffer | null = null;
  private keep = 0;
  private have = 0;
  private total = 0;
  private consumed = 0;
  private missing = 0;
  /** bytes of the budget this message took */
  private reserved = 0;
  private cut = Cut.none;
  private startSec = 0;
  private startNsec = 0;
  /** while resynchronising: the tail of the last chunk that may start a header */
  private carry: Buffer | null = null;

  constructor(
    private readonly side: number,
    private readonly sink: FrameSink,
    private readonly budget: FrameBudget,
    midStream: boolean,
  ) {
    if (midStream) this.state = S.resync;
  }

  /** inside a message (its reply may still be on its way) */
  get busy(): boolean {
    return this.state === S.body || (this.state === S.header && this.hdrHave > 0);
  }

  data(b: Buffer, off: number, len: number, sec: number, nsec: number): void {
    let p = off;
    const end = off + len;
    while (p < end) {
      if (this.state === S.body) {
        p = this.body(b, p, end, sec, nsec);
      } else if (this.state === S.header) {
        if (this.hdrHave === 0 && end - p >= HEADER_BYTES) {
          const total = b.readInt32LE(p);
          if (!this.headerOk(total, b.readInt32LE(p + 12))) {
            this.resyncFrom(null);
            p++;
            continue;
          }
          if (end - p >= total) {
            // the usual case: the whole message is here
            this.sink.message(this.side, b, p, total, total, Cut.none, 0, sec, nsec, sec, nsec);
            p += total;
            continue;
          }
          this.begin(b, p, total, sec, nsec);
          p = this.body(b, p, end, sec, nsec);
          continue;
        }
        // a header split across chunks
        if (this.hdrHave === 0) {
          this.startSec = sec;
          this.startNsec = nsec;
        }
        const hdr = (this.hdr ??= Buffer.allocUnsafe(HEADER_BYTES));
        const n = Math.min(HEADER_BYTES - this.hdrHave, end - p);
        b.copy(hdr, this.hdrHave, p, p + n);
        this.hdrHave += n;
        p += n;
        if (this.hdrHave < HEADER_BYTES) break;
        this.hdrHave = 0;
        const total = hdr.readInt32LE(0);
        if (!this.headerOk(total, hdr.readInt32LE(12))) {
          this.resyncFrom(hdr.subarray(1));
          continue;
        }
        this.begin(hdr, 0, total, this.startSec, this.startNsec);
        this.have = this.consumed = HEADER_BYTES;
        if (this.consumed === total) this.finish(sec, nsec);
      } else {
        p = this.resync(b, p, end, sec, nsec);
      }
    }
  }

  /** n bytes of this direction were lost */
  gap(n: number, sec: number, nsec: number): void {
    switch (this.state) {
      case S.body: {
        const rest = this.total - this.consumed;
        if (this.cut === Cut.none || this.cut === Cut.gap) this.cut = Cut.gap;
        // what follows the hole cannot be kept contiguous with what came before it
        this.keep = this.have;
        if (n < rest) {
          this.missing += n;
          this.consumed += n;
          return;
        }
        this.missing += rest;
        this.consumed = this.total;
        this.finish(sec, nsec);
        // the next message starts right after this one: inside the hole, unless the hole ends here
        if (n > rest) this.resyncFrom(null);
        return;
      }
      case S.header:
        // a message (or more) began inside the hole: its length is lost with it
        this.hdrHave = 0;
        this.resyncFrom(null);
        return;
      default:
        this.carry = null;
    }
  }

  /** the connection ended: a message in progress is handed on as far as it came */
  close(sec: number, nsec: number): void {
    if (this.state === S.body) {
      if (this.cut === Cut.none) this.cut = Cut.closed;
      this.finish(sec, nsec);
    } else if (this.state === S.header && this.hdrHave > 0) {
      this.sink.violation('truncated_header');
      this.hdrHave = 0;
    }
    this.carry = null;
  }

  /** forget the message in progress (its buffer returns to the budget) */
  discard(): void {
    this.release();
    this.state = S.header;
    this.hdrHave = 0;
    this.carry = null;
  }

  private headerOk(total: number, op: number): boolean {
    if (total < HEADER_BYTES || total > MAX_WIRE_MESSAGE) this.sink.violation('bad_message_length');
    else if (!knownOpcode(op)) this.sink.violation('unknown_opcode');
    else return true;
    return false;
  }

  /** a message of `total` bytes starts at b[p] (16 header bytes there); decides how much of it to keep */
  private begin(b: Buffer, p: number, total: number, sec: number, nsec: number): void {
    this.state = S.body;
    this.total = total;
    this.consumed = this.have = this.missing = 0;
    this.cut = Cut.none;
    this.startSec = sec;
    this.startNsec = nsec;
    let keep = total;
    if (total > this.budget.maxMessageBytes) {
      this.cut = Cut.tooLarge;
      keep = Math.min(total, PREFIX_BYTES);
    }
    if (this.budget.take(keep)) this.reserved = keep;
    else {
      if (this.cut === Cut.none) this.cut = Cut.bufferLimit;
      keep = Math.min(keep, PREFIX_BYTES);
      this.reserved = this.budget.take(keep) ? keep : 0;
      if (this.reserved === 0) keep = HEADER_BYTES;
    }
    this.keep = keep;
    this.msg = Buffer.allocUnsafe(keep);
    if (b !== this.hdr) return;
    b.copy(this.msg, 0, 0, HEADER_BYTES);
  }

  private body(b: Buffer, p: number, end: number, sec: number, nsec: number): number {
    const n = Math.min(this.total - this.consumed, end - p);
    if (this.have < this.keep) {
      const k = Math.min(n, this.keep - this.have);
      b.copy(this.msg!, this.have, p, p + k);
      this.have += k;
    }
    this.consumed += n;
    if (this.consumed === this.total) this.finish(sec, nsec);
    return p + n;
  }

  private finish(sec: number, nsec: number): void {
    const msg = this.msg!;
    const have = this.have;
    this.release();
    this.state = S.header;
    this.hdrHave = 0;
    this.sink.message(this.side, msg, 0, have, this.total, this.cut, this.missing, this.startSec, this.startNsec, sec, nsec);
  }

  private release(): void {
    this.budget.held -= this.reserved;
    this.reserved = 0;
    this.msg = null;
  }

  private resyncFrom(carry: Buffer | null): void {
    this.state = S.resync;
    this.carry = carry !== null && carry.length > 0 ? Buffer.from(carry) : null;
  }

  /** scans for a plausible header; continues framing from it, or keeps the tail that may still start one */
  private resync(b: Buffer, p: number, end: number, sec: number, nsec: number): number {
    let w = b;
    let from = p;
    let to = end;
    if (this.carry !== null) {
      w = Buffer.concat([this.carry, b.subarray(p, end)]);
      from = 0;
      to = w.length;
      this.carry = null;
    }
    for (let i = from; i < to; i++) {
      const r = plausibleHeader(w, i, to);
      if (r === 0) continue;
      this.budget.resyncSkipped += i - from;
      if (r < 0) {
        // the candidate needs bytes the next chunk brings
        this.carry = Buffer.from(w.subarray(i, to));
        return end;
      }
      this.state = S.header;
      this.hdrHave = 0;
      if (w === b) return i;
      this.data(w, i, to - i, sec, nsec);
      return end;
    }
    this.budget.resyncSkipped += to - from;
    return end;
  }
}

/**
 * Is there a message header at b[i]: a length MongoDB allows, a known operation, and
 * the first fields of its body as the operation lays them out? 1 yes, 0 no, -1 not
 * enough bytes to tell. Used to find the framing again and as the content probe.
 */
export function plausibleHeader(b: Buffer, i: number, end: number): number {
  if (end - i < HEADER_BYTES) return -1;
  const total = b.readInt32LE(i);
  const op = b.readInt32LE(i + 12);
  const responseTo = b.readInt32LE(i + 8);
  if (total < HEADER_BYTES || total > MAX_WIRE_MESSAGE || !knownOpcode(op)) return 0;
  const avail = Math.min(end, i + total);
  const need = (n: number) => (avail - i >= n ? 1 : total < n ? 0 : -1);
  switch (op) {
    case Op.msg: {
      const r = need(25);
      if (r !== 1) return r;
      const flags = b.readUInt32LE(i + 16);
      if ((flags & ~(1 | 2 | 0x10000)) !== 0) return 0;
      const kind = b[i + 20];
      if (kind !== 0 && kind !== 1) return 0;
      const n = b.readInt32LE(i + 21);
      return n >= 5 && n <= total - 21 ? 1 : 0;
    }
    case Op.reply: {
      const r = need(36);
      if (r !== 1) return r;
      if (responseTo === 0 || (b.readInt32LE(i + 16) & ~0xf) !== 0 || b.readInt32LE(i + 28) < 0) return 0;
      const n = b.readInt32LE(i + 32);
      return n >= 0 && n * 5 <= total - 36 ? 1 : 0;
    }
    case Op.compressed: {
      const r = need(25);
      if (r !== 1) return r;
      const original = b.readInt32LE(i + 16);
      const size = b.readInt32LE(i + 20);
      return original !== Op.compressed && knownOpcode(original) && size >= 0 && size <= MAX_WIRE_MESSAGE && b[i + 24] <= 3 ? 1 : 0;
    }
    case Op.killCursors: {
      const r = need(24);
      if (r !== 1) return r;
      const n = b.readInt32LE(i + 20);
      return responseTo === 0 && b.readInt32LE(i + 16) === 0 && n >= 1 && 24 + 8 * n === total ? 1 : 0;
    }
    case Op.query:
    case Op.insert:
    case Op.update:
    case Op.delete:
    case Op.getMore: {
      const r = need(21);
      if (r !== 1) return r;
      const first = b.readInt32LE(i + 16);
      // OP_QUERY and OP_INSERT begin with flags, the others with a reserved zero
      const firstOk = op === Op.query ? (first & ~0xfe) === 0 : op === Op.insert ? (first & ~1) === 0 : first === 0;
      if (responseTo !== 0 || !firstOk) return 0;
      return plausibleNamespace(b, i + 20, avail, total > avail);
    }
    default:
      return 0;
  }
}

/** a namespace: printable ASCII with a dot, NUL-terminated, at most 255 bytes */
function plausibleNamespace(b: Buffer, p: number, end: number, more: boolean): number {
  let dot = false;
  for (let j = p; j < end && j - p <= 255; j++) {
    const c = b[j];
    if (c === 0) return dot && j > p ? 1 : 0;
    if (c < 0x20 || c > 0x7e) return 0;
    if (c === 0x2e) dot = true;
  }
  return more && end - p <= 255 ? -1 : 0;
}

export const RESYNC_WINDOW = PLAUSIBLE_WINDOW;
