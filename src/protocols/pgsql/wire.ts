/**
 * PostgreSQL wire protocol v3 framing, one direction of a connection: a type byte
 * and a 32-bit length that counts itself (the startup-phase messages have no type
 * byte). Every message's extent is known from its header, so a gap inside a message
 * costs only that message's content; a gap across messages, or bytes that are no
 * message, send the framer looking for the next message start it can prove
 * (`resync`). Bodies the analyzer reads are handed over in place when a message
 * lies in one chunk, else gathered, never beyond `maxBody` bytes; other bodies
 * (data rows, copy data) are skipped without a copy.
 */

export const F_START = 0;
export const F_HEADER = 1;
export const F_BODY = 2;
export const F_BYTE = 3;
export const F_SYNC = 4;
export const F_DEAD = 5;

/** message types each side may send (frontend: client, backend: server) */
export const FRONTEND_TYPES = 'BCdcfDEHFPpQSX';
export const BACKEND_TYPES = 'RK23CdcGHWDIEVvnNAtS1sZT';
const VALID: [Uint8Array, Uint8Array] = [new Uint8Array(256), new Uint8Array(256)];
for (const c of FRONTEND_TYPES) VALID[0][c.charCodeAt(0)] = 1;
for (const c of BACKEND_TYPES) VALID[1][c.charCodeAt(0)] = 1;

/** may this side send a message of this type */
export const isType = (side: number, type: number): boolean => VALID[side][type] === 1;

/** a message length beyond this is no PostgreSQL message (the server's own limit is 1 GiB) */
const MAX_LENGTH = 0x40000000;
/** the longest startup-phase message the server accepts (MAX_STARTUP_PACKET_LENGTH) */
export const MAX_STARTUP = 10000;
/** while resynchronising, a candidate message is checked whole: up to this size */
const MAX_SYNC_MESSAGE = 16 * 1024;

/** where the framer's messages go */
export interface FrameSink {
  /**
   * one message: `type` is its type byte (0: a startup-phase message without one),
   * `buf[off, off+len)` the part of its body kept (len < bodyLen when it was cut at
   * maxBody, at a gap, or not wanted), `bodyLen` the body's size on the wire. Times,
   * missing bytes: on the framer.
   */
  message(f: Framer, type: number, buf: Buffer, off: number, len: number, bodyLen: number): void;
  /** the one-byte answer to an SSLRequest or GSSENCRequest */
  byteReply(f: Framer, b: number): void;
  /** the framer lost the message boundaries (a gap across messages, or bytes that are no message) */
  lostSync(f: Framer, reason: string): void;
}

export class Framer {
  state: number;
  /** start and end (so far) of the current message, packet time */
  startSec = 0;
  startNsec = 0;
  endSec = 0;
  endNsec = 0;
  /** bytes of the current message lost to gaps */
  missing = 0;
  /** types whose bodies the sink reads (1), by type byte; 0 is the startup-phase message */
  readonly keep = new Uint8Array(256);
  private readonly hdr = Buffer.alloc(5);
  private hdrLen = 0;
  private type = 0;
  private bodyLen = 0;
  private got = 0;
  /** body bytes to gather (0: none), and what was gathered */
  private want = 0;
  private body: Buffer | null = null;
  private bodyKept = 0;
  private sync: Buffer | null = null;

  constructor(
    readonly side: number,
    private readonly sink: FrameSink,
    private readonly maxBody: number,
    startup: boolean,
  ) {
    this.state = startup ? F_START : F_HEADER;
    this.keep[0] = 1;
  }

  /** the next byte is a one-byte answer (to an SSLRequest), not a message */
  expectByte(): void {
    if (this.state === F_HEADER && this.hdrLen === 0) this.state = F_BYTE;
  }

  /** the next message is a startup-phase one, without a type byte */
  expectStartup(): void {
    if (this.state === F_HEADER && this.hdrLen === 0) this.state = F_START;
  }

  /** typed messages from now on */
  typed(): void {
    if (this.state === F_START) this.state = F_HEADER;
  }

  stop(): void {
    this.state = F_DEAD;
    this.body = null;
    this.sync = null;
  }

  /** look for a message start (a connection seen mid-stream) */
  resync(): void {
    this.state = F_SYNC;
    this.sync = null;
    this.hdrLen = 0;
  }

  feed(buf: Buffer, off: number, len: number, sec: number, nsec: number): void {
    this.endSec = sec;
    this.endNsec = nsec;
    this.run(buf, off, off + len);
  }

  /** n bytes of this direction were lost */
  gap(n: number, sec: number, nsec: number): void {
    this.endSec = sec;
    this.endNsec = nsec;
    switch (this.state) {
      case F_BODY: {
        const rest = this.bodyLen - this.got;
        // what was gathered before the gap stays; nothing after it is kept
        if (this.want > 0) this.want = this.bodyKept;
        if (n <= rest) {
          this.missing += n;
          this.got += n;
          if (this.got === this.bodyLen) this.complete(null, 0);
          return;
        }
        this.missing += rest;
        this.got = this.bodyLen;
        this.complete(null, 0);
        this.lose('gap');
        return;
      }
      case F_SYNC:
        // the bytes gathered so far do not continue into what comes next
        this.sync = null;
        return;
      case F_DEAD:
        return;
      default:
        this.lose('gap');
    }
  }

  private lose(reason: string): void {
    this.state = F_SYNC;
    this.hdrLen = 0;
    this.body = null;
    this.sync = null;
    this.sink.lostSync(this, reason);
  }

  private run(buf: Buffer, off: number, end: number): void {
    while (off < end) {
      switch (this.state) {
        case F_HEADER:
        case F_START: {
          const typed = this.state === F_HEADER;
          const need = typed ? 5 : 4;
          if (this.hdrLen === 0) {
            this.startSec = this.endSec;
            this.startNsec = this.endNsec;
            this.missing = 0;
            if (end - off >= need) {
              // the whole header in this chunk: no copy
              const type = typed ? buf[off] : 0;
              const length = buf.readUInt32BE(typed ? off + 1 : off);
              off += need;
              if (!this.header(type, length)) {
                // look for a message start from the byte after this one
                off -= need - 1;
                break;
              }
              // the whole body in this chunk too: hand it over in place
              if ((this.state as number) === F_BODY && end - off >= this.bodyLen) {
                const kept = this.keep[type] === 1 ? Math.min(this.bodyLen, this.maxBody) : 0;
                const at = off;
                off += this.bodyLen;
                this.got = this.bodyLen;
                this.complete(buf, at, kept);
              }
              break;
            }
          }
          while (this.hdrLen < need && off < end) this.hdr[this.hdrLen++] = buf[off++];
          if (this.hdrLen < need) return;
          this.hdrLen = 0;
          if (!this.header(typed ? this.hdr[0] : 0, this.hdr.readUInt32BE(typed ? 1 : 0))) this.sync = Buffer.from(this.hdr.subarray(1, need));
          break;
        }
        case F_BODY: {
          const n = Math.min(this.bodyLen - this.got, end - off);
          if (this.want > this.bodyKept) {
            const take = Math.min(n, this.want - this.bodyKept);
            if (this.body === null) this.body = Buffer.allocUnsafe(this.want);
            buf.copy(this.body, this.bodyKept, off, off + take);
            this.bodyKept += take;
          }
          this.got += n;
          off += n;
          if (this.got === this.bodyLen) this.complete(null, 0);
          break;
        }
        case F_BYTE: {
          const b = buf[off];
          if (b === 83 || b === 78 || b === 71) {
            // 'S', 'N', 'G': the answer; anything else is a message (an old server's error)
            this.startSec = this.endSec;
            this.startNsec = this.endNsec;
            this.state = F_HEADER;
            off++;
            this.sink.byteReply(this, b);
          } else this.state = F_HEADER;
          break;
        }
        case F_SYNC:
          off = this.seek(buf, off, end);
          break;
        default: // F_DEAD
          return;
      }
    }
  }

  /** a header read: false when it is no message (the framer then looks for one) */
  private header(type: number, length: number): boolean {
    const ok = type === 0 ? length >= 8 && length <= MAX_STARTUP : VALID[this.side][type] === 1 && length >= 4 && length <= MAX_LENGTH;
    if (!ok) {
      this.lose(type === 0 ? 'bad_startup_length' : VALID[this.side][type] === 1 ? 'bad_length' : 'bad_type');
      return false;
    }
    this.type = type;
    this.bodyLen = length - 4;
    this.got = 0;
    this.bodyKept = 0;
    this.body = null;
    this.want = this.keep[type] === 1 ? Math.min(this.bodyLen, this.maxBody) : 0;
    this.state = F_BODY;
    if (this.bodyLen === 0) this.complete(null, 0);
    return true;
  }

  /** the message is whole: hand it on (in place when `buf` is given) */
  private complete(buf: Buffer | null, at: number, kept = 0): void {
    const type = this.type;
    this.state = type === 0 ? F_START : F_HEADER;
    if (buf !== null) {
      this.sink.message(this, type, buf, at, kept, this.bodyLen);
      return;
    }
    const body = this.body ?? EMPTY;
    this.body = null;
    this.sink.message(this, type, body, 0, this.bodyKept, this.bodyLen);
  }

  /**
   * Looking for a message start: from each position, a header of this side's types
   * whose message checks out whole (`plausible`), and is followed by another valid
   * header, or is a kind that proves itself (ReadyForQuery, a Query). Candidates up
   * to MAX_SYNC_MESSAGE are checked; the decision at a position depends only on the
   * bytes there, so any split of the stream gives the same result.
   */
  private seek(buf: Buffer, off: number, end: number): number {
    let data: Buffer;
    let i: number;
    if (this.sync === null) {
      data = buf;
      i = off;
    } else {
      data = Buffer.concat([this.sync, buf.subarray(off, end)]);
      i = 0;
      end = data.length;
      this.sync = null;
    }
    const valid = VALID[this.side];
    for (; i < end; i++) {
      if (valid[data[i]] !== 1) continue;
      if (end - i < 5) break;
      const length = data.readUInt32BE(i + 1);
      if (length < 4 || length > MAX_SYNC_MESSAGE) continue;
      const next = i + 1 + length;
      if (next > end) break;
      if (!plausible(this.side, data[i], data, i + 5, next)) continue;
      if (!selfEvident(this.side, data[i], data, i + 5, next)) {
        if (end - next < 5) break;
        const nl = data.readUInt32BE(next + 1);
        if (valid[data[next]] !== 1 || nl < 4 || nl > MAX_LENGTH) continue;
      }
      // found: carry on from here as usual
      this.state = F_HEADER;
      this.hdrLen = 0;
      if (data === buf) return i;
      this.run(data, i, end);
      return buf.length;
    }
    // wait for more bytes from position i (bounded: a candidate is at most MAX_SYNC_MESSAGE + 5)
    if (i < end) this.sync = Buffer.from(data.subarray(i, end));
    return data === buf ? end : buf.length;
  }
}

const EMPTY = Buffer.alloc(0);

/** a NUL-terminated string at b[i..end): the index after its NUL, or -1 */
function cstr(b: Buffer, i: number, end: number): number {
  const z = b.indexOf(0, i);
  return z < 0 || z >= end ? -1 : z + 1;
}

/** past `count` length-prefixed values (-1 for NULL) from b[p]: the index after them, or -1 when they overrun `end` */
function skipValues(b: Buffer, p: number, count: number, end: number): number {
  for (let k = 0; k < count; k++) {
    if (end - p < 4) return -1;
    const l = b.readInt32BE(p);
    p += 4;
    if (l > 0) p += l;
    else if (l < -1) return -1;
    if (p > end) return -1;
  }
  return p;
}

/** messages that cannot be anything else once whole: ReadyForQuery, a Query of text */
function selfEvident(side: number, type: number, b: Buffer, i: number, end: number): boolean {
  if (side === 1) return type === 90; // 'Z' (its size and status are checked in plausible)
  if (type !== 81 || end - i < 2) return false; // 'Q'
  for (let j = i; j < end - 1; j++) {
    const c = b[j];
    if (c < 32 && c !== 9 && c !== 10 && c !== 13) return false;
  }
  return true;
}

/** does b[i..end) hold a well-formed body of this message type (as far as its structure tells) */
export function plausible(side: number, type: number, b: Buffer, i: number, end: number): boolean {
  const n = end - i;
  if (side === 0) {
    switch (type) {
      case 81: // Q
      case 102: // f CopyFail
        return n >= 1 && cstr(b, i, end) === end;
      case 83: // S Sync
      case 72: // H Flush
      case 88: // X Terminate
      case 99: // c CopyDone
        return n === 0;
      case 69: {
        // E Execute: portal, max rows
        const p = cstr(b, i, end);
        return p >= 0 && end - p === 4;
      }
      case 68: // D Describe
      case 67: // C Close
        return n >= 2 && (b[i] === 83 || b[i] === 80) && cstr(b, i + 1, end) === end;
      case 80: {
        // P Parse: name, query, parameter types
        const a = cstr(b, i, end);
        const q = a < 0 ? -1 : cstr(b, a, end);
        return q >= 0 && end - q >= 2 && end - q === 2 + 4 * b.readUInt16BE(q);
      }
      case 66: {
        // B Bind: portal, statement, formats, values, result formats
        let p = cstr(b, i, end);
        if (p >= 0) p = cstr(b, p, end);
        if (p < 0 || end - p < 2) return false;
        p += 2 + 2 * b.readUInt16BE(p);
        if (end - p < 2) return false;
        p = skipValues(b, p + 2, b.readUInt16BE(p), end);
        return p >= 0 && end - p >= 2 && end - p === 2 + 2 * b.readUInt16BE(p);
      }
      default:
        // d CopyData, p password/SASL, F FunctionCall: no structure to check
        return true;
    }
  }
  switch (type) {
    case 90: // Z
      return n === 1 && (b[i] === 73 || b[i] === 84 || b[i] === 69);
    case 49: // 1 ParseComplete
    case 50: // 2 BindComplete
    case 51: // 3 CloseComplete
    case 110: // n NoData
    case 73: // I EmptyQueryResponse
    case 115: // s PortalSuspended
    case 99: // c CopyDone
      return n === 0;
    case 67: {
      // C CommandComplete: a tag of capitals, digits and spaces
      if (n < 2 || cstr(b, i, end) !== end) return false;
      for (let j = i; j < end - 1; j++) {
        const c = b[j];
        if (!((c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 32)) return false;
      }
      return true;
    }
    case 68: {
      // D DataRow: count, then values with lengths, exactly
      return n >= 2 && skipValues(b, i + 2, b.readUInt16BE(i), end) === end;
    }
    case 84: {
      // T RowDescription: count, then name and 18 bytes per field, exactly
      if (n < 2) return false;
      const count = b.readUInt16BE(i);
      let p = i + 2;
      for (let k = 0; k < count; k++) {
        p = cstr(b, p, end);
        if (p < 0 || end - p < 18) return false;
        p += 18;
      }
      return p === end;
    }
    case 69: // E ErrorResponse
    case 78: {
      // N NoticeResponse: (code, string)* then NUL
      let p = i;
      while (p < end && b[p] !== 0) {
        p = cstr(b, p + 1, end);
        if (p < 0) return false;
      }
      return p === end - 1 && n >= 2;
    }
    case 83: {
      // S ParameterStatus: name, value
      const a = cstr(b, i, end);
      return a >= 0 && cstr(b, a, end) === end;
    }
    case 75: // K BackendKeyData
      return n >= 8;
    case 65: {
      // A NotificationResponse: pid, channel, payload
      if (n < 6) return false;
      const a = cstr(b, i + 4, end);
      return a >= 0 && cstr(b, a, end) === end;
    }
    case 116: // t ParameterDescription
      return n >= 2 && n === 2 + 4 * b.readUInt16BE(i);
    case 71: // G CopyInResponse
    case 72: // H CopyOutResponse
    case 87: // W CopyBothResponse
      return n >= 3 && b[i] <= 1 && n === 3 + 2 * b.readUInt16BE(i + 1);
    case 82: // R Authentication
      return n >= 4 && b.readUInt32BE(i) <= 12;
    default:
      // d CopyData, V FunctionCallResponse, v NegotiateProtocolVersion
      return true;
  }
}
