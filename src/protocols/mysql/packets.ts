import { inflateSync } from 'node:zlib';

/**
 * MySQL's framing, one direction of a connection. A packet is a 3-byte
 * little-endian payload length, a sequence number and the payload; a payload of
 * 0xffffff bytes continues in the next packet, so a message of 16 MiB or more is
 * several packets (the last one shorter, possibly empty). The framer hands on whole
 * messages, of which it keeps the first `maxKeep` bytes: a message inside one chunk
 * is a view into it (no copy); one spread over chunks is gathered into a buffer of
 * at most `maxKeep` bytes and the rest is only counted.
 */

/** a payload length that says "more of this message follows" */
export const MAX_PACKET = 0xffffff;
/** bytes gathered at a chunk start, out of step, to tell whether a message starts there */
const SYNC_MAX = 4096;

/** What the framer's user sees. */
export interface FrameSink {
  /**
   * A whole message: its first bytes at buf[off, off+len) (valid during the call
   * only); `f` holds its length, sequence numbers, wire bytes and times.
   */
  message(side: number, buf: Buffer, off: number, len: number, f: Framer): void;
  /** the framing of this side was lost to a gap: bytes of unknown meaning follow */
  lost(side: number, tsSec: number, tsNsec: number): void;
  /** while out of step: does a message start at buf[off] (the start of a chunk)? 1 yes, 0 no, -1 more bytes are needed to tell */
  plausible(side: number, buf: Buffer, off: number, len: number): number;
}

export class Framer {
  /** in step with packet boundaries */
  synced: boolean;
  /** set by the sink during message(): stop after this message (the rest of the chunk is compressed) */
  halt = false;
  // the message being read
  /** payload bytes of the whole message (all its packets), seen or lost */
  total = 0;
  /** payload bytes and headers on the wire */
  wire = 0;
  /** bytes of the message lost to gaps */
  missing = 0;
  seq = 0;
  lastSeq = 0;
  startSec = 0;
  startNsec = 0;
  endSec = 0;
  endNsec = 0;
  /** chunks skipped while out of step */
  skipped = 0;
  /** header bytes of the packet being read */
  private readonly hdr = Buffer.alloc(4);
  private hdrFill = 0;
  /** payload bytes of the current packet still to come */
  private remaining = 0;
  /** the current packet is 0xffffff long: the message goes on in the next */
  private more = false;
  /** inside a message (between its first header and its last byte) */
  private inMessage = false;
  private keep: Buffer | null = null;
  private keepFill = 0;
  /** a gap hit the kept bytes: keep no more (what was kept stays valid) */
  private keepClosed = false;
  /** out of step: the first bytes of a chunk, gathered until the sink can tell whether a message starts there */
  private sync: Buffer | null = null;
  /** where chunks started in `sync` (candidates for a message start) */
  private readonly starts: number[] = [];

  constructor(
    private readonly side: number,
    private readonly sink: FrameSink,
    private readonly maxKeep: number,
    synced: boolean,
  ) {
    this.synced = synced;
  }

  /** feed in-order bytes; returns how many were consumed (fewer when the sink halted the framer) */
  feed(buf: Buffer, off: number, len: number, tsSec: number, tsNsec: number): number {
    if (!this.synced) return this.resync(buf, off, len, tsSec, tsNsec);
    const end = off + len;
    let o = off;
    while (o < end) {
      if (this.halt) {
        this.halt = false;
        return o - off;
      }
      if (this.remaining === 0 && this.hdrFill === 0) {
        // at a packet header
        if (!this.inMessage && end - o >= 4) {
          const plen = buf[o] | (buf[o + 1] << 8) | (buf[o + 2] << 16);
          if (plen < MAX_PACKET && end - o - 4 >= plen) {
            // the common case: a whole one-packet message inside this chunk
            this.seq = this.lastSeq = buf[o + 3];
            this.total = plen;
            this.wire = plen + 4;
            this.missing = 0;
            this.startSec = this.endSec = tsSec;
            this.startNsec = this.endNsec = tsNsec;
            this.sink.message(this.side, buf, o + 4, plen < this.maxKeep ? plen : this.maxKeep, this);
            o += 4 + plen;
            continue;
          }
        }
        const n = Math.min(4, end - o);
        buf.copy(this.hdr, 0, o, o + n);
        this.hdrFill = n;
        o += n;
        if (n === 4) this.header(tsSec, tsNsec);
        continue;
      }
      if (this.hdrFill > 0 && this.hdrFill < 4) {
        const n = Math.min(4 - this.hdrFill, end - o);
        buf.copy(this.hdr, this.hdrFill, o, o + n);
        this.hdrFill += n;
        o += n;
        if (this.hdrFill === 4) this.header(tsSec, tsNsec);
        continue;
      }
      // payload of the current packet
      const n = Math.min(this.remaining, end - o);
      this.take(buf, o, n);
      o += n;
      this.remaining -= n;
      if (this.remaining === 0) this.packetEnd(tsSec, tsNsec);
    }
    this.halt = false;
    return len;
  }

  /**
   * Out of step: a message may start at the start of a chunk. The bytes from the
   * chunk starts not yet ruled out are gathered (up to SYNC_MAX) until the sink can
   * tell; the first start it accepts is read from as usual.
   */
  private resync(buf: Buffer, off: number, len: number, tsSec: number, tsNsec: number): number {
    let b: Buffer;
    if (this.sync === null) {
      b = buf.subarray(off, off + len);
      this.starts.length = 0;
    } else b = Buffer.concat([this.sync, buf.subarray(off, off + len)]);
    this.starts.push(b.length - len);
    let wait = false;
    for (let i = 0; i < this.starts.length; i++) {
      const at = this.starts[i];
      const verdict = this.sink.plausible(this.side, b, at, b.length - at);
      if (verdict > 0) {
        this.sync = null;
        this.synced = true;
        this.feed(b, at, b.length - at, tsSec, tsNsec);
        return len;
      }
      if (verdict < 0 && b.length - at < SYNC_MAX) wait = true;
      else this.starts[i] = -1;
    }
    this.skipped++;
    const first = this.starts.findIndex((v) => v >= 0);
    if (!wait || first < 0) {
      this.sync = null;
      return len;
    }
    // keep the bytes from the first start still possible
    const from = this.starts[first];
    this.sync = Buffer.from(b.subarray(from));
    let k = 0;
    for (const v of this.starts) if (v >= 0) this.starts[k++] = v - from;
    this.starts.length = k;
    return len;
  }

  /** n bytes of this direction were lost */
  gap(n: number, tsSec: number, tsNsec: number): void {
    this.sync = null;
    if (!this.synced || n <= 0) return;
    if (this.hdrFill === 0 && this.remaining > 0 && n <= this.remaining) {
      // inside a payload: the boundaries stay known
      this.missing += n;
      this.remaining -= n;
      this.keepClosed = true;
      if (this.remaining === 0) this.packetEnd(tsSec, tsNsec);
      return;
    }
    if (this.inMessage) {
      // the message ends somewhere in the lost bytes (what follows it too): hand on what there is
      this.missing += n;
      this.hdrFill = 0;
      this.remaining = 0;
      this.more = false;
      this.packetEnd(tsSec, tsNsec);
    }
    this.reset();
    this.synced = false;
    this.sink.lost(this.side, tsSec, tsNsec);
  }

  /** forget the message in progress and wait for a plausible start */
  desync(): void {
    this.reset();
    this.synced = false;
  }

  private reset(): void {
    this.sync = null;
    this.hdrFill = 0;
    this.remaining = 0;
    this.more = false;
    this.inMessage = false;
    this.keep = null;
    this.keepFill = 0;
    this.keepClosed = false;
  }

  private header(tsSec: number, tsNsec: number): void {
    const h = this.hdr;
    const plen = h[0] | (h[1] << 8) | (h[2] << 16);
    this.hdrFill = 0;
    if (!this.inMessage) {
      this.inMessage = true;
      this.seq = h[3];
      this.total = 0;
      this.wire = 0;
      this.missing = 0;
      this.startSec = tsSec;
      this.startNsec = tsNsec;
      this.keepFill = 0;
      this.keepClosed = false;
      this.keep = null;
    }
    this.lastSeq = h[3];
    this.total += plen;
    this.wire += 4 + plen;
    this.more = plen === MAX_PACKET;
    this.remaining = plen;
    if (plen === 0) this.packetEnd(tsSec, tsNsec);
  }

  private take(buf: Buffer, o: number, n: number): void {
    if (this.keepClosed || this.keepFill >= this.maxKeep || n === 0) return;
    const want = Math.min(n, this.maxKeep - this.keepFill);
    if (this.keep === null || this.keep.length < this.keepFill + want) {
      // room for this packet's payload, up to maxKeep
      const size = Math.min(this.maxKeep, this.keepFill + Math.max(want, this.remaining));
      const k = Buffer.allocUnsafe(size);
      if (this.keep !== null) this.keep.copy(k, 0, 0, this.keepFill);
      this.keep = k;
    }
    buf.copy(this.keep, this.keepFill, o, o + want);
    this.keepFill += want;
  }

  private packetEnd(tsSec: number, tsNsec: number): void {
    if (this.more) return;
    this.endSec = tsSec;
    this.endNsec = tsNsec;
    const k = this.keep ?? EMPTY;
    const kept = this.keepFill;
    this.inMessage = false;
    this.keep = null;
    this.keepFill = 0;
    this.keepClosed = false;
    this.sink.message(this.side, k, 0, kept, this);
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * The compressed protocol (CLIENT_COMPRESS): packets of a 7-byte header
 * (compressed length, sequence, uncompressed length; 0 = stored as is) around
 * zlib data that holds ordinary packets. Inflates each and feeds the framer.
 * A compressed packet is held whole until it can be inflated, up to `maxBytes`;
 * a larger one is skipped (its contents are a gap for the framer).
 */
export class Inflater {
  private readonly hdr = Buffer.alloc(7);
  private hdrFill = 0;
  private remaining = 0;
  private rawLen = 0;
  private body: Buffer | null = null;
  private bodyFill = 0;
  /** a compressed packet too large to hold, or hit by a gap: skipped */
  private skipping = false;
  /** the compressed framing was lost: nothing more can be read */
  dead = false;
  packets = 0;

  constructor(
    private readonly framer: Framer,
    private readonly maxBytes: number,
    private readonly violation: (reason: string) => void,
  ) {}

  feed(buf: Buffer, off: number, len: number, tsSec: number, tsNsec: number): void {
    if (this.dead) return;
    const end = off + len;
    let o = off;
    while (o < end) {
      if (this.remaining === 0) {
        const n = Math.min(7 - this.hdrFill, end - o);
        buf.copy(this.hdr, this.hdrFill, o, o + n);
        this.hdrFill += n;
        o += n;
        if (this.hdrFill < 7) return;
        this.hdrFill = 0;
        const h = this.hdr;
        const clen = h[0] | (h[1] << 8) | (h[2] << 16);
        this.rawLen = h[4] | (h[5] << 8) | (h[6] << 16);
        this.remaining = clen;
        this.packets++;
        this.skipping = false;
        if (this.rawLen !== 0 && clen > this.maxBytes) {
          this.violation('compressed_packet_too_large');
          this.skipping = true;
        } else if (this.rawLen !== 0) {
          this.body = Buffer.allocUnsafe(clen);
          this.bodyFill = 0;
        }
        if (clen === 0) this.done(tsSec, tsNsec);
        continue;
      }
      const n = Math.min(this.remaining, end - o);
      if (this.rawLen === 0) this.framer.feed(buf, o, n, tsSec, tsNsec);
      else if (!this.skipping) {
        buf.copy(this.body!, this.bodyFill, o, o + n);
        this.bodyFill += n;
      }
      o += n;
      this.remaining -= n;
      if (this.remaining === 0) this.done(tsSec, tsNsec);
    }
  }

  gap(n: number, tsSec: number, tsNsec: number): void {
    if (this.dead) return;
    if (this.hdrFill === 0 && this.remaining > 0 && n <= this.remaining) {
      this.remaining -= n;
      if (this.rawLen === 0) this.framer.gap(n, tsSec, tsNsec);
      else this.skipping = true;
      if (this.remaining === 0) this.done(tsSec, tsNsec);
      return;
    }
    // the compressed headers are lost with the bytes: no way back into step
    this.dead = true;
    this.body = null;
    this.violation('gap_in_compressed_stream');
    this.framer.gap(n, tsSec, tsNsec);
  }

  private done(tsSec: number, tsNsec: number): void {
    if (this.rawLen === 0) return;
    const body = this.body;
    this.body = null;
    if (this.skipping || body === null) {
      this.framer.gap(this.rawLen, tsSec, tsNsec);
      return;
    }
    let raw: Buffer;
    try {
      raw = inflateSync(body, { maxOutputLength: this.rawLen });
    } catch {
      this.violation('bad_compressed_packet');
      this.framer.gap(this.rawLen, tsSec, tsNsec);
      return;
    }
    this.framer.feed(raw, 0, raw.length, tsSec, tsNsec);
    if (raw.length < this.rawLen) this.framer.gap(this.rawLen - raw.length, tsSec, tsNsec);
  }
}

/**
 * Reading a message's fields. `pos` moves on; reading past `end` sets `bad`
 * (never throws), so a parser reads what it needs and checks `bad` once.
 */
export class Reader {
  buf: Buffer = EMPTY;
  pos = 0;
  end = 0;
  bad = false;

  at(buf: Buffer, off: number, len: number): this {
    this.buf = buf;
    this.pos = off;
    this.end = off + len;
    this.bad = false;
    return this;
  }

  get left(): number {
    return this.end - this.pos;
  }

  u8(): number {
    if (this.pos + 1 > this.end) return this.fail();
    return this.buf[this.pos++];
  }

  u16(): number {
    if (this.pos + 2 > this.end) return this.fail();
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }

  u24(): number {
    if (this.pos + 3 > this.end) return this.fail();
    const b = this.buf;
    const p = this.pos;
    this.pos += 3;
    return b[p] | (b[p + 1] << 8) | (b[p + 2] << 16);
  }

  u32(): number {
    if (this.pos + 4 > this.end) return this.fail();
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  /** an 8-byte unsigned integer as a number (exact up to 2^53) */
  u64(): number {
    if (this.pos + 8 > this.end) return this.fail();
    const v = this.buf.readUInt32LE(this.pos) + this.buf.readUInt32LE(this.pos + 4) * 4294967296;
    this.pos += 8;
    return v;
  }

  /** a length-encoded integer; -1 for the NULL marker (0xfb) */
  lenenc(): number {
    const first = this.u8();
    if (first < 0xfb) return first;
    if (first === 0xfb) return -1;
    if (first === 0xfc) return this.u16();
    if (first === 0xfd) return this.u24();
    if (first === 0xfe) return this.u64();
    return this.fail(); // 0xff is no length
  }

  skip(n: number): void {
    if (n < 0 || this.pos + n > this.end) {
      this.fail();
      return;
    }
    this.pos += n;
  }

  /** n bytes as text (utf8), at most `max` of them (the rest skipped) */
  str(n: number, max = n): string {
    if (n < 0 || this.pos + n > this.end) {
      this.fail();
      return '';
    }
    const s = this.buf.toString('utf8', this.pos, this.pos + Math.min(n, max));
    this.pos += n;
    return s;
  }

  /** a length-encoded string ('' for NULL) */
  lenstr(max?: number): string {
    const n = this.lenenc();
    return n <= 0 ? '' : this.str(n, max);
  }

  /** a length-encoded string's length, skipping its bytes */
  skipLenstr(): void {
    const n = this.lenenc();
    if (n > 0) this.skip(n);
  }

  /** a NUL-terminated string (to the end when there is no NUL) */
  cstr(max = 256): string {
    const b = this.buf;
    let i = this.pos;
    while (i < this.end && b[i] !== 0) i++;
    const s = b.toString('utf8', this.pos, Math.min(i, this.pos + max));
    this.pos = i < this.end ? i + 1 : i;
    return s;
  }

  /** what is left, as text (at most max bytes) */
  rest(max: number): string {
    const s = this.buf.toString('utf8', this.pos, Math.min(this.end, this.pos + max));
    this.pos = this.end;
    return s;
  }

  private fail(): number {
    this.bad = true;
    this.pos = this.end;
    return 0;
  }
}
