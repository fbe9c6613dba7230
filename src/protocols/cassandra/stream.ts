/**
 * One direction of a CQL connection, from TCP bytes to envelopes (a 9-byte header
 * and a body: what versions before 5 call a frame). Three modes:
 *
 * - envelopes: the bytes are envelopes back to back (v3, v4, and v5 until its
 *   handshake is done);
 * - frames: v5 after the server's answer to STARTUP: envelopes are carried in
 *   frames of at most 128 KiB with a CRC24 over the frame header and a CRC32 over
 *   the payload, LZ4-compressed when the client asked for it; a self-contained frame
 *   holds whole envelopes, a larger envelope spans frames that are not;
 * - search: after a gap or a violation, or on a connection first seen mid-stream:
 *   the bytes are scanned for the next boundary: a v5 frame header whose CRC24 holds
 *   (a 1 in 16 million chance by accident), or an envelope header that fits
 *   (version and direction, known flags, an opcode of this direction, a sane
 *   length, and the header after it when it is in sight).
 *
 * Bodies are kept up to `maxBodyBytes` (within a budget shared by all connections)
 * and decoded from there; the rest of a long body is counted, not kept. A body that
 * sits whole in one chunk is read in place, without a copy.
 */
import type { Compression } from './wire';
import { crc24, declaredSize, decompress, Flag, HEADER_BYTES, KNOWN_FLAGS, knownVersion, lz4Block, MAX_SEGMENT_PAYLOAD, payloadCrc32, REQUEST_OPS, RESPONSE_OPS } from './wire';

/** envelope lengths above this are not believed while searching for a boundary */
const SEARCH_MAX_LENGTH = 64 * 1024 * 1024;
/** a body kept even when the shared budget is spent: enough for a query or a result's metadata */
const SMALL_BODY = 4096;

export const enum Mode {
  envelopes = 0,
  frames = 1,
  search = 2,
}

/** bytes kept for bodies and frames over all connections */
export class Budget {
  used = 0;
  exceeded = 0;
  constructor(readonly max: number) {}
}

/** An envelope as delivered: the views are valid only during the call. */
export class Envelope {
  version = 0;
  flags = 0;
  stream = 0;
  op = 0;
  /** the body length in the header */
  length = 0;
  /** header and body as carried (compressed, when they were) */
  wireBytes = 0;
  /** the body as kept and decompressed: buf[bodyOff, bodyEnd) */
  body: Buffer | null = null;
  bodyOff = 0;
  bodyEnd = 0;
  /** the body was not wholly kept: longer than kept, or bytes lost */
  cut = false;
  /** body bytes lost to gaps */
  missing = 0;
  /** the connection ended inside the body */
  ended = false;
  /** why the body could not be read at all: '' when it could */
  unreadable = '';
  /** what the body was decompressed with ('' when it was not compressed) */
  compression: Compression | '' = '';
  startSec = 0;
  startNsec = 0;
  endSec = 0;
  endNsec = 0;
}

export interface StreamOwner {
  envelope(side: number, e: Envelope): void;
  violation(side: number, reason: string): void;
  /** what a compressed envelope (before v5) was compressed with: undefined while unknown (both are tried), null when unsupported */
  compression(): Compression | null | undefined;
  /** the version both sides speak, 0 while unknown */
  readonly version: number;
}

/** what the parsers of all connections share: the body limit and budget, counters */
export class StreamShared {
  /** v5 frames read */
  frames = 0;
  /** bytes passed over while searching for a boundary */
  skipped = 0;
  constructor(
    readonly maxBodyBytes: number,
    readonly budget: Budget,
  ) {}
}

export class DirectionParser {
  mode: Mode;
  /** frames carry LZ4-compressed payloads (8-byte frame headers) */
  lz4Frames = false;
  /** frames were switched to by the handshake and none has been seen yet: a legacy envelope there means the switch did not happen */
  private tentative = false;
  /** after a loss in frames mode: frames that are not self-contained are skipped until one that is */
  private afterLoss = false;
  /** while searching: the framing is not known yet (a connection first seen mid-stream) */
  private unknownFraming: boolean;
  /** this side has carried v5 frames: after a loss, only a frame is looked for */
  private framed = false;

  // envelope being read
  private readonly hdr = Buffer.alloc(HEADER_BYTES);
  private hdrHave = 0;
  private inBody = false;
  private bodySeen = 0;
  private keep: Buffer | null = null;
  private kept = 0;
  /** bytes the keep buffer may still take (0 once a gap made the rest unusable) */
  private keepRoom = 0;
  private charged = 0;
  private readonly env = new Envelope();

  // v5 frame being read
  private readonly fhdr = Buffer.alloc(8);
  private fhdrHave = 0;
  private inPayload = false;
  private payLen = 0;
  private payUlen = 0;
  private paySelf = false;
  private payBuf: Buffer | null = null;
  private payHave = 0;
  private payDamaged = false;
  private payCharged = 0;

  // search
  private carry: Buffer | null = null;

  constructor(
    readonly side: number,
    private readonly owner: StreamOwner,
    private readonly limits: StreamShared,
    midStream: boolean,
  ) {
    this.mode = midStream ? Mode.search : Mode.envelopes;
    this.unknownFraming = midStream;
  }

  /** the v5 handshake is done: frames from here on */
  startFrames(lz4: boolean): void {
    if (this.mode === Mode.frames) return;
    this.resetEnvelope();
    this.mode = Mode.frames;
    this.lz4Frames = lz4;
    this.tentative = true;
    this.afterLoss = false;
    this.framed = true;
  }

  feed(buf: Buffer, off: number, len: number, sec: number, nsec: number): void {
    let p = off;
    const end = off + len;
    while (p < end) {
      const mode = this.mode;
      if (mode === Mode.envelopes) p = this.envelopes(buf, p, end, sec, nsec, true);
      else if (mode === Mode.frames) p = this.frames(buf, p, end, sec, nsec);
      else p = this.search(buf, p, end, sec, nsec);
    }
  }

  /** n bytes of this direction will never come */
  gap(n: number, sec: number, nsec: number): void {
    if (this.mode === Mode.envelopes) {
      if (this.inBody) {
        const rest = this.env.length - this.bodySeen;
        const lost = Math.min(n, rest);
        this.bodySeen += lost;
        this.env.missing += lost;
        this.env.cut = true;
        this.keepRoom = 0;
        n -= lost;
        if (this.bodySeen === this.env.length) this.finishEnvelope(sec, nsec);
        if (n === 0) return;
      } else if (this.hdrHave > 0) this.hdrHave = 0;
      this.lose();
      return;
    }
    if (this.mode === Mode.frames) {
      this.abortEnvelope(n, sec, nsec);
      if (this.inPayload) {
        const rest = this.payLen + 4 - this.payHave;
        const lost = Math.min(n, rest);
        this.payHave += lost;
        this.payDamaged = true;
        n -= lost;
        if (this.payHave === this.payLen + 4) this.endPayload();
        if (n === 0) {
          this.afterLoss = true;
          return;
        }
      }
      this.lose();
      return;
    }
    // searching: the carried bytes no longer join what follows
    this.carry = null;
  }

  /** the connection ended: an envelope in progress is delivered as it is */
  close(sec: number, nsec: number): void {
    if (this.inBody) {
      this.env.ended = true;
      this.env.cut = true;
      this.bodySeen = this.env.length;
      this.finishEnvelope(sec, nsec, this.mode === Mode.envelopes);
    }
    this.resetEnvelope();
    this.releasePayload();
  }

  // --- envelopes ----------------------------------------------------------------------------

  /**
   * Envelopes from buf[p, end): `legacy` when these are TCP bytes (a compressed
   * body is decompressed), not when they are a v5 frame's payload. Returns where it
   * stopped: `end`, or earlier when the mode changed.
   */
  private envelopes(buf: Buffer, p: number, end: number, sec: number, nsec: number, legacy: boolean): number {
    const startMode = this.mode;
    while (p < end && this.mode === startMode) {
      if (!this.inBody) {
        // the header: in place when the chunk has it whole
        let h = buf;
        let ho = p;
        const from = p;
        if (this.hdrHave === 0 && end - p >= HEADER_BYTES) {
          p += HEADER_BYTES;
          this.env.startSec = sec;
          this.env.startNsec = nsec;
        } else {
          if (this.hdrHave === 0) {
            this.env.startSec = sec;
            this.env.startNsec = nsec;
          }
          const n = Math.min(HEADER_BYTES - this.hdrHave, end - p);
          buf.copy(this.hdr, this.hdrHave, p, p + n);
          this.hdrHave += n;
          p += n;
          if (this.hdrHave < HEADER_BYTES) return p;
          h = this.hdr;
          ho = 0;
        }
        this.hdrHave = 0;
        const why = this.headerProblem(h, ho);
        if (why !== '') {
          this.owner.violation(this.side, why);
          if (!legacy) {
            // the rest of this frame, and frames continuing it, cannot be read
            this.afterLoss = true;
            return end;
          }
          this.lose();
          // search again from the byte after the bad header's first one (in this chunk)
          return h === buf ? ho + 1 : from;
        }
        const e = this.env;
        e.version = h[ho] & 0x7f;
        e.flags = h[ho + 1];
        e.stream = h.readInt16BE(ho + 2);
        e.op = h[ho + 4];
        e.length = h.readUInt32BE(ho + 5);
        e.wireBytes = HEADER_BYTES + e.length;
        e.cut = false;
        e.missing = 0;
        e.ended = false;
        e.unreadable = '';
        e.compression = '';
        this.bodySeen = 0;
        this.inBody = true;
        if (e.length === 0) {
          this.finishEnvelope(sec, nsec);
          continue;
        }
        if (end - p >= e.length) {
          // the whole body is here: read it in place
          this.bodySeen = e.length;
          this.deliver(buf, p, p + e.length, legacy, sec, nsec);
          p += e.length;
          continue;
        }
        this.startKeeping(e.length);
      }
      // a body arriving in pieces
      const e = this.env;
      const n = Math.min(e.length - this.bodySeen, end - p);
      if (this.keepRoom > 0) {
        const c = Math.min(n, this.keepRoom);
        buf.copy(this.keep!, this.kept, p, p + c);
        this.kept += c;
        this.keepRoom -= c;
      }
      this.bodySeen += n;
      p += n;
      if (this.bodySeen === e.length) this.finishEnvelope(sec, nsec, legacy);
    }
    return p;
  }

  /** '' when buf[o, o+9) is a header this side may send */
  private headerProblem(b: Buffer, o: number): string {
    const v = b[o];
    if ((v & 0x80) !== (this.side === 0 ? 0 : 0x80)) return 'wrong_direction';
    const version = v & 0x7f;
    if (!knownVersion(version)) return version === 1 || version === 2 ? 'unsupported_version' : 'bad_version';
    if ((b[o + 1] & ~KNOWN_FLAGS) !== 0) return 'bad_flags';
    const op = b[o + 4];
    if (op > 31 || ((this.side === 0 ? REQUEST_OPS : RESPONSE_OPS) & (1 << op)) === 0) return 'bad_opcode';
    if (b.readUInt32BE(o + 5) > 256 * 1024 * 1024) return 'body_too_large';
    return '';
  }

  private startKeeping(length: number): void {
    let want = Math.min(length, this.limits.maxBodyBytes);
    const budget = this.limits.budget;
    if (want > SMALL_BODY && budget.used + want > budget.max) {
      budget.exceeded++;
      want = SMALL_BODY;
    }
    if (want > SMALL_BODY) {
      budget.used += want;
      this.charged = want;
    }
    this.keep = Buffer.allocUnsafe(want);
    this.kept = 0;
    this.keepRoom = want;
  }

  private finishEnvelope(sec: number, nsec: number, legacy = true): void {
    const e = this.env;
    if (this.keep !== null) {
      if (this.kept < e.length) e.cut = true;
      this.deliver(this.keep, 0, this.kept, legacy, sec, nsec);
    } else this.deliver(null, 0, 0, legacy, sec, nsec);
  }

  private deliver(buf: Buffer | null, off: number, end: number, legacy: boolean, sec: number, nsec: number): void {
    const e = this.env;
    e.endSec = sec;
    e.endNsec = nsec;
    e.body = buf;
    e.bodyOff = off;
    e.bodyEnd = end;
    if (legacy && e.flags & Flag.COMPRESSION && buf !== null && end > off) {
      const c = this.owner.compression();
      if (e.cut) e.unreadable = 'compressed_body_incomplete';
      else if (c === null) e.unreadable = 'compressed_unsupported';
      else {
        const max = this.limits.maxBodyBytes;
        let used: Compression = c ?? 'lz4';
        let out = decompress(used, buf, off, end - off, max);
        if (out === null && c === undefined) out = decompress((used = 'snappy'), buf, off, end - off, max);
        if (out === null) e.unreadable = declaredSize(used, buf, off, end - off) > max ? 'decompressed_too_large' : 'decompression_failed';
        else {
          e.compression = used;
          e.body = out;
          e.bodyOff = 0;
          e.bodyEnd = out.length;
        }
      }
    }
    this.inBody = false;
    this.owner.envelope(this.side, e);
    e.body = null;
    this.releaseKeep();
  }

  private releaseKeep(): void {
    this.limits.budget.used -= this.charged;
    this.charged = 0;
    this.keep = null;
    this.kept = 0;
    this.keepRoom = 0;
  }

  private resetEnvelope(): void {
    this.hdrHave = 0;
    this.inBody = false;
    this.releaseKeep();
  }

  /** bytes were lost inside frames: an envelope in progress goes out as it is */
  private abortEnvelope(lost: number, sec: number, nsec: number): void {
    if (this.inBody) {
      this.env.missing += Math.max(lost, 1);
      this.env.cut = true;
      this.finishEnvelope(sec, nsec, false);
    }
    this.resetEnvelope();
  }

  /** framing lost: search for the next boundary */
  private lose(): void {
    this.resetEnvelope();
    this.releasePayload();
    this.carry = null;
    this.mode = Mode.search;
  }

  // --- v5 frames ----------------------------------------------------------------------------

  private frames(buf: Buffer, p: number, end: number, sec: number, nsec: number): number {
    const hl = this.lz4Frames ? 8 : 6;
    while (p < end && this.mode === Mode.frames) {
      if (!this.inPayload) {
        let h = buf;
        let ho = p;
        if (this.fhdrHave === 0 && end - p >= hl) p += hl;
        else {
          const n = Math.min(hl - this.fhdrHave, end - p);
          buf.copy(this.fhdr, this.fhdrHave, p, p + n);
          this.fhdrHave += n;
          p += n;
          if (this.fhdrHave < hl) return p;
          h = this.fhdr;
          ho = 0;
        }
        this.fhdrHave = 0;
        if (!this.frameHeader(h, ho, hl)) {
          if (this.tentative && h === buf && end - ho >= HEADER_BYTES && this.headerProblem(buf, ho) === '') {
            // the handshake did not switch this connection to frames after all
            this.mode = Mode.envelopes;
            this.tentative = false;
            this.framed = false;
            return ho;
          }
          this.owner.violation(this.side, 'frame_header_crc');
          this.lose();
          return h === buf ? ho + 1 : p;
        }
        this.tentative = false;
        this.inPayload = true;
        this.payHave = 0;
        this.payDamaged = false;
        if (end - p >= this.payLen + 4) {
          this.payload(buf, p, sec, nsec);
          p += this.payLen + 4;
          this.inPayload = false;
          continue;
        }
        this.payBuf = Buffer.allocUnsafe(this.payLen + 4);
        this.limits.budget.used += this.payLen + 4;
        this.payCharged = this.payLen + 4;
      }
      const n = Math.min(this.payLen + 4 - this.payHave, end - p);
      if (!this.payDamaged) buf.copy(this.payBuf!, this.payHave, p, p + n);
      this.payHave += n;
      p += n;
      if (this.payHave === this.payLen + 4) {
        if (!this.payDamaged) this.payload(this.payBuf!, 0, sec, nsec);
        this.endPayload();
      }
    }
    return p;
  }

  /** reads a frame header into payLen/payUlen/paySelf; false when its CRC24 does not hold */
  private frameHeader(b: Buffer, o: number, hl: number): boolean {
    if (!frameHeaderOk(b, o, hl)) return false;
    if (hl === 6) {
      const v = b[o] | (b[o + 1] << 8) | (b[o + 2] << 16);
      this.payLen = v & 0x1ffff;
      this.payUlen = 0;
      this.paySelf = (v & (1 << 17)) !== 0;
    } else {
      const lo = b.readUInt32LE(o);
      this.payLen = lo & 0x1ffff;
      this.payUlen = ((lo >>> 17) | (b[o + 4] << 15)) & 0x1ffff;
      this.paySelf = (b[o + 4] & 0x04) !== 0;
    }
    return true;
  }

  private endPayload(): void {
    this.inPayload = false;
    this.releasePayload();
  }

  private releasePayload(): void {
    this.limits.budget.used -= this.payCharged;
    this.payCharged = 0;
    this.payBuf = null;
    this.inPayload = false;
    this.fhdrHave = 0;
  }

  /** a whole frame's payload at b[o, o + payLen) with its CRC32 after it */
  private payload(b: Buffer, o: number, sec: number, nsec: number): void {
    this.limits.frames++;
    if (b.readUInt32LE(o + this.payLen) !== payloadCrc32(b, o, this.payLen)) {
      this.owner.violation(this.side, 'frame_payload_crc');
      this.abortEnvelope(0, sec, nsec);
      this.afterLoss = true;
      return;
    }
    let pb = b;
    let po = o;
    let pe = o + this.payLen;
    if (this.payUlen > 0) {
      const out = lz4Block(b, o, this.payLen, this.payUlen);
      if (out === null) {
        this.owner.violation(this.side, 'frame_decompression_failed');
        this.abortEnvelope(0, sec, nsec);
        this.afterLoss = true;
        return;
      }
      pb = out;
      po = 0;
      pe = out.length;
    }
    const atBoundary = !this.inBody && this.hdrHave === 0;
    if (this.paySelf) {
      if (!atBoundary) {
        // the envelope the frames before were carrying never ended
        this.owner.violation(this.side, 'frame_envelope_unfinished');
        this.abortEnvelope(0, sec, nsec);
      }
      this.afterLoss = false;
      this.envelopes(pb, po, pe, sec, nsec, false);
      if (this.inBody || this.hdrHave > 0) {
        // a self-contained frame ends on an envelope boundary
        this.owner.violation(this.side, 'frame_envelope_unfinished');
        this.abortEnvelope(0, sec, nsec);
      }
      return;
    }
    if (this.afterLoss) return;
    this.envelopes(pb, po, pe, sec, nsec, false);
  }

  // --- search -------------------------------------------------------------------------------

  private search(buf: Buffer, p: number, end: number, sec: number, nsec: number): number {
    // the few bytes of the last chunk that could start a header go in front
    let d = buf;
    let s = p;
    let e = end;
    const carried = this.carry === null ? 0 : this.carry.length;
    if (carried > 0) {
      d = Buffer.concat([this.carry!, buf.subarray(p, end)]);
      s = 0;
      e = d.length;
    }
    this.carry = null;
    for (let i = s; i < e; i++) {
      const found = this.boundaryAt(d, i, e);
      if (found === Mode.search) continue;
      this.limits.skipped += i - s;
      this.unknownFraming = false;
      this.mode = found;
      if (found === Mode.frames) this.afterLoss = true;
      if (carried > 0) {
        // replay from the boundary: the carried part, then the rest of the chunk
        this.feed(d, i, e - i, sec, nsec);
        return end;
      }
      return i;
    }
    // keep the tail that a header could start in
    const tail = Math.min(8, e - s);
    this.limits.skipped += e - s - tail;
    this.carry = Buffer.from(d.subarray(e - tail, e));
    return end;
  }

  /** which mode a boundary at d[i] starts, or search when none does */
  private boundaryAt(d: Buffer, i: number, e: number): Mode {
    const room = e - i;
    // a v5 frame header (6 bytes, 8 with LZ4) with a payload
    if (this.framed || this.unknownFraming || this.owner.version === 5) {
      // the length in use first; the other one too while the framing is unknown
      for (let k = 0; k < (this.framed ? 1 : 2); k++) {
        const hl = this.lz4Frames !== (k === 1) ? 8 : 6;
        if (room >= hl && frameHeaderOk(d, i, hl) && (d.readUInt32LE(i) & 0x1ffff) !== 0) {
          this.lz4Frames = hl === 8;
          this.framed = true;
          return Mode.frames;
        }
      }
    }
    if (this.framed || room < HEADER_BYTES) return Mode.search;
    if (this.headerProblem(d, i) !== '') return Mode.search;
    const version = d[i] & 0x7f;
    const known = this.owner.version;
    if (known !== 0 && version !== known) return Mode.search;
    const len = d.readUInt32BE(i + 5);
    if (len > SEARCH_MAX_LENGTH) return Mode.search;
    // the next header, when in sight, must fit too
    const next = i + HEADER_BYTES + len;
    if (next + HEADER_BYTES <= e && (this.headerProblem(d, next) !== '' || (d[next] & 0x7f) !== version)) return Mode.search;
    return Mode.envelopes;
  }
}

/** a v5 frame header at b[o, o + hl) whose CRC24 holds */
export function frameHeaderOk(b: Buffer, o: number, hl: number): boolean {
  const n = hl - 3;
  const stored = b[o + n] | (b[o + n + 1] << 8) | (b[o + n + 2] << 16);
  if (stored !== crc24(b, o, n)) return false;
  if (hl === 8) {
    // an uncompressed length beyond a frame's payload is not one
    const lo = b.readUInt32LE(o);
    const ulen = ((lo >>> 17) | (b[o + 4] << 15)) & 0x1ffff;
    if (ulen > MAX_SEGMENT_PAYLOAD) return false;
  }
  return true;
}
