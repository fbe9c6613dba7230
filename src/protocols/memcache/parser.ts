import {
  Args, COUNTER_RESPONSE, HEADER, isCounterOpcode, isGetOpcode, MAGIC_REQUEST, MAGIC_RESPONSE, OPCODE_STAT, OPCODE_VERSION, OPCODES,
  Reply, SUB_COMMANDS, T, TEXT_COMMANDS, TEXT_REPLIES, UNKNOWN,
} from './codes';
import { McMessage } from './message';

export interface McParserOptions {
  /** longest text line kept (a longer one is cut, the message noted) */
  maxLineBytes: number;
  /** values kept per message, base64 (packetbeat's maxvalues; 0: none) */
  maxValues: number;
  /** bytes kept of each value */
  maxBytesPerValue: number;
  /** STAT lines kept per response */
  maxStats: number;
}

export interface ParserEvents {
  message(m: McMessage): void;
  violation(reason: string): void;
  /** bytes were lost between messages, or with the start of one: a whole message may be lost with them */
  lost(binary: boolean): void;
  /** the command of the request the next response answers ('' if none waits): `stats` answers with lines of its own */
  context(): string;
}

const enum S {
  /** at a message boundary */
  idle,
  /** inside a text line */
  line,
  /** past maxLineBytes of a line: discarding to its end */
  skipLine,
  /** inside a text value */
  data,
  /** the CR LF after a text value */
  dataEnd,
  /** the 24-byte binary header */
  header,
  /** binary extras and key */
  body,
  /** binary value */
  value,
}

const enum Mode {
  unknown,
  text,
  binary,
}

const LF = 10;
const CR = 13;
const DIGITS = /^\d+$/;
/** memcached's longest key */
export const MAX_KEY = 250;
/** a binary body past this is taken for garbage while resynchronising (memcached's largest item is 1 GiB) */
const MAX_BODY = 1 << 30;

function uint(s: string | undefined): number {
  return s !== undefined && DIGITS.test(s) ? Number(s) : -1;
}

function int(s: string | undefined): number | null {
  return s !== undefined && /^-?\d+$/.test(s) ? Number(s) : null;
}

/**
 * A binary header that memcached could have sent: the magic of the side, a known
 * opcode, raw data type, and lengths that fit (for requests, the extras the opcode
 * takes). Used to find a message boundary again, and by the content probe.
 */
export function plausibleHeader(b: Buffer, o: number, request: boolean): boolean {
  if (b[o] !== (request ? MAGIC_REQUEST : MAGIC_RESPONSE)) return false;
  const op = OPCODES[b[o + 1]];
  if (op === undefined || b[o + 5] !== 0) return false;
  const keyLen = b.readUInt16BE(o + 2);
  const extLen = b[o + 4];
  const bodyLen = b.readUInt32BE(o + 8);
  if (keyLen > MAX_KEY || bodyLen < keyLen + extLen || bodyLen > MAX_BODY) return false;
  if (!request) return extLen <= 20 && b[o + 6] === 0 && (b[o + 7] <= 0x09 || b[o + 7] === 0x20 || b[o + 7] === 0x21 || (b[o + 7] >= 0x81 && b[o + 7] <= 0x86));
  if (op.requestExtras >= 0 ? extLen !== op.requestExtras : extLen !== 0 && extLen !== 4) return false;
  return op.requestKey < 0 || (keyLen > 0) === (op.requestKey === 1);
}

/**
 * One direction of a memcache conversation: bytes in, messages out. Text and
 * binary are told apart per message by the first byte (0x80/0x81: binary), as
 * memcached does per connection. Nothing is buffered but a text line (up to
 * maxLineBytes), a binary header with its extras and key (at most 64 KiB), and the
 * values kept for events; values themselves are counted as they stream by, so a
 * gap inside one costs nothing but its bytes.
 *
 * After a gap, or when the stream was picked up in the middle, the parser is
 * "strict": text lines that do not start with a known command (keyword) are
 * skipped, binary bytes are skipped up to a plausible header.
 */
export class McParser {
  private state = S.idle;
  private mode = Mode.unknown;
  private strict = false;
  /** the message being read (text multi-line responses: until END) */
  private cur: McMessage | null = null;
  /** bytes of the current message so far */
  private bytes = 0;
  private started = false;
  private startSec = 0;
  private startNsec = 0;
  /** a line, header or body split across chunks */
  private pend: Buffer | null = null;
  private pendLen = 0;
  private lineCut = false;
  /** bytes of the line being read */
  private lineBytes = 0;
  /** value bytes still to come */
  private remaining = 0;
  private crlf = 0;
  private badEnd = false;
  /** the value being kept, and how much of it */
  private keep: Buffer[] | null = null;
  private keepLeft = 0;
  /** the value had a hole: it is not kept */
  private hole = false;
  private readonly hdr = Buffer.alloc(HEADER);
  private hdrLen = 0;
  private extLen = 0;
  private keyLen = 0;
  private bodyLen = 0;
  /** the binary message whose body is being read (the parts of a stat response merge into `cur`) */
  private next: McMessage | null = null;
  /** what the binary value is kept for */
  private keepFor = Keep.nothing;

  constructor(
    private readonly request: boolean,
    private readonly opts: McParserOptions,
    private readonly ev: ParserEvents,
  ) {}

  /** the stream starts somewhere inside: find a boundary first */
  resync(): void {
    this.strict = true;
  }

  /** between messages, with nothing kept */
  get idle(): boolean {
    return this.state === S.idle && this.cur === null;
  }

  feed(b: Buffer, off: number, len: number, sec: number, nsec: number): void {
    let p = off;
    const end = off + len;
    while (p < end) {
      if (!this.started) {
        this.started = true;
        this.startSec = sec;
        this.startNsec = nsec;
      }
      switch (this.state) {
        case S.idle: {
          const c = b[p];
          if (c === MAGIC_REQUEST || c === MAGIC_RESPONSE) {
            this.state = S.header;
            this.hdrLen = 0;
          } else if (this.strict && this.mode !== Mode.text && (this.mode === Mode.binary || this.binaryAhead(b, p, end))) {
            // skip to the next magic byte
            let q = b.indexOf(this.request ? MAGIC_REQUEST : MAGIC_RESPONSE, p);
            if (q < 0 || q >= end) q = end;
            this.started = false;
            this.bytes = 0;
            p = q;
          } else {
            this.state = S.line;
            this.pendLen = 0;
            this.lineBytes = 0;
            this.lineCut = false;
          }
          break;
        }
        case S.line: {
          let nl = b.indexOf(LF, p);
          if (nl >= end) nl = -1;
          const stop = nl < 0 ? end : nl + 1;
          this.bytes += stop - p;
          this.lineBytes += stop - p;
          if (nl >= 0 && this.pendLen === 0) {
            this.textLine(b, p, nl, sec, nsec);
          } else {
            this.append(b, p, (nl < 0 ? end : nl) - p, this.opts.maxLineBytes);
            if (nl >= 0) this.textLine(this.pend!, 0, this.pendLen, sec, nsec);
            else if (this.pendLen >= this.opts.maxLineBytes) {
              this.lineCut = true;
              this.state = S.skipLine;
            }
          }
          p = stop;
          break;
        }
        case S.skipLine: {
          let nl = b.indexOf(LF, p);
          if (nl >= end) nl = -1;
          const stop = nl < 0 ? end : nl + 1;
          this.bytes += stop - p;
          this.lineBytes += stop - p;
          p = stop;
          if (nl >= 0) this.textLine(this.pend!, 0, this.pendLen, sec, nsec);
          break;
        }
        case S.data:
        case S.value: {
          const n = Math.min(this.remaining, end - p);
          this.keepBytes(b, p, n);
          this.remaining -= n;
          this.bytes += n;
          p += n;
          if (this.remaining === 0) {
            if (this.state === S.data) {
              this.state = S.dataEnd;
              this.crlf = 0;
            } else this.binaryDone(sec, nsec);
          }
          break;
        }
        case S.dataEnd: {
          // memcached reads the two bytes after a value, whatever they are, and refuses the value if they are not CR LF
          const c = b[p++];
          this.bytes++;
          if (c !== (this.crlf === 0 ? CR : LF)) this.badEnd = true;
          if (++this.crlf === 2) {
            if (this.badEnd) {
              this.violation('bad_data_terminator');
              this.cur!.note('value not followed by CR LF');
              this.badEnd = false;
            }
            this.valueDone(sec, nsec);
          }
          break;
        }
        case S.header: {
          const n = Math.min(HEADER - this.hdrLen, end - p);
          b.copy(this.hdr, this.hdrLen, p, p + n);
          this.hdrLen += n;
          this.bytes += n;
          p += n;
          if (this.hdrLen === HEADER) this.header(sec, nsec);
          break;
        }
        case S.body: {
          const need = this.extLen + this.keyLen;
          if (this.pendLen === 0 && end - p >= need) {
            const at = p;
            p += need;
            this.bytes += need;
            this.body(b, at, sec, nsec);
          } else {
            const n = Math.min(need - this.pendLen, end - p);
            this.append(b, p, n, need);
            p += n;
            this.bytes += n;
            if (this.pendLen === need) this.body(this.pend!, 0, sec, nsec);
          }
          break;
        }
      }
    }
  }

  /**
   * n bytes are lost. Inside a value they are only missing from it; elsewhere the
   * message in progress (a line, a binary header) is lost, and maybe whole messages
   * with it: the parser resynchronises and says so (`lost`). The message being read
   * counts the bytes as `missing`.
   */
  gap(n: number, sec: number, nsec: number): void {
    if (this.state === S.data || this.state === S.value) {
      const m = this.state === S.data ? this.cur! : this.next!;
      const inside = Math.min(n, this.remaining);
      m.missing += inside;
      this.hole = true;
      this.remaining -= inside;
      this.bytes += inside;
      n -= inside;
      if (this.remaining > 0) return;
      if (this.state === S.value) this.binaryDone(sec, nsec);
      else {
        // the CR LF after the value may be lost too
        const c = Math.min(n, 2);
        n -= c;
        this.bytes += c;
        this.crlf = c;
        this.state = S.dataEnd;
        if (c === 2) this.valueDone(sec, nsec);
      }
      if (n === 0) return;
    } else if (this.state === S.dataEnd) {
      const c = Math.min(n, 2 - this.crlf);
      n -= c;
      this.bytes += c;
      this.valueDone(sec, nsec);
      if (n === 0) return;
    }
    // past any value: what was being read outside one is lost
    if (this.next !== null) {
      // a binary message cut in its header or body; a stat response it was adding to ends here
      if (this.cur === this.next) this.cur = null;
      this.next = null;
    }
    if (this.cur !== null && this.cur.binary) this.finishWith(this.cur, 0, sec, nsec);
    this.state = S.idle;
    this.pendLen = 0;
    this.strict = true;
    if (this.cur !== null) {
      // a text response of many lines goes on: what follows may still end it
      this.cur.missing += n;
      return;
    }
    this.started = false;
    this.bytes = 0;
    this.ev.lost(this.mode === Mode.binary);
  }

  /** end of the stream: a message cut short is emitted as far as it came, with the note */
  end(sec: number, nsec: number, note = 'cut short by the end of the connection'): void {
    if (this.cur !== null) {
      this.cur.note(note);
      this.finish(sec, nsec);
    } else if (this.state !== S.idle) this.violation('truncated');
    this.state = S.idle;
    this.pendLen = 0;
    this.started = false;
    this.bytes = 0;
  }

  /** forget everything (UDP: each datagram message is parsed alone) */
  reset(): void {
    this.state = S.idle;
    this.cur = null;
    this.pendLen = 0;
    this.started = false;
    this.bytes = 0;
    this.strict = false;
    this.keep = null;
  }

  /** picked up in the middle, protocol unknown: is there a binary header before the next line end? */
  private binaryAhead(b: Buffer, p: number, end: number): boolean {
    const magic = this.request ? MAGIC_REQUEST : MAGIC_RESPONSE;
    let nl = b.indexOf(LF, p);
    if (nl < 0 || nl >= end) nl = end;
    for (let q = b.indexOf(magic, p); q >= 0 && q < nl && q + HEADER <= end; q = b.indexOf(magic, q + 1)) {
      if (plausibleHeader(b, q, this.request)) {
        this.mode = Mode.binary;
        return true;
      }
    }
    return false;
  }

  private violation(reason: string): void {
    this.ev.violation(`${this.request ? 'request' : 'response'}_${reason}`);
  }

  /** copy into the pending buffer, up to `cap` bytes in it */
  private append(b: Buffer, p: number, n: number, cap: number): void {
    const take = Math.min(n, cap - this.pendLen);
    if (take <= 0) return;
    if (this.pend === null || this.pend.length < this.pendLen + take) {
      const bigger = Buffer.allocUnsafe(Math.min(cap, Math.max(256, (this.pendLen + take) * 2)));
      if (this.pend !== null) this.pend.copy(bigger, 0, 0, this.pendLen);
      this.pend = bigger;
    }
    b.copy(this.pend, this.pendLen, p, p + take);
    this.pendLen += take;
  }

  private begin(m: McMessage): McMessage {
    m.startSec = this.startSec;
    m.startNsec = this.startNsec;
    return m;
  }

  /** the current message is complete */
  private finish(sec: number, nsec: number): void {
    this.finishWith(this.cur!, 0, sec, nsec);
  }

  /** `m` is complete; the last `own` bytes read belong to the message after it */
  private finishWith(m: McMessage, own: number, sec: number, nsec: number): void {
    this.cur = null;
    this.state = S.idle;
    m.wireBytes += this.bytes - own;
    m.endSec = sec;
    m.endNsec = nsec;
    this.bytes = own;
    this.started = own > 0;
    this.keep = null;
    this.ev.message(m);
  }

  /** a message of one line, complete */
  private single(m: McMessage, sec: number, nsec: number): void {
    this.cur = m;
    this.finish(sec, nsec);
  }

  // --- text -----------------------------------------------------------------

  private textLine(b: Buffer, s: number, e: number, sec: number, nsec: number): void {
    this.state = S.idle;
    let stop = e;
    if (stop > s && b[stop - 1] === CR) stop--;
    let cut = this.lineCut;
    if (stop - s > this.opts.maxLineBytes) {
      stop = s + this.opts.maxLineBytes;
      cut = true;
    }
    const line = b.toString('utf8', s, stop);
    this.lineCut = false;
    this.pendLen = 0;
    if (this.request) this.requestLine(line, cut, sec, nsec);
    else this.responseLine(line, cut, sec, nsec);
  }

  /** a line nothing knows: skipped while resynchronising, else an UNKNOWN message */
  private unknownLine(line: string, sec: number, nsec: number): void {
    if (this.strict) {
      this.started = false;
      this.bytes = 0;
      return;
    }
    this.violation('unknown_command');
    const m = this.begin(new McMessage(this.request));
    m.command = UNKNOWN;
    m.type = T.unknown;
    m.line = line;
    this.single(m, sec, nsec);
  }

  private requestLine(line: string, cut: boolean, sec: number, nsec: number): void {
    const w = line.split(' ').filter((x) => x !== '');
    const def = w.length > 0 ? TEXT_COMMANDS.get(w[0]) : undefined;
    if (def === undefined) return this.unknownLine(line, sec, nsec);
    this.strict = false;
    this.mode = Mode.text;
    const m = this.begin(new McMessage(true));
    m.command = def.command;
    m.type = def.type;
    m.line = line;
    if (cut) {
      m.note(`request line longer than ${this.opts.maxLineBytes} bytes: cut`);
      this.violation('line_too_long');
    }
    let bad = false;
    const last = w[w.length - 1];
    switch (def.args) {
      case Args.keys:
        m.keys = w.slice(1);
        bad = m.keys.length === 0;
        break;
      case Args.expKeys:
        m.exptime = uint(w[1]);
        m.keys = w.slice(2);
        bad = m.exptime < 0 || m.keys.length === 0;
        break;
      case Args.store:
      case Args.cas:
        m.keys = w.length > 1 ? [w[1]] : [];
        m.flags = uint(w[2]);
        m.exptime = int(w[3]) ?? -1;
        m.bytes = uint(w[4]);
        if (def.args === Args.cas) m.cas = uint(w[5]);
        m.noreply = w.length > (def.args === Args.cas ? 6 : 5) && last === 'noreply';
        bad = m.keys.length === 0 || m.flags < 0 || m.bytes < 0 || (def.args === Args.cas && m.cas < 0);
        break;
      case Args.counter:
        m.keys = w.length > 1 ? [w[1]] : [];
        m.delta = uint(w[2]);
        m.noreply = w.length > 3 && last === 'noreply';
        bad = m.keys.length === 0 || m.delta < 0;
        break;
      case Args.touch:
        m.keys = w.length > 1 ? [w[1]] : [];
        m.exptime = int(w[2]) ?? -1;
        m.noreply = w.length > 3 && last === 'noreply';
        bad = m.keys.length === 0;
        break;
      case Args.del:
        m.keys = w.length > 1 ? [w[1]] : [];
        m.noreply = w.length > 2 && last === 'noreply';
        bad = m.keys.length === 0;
        break;
      case Args.flush:
        if (w.length > 1 && w[1] !== 'noreply') m.exptime = int(w[1]) ?? -1;
        m.noreply = w.length > 1 && last === 'noreply';
        break;
      case Args.raw:
        m.rawArgs = w.slice(1).join(' ');
        break;
      case Args.verbosity:
        m.verbosity = uint(w[1]);
        m.noreply = w.length > 2 && last === 'noreply';
        break;
      case Args.none:
        break;
      case Args.sub:
        this.subCommand(m, w);
        break;
      case Args.meta:
      case Args.metaSet:
        m.keys = w.length > 1 ? [w[1]] : [];
        if (def.args === Args.metaSet) m.bytes = uint(w[2]);
        // q: only failures (and hits, for mg) are answered
        m.quiet = w.indexOf('q', 2) > 0;
        bad = m.keys.length === 0 || (def.args === Args.metaSet && m.bytes < 0);
        break;
    }
    if (bad) {
      // memcached answers CLIENT_ERROR; a storage command without a length has no data it could read
      m.note('malformed command line');
      this.violation('bad_arguments');
    }
    if ((def.args === Args.store || def.args === Args.cas || def.args === Args.metaSet) && m.bytes >= 0) {
      this.startValue(m, m.bytes);
      m.countValues = 1;
      return;
    }
    this.single(m, sec, nsec);
  }

  private subCommand(m: McMessage, w: string[]): void {
    const name = w.length > 1 ? `${w[0]} ${w[1]}` : w[0];
    const args = SUB_COMMANDS.get(name);
    if (args === undefined) return;
    m.command = name;
    if (args === Args.raw) m.rawArgs = w.slice(2).join(' ');
    else if (name === 'slabs reassign') {
      m.sourceClass = int(w[2]);
      m.destClass = int(w[3]);
    } else if (name === 'slabs automove') {
      const v = w[2] ?? '';
      m.automove = v === '0' ? 'standby' : v === '1' ? 'slow' : v === '2' ? 'aggressive' : v;
    } else if (name === 'lru_crawler sleep') m.sleepUs = uint(w[2]);
    else if (name === 'lru_crawler tocrawl') m.value = uint(w[2]);
  }

  private responseLine(line: string, cut: boolean, sec: number, nsec: number): void {
    const sp = line.indexOf(' ');
    const word = sp < 0 ? line : line.slice(0, sp);
    const def = TEXT_REPLIES.get(word);
    const open = this.cur;
    if (open !== null) {
      // a multi-line response goes on, or ends
      if (def !== undefined && def.reply === Reply.end) return this.finish(sec, nsec);
      if (def !== undefined && def.reply === Reply.value && open.command === 'VALUE') return this.valueLine(open, line);
      if (def !== undefined && def.reply === Reply.stat && open.command === 'STAT') return this.statLine(open, word, line, sp);
      if (def === undefined && open.command !== 'VALUE' && open.command !== 'STAT') return this.statLine(open, word, line, sp);
      this.violation('unexpected_line');
      open.note('not ended by END');
      // the line starts the next response
      this.finishWith(open, this.lineBytes, sec, nsec);
    }
    if (def === undefined) {
      if (DIGITS.test(line)) {
        this.strict = false;
        this.mode = Mode.text;
        const m = this.begin(new McMessage(false));
        m.command = COUNTER_RESPONSE;
        m.type = T.counter;
        m.value = Number(line);
        return this.single(m, sec, nsec);
      }
      const ctx = this.ev.context();
      if (!this.strict && (ctx === 'stats' || ctx.startsWith('lru_crawler'))) {
        // stats cachedump (ITEM ...), stats detail dump (PREFIX ...), lru_crawler metadump (key=...): lines until END
        this.mode = Mode.text;
        const m = (this.cur = this.begin(new McMessage(false)));
        m.command = word;
        m.type = T.stats;
        m.stats = [];
        return this.statLine(m, word, line, sp);
      }
      return this.unknownLine(line, sec, nsec);
    }
    this.strict = false;
    this.mode = Mode.text;
    const m = this.begin(new McMessage(false));
    m.command = def.command;
    m.type = def.type;
    if (cut) {
      m.note(`response line longer than ${this.opts.maxLineBytes} bytes: cut`);
      this.violation('line_too_long');
    }
    switch (def.reply) {
      case Reply.plain:
      case Reply.end:
        return this.single(m, sec, nsec);
      case Reply.message:
        if (sp >= 0) m.errorMsg = line.slice(sp + 1);
        return this.single(m, sec, nsec);
      case Reply.version:
        m.version = sp >= 0 ? line.slice(sp + 1) : '';
        return this.single(m, sec, nsec);
      case Reply.stat:
        this.cur = m;
        m.stats = [];
        return this.statLine(m, word, line, sp);
      case Reply.value:
        this.cur = m;
        m.bytes = 0;
        return this.valueLine(m, line);
      case Reply.metaValue: {
        const n = uint(line.split(' ')[1]);
        if (n < 0) {
          this.violation('bad_arguments');
          m.note('malformed VA line');
          return this.single(m, sec, nsec);
        }
        m.bytes = 0;
        m.countValues = 1;
        this.cur = m;
        this.startValue(m, n);
        m.bytes = n;
        return;
      }
    }
  }

  /** VALUE key flags bytes [cas] */
  private valueLine(m: McMessage, line: string): void {
    const w = line.split(' ').filter((x) => x !== '');
    const n = uint(w[3]);
    if (w.length < 4 || n < 0) {
      // without its length the value cannot be skipped: the next lines are read as they come
      this.violation('bad_arguments');
      m.note('malformed VALUE line');
      this.strict = true;
      return;
    }
    m.keys.push(w[1]);
    if (m.flags < 0) m.flags = uint(w[2]);
    if (w.length > 4 && m.cas < 0) m.cas = uint(w[4]);
    m.countValues++;
    m.bytes += n;
    this.startValue(m, n);
  }

  /** STAT name value (and the lines of stats sub-commands) */
  private statLine(m: McMessage, word: string, line: string, sp: number): void {
    const stats = m.stats!;
    if (stats.length >= this.opts.maxStats) {
      m.note(`more than ${this.opts.maxStats} stats: the rest left out`);
      return;
    }
    const rest = sp < 0 ? '' : line.slice(sp + 1);
    if (word === 'STAT') {
      const sp2 = rest.indexOf(' ');
      stats.push({ name: sp2 < 0 ? rest : rest.slice(0, sp2), value: sp2 < 0 ? '' : rest.slice(sp2 + 1) });
    } else stats.push({ name: word, value: rest });
  }

  /** a text value of n bytes follows, then CR LF */
  private startValue(m: McMessage, n: number): void {
    this.cur = m;
    this.state = S.data;
    this.remaining = n;
    this.hole = false;
    this.badEnd = false;
    this.crlf = 0;
    this.keepValue(m, n, this.opts.maxValues);
    if (n === 0) {
      this.state = S.dataEnd;
      this.crlf = 0;
    }
  }

  private keepValue(m: McMessage, n: number, maxValues: number): void {
    if ((m.values?.length ?? 0) < maxValues && n > 0) {
      this.keep = [];
      this.keepLeft = Math.min(n, this.opts.maxBytesPerValue);
    } else this.keep = null;
  }

  private keepBytes(b: Buffer, p: number, n: number): void {
    if (this.keep === null || this.keepLeft === 0 || n === 0) return;
    const k = Math.min(n, this.keepLeft);
    this.keep.push(Buffer.from(b.subarray(p, p + k)));
    this.keepLeft -= k;
  }

  private kept(): Buffer | null {
    const k = this.keep;
    this.keep = null;
    if (k === null || this.hole) return null;
    return k.length === 1 ? k[0] : Buffer.concat(k);
  }

  /** a text value and its CR LF are complete */
  private valueDone(sec: number, nsec: number): void {
    const m = this.cur!;
    const v = this.kept();
    if (v !== null) (m.values ??= []).push(v.toString('base64'));
    this.hole = false;
    if (m.command === 'VALUE') {
      // more values, or END
      this.state = S.idle;
      return;
    }
    this.finish(sec, nsec);
  }

  // --- binary ---------------------------------------------------------------

  private header(sec: number, nsec: number): void {
    const h = this.hdr;
    const magic = h[0];
    const want = this.request ? MAGIC_REQUEST : MAGIC_RESPONSE;
    if (this.strict ? !plausibleHeader(h, 0, this.request) : magic !== want || h.readUInt32BE(8) < h.readUInt16BE(2) + h[4]) {
      if (!this.strict) this.violation(magic !== want ? 'bad_magic' : 'bad_length');
      this.strict = true;
      this.state = S.idle;
      if (this.cur === null) {
        this.started = false;
        this.bytes = 0;
      }
      return;
    }
    this.strict = false;
    this.mode = Mode.binary;
    const code = h[1];
    const op = OPCODES[code];
    const m = new McMessage(this.request);
    m.binary = true;
    m.opcode = code;
    m.command = op?.command ?? UNKNOWN;
    m.type = op?.type ?? T.unknown;
    m.quiet = this.request && (op?.quiet ?? false);
    if (this.request) m.vbucket = h.readUInt16BE(6);
    else m.status = h.readUInt16BE(6);
    m.opaque = h.readUInt32BE(12);
    const cas = h.readUInt32BE(16) * 4294967296 + h.readUInt32BE(20);
    if (cas !== 0) m.cas = cas;
    this.keyLen = h.readUInt16BE(2);
    this.extLen = h[4];
    this.bodyLen = h.readUInt32BE(8);
    const open = this.cur;
    if (open !== null && !(code === OPCODE_STAT && open.opaque === m.opaque)) {
      // a stat response not ended by its empty part
      this.violation('unexpected_message');
      open.note('not ended by an empty stat');
      this.finishWith(open, HEADER, sec, nsec);
    }
    // the parts of a stat response merge into its first
    if (this.cur === null) this.cur = this.begin(m);
    this.next = m;
    if (this.extLen + this.keyLen > 0) {
      this.state = S.body;
      this.pendLen = 0;
    } else this.body(h, 0, sec, nsec);
  }

  private body(b: Buffer, o: number, sec: number, nsec: number): void {
    const m = this.next!;
    this.pendLen = 0;
    const ext = this.extLen;
    if (m.isRequest) {
      if (ext === 8 && m.type === T.store) {
        m.flags = b.readUInt32BE(o);
        m.exptime = b.readUInt32BE(o + 4);
      } else if (ext === 20 && m.type === T.counter) {
        m.delta = b.readUInt32BE(o) * 4294967296 + b.readUInt32BE(o + 4);
        m.initial = b.readUInt32BE(o + 8) * 4294967296 + b.readUInt32BE(o + 12);
        m.exptime = b.readUInt32BE(o + 16);
      } else if (ext === 4 && m.command === 'verbosity') m.verbosity = b.readUInt32BE(o);
      else if (ext === 4) m.exptime = b.readUInt32BE(o);
    } else if (ext === 4 && isGetOpcode(m.opcode)) m.flags = b.readUInt32BE(o);
    if (this.keyLen > 0) m.keys = [b.toString('utf8', o + ext, o + ext + this.keyLen)];
    const valueLen = this.bodyLen - ext - this.keyLen;
    this.keepFor = Keep.nothing;
    this.keep = null;
    this.hole = false;
    if (!m.isRequest && m.status !== 0) this.keepFor = Keep.error;
    else if (!m.isRequest && (m.opcode === OPCODE_VERSION || m.opcode === OPCODE_STAT || isCounterOpcode(m.opcode))) this.keepFor = Keep.text;
    else if (valueLen > 0 && (m.isRequest ? m.type === T.store && m.command !== 'touch' : isGetOpcode(m.opcode))) {
      this.keepFor = Keep.data;
      m.countValues = 1;
      m.bytes = valueLen;
    }
    if (this.keepFor === Keep.data) this.keepValue(m, valueLen, this.opts.maxValues);
    else if (this.keepFor !== Keep.nothing && valueLen > 0) {
      this.keep = [];
      this.keepLeft = Math.min(valueLen, this.opts.maxLineBytes);
    }
    this.remaining = valueLen;
    this.state = S.value;
    if (valueLen === 0) this.binaryDone(sec, nsec);
  }

  /** a binary message's value is complete (a stat part: merged, the response goes on) */
  private binaryDone(sec: number, nsec: number): void {
    const m = this.next!;
    this.next = null;
    const v = this.kept();
    this.hole = false;
    switch (this.keepFor) {
      case Keep.data:
        if (v !== null) m.values = [v.toString('base64')];
        break;
      case Keep.error:
        if (v !== null) m.errorMsg = v.toString('utf8');
        break;
      case Keep.text:
        if (m.opcode === OPCODE_VERSION) m.version = v?.toString('utf8') ?? '';
        else if (isCounterOpcode(m.opcode) && v !== null && v.length >= 8) m.value = v.readUInt32BE(0) * 4294967296 + v.readUInt32BE(4);
        break;
    }
    this.keepFor = Keep.nothing;
    const cur = this.cur!;
    if (m.opcode === OPCODE_STAT && !m.isRequest && m.status === 0) {
      if (cur !== m) cur.missing += m.missing;
      cur.stats ??= [];
      if (m.keys.length > 0) {
        if (cur.stats.length < this.opts.maxStats) cur.stats.push({ name: m.keys[0], value: v?.toString('utf8') ?? '' });
        else cur.note(`more than ${this.opts.maxStats} stats: the rest left out`);
        // more parts until the empty one
        this.state = S.idle;
        return;
      }
      cur.keys = [];
    }
    this.finish(sec, nsec);
  }
}

const enum Keep {
  nothing,
  /** a value for `values` */
  data,
  /** a version string, a stat value, a counter */
  text,
  /** an error message */
  error,
}

