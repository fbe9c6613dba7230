/**
 * A streaming decoder of one direction of a Thrift connection: the binary and compact
 * protocols, unframed (TBufferedTransport, "socket") or in the frames of the framed
 * transport, told apart at each message by its first bytes. Values are rendered as
 * packetbeat renders them while they stream past (`(1: "x", 2: 3)`, `[a, b]`,
 * `{a, b}`, `{k: v}`); nothing of a message is buffered but a token of at most 16
 * bytes, the kept part of the string being read (`stringMaxSize`) and the rendered
 * text (`maxTextBytes`), so a 100 MB string costs what a short one does.
 */
import { isUtf8 } from 'node:buffer';
import { ThriftMessage } from './message';

// Thrift's types (TType)
export const T_STOP = 0;
export const T_BOOL = 2;
export const T_BYTE = 3;
export const T_DOUBLE = 4;
export const T_I16 = 6;
export const T_I32 = 8;
export const T_I64 = 10;
export const T_STRING = 11;
export const T_STRUCT = 12;
export const T_MAP = 13;
export const T_SET = 14;
export const T_LIST = 15;
export const T_UUID = 16;

/** the compact protocol's type ids (the index) as TTypes; -1 for none (1 and 2 are a boolean field's value) */
const COMPACT_TYPES = [T_STOP, T_BOOL, T_BOOL, T_BYTE, T_I16, T_I32, T_I64, T_DOUBLE, T_STRING, T_LIST, T_SET, T_MAP, T_STRUCT, T_UUID, -1, -1];

/** a type a value can have (STOP and VOID cannot) */
function valueType(t: number): boolean {
  return t === T_BOOL || t === T_BYTE || t === T_DOUBLE || t === T_I16 || t === T_I32 || t === T_I64 || t === T_STRING || t === T_STRUCT || t === T_MAP || t === T_SET || t === T_LIST || t === T_UUID;
}

export interface DecoderOptions {
  /** bytes of a string or binary value kept and shown (packetbeat's string_max_size, 200); longer ones end in `...` */
  stringMaxSize: number;
  /** elements of a list, set or map, and fields of a struct, shown (packetbeat's collection_max_size, 15); `...` stands for the rest */
  collectionMaxSize: number;
  /** fields of one struct past which the message is taken as garbage (packetbeat's drop_after_n_struct_fields, 500) */
  dropAfterNStructFields: number;
  /** strings shown as `"*"` (packetbeat's obfuscate_strings) */
  obfuscateStrings: boolean;
  /** nesting of structs and containers (default 32; tshark's dissector stops at 25) */
  maxDepth: number;
  /** text of the rendered values of one message (default 32 KiB): past it values are left out */
  maxTextBytes: number;
  /** a message or frame larger than this is dropped as a violation (default 16 MiB, the thrift library's own frame limit) */
  maxMessageBytes: number;
}

export interface DecoderEvents {
  /** a message, complete or (`m.partial`) cut short after its header */
  message(m: ThriftMessage): void;
  /** the stream broke the protocol; what follows is looked for at the next message start */
  violation(reason: string): void;
}

/** longest method name taken as one (a longer one is garbage) */
export const MAX_NAME = 4096;

// decoder states
const S_START = 0;
const S_FRAME_START = 1;
const S_BIN_HEAD = 2;
const S_BIN_NAME_LEN = 3;
const S_BIN_SEQ = 4;
const S_COMPACT_HEAD = 5;
const S_COMPACT_SEQ = 6;
const S_COMPACT_NAME_LEN = 7;
const S_STRING = 8;
const S_FIELD = 9;
const S_FIELD_ID = 10;
const S_VALUE = 11;
const S_LIST_SIZE = 12;
const S_MAP_TYPES = 13;
const S_SKIP = 14;
const S_LOST = 15;

/** one open struct, list, set or map */
class Level {
  kind = 0;
  /** elements still to come (a map: keys and values) */
  left = 0;
  etype = 0;
  ktype = 0;
  vtype = 0;
  /** elements (struct: fields) seen */
  n = 0;
  /** rendered elements kept (the first collectionMaxSize) */
  parts: string[] = [];
  /** struct: field ids of `parts` */
  ids: number[] = [];
  /** struct: the current field's id; compact: the last one, for deltas */
  fid = 0;
  /** map: the key waiting for its value */
  key = '';
  /** text of `parts` (already counted against the message's text budget) */
  partsLen = 0;
}

/** Go's strconv.Quote, which packetbeat uses for strings */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c >= 0x20 && c < 0x7f) out += ch;
    else if (c === 7) out += '\\a';
    else if (c === 8) out += '\\b';
    else if (c === 12) out += '\\f';
    else if (c === 10) out += '\\n';
    else if (c === 13) out += '\\r';
    else if (c === 9) out += '\\t';
    else if (c === 11) out += '\\v';
    else if (c < 0x80) out += '\\x' + c.toString(16).padStart(2, '0');
    else if (PRINTABLE.test(ch)) out += ch;
    else if (c < 0x10000) out += '\\u' + c.toString(16).padStart(4, '0');
    else out += '\\U' + c.toString(16).padStart(8, '0');
  }
  return out + '"';
}
/** Go's unicode.IsPrint beyond ASCII: letters, marks, numbers, punctuation, symbols */
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;

/** Go's strconv.FormatFloat(x, 'f', -1, 64): the shortest digits that read back, never an exponent */
export function goFloat(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return '+Inf';
  if (x === -Infinity) return '-Inf';
  if (Object.is(x, -0)) return '-0';
  const s = String(x);
  const e = s.indexOf('e');
  if (e < 0) return s;
  const neg = s[0] === '-';
  const mant = s.slice(neg ? 1 : 0, e).replace('.', '');
  const dot = (s.indexOf('.') < 0 || s.indexOf('.') > e ? e - (neg ? 1 : 0) : s.indexOf('.') - (neg ? 1 : 0)) + Number(s.slice(e + 1));
  let out: string;
  if (dot <= 0) out = '0.' + '0'.repeat(-dot) + mant;
  else if (dot >= mant.length) out = mant + '0'.repeat(dot - mant.length);
  else out = mant.slice(0, dot) + '.' + mant.slice(dot);
  return neg ? '-' + out : out;
}

const TWO32 = 4294967296;
const EMPTY = Buffer.alloc(0);

export class ThriftDecoder {
  private state: number;
  // the chunk being read: buf[pos, lim) (lim: the chunk's end, or the frame's)
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private end = 0;
  private lim = 0;
  /** the buffer and offset of the token need() returned */
  private tb: Buffer = Buffer.alloc(0);
  /** a token cut by a chunk's end */
  private readonly carry = Buffer.alloc(32);
  private readonly tok = Buffer.alloc(32);
  /** a violation changed the state: run again over what is left */
  private again = false;
  private carryLen = 0;
  /** stream offset of buf[0] (bytes before it, gaps included) */
  private base = 0;
  private tsSec = 0;
  private tsNsec = 0;

  /** the message being read */
  private m: ThriftMessage | null = null;
  private msgStart = 0;
  private compact = false;
  /** stream offset where the current frame ends (-1: unframed) */
  private frameEnd = -1;
  /** the message's missing bytes */
  private missing = 0;

  private readonly levels: Level[] = [];
  private depth = -1;
  /** the type of the value to read next (S_VALUE) */
  private vtype = 0;
  private textLeft = 0;

  // the string being read: into `str` up to `strKeep` bytes
  private readonly str: Buffer;
  private strLen = 0;
  private strLeft = 0;
  private strKept = 0;
  private strIsName = false;
  /** bytes to skip (S_SKIP) */
  private skipLeft = 0;
  /** after a loss: the bytes of the last chunk that may start a message cut by the chunk's end */
  private tail: Buffer = EMPTY;
  /** the transport of the last message: ANY (none seen yet), UNFRAMED or FRAMED */
  private framing = ANY;

  constructor(
    private readonly o: DecoderOptions,
    private readonly ev: DecoderEvents,
  ) {
    this.str = Buffer.alloc(Math.max(o.stringMaxSize, MAX_NAME) + 4);
    this.state = S_START;
  }

  /** no message in progress (between messages, skipping a frame, or looking for a message start) */
  get idle(): boolean {
    return this.m === null;
  }

  /** the stream may start inside a message: look for the next message start */
  lose(): void {
    this.abandon();
    this.state = S_LOST;
    this.tail = EMPTY;
  }

  feed(buf: Buffer, off: number, len: number, tsSec: number, tsNsec: number): void {
    this.buf = buf;
    this.pos = off;
    this.end = off + len;
    this.base -= off;
    this.tsSec = tsSec;
    this.tsNsec = tsNsec;
    this.setLimit();
    this.run();
    // between chunks: base is the stream offset of the next byte
    this.base += this.end;
    this.buf = EMPTY;
    this.pos = this.end = this.lim = 0;
  }

  /**
   * `n` bytes of this direction were lost. Returns true when the decoder keeps its
   * place (the gap fell inside a string, or inside a frame whose end is known).
   */
  gap(n: number): boolean {
    if (this.state === S_LOST) {
      this.base += n;
      this.tail = EMPTY;
      return false;
    }
    if (this.state === S_STRING && this.strLeft >= n && this.carryLen === 0) {
      this.strLeft -= n;
      this.missing += n;
      this.base += n;
      // the string's end lost with it: the decoder resumes after it
      if (this.strLeft === 0) this.stringDone();
      return true;
    }
    if (this.state === S_SKIP && this.skipLeft >= n) {
      this.skipLeft -= n;
      this.base += n;
      if (this.skipLeft === 0) this.state = S_START;
      return true;
    }
    const at = this.base;
    if (this.frameEnd >= 0 && this.frameEnd - at >= n && this.state !== S_START) {
      // the frame's end is known: the message is cut, the next frame is where it was
      this.missing += n;
      this.partial('packet loss');
      this.base += n;
      this.carryLen = 0;
      this.skipLeft = this.frameEnd - (at + n);
      this.frameEnd = -1;
      this.state = this.skipLeft > 0 ? S_SKIP : S_START;
      return true;
    }
    this.missing += n;
    this.partial('packet loss');
    this.base += n;
    this.lose();
    return false;
  }

  /** the connection closed: a message not read to its end is reported partial */
  close(): void {
    if (this.m !== null) this.partial('connection closed');
    this.abandon();
  }

  // ---------------------------------------------------------------------------

  private setLimit(): void {
    this.lim = this.frameEnd >= 0 ? Math.min(this.end, this.frameEnd - this.base) : this.end;
    if (this.lim < this.pos) this.lim = this.pos;
  }

  private get offset(): number {
    return this.base + this.pos;
  }

  /**
   * k contiguous bytes of the stream (k <= 32): their offset in `this.tb`, or -1 when
   * the chunk (or frame) ends first (what there is waits in the carry)
   */
  private need(k: number): number {
    if (this.carryLen >= k) {
      // (never happens in practice: a wait leaves fewer bytes than the token)
      this.carry.copy(this.tok, 0, 0, k);
      this.carry.copyWithin(0, k, this.carryLen);
      this.carryLen -= k;
      this.tb = this.tok;
      return 0;
    }
    if (this.carryLen === 0) {
      if (this.lim - this.pos >= k) {
        this.tb = this.buf;
        const o = this.pos;
        this.pos += k;
        return o;
      }
      const n = this.lim - this.pos;
      this.buf.copy(this.carry, 0, this.pos, this.lim);
      this.carryLen = n;
      this.pos = this.lim;
      return -1;
    }
    const n = Math.min(k - this.carryLen, this.lim - this.pos);
    if (n > 0) this.buf.copy(this.carry, this.carryLen, this.pos, this.pos + n);
    this.carryLen += n;
    this.pos += n;
    if (this.carryLen < k) return -1;
    this.carryLen = 0;
    this.tb = this.carry;
    return 0;
  }

  /** the byte i positions ahead (carry first), or -1 */
  private peek(i: number): number {
    if (i < this.carryLen) return this.carry[i];
    const j = this.pos + i - this.carryLen;
    return j < this.lim ? this.buf[j] : -1;
  }

  /** length of the varint ahead: > 0, -1 when not all here yet, 0 when longer than `max` bytes */
  private varintLen(max: number): number {
    for (let i = 0; i < max; i++) {
      const b = this.peek(i);
      if (b < 0) return -1;
      if (b < 0x80) return i + 1;
    }
    return 0;
  }

  /** a varint of up to 5 bytes as an unsigned 32-bit number (-1: wait, -2: violation reported) */
  private varint32(): number {
    const k = this.varintLen(5);
    if (k === 0) return this.fail('bad_varint'), -2;
    if (k < 0) {
      this.need(16); // keeps what there is in the carry
      return -1;
    }
    const o = this.need(k);
    const b = this.tb;
    let v = 0;
    let mul = 1;
    for (let i = 0; i < k; i++) {
      v += (b[o + i] & 0x7f) * mul;
      mul *= 128;
    }
    return v % TWO32;
  }

  private run(): void {
    do {
      this.again = false;
      this.steps();
    } while (this.again);
  }

  private steps(): void {
    while (true) {
      switch (this.state) {
        case S_START:
          if (!this.start()) return;
          break;
        case S_FRAME_START:
          if (!this.frameStart()) return;
          break;
        case S_BIN_HEAD: {
          const o = this.need(4);
          if (o < 0) return this.overrun();
          const b = this.tb;
          const type = b[o + 3] & 7;
          if (b[o] !== 0x80 || b[o + 1] !== 0x01 || type < 1 || type > 4) return this.fail('bad_message_header');
          this.m!.type = type;
          this.state = S_BIN_NAME_LEN;
          break;
        }
        case S_BIN_NAME_LEN: {
          const o = this.need(4);
          if (o < 0) return this.overrun();
          const n = this.tb.readInt32BE(o);
          if (n < 0 || n > MAX_NAME) return this.fail('bad_method_name');
          this.string(n, true);
          break;
        }
        case S_BIN_SEQ: {
          const o = this.need(4);
          if (o < 0) return this.overrun();
          this.m!.seqId = this.tb.readInt32BE(o);
          this.body();
          break;
        }
        case S_COMPACT_HEAD: {
          const o = this.need(2);
          if (o < 0) return this.overrun();
          const b1 = this.tb[o + 1];
          const type = b1 >> 5;
          if ((b1 & 0x1f) !== 1 || type < 1 || type > 4) return this.fail('bad_message_header');
          this.m!.type = type;
          this.state = S_COMPACT_SEQ;
          break;
        }
        case S_COMPACT_SEQ: {
          const v = this.varint32();
          if (v < 0) return v === -1 ? this.overrun() : undefined;
          this.m!.seqId = v | 0;
          this.state = S_COMPACT_NAME_LEN;
          break;
        }
        case S_COMPACT_NAME_LEN: {
          const v = this.varint32();
          if (v < 0) return v === -1 ? this.overrun() : undefined;
          if (v > MAX_NAME) return this.fail('bad_method_name');
          this.string(v, true);
          break;
        }
        case S_STRING: {
          const n = Math.min(this.strLeft, this.lim - this.pos);
          const keep = Math.min(n, this.strKept - this.strLen);
          if (keep > 0) {
            this.buf.copy(this.str, this.strLen, this.pos, this.pos + keep);
            this.strLen += keep;
          }
          this.pos += n;
          this.strLeft -= n;
          if (this.strLeft > 0) return this.overrun();
          this.stringDone();
          break;
        }
        case S_FIELD:
          if (!this.field()) return;
          break;
        case S_FIELD_ID: {
          const v = this.varint32();
          if (v < 0) return v === -1 ? this.overrun() : undefined;
          const lv = this.levels[this.depth];
          lv.fid = ((v >>> 1) ^ -(v & 1)) << 16 >> 16;
          this.state = S_VALUE;
          break;
        }
        case S_VALUE:
          if (!this.value()) return;
          break;
        case S_LIST_SIZE: {
          const v = this.varint32();
          if (v < 0) return v === -1 ? this.overrun() : undefined;
          if (v > 0x7fffffff) return this.fail('bad_size');
          this.open(this.levels[this.depth + 1].kind, v, this.levels[this.depth + 1].etype, 0, 0);
          break;
        }
        case S_MAP_TYPES: {
          // compact: a map's size came; its key and value types follow when it has entries
          const lv = this.levels[this.depth + 1];
          if (lv.left === 0) {
            const v = this.varint32();
            if (v < 0) return v === -1 ? this.overrun() : undefined;
            if (v > 0x3fffffff) return this.fail('bad_size');
            if (v === 0) {
              this.open(T_MAP, 0, 0, 0, 0);
              break;
            }
            lv.left = v;
          }
          const o = this.need(1);
          if (o < 0) return this.overrun();
          const kt = COMPACT_TYPES[this.tb[o] >> 4];
          const vt = COMPACT_TYPES[this.tb[o] & 15];
          if (!valueType(kt) || !valueType(vt)) return this.fail('bad_type');
          this.open(T_MAP, lv.left * 2, 0, kt, vt);
          break;
        }
        case S_SKIP: {
          const n = Math.min(this.skipLeft, this.end - this.pos);
          this.pos += n;
          this.skipLeft -= n;
          if (this.skipLeft > 0) return;
          this.state = S_START;
          break;
        }
        case S_LOST:
          if (!this.scan()) return;
          break;
      }
    }
  }

  /** a message starts: its transport and protocol from its first byte */
  private start(): boolean {
    this.frameEnd = -1;
    this.setLimit();
    const b0 = this.peek(0);
    if (b0 < 0) return false;
    this.begin();
    if (b0 === 0x80) {
      this.compact = false;
      this.state = S_BIN_HEAD;
    } else if (b0 === 0x82) {
      this.compact = true;
      this.state = S_COMPACT_HEAD;
    } else {
      // the framed transport: a 4-byte length, then the message
      const o = this.need(4);
      if (o < 0) return false;
      const n = this.tb.readInt32BE(o);
      if (n < 2 || n > this.o.maxMessageBytes) {
        this.fail(n > this.o.maxMessageBytes ? 'frame_too_large' : 'bad_frame_length');
        return true;
      }
      this.m!.framed = true;
      this.frameEnd = this.offset + n;
      this.setLimit();
      this.state = S_FRAME_START;
    }
    return true;
  }

  private frameStart(): boolean {
    const b0 = this.peek(0);
    if (b0 < 0) return this.overrun(), false;
    if (b0 === 0x80) {
      this.compact = false;
      this.state = S_BIN_HEAD;
    } else if (b0 === 0x82) {
      this.compact = true;
      this.state = S_COMPACT_HEAD;
    } else {
      // the header transport (0x0fff) or something else: the frame is skipped
      this.skipFrame(b0 === 0x0f && this.peek(1) === 0xff ? 'header_transport' : 'unknown_protocol');
    }
    return true;
  }

  private begin(): void {
    const m = new ThriftMessage();
    m.startSec = this.tsSec;
    m.startNsec = this.tsNsec;
    this.m = m;
    this.msgStart = this.offset - this.carryLen;
    this.missing = 0;
    this.depth = -1;
    this.textLeft = this.o.maxTextBytes;
  }

  /** the arguments or result: the message's top-level struct */
  private body(): void {
    this.m!.protocol = this.compact ? 'compact' : 'binary';
    this.framing = this.m!.framed ? FRAMED : UNFRAMED;
    this.open(T_STRUCT, 0, 0, 0, 0);
  }

  private string(n: number, name: boolean): void {
    this.strLen = 0;
    this.strLeft = n;
    this.strKept = name ? MAX_NAME : this.o.stringMaxSize + 3; // 3 more: the end of a character cut at the limit
    this.strIsName = name;
    this.state = S_STRING;
  }

  private stringDone(): void {
    if (this.strIsName) {
      this.m!.method = this.str.toString('utf8', 0, this.strLen);
      if (this.compact) this.body();
      else this.state = S_BIN_SEQ;
      return;
    }
    const total = this.strLen + this.strLeft; // strLeft > 0 only when the end was lost
    const max = this.o.stringMaxSize;
    let text: string;
    if (this.o.obfuscateStrings) text = this.strLen === 0 ? '""' : '"*"';
    else {
      let n = Math.min(this.strLen, max);
      const more = this.strLen > max || total > this.strLen;
      // a UTF-8 string cut at the limit keeps its last whole character
      if (more && n > 0 && n < this.strLen) {
        let i = n;
        while (i > 0 && i > n - 4 && (this.str[i] & 0xc0) === 0x80) i--;
        if (isUtf8(this.str.subarray(0, i)) && i < n) n = i;
      }
      if (more) this.m!.stringsCut++;
      const bytes = this.str.subarray(0, n);
      if (isUtf8(bytes)) text = goQuote(bytes.toString('utf8') + (more ? '...' : ''));
      else text = bytes.toString('hex') + (more ? '...' : '');
    }
    this.done(text);
  }

  /** a struct, list, set or map begins (`left`: elements to come) */
  private open(kind: number, left: number, etype: number, ktype: number, vtype: number): void {
    if (this.depth + 1 >= this.o.maxDepth + 1) return this.fail('too_deep');
    const d = ++this.depth;
    let lv = this.levels[d];
    if (lv === undefined) this.levels[d] = lv = new Level();
    lv.kind = kind;
    lv.left = left;
    lv.etype = etype;
    lv.ktype = ktype;
    lv.vtype = vtype;
    lv.n = 0;
    lv.parts.length = 0;
    lv.ids.length = 0;
    lv.fid = 0;
    lv.key = '';
    lv.partsLen = 0;
    this.next();
  }

  /** what the open level reads next: a field, an element, or its end */
  private next(): void {
    const lv = this.levels[this.depth];
    if (lv.kind === T_STRUCT) {
      this.state = S_FIELD;
      return;
    }
    if (lv.left === 0) return this.closeLevel();
    this.vtype = lv.kind === T_MAP ? (lv.left % 2 === 0 ? lv.ktype : lv.vtype) : lv.etype;
    this.state = S_VALUE;
  }

  private closeLevel(): void {
    const lv = this.levels[this.depth];
    const max = this.o.collectionMaxSize;
    const more = lv.n > lv.parts.length ? ', ...' : '';
    if (lv.n > max) this.m!.collectionsCut++;
    this.depth--;
    if (this.depth < 0) return this.messageDone(lv);
    let text: string;
    switch (lv.kind) {
      case T_STRUCT: {
        let s = '(';
        for (let i = 0; i < lv.parts.length && i < max; i++) s += (i > 0 ? ', ' : '') + lv.ids[i] + ': ' + lv.parts[i];
        text = s + (lv.n > lv.parts.length ? (lv.parts.length > 0 ? ', ...' : '...') : '') + ')';
        break;
      }
      case T_LIST:
        text = '[' + lv.parts.join(', ') + (lv.parts.length > 0 ? more : more.slice(2)) + ']';
        break;
      case T_SET:
        text = '{' + lv.parts.join(', ') + (lv.parts.length > 0 ? more : more.slice(2)) + '}';
        break;
      default:
        text = '{' + lv.parts.join(', ') + (lv.parts.length > 0 ? more : more.slice(2)) + '}';
    }
    // its parts were counted against the budget: the container costs its punctuation
    this.done(text, text.length - lv.partsLen);
  }

  /** a value of the open level is read: kept (the first collectionMaxSize), then the next */
  private done(text: string, cost = text.length): void {
    const lv = this.levels[this.depth];
    if (lv.kind === T_MAP) {
      if (lv.left % 2 === 0) {
        lv.key = text;
        lv.left--;
        return this.next();
      }
      cost += lv.key.length + 2;
      text = lv.key + ': ' + text;
      lv.key = '';
    }
    if (lv.kind !== T_STRUCT) lv.left--;
    if (lv.n < this.o.collectionMaxSize) {
      if (this.textLeft >= cost) {
        this.textLeft -= cost;
        lv.parts.push(text);
        lv.partsLen += text.length;
        if (lv.kind === T_STRUCT) lv.ids.push(lv.fid);
      } else this.m!.cut = true;
    }
    lv.n++;
    this.next();
  }

  /** a struct's next field header: false to wait */
  private field(): boolean {
    const lv = this.levels[this.depth];
    const b = this.peek(0);
    if (b < 0) return this.overrun(), false;
    if (b === T_STOP) {
      this.need(1);
      this.closeLevel();
      return true;
    }
    if (lv.n >= this.o.dropAfterNStructFields) return this.fail('too_many_fields'), true;
    if (this.compact) {
      this.need(1);
      const ct = b & 15;
      const t = COMPACT_TYPES[ct];
      if (!valueType(t)) return this.fail('bad_type'), true;
      const delta = b >> 4;
      if (ct === 1 || ct === 2) {
        // a boolean field holds its value in its type
        if (delta === 0) {
          this.vtype = ct === 1 ? -1 : -2;
          this.state = S_FIELD_ID;
          return true;
        }
        lv.fid = (lv.fid + delta) << 16 >> 16;
        this.done(ct === 1 ? 'true' : 'false');
        return true;
      }
      this.vtype = t;
      if (delta === 0) this.state = S_FIELD_ID;
      else {
        lv.fid = (lv.fid + delta) << 16 >> 16;
        this.state = S_VALUE;
      }
      return true;
    }
    if (!valueType(b)) return this.fail('bad_type'), true;
    const p = this.need(3);
    if (p < 0) return this.overrun(), false;
    lv.fid = this.tb.readInt16BE(p + 1);
    this.vtype = b;
    this.state = S_VALUE;
    return true;
  }

  /** a value of type `vtype`: false to wait */
  private value(): boolean {
    const t = this.vtype;
    if (t < 0) {
      // compact: a boolean field whose id came as a varint
      this.done(t === -1 ? 'true' : 'false');
      return true;
    }
    const c = this.compact;
    switch (t) {
      case T_BOOL:
      case T_BYTE: {
        const o = this.need(1);
        if (o < 0) return this.overrun(), false;
        const v = this.tb[o];
        this.done(t === T_BOOL ? (c ? (v === 1 ? 'true' : 'false') : v === 0 ? 'false' : 'true') : String((v << 24) >> 24));
        return true;
      }
      case T_DOUBLE: {
        const o = this.need(8);
        if (o < 0) return this.overrun(), false;
        this.done(goFloat(c ? this.tb.readDoubleLE(o) : this.tb.readDoubleBE(o)));
        return true;
      }
      case T_I16:
      case T_I32: {
        if (c) {
          const v = this.varint32();
          if (v < 0) return v === -1 && this.overrun(), false;
          const n = (v >>> 1) ^ -(v & 1);
          this.done(String(t === T_I16 ? (n << 16) >> 16 : n | 0));
          return true;
        }
        const o = this.need(t === T_I16 ? 2 : 4);
        if (o < 0) return this.overrun(), false;
        this.done(String(t === T_I16 ? this.tb.readInt16BE(o) : this.tb.readInt32BE(o)));
        return true;
      }
      case T_I64: {
        if (c) {
          const k = this.varintLen(10);
          if (k === 0) return this.fail('bad_varint'), true;
          if (k < 0) return this.need(16), this.overrun(), false;
          const o = this.need(k);
          let v = 0n;
          for (let i = k - 1; i >= 0; i--) v = (v << 7n) | BigInt(this.tb[o + i] & 0x7f);
          v = BigInt.asUintN(64, v);
          this.done(String((v >> 1n) ^ -(v & 1n)));
          return true;
        }
        const o = this.need(8);
        if (o < 0) return this.overrun(), false;
        const hi = this.tb.readInt32BE(o);
        const lo = this.tb.readUInt32BE(o + 4);
        this.done(hi >= -0x200000 && hi < 0x200000 ? String(hi * TWO32 + lo) : String(this.tb.readBigInt64BE(o)));
        return true;
      }
      case T_STRING: {
        let n: number;
        if (c) {
          const v = this.varint32();
          if (v < 0) return v === -1 && this.overrun(), false;
          n = v;
        } else {
          const o = this.need(4);
          if (o < 0) return this.overrun(), false;
          n = this.tb.readInt32BE(o);
        }
        if (n < 0 || n > 0x7fffffff) return this.fail('negative_length'), true;
        if (this.frameEnd >= 0 && n > this.frameEnd - this.offset) return this.fail('frame_too_short'), true;
        this.string(n, false);
        return true;
      }
      case T_UUID: {
        const o = this.need(16);
        if (o < 0) return this.overrun(), false;
        const h = this.tb.toString('hex', o, o + 16);
        this.done(`${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`);
        return true;
      }
      case T_STRUCT:
        this.open(T_STRUCT, 0, 0, 0, 0);
        return true;
      case T_LIST:
      case T_SET: {
        if (c) {
          const o = this.need(1);
          if (o < 0) return this.overrun(), false;
          const b = this.tb[o];
          const et = COMPACT_TYPES[b & 15];
          if (!valueType(et)) return this.fail('bad_type'), true;
          if (b >> 4 === 15) {
            // the size follows as a varint
            this.prepare(t, et);
            this.state = S_LIST_SIZE;
            return true;
          }
          this.open(t, b >> 4, et, 0, 0);
          return true;
        }
        const o = this.need(5);
        if (o < 0) return this.overrun(), false;
        const et = this.tb[o];
        const n = this.tb.readInt32BE(o + 1);
        if (!valueType(et)) return this.fail('bad_type'), true;
        if (n < 0) return this.fail('bad_size'), true;
        this.open(t, n, et, 0, 0);
        return true;
      }
      case T_MAP: {
        if (c) {
          this.prepare(T_MAP, 0);
          this.levels[this.depth + 1].left = 0;
          this.state = S_MAP_TYPES;
          return true;
        }
        const o = this.need(6);
        if (o < 0) return this.overrun(), false;
        const kt = this.tb[o];
        const vt = this.tb[o + 1];
        const n = this.tb.readInt32BE(o + 2);
        if (n < 0 || n > 0x3fffffff) return this.fail('bad_size'), true;
        if (n > 0 && (!valueType(kt) || !valueType(vt))) return this.fail('bad_type'), true;
        this.open(T_MAP, n * 2, 0, kt, vt);
        return true;
      }
    }
    this.fail('bad_type');
    return true;
  }

  /** a level's kind and element type, before its size is known (compact) */
  private prepare(kind: number, etype: number): void {
    let lv = this.levels[this.depth + 1];
    if (lv === undefined) this.levels[this.depth + 1] = lv = new Level();
    lv.kind = kind;
    lv.etype = etype;
  }

  /** the chunk (or frame) ended inside the message */
  private overrun(): void {
    if (this.frameEnd >= 0 && this.frameEnd - this.base <= this.end && this.pos >= this.frameEnd - this.base) {
      // the frame ended first
      this.fail('frame_too_short');
      return;
    }
    if (this.m !== null && this.offset - this.msgStart > this.o.maxMessageBytes && this.frameEnd < 0) this.fail('message_too_large');
  }

  private messageDone(top: Level): void {
    const m = this.m!;
    m.fieldIds = top.ids.slice();
    m.fieldValues = top.parts.slice();
    m.fieldCount = top.n;
    m.endSec = this.tsSec;
    m.endNsec = this.tsNsec;
    m.wireBytes = this.offset - this.msgStart;
    m.missingBytes = this.missing;
    this.m = null;
    this.ev.message(m);
    if (this.frameEnd >= 0 && this.offset < this.frameEnd) {
      // the frame holds more than its message
      this.ev.violation('frame_too_long');
      this.skipLeft = this.frameEnd - this.offset;
      this.frameEnd = -1;
      this.setLimit();
      this.state = S_SKIP;
      return;
    }
    this.frameEnd = -1;
    this.setLimit();
    this.state = S_START;
  }

  /** the message is reported as it is (its header was read), cut short for `why` */
  private partial(why: string): void {
    // in a frame, the message is the whole frame (what is left of it is skipped)
    const end = this.frameEnd >= 0 && why !== 'connection closed' ? Math.max(this.frameEnd, this.offset) : this.offset;
    const m = this.m;
    this.m = null;
    if (m === null || m.protocol === '') return; // its header was not read
    m.partial = why;
    const top = this.levels[0];
    if (top !== undefined && this.depth >= 0) {
      m.fieldIds = top.ids.slice();
      m.fieldValues = top.parts.slice();
      m.fieldCount = top.n;
    }
    m.endSec = this.tsSec;
    m.endNsec = this.tsNsec;
    m.wireBytes = end - this.msgStart;
    m.missingBytes = this.missing;
    this.ev.message(m);
  }

  /** a violation: the message so far is reported (partial), the frame is skipped or the stream lost */
  private fail(reason: string): void {
    this.again = true;
    this.ev.violation(reason);
    this.partial('unreadable');
    if (this.frameEnd >= 0 && this.frameEnd >= this.offset) {
      this.carryLen = 0;
      this.skipLeft = this.frameEnd - this.offset;
      this.frameEnd = -1;
      this.setLimit();
      this.state = this.skipLeft > 0 ? S_SKIP : S_START;
      this.depth = -1;
      return;
    }
    // unframed: the next message start is looked for after this byte
    this.carryLen = 0;
    this.abandon();
    this.state = S_LOST;
    this.tail = EMPTY;
    this.setLimit();
  }

  private skipFrame(reason: string): void {
    this.again = true;
    this.ev.violation(reason);
    this.m = null;
    this.carryLen = 0;
    this.skipLeft = this.frameEnd - this.offset;
    this.frameEnd = -1;
    this.setLimit();
    this.state = this.skipLeft > 0 ? S_SKIP : S_START;
  }

  private abandon(): void {
    this.m = null;
    this.depth = -1;
    this.carryLen = 0;
    this.frameEnd = -1;
  }

  /**
   * Lost: the next message start is looked for, byte by byte: a strict binary header
   * (80 01 00 0t and a method name's length below 64 KiB), a compact one (82, type
   * and version, a sequence id, a name of letters), or either after a frame length.
   */
  private scan(): boolean {
    const chunk = this.buf.subarray(this.pos, this.end);
    const from = this.tail.length;
    const win = from > 0 ? Buffer.concat([this.tail, chunk]) : chunk;
    for (let i = 0; i < win.length; i++) {
      // the transport the stream used before: a frame length is not looked for in an unframed stream, nor the reverse
      const r = plausibleStart(win, i, win.length - i, 0x1e, this.framing);
      if (r === 0) continue;
      if (r < 0) {
        // may be a start, cut by the chunk's end: looked at again with the next chunk
        this.tail = Buffer.from(win.subarray(i));
        this.pos = this.end;
        return false;
      }
      this.tail = EMPTY;
      this.state = S_START;
      if (i >= from) {
        this.pos += i - from;
        return true;
      }
      // the start came in earlier chunks: those bytes are read first, then this chunk
      const pre = Buffer.from(win.subarray(i, from));
      const [buf, pos, end, base] = [this.buf, this.pos, this.end, this.base];
      this.buf = pre;
      this.pos = 0;
      this.end = pre.length;
      this.base = base + pos - pre.length;
      this.setLimit();
      this.run();
      this.buf = buf;
      this.pos = pos;
      this.end = end;
      this.base = base;
      this.setLimit();
      return true;
    }
    this.tail = EMPTY;
    this.pos = this.end;
    return false;
  }
}

/** what a start looked for may be: either transport, unframed only, framed only */
export const ANY = 0;
export const UNFRAMED = 1;
export const FRAMED = 2;

/** a plausible message name: ASCII letters, digits, `_`, `.` and `:` (a multiplexed service's prefix) */
function nameByte(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x5f || c === 0x2e || c === 0x3a;
}

/**
 * Does a Thrift message (framed or not) start at b[i]? 1 yes, 0 no, -1 cannot tell
 * yet (the bytes end first). Strict: a message type, a method name of name bytes.
 */
export function plausibleStart(b: Buffer, i: number, len: number, types = 0x1e, framing = ANY): number {
  const at = (k: number) => (k < len ? b[i + k] : -1);
  const b0 = at(0);
  if (b0 < 0) return -1;
  if (b0 === 0x80) return framing === FRAMED ? 0 : binaryStart(b, i, len, types);
  if (b0 === 0x82) return framing === FRAMED ? 0 : compactStart(b, i, len, types);
  if (b0 !== 0 || framing === UNFRAMED) return 0;
  // a frame length below 16 MiB, then a message
  if (len < 5) return -1;
  const n = b.readUInt32BE(i);
  if (n < 8 || n > 0xffffff) return 0;
  const r = b[i + 4] === 0x80 ? binaryStart(b, i + 4, len - 4, types) : b[i + 4] === 0x82 ? compactStart(b, i + 4, len - 4, types) : 0;
  return r;
}

function binaryStart(b: Buffer, i: number, len: number, types: number): number {
  if (len < 9) return len >= 2 && b[i + 1] !== 0x01 ? 0 : -1;
  if (b[i + 1] !== 0x01 || b[i + 2] !== 0 || ((1 << b[i + 3]) & types) === 0) return 0;
  const n = b.readUInt32BE(i + 4);
  if (n === 0 || n > 255) return 0;
  for (let k = 0; k < n && k < 8; k++) {
    if (8 + k >= len) return -1;
    if (!nameByte(b[i + 8 + k])) return 0;
  }
  return 1;
}

function compactStart(b: Buffer, i: number, len: number, types: number): number {
  if (len < 2) return -1;
  const t = b[i + 1] >> 5;
  if ((b[i + 1] & 0x1f) !== 1 || ((1 << t) & types) === 0) return 0;
  // the sequence id (a varint of up to 5 bytes), then the name's length and the name
  let k = 2;
  while (k < 7 && k < len && b[i + k] >= 0x80) k++;
  if (k >= len) return -1;
  if (k === 7) return 0;
  k++;
  if (k >= len) return -1;
  const n = b[i + k];
  if (n === 0 || n >= 0x80) return 0;
  for (let j = 0; j < n && j < 8; j++) {
    if (k + 1 + j >= len) return -1;
    if (!nameByte(b[i + k + 1 + j])) return 0;
  }
  return 1;
}

