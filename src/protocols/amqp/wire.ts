/**
 * AMQP 0-9-1 on the wire: a bounds-checked reader for method arguments and content
 * headers, field tables, and content properties. Nothing here throws on damaged
 * input: a read past the end sets `failed` and returns a zero value.
 *
 * Field tables are read with the type letters RabbitMQ and every client library
 * (amqplib, pika, the Java client) write, RabbitMQ's errata to the 0-9-1 spec:
 * `s` is a signed 16-bit integer and `l` a signed 64-bit one. packetbeat follows the
 * spec's text instead (`s` short string, `l` unsigned 64-bit), which misreads tables
 * that hold them; the letters the two agree on read the same. Values are rendered as
 * packetbeat renders them: arrays as objects keyed "0", "1", ..., decimals as
 * strings, timestamps in Go's "January _2 15:04:05 2006" layout (UTC), byte arrays
 * as "[1, 2, 3]".
 */

/** frame types */
export const FRAME_METHOD = 1;
export const FRAME_HEADER = 2;
export const FRAME_BODY = 3;
export const FRAME_HEARTBEAT = 8;
export const FRAME_END = 0xce;
/** type byte, channel (2), size (4) */
export const FRAME_HEADER_BYTES = 7;

/** tables nested deeper than this are not rendered (a note says so) */
export const MAX_TABLE_DEPTH = 8;

export class Reader {
  failed = false;
  /** a table nested too deep, or an unknown field type, was left out */
  partial = false;
  constructor(
    readonly b: Buffer,
    public p: number,
    readonly end: number,
  ) {}

  private need(n: number): boolean {
    if (this.failed || this.p + n > this.end) {
      this.failed = true;
      return false;
    }
    return true;
  }

  u8(): number {
    if (!this.need(1)) return 0;
    return this.b[this.p++];
  }

  u16(): number {
    if (!this.need(2)) return 0;
    const v = this.b.readUInt16BE(this.p);
    this.p += 2;
    return v;
  }

  u32(): number {
    if (!this.need(4)) return 0;
    const v = this.b.readUInt32BE(this.p);
    this.p += 4;
    return v;
  }

  /** an unsigned 64-bit number: exact up to 2^53, a rounded number past it */
  u64(): number {
    if (!this.need(8)) return 0;
    const v = this.b.readUInt32BE(this.p) * 4294967296 + this.b.readUInt32BE(this.p + 4);
    this.p += 8;
    return v;
  }

  shortstr(): string {
    const n = this.u8();
    if (!this.need(n)) return '';
    const s = this.b.toString('utf8', this.p, this.p + n);
    this.p += n;
    return s;
  }

  longstr(): string {
    const n = this.u32();
    if (!this.need(n)) return '';
    const s = this.b.toString('utf8', this.p, this.p + n);
    this.p += n;
    return s;
  }

  /** a long string skipped (a SASL response: a secret) */
  skipLongstr(): void {
    const n = this.u32();
    if (this.need(n)) this.p += n;
  }

  /** a field table; null when it is empty */
  table(depth = 0): Record<string, unknown> | null {
    const n = this.u32();
    if (!this.need(n)) return null;
    const end = this.p + n;
    const out: Record<string, unknown> = {};
    let any = false;
    const r = new Reader(this.b, this.p, end);
    while (r.p < end && !r.failed) {
      const name = r.shortstr();
      const v = r.value(depth);
      if (r.failed) break;
      if (v !== SKIP) {
        out[name] = v;
        any = true;
      }
    }
    if (r.failed) this.failed = true;
    if (r.partial) this.partial = true;
    this.p = end;
    return any ? out : null;
  }

  private array(depth: number): Record<string, unknown> {
    const n = this.u32();
    const out: Record<string, unknown> = {};
    if (!this.need(n)) return out;
    const end = this.p + n;
    const r = new Reader(this.b, this.p, end);
    let i = 0;
    while (r.p < end && !r.failed) {
      const v = r.value(depth);
      if (r.failed) break;
      if (v !== SKIP) out[String(i)] = v;
      i++;
    }
    if (r.failed) this.failed = true;
    if (r.partial) this.partial = true;
    this.p = end;
    return out;
  }

  /** one typed value of a table or array */
  value(depth: number): unknown {
    const t = this.u8();
    switch (t) {
      case 0x74: // t
        return this.u8() !== 0;
      case 0x62: // b
        return (this.u8() << 24) >> 24;
      case 0x42: // B
        return this.u8();
      case 0x73: // s: int16 (RabbitMQ)
      case 0x55: // U: int16 (spec)
        return (this.u16() << 16) >> 16;
      case 0x75: // u
        return this.u16();
      case 0x49: // I
        return this.u32() | 0;
      case 0x69: // i
        return this.u32();
      case 0x6c: // l: int64 (RabbitMQ)
      case 0x4c: {
        // L: int64 (spec)
        if (!this.need(8)) return 0;
        const v = this.b.readBigInt64BE(this.p);
        this.p += 8;
        return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
      }
      case 0x66: {
        // f
        if (!this.need(4)) return 0;
        const v = this.b.readFloatBE(this.p);
        this.p += 4;
        return Number.isFinite(v) ? v : String(v);
      }
      case 0x64: {
        // d
        if (!this.need(8)) return 0;
        const v = this.b.readDoubleBE(this.p);
        this.p += 8;
        return Number.isFinite(v) ? v : String(v);
      }
      case 0x44: {
        // D: scale, then an unsigned 32-bit value
        const scale = this.u8();
        const v = String(this.u32());
        if (scale === 0 || scale > 9) return v;
        const digits = v.padStart(scale + 1, '0');
        return `${digits.slice(0, digits.length - scale)}.${digits.slice(digits.length - scale)}`;
      }
      case 0x53: // S
        return this.longstr();
      case 0x78: {
        // x: byte array
        const n = this.u32();
        if (!this.need(n)) return '';
        const parts: number[] = [];
        for (let i = 0; i < n && i < 1024; i++) parts.push(this.b[this.p + i]);
        this.p += n;
        return `[${parts.join(', ')}]`;
      }
      case 0x41: // A
        if (depth >= MAX_TABLE_DEPTH) return this.skipNested();
        return this.array(depth + 1);
      case 0x46: // F
        if (depth >= MAX_TABLE_DEPTH) return this.skipNested();
        return this.table(depth + 1) ?? {};
      case 0x54: // T
        return goTime(this.u64());
      case 0x56: // V
        return null;
      default:
        // an unknown type: its length is unknown, the rest of the table cannot be read
        this.partial = true;
        this.failed = true;
        return SKIP;
    }
  }

  private skipNested(): typeof SKIP {
    const n = this.u32();
    if (this.need(n)) this.p += n;
    this.partial = true;
    return SKIP;
  }
}

const SKIP = Symbol('skip');

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** seconds since the epoch in packetbeat's layout, "January _2 15:04:05 2006" (UTC) */
export function goTime(sec: number): string {
  const d = new Date(sec * 1000);
  if (Number.isNaN(d.getTime())) return String(sec);
  const p2 = (n: number) => String(n).padStart(2, '0');
  return `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

/** property flag `bit` is set (no closure per header: the bundle wraps every closure it creates) */
const has = (flags: number, bit: number) => (flags & (1 << bit)) !== 0;

/**
 * A content header's payload (class-id, weight, body-size, property flags and list)
 * into `fields` with packetbeat's names. Returns the body size (-1 when the header
 * is too short to say).
 */
export function readContentHeader(b: Buffer, off: number, end: number, fields: Record<string, unknown>, parseHeaders: boolean): { bodySize: number; classId: number; partial: boolean } {
  const r = new Reader(b, off, end);
  const classId = r.u16();
  r.u16(); // weight
  const bodySize = r.u64();
  if (r.failed) return { bodySize: -1, classId, partial: true };
  // property flags: 16-bit words, bit 0 set when another word follows
  const flags: number[] = [];
  for (;;) {
    const w = r.u16();
    if (r.failed) break;
    flags.push(w);
    if ((w & 1) === 0 || flags.length >= 4) break;
  }
  const f = flags[0] ?? 0;
  if (parseHeaders && classId === 60) {
    if (has(f, 15)) fields['content-type'] = r.shortstr();
    if (has(f, 14)) fields['content-encoding'] = r.shortstr();
    if (has(f, 13)) {
      const h = r.table();
      if (h !== null) fields.headers = h;
    }
    if (has(f, 12)) {
      const m = r.u8();
      if (m === 1) fields['delivery-mode'] = 'non-persistent';
      else if (m === 2) fields['delivery-mode'] = 'persistent';
    }
    if (has(f, 11)) fields.priority = r.u8();
    if (has(f, 10)) fields['correlation-id'] = r.shortstr();
    if (has(f, 9)) fields['reply-to'] = r.shortstr();
    if (has(f, 8)) fields.expiration = r.shortstr();
    if (has(f, 7)) fields['message-id'] = r.shortstr();
    if (has(f, 6)) fields.timestamp = goTime(r.u64());
    if (has(f, 5)) fields.type = r.shortstr();
    if (has(f, 4)) fields['user-id'] = r.shortstr();
    if (has(f, 3)) fields['app-id'] = r.shortstr();
  }
  return { bodySize, classId, partial: r.failed || r.partial };
}
