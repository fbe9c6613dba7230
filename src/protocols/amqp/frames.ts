/**
 * One direction of an AMQP connection, from TCP bytes to frames: a 7-byte header
 * (type, channel, size), the payload, the frame-end octet 0xCE; the 8-byte protocol
 * header ("AMQP" and a version) where a frame could start. Frames may span segments
 * and a segment may hold many. Method and content-header payloads are kept whole, up
 * to `maxFrameBytes` (a payload that sits in one chunk is read in place); a body
 * frame's payload is streamed to the owner piece by piece and never kept here.
 *
 * After a gap outside a body payload, a bad frame-end octet or an unknown frame type,
 * and on a connection first seen mid-stream, the parser searches: the bytes are
 * scanned for a method frame whose class and method are known and whose frame-end
 * octet holds, a heartbeat frame, or a protocol header; frames resume there.
 */
import { methodDef } from './methods';
import { FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_HEADER_BYTES, FRAME_HEARTBEAT, FRAME_METHOD } from './wire';

/** a method frame longer than this is not looked for while searching */
const SEARCH_MAX_FRAME = 8 * 1024;

/** A frame as delivered to the owner: the payload view is valid only during the call. */
export class FrameInfo {
  type = 0;
  channel = 0;
  size = 0;
  /** method and header frames: the payload, buf[off, end); null for a body frame, or a payload past maxFrameBytes (skipped) */
  buf: Buffer | null = null;
  off = 0;
  end = 0;
  /** payload bytes lost to a gap (body frames only) */
  missing = 0;
  startSec = 0;
  startNsec = 0;
  endSec = 0;
  endNsec = 0;
}

export interface FrameOwner {
  frame(side: number, f: FrameInfo): void;
  /** a piece of a body frame's payload (channel of the frame being read) */
  bodyData(side: number, channel: number, buf: Buffer, off: number, len: number): void;
  /** "AMQP" and its four version octets */
  protocolHeader(side: number, a: number, b: number, c: number, d: number, sec: number, nsec: number): void;
  violation(side: number, reason: string): void;
  /** the place in the stream was lost (gap, violation): frames from here are not in step */
  lost(side: number, why: 'gap' | 'violation'): void;
}

export class FrameCounters {
  method = 0;
  header = 0;
  body = 0;
  heartbeat = 0;
  /** method and header frames longer than maxFrameBytes: skipped */
  oversized = 0;
  /** bytes passed over while searching for a frame */
  skipped = 0;
  /** payload bytes held for frames that span chunks, over all connections */
  held = 0;
  /** frames skipped because `held` would pass `maxHeld` */
  budgetExceeded = 0;
  constructor(readonly maxHeld = Infinity) {}
}

const enum St {
  header = 0,
  payload = 1,
  end = 2,
  search = 3,
  /** the stream is not AMQP 0-9-1 (AMQP 1.0 after its header): ignored */
  stopped = 4,
}

export class FrameParser {
  private st: St;
  private readonly hdr = Buffer.alloc(8);
  private hdrHave = 0;
  private readonly f = new FrameInfo();
  /** payload bytes seen of the current frame */
  private seen = 0;
  /** kept payload of a method or header frame that spans chunks */
  private keep: Buffer | null = null;
  /** bytes of `keep` counted in the shared budget */
  private charged = 0;
  private skipping = false;
  private carry: Buffer | null = null;

  constructor(
    readonly side: number,
    private readonly owner: FrameOwner,
    private readonly maxFrameBytes: number,
    private readonly n: FrameCounters,
    midStream: boolean,
  ) {
    this.st = midStream ? St.search : St.header;
  }

  /** between frames, or not reading at all */
  get idle(): boolean {
    return (this.st === St.header && this.hdrHave === 0) || this.st === St.search || this.st === St.stopped;
  }

  stop(): void {
    this.st = St.stopped;
    this.release();
    this.carry = null;
  }

  /** the connection is over: give back what is held */
  close(): void {
    this.release();
    this.carry = null;
  }

  private release(): void {
    this.n.held -= this.charged;
    this.charged = 0;
    this.keep = null;
  }

  feed(b: Buffer, off: number, len: number, sec: number, nsec: number): void {
    let p = off;
    const end = off + len;
    while (p < end) {
      switch (this.st) {
        case St.header:
          p = this.header(b, p, end, sec, nsec);
          break;
        case St.payload:
          p = this.payload(b, p, end, sec, nsec);
          break;
        case St.end:
          p = this.frameEnd(b, p, sec, nsec);
          break;
        case St.search:
          this.search(b, p, end, sec, nsec);
          return;
        default:
          return;
      }
    }
  }

  /** n bytes of this direction will never come */
  gap(n: number): void {
    if (this.st === St.stopped) return;
    if (this.st === St.payload && this.f.type === FRAME_BODY) {
      const rest = this.f.size - this.seen;
      if (n <= rest) {
        this.seen += n;
        this.f.missing += n;
        if (this.seen === this.f.size) this.st = St.end;
        return;
      }
    }
    this.carry = null;
    if (this.st !== St.search) this.lose('gap');
  }

  private lose(why: 'gap' | 'violation'): void {
    this.st = St.search;
    this.hdrHave = 0;
    this.release();
    this.owner.lost(this.side, why);
  }

  private violation(reason: string): void {
    this.owner.violation(this.side, reason);
    this.lose('violation');
  }

  private header(b: Buffer, p: number, end: number, sec: number, nsec: number): number {
    if (this.hdrHave === 0) {
      this.f.startSec = sec;
      this.f.startNsec = nsec;
    }
    const want = this.hdrHave > 0 && this.hdr[0] === 0x41 ? 8 : FRAME_HEADER_BYTES;
    const take = Math.min(want - this.hdrHave, end - p);
    b.copy(this.hdr, this.hdrHave, p, p + take);
    this.hdrHave += take;
    p += take;
    if (this.hdrHave < want) return p;
    const h = this.hdr;
    if (h[0] === 0x41) {
      if (want === FRAME_HEADER_BYTES) return p; // read the eighth octet next
      this.hdrHave = 0;
      if (h[1] !== 0x4d || h[2] !== 0x51 || h[3] !== 0x50) {
        this.violation('frame_type');
        return p;
      }
      this.owner.protocolHeader(this.side, h[4], h[5], h[6], h[7], sec, nsec);
      // AMQP 1.0 (and its TLS and SASL layers) share the header, not the frames
      if (!(h[4] === 0 && h[5] === 0 && h[6] === 9) && !(h[4] === 1 && h[5] === 1)) this.stop();
      return p;
    }
    this.hdrHave = 0;
    const f = this.f;
    f.type = h[0];
    f.channel = h.readUInt16BE(1);
    f.size = h.readUInt32BE(3);
    f.missing = 0;
    f.buf = null;
    this.seen = 0;
    this.release();
    this.skipping = false;
    switch (f.type) {
      case FRAME_METHOD:
      case FRAME_HEADER:
        if (f.size > this.maxFrameBytes) {
          this.skipping = true;
          this.n.oversized++;
          this.owner.violation(this.side, 'frame_too_large');
        } else if (end - p >= f.size + 1) {
          // the whole payload is here: read in place
          f.buf = b;
          f.off = p;
          f.end = p + f.size;
          this.seen = f.size;
          this.st = St.end;
          return p + f.size;
        } else if (this.n.held + f.size > this.n.maxHeld) {
          // over the budget shared by all connections: read past it
          this.skipping = true;
          this.n.budgetExceeded++;
        } else {
          this.keep = Buffer.allocUnsafe(f.size);
          this.charged = f.size;
          this.n.held += f.size;
        }
        break;
      case FRAME_BODY:
        break;
      case FRAME_HEARTBEAT:
        if (f.size !== 0) {
          this.violation('heartbeat_size');
          return p;
        }
        break;
      default:
        this.violation('frame_type');
        return p;
    }
    this.st = f.size === 0 ? St.end : St.payload;
    return p;
  }

  private payload(b: Buffer, p: number, end: number, _sec: number, _nsec: number): number {
    const f = this.f;
    const take = Math.min(f.size - this.seen, end - p);
    if (f.type === FRAME_BODY) {
      if (take > 0) this.owner.bodyData(this.side, f.channel, b, p, take);
    } else if (this.keep !== null) b.copy(this.keep, this.seen, p, p + take);
    this.seen += take;
    if (this.seen === f.size) {
      this.st = St.end;
      if (this.keep !== null) {
        f.buf = this.keep;
        f.off = 0;
        f.end = f.size;
      }
    }
    return p + take;
  }

  private frameEnd(b: Buffer, p: number, sec: number, nsec: number): number {
    const f = this.f;
    if (b[p] !== FRAME_END) {
      this.violation('frame_end');
      return p;
    }
    f.endSec = sec;
    f.endNsec = nsec;
    this.st = St.header;
    switch (f.type) {
      case FRAME_METHOD:
        this.n.method++;
        break;
      case FRAME_HEADER:
        this.n.header++;
        break;
      case FRAME_BODY:
        this.n.body++;
        break;
      default:
        this.n.heartbeat++;
    }
    if (this.skipping) f.buf = null;
    this.owner.frame(this.side, f);
    f.buf = null;
    this.release();
    return p + 1;
  }

  /** look for the next frame in carry + b[p, end) */
  private search(b: Buffer, p: number, end: number, sec: number, nsec: number): void {
    let w: Buffer;
    let s: number;
    let e: number;
    if (this.carry !== null && this.carry.length > 0) {
      w = Buffer.concat([this.carry, b.subarray(p, end)]);
      s = 0;
      e = w.length;
    } else {
      w = b;
      s = p;
      e = end;
    }
    this.carry = null;
    for (let i = s; i < e; i++) {
      const r = frameAt(w, i, e);
      if (r === NO) continue;
      if (r === MORE) {
        // keep from here: the candidate may be completed by the next chunk
        const keep = e - i;
        if (keep <= SEARCH_MAX_FRAME + 8) {
          this.n.skipped += i - s;
          this.carry = Buffer.from(w.subarray(i, e));
          return;
        }
        continue;
      }
      this.n.skipped += i - s;
      this.st = St.header;
      this.hdrHave = 0;
      this.feed(w, i, e - i, sec, nsec);
      return;
    }
    this.n.skipped += e - s;
  }
}

const NO = 0;
const YES = 1;
const MORE = 2;

/** is there a frame (or a protocol header) at b[i]? MORE: cannot tell before more bytes come */
function frameAt(b: Buffer, i: number, e: number): number {
  const t = b[i];
  if (t === 0x41) {
    if (e - i < 8) return b.toString('latin1', i, Math.min(e, i + 4)) === 'AMQP'.slice(0, Math.min(4, e - i)) ? MORE : NO;
    return b[i + 1] === 0x4d && b[i + 2] === 0x51 && b[i + 3] === 0x50 && b[i + 4] <= 3 ? YES : NO;
  }
  if (t === FRAME_HEARTBEAT) {
    if (e - i < 8) return MORE;
    return b.readUInt32BE(i + 1) === 0 && b.readUInt16BE(i + 5) === 0 && b[i + 7] === FRAME_END ? YES : NO;
  }
  if (t !== FRAME_METHOD) return NO;
  if (e - i < 11) return MORE;
  const size = b.readUInt32BE(i + 3);
  if (size < 4 || size > SEARCH_MAX_FRAME) return NO;
  if (methodDef(b.readUInt16BE(i + 7), b.readUInt16BE(i + 9)) === undefined) return NO;
  if (i + 8 + size > e) return MORE;
  return b[i + 7 + size] === FRAME_END ? YES : NO;
}

/** a method frame of a known method, or a protocol header, at b[off] (for the probe) */
export function methodFrameAt(b: Buffer, off: number, len: number): boolean {
  return frameAt(b, off, off + len) === YES;
}
