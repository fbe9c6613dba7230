/**
 * A reader of XDR (RFC 4506) over kept bytes. It never throws: reading past what
 * was kept sets `short` and returns 0, and every later read does too, so a parser
 * reads on and checks once. `skip` may pass the kept bytes as long as it stays
 * inside the record (`total`): the parser keeps its place in a large message whose
 * head alone was kept, though what follows the kept bytes cannot be read.
 */
export class XdrReader {
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  /** end of the kept bytes */
  end = 0;
  /** end of the record, kept or not */
  total = 0;
  /** a read went past the kept bytes (or a length past the record) */
  short = false;

  reset(buf: Buffer, off: number, kept: number, total: number): this {
    this.buf = buf;
    this.pos = off;
    this.end = off + kept;
    this.total = off + total;
    this.short = false;
    return this;
  }

  get left(): number {
    return this.end - this.pos;
  }

  u32(): number {
    if (this.short || this.pos + 4 > this.end) {
      this.short = true;
      return 0;
    }
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** an unsigned hyper as a number (exact below 2^53) */
  u64(): number {
    const hi = this.u32();
    const lo = this.u32();
    return hi * 4294967296 + lo;
  }

  /** n bytes (padded to 4) passed over; false when that leaves the record */
  skip(n: number): boolean {
    const padded = n + ((4 - (n % 4)) % 4);
    if (this.short || n < 0 || this.pos + padded > this.total) {
      this.short = true;
      return false;
    }
    this.pos += padded;
    return true;
  }

  /** a variable-length opaque or string, passed over; its length */
  skipOpaque(max = 0x7fffffff): number {
    const n = this.u32();
    if (n > max) {
      this.short = true;
      return 0;
    }
    this.skip(n);
    return n;
  }

  /** a variable-length string of at most `max` bytes (cut there), as latin1 text; '' when it could not be read */
  string(max: number): string {
    const n = this.u32();
    if (this.short) return '';
    const from = this.pos;
    if (!this.skip(n) || this.pos > this.end) {
      this.short = true;
      return '';
    }
    return this.buf.toString('latin1', from, from + Math.min(n, max));
  }

  /** an array of unsigned ints (at most `max` kept; the others passed over) */
  u32Array(max: number): number[] {
    const n = this.u32();
    const out: number[] = [];
    for (let i = 0; i < n && !this.short; i++) {
      const v = this.u32();
      if (i < max) out.push(v);
      if (this.pos >= this.end && i + 1 < n) {
        this.short = true;
        break;
      }
    }
    return out;
  }

  /** a bitmap4 or any array of unsigned ints, passed over */
  skipU32Array(): void {
    const n = this.u32();
    if (n > 0x3fffffff) this.short = true;
    else this.skip(n * 4);
  }
}
