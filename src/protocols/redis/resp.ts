import { hasSecrets, REDACTED, secretsAfter, splitInline } from './commands';
import { RespMessage } from './message';

/**
 * Incremental RESP parser for one direction of a connection: RESP2 and RESP3 (maps,
 * sets, pushes, attributes, doubles, booleans, big numbers, nulls, verbatim strings,
 * blob errors, streamed strings and aggregates), and inline commands on the client
 * side. Fed bytes as they arrive, in any split; emits each message when its last byte
 * arrives. Values are streamed, never gathered: a bulk string of any size costs only
 * the part of it the rendering keeps (`maxValueBytes`). What is bounded: a line (64
 * KiB, Redis' own inline limit), nesting (32 levels), the rendering, the words kept.
 */

/** a line (simple string, error, length, inline command) longer than this is a violation */
export const MAX_LINE = 64 * 1024;
/** aggregates nested deeper than this are a violation */
export const MAX_DEPTH = 32;
/** top-level elements kept as words (`args`), and how much of each */
const ARGS_KEPT = 8;
const ARG_CHARS = 512;

export interface RespEvents {
  /** a complete message */
  message(m: RespMessage): void;
  /** the bytes are not RESP; the message in progress is dropped and the parser resynchronises */
  violation(reason: string): void;
}

// what the next bytes are
const S_LINE = 0; // the line that starts a value
const S_PAYLOAD = 1; // the bytes of a bulk string, verbatim string, blob error or streamed chunk
const S_CRLF = 2; // the CRLF after them
const S_INLINE = 3; // an inline command's line
const S_SCAN = 4; // looking for the start of a command (client side, after loss)
const S_WAIT = 5; // waiting to be armed, then for a chunk that starts with a reply (server side, after loss)
const S_DEAD = 6; // not parsed any more

// aggregate kinds
const K_COMMAND = 0; // a request's top-level array: words joined by spaces
const K_ARRAY = 1; // arrays, sets, pushes: [a, b]
const K_MAP = 2; // {k: v, k2: v2}
const K_ATTR = 3; // attributes: parsed, not rendered, not an element

const CR = 13;
const LF = 10;

export class RespParser {
  private state: number;
  private armed = false;
  private msg: RespMessage | null = null;
  /** a line gathered across chunks */
  private lineBuf: Buffer | null = null;
  /** a possible command start cut by a chunk's end while scanning */
  private scanTail: Buffer | null = null;
  /** payload bytes left, then the CRLF bytes left */
  private remaining = 0;
  /** verbatim strings: format bytes ("txt:") still to skip */
  private skip = 0;
  /** the payload is a chunk of a streamed string ($?) */
  private inStreamed = false;
  // the part of the current payload kept for the rendering and the word, decoded once it is all there
  private keep = 0;
  private kept: Buffer | null = null;
  private keptLen = 0;
  private renderWant = 0;
  private wordWant = 0;
  /** the payload is longer than the rendering keeps */
  private cutShort = false;
  // the aggregates open, innermost last
  private depth = 0;
  private readonly kind = new Uint8Array(MAX_DEPTH);
  /** elements left to complete (-1: streamed, until ".") */
  private readonly left = new Float64Array(MAX_DEPTH);
  /** elements started */
  private readonly index = new Float64Array(MAX_DEPTH);
  /** attributes open: nothing is rendered inside one */
  private muted = 0;
  /** rendering budget left, in bytes */
  private room = 0;
  /** the current top-level element is being kept as a word */
  private capturing = false;
  private word = '';
  /** the current top-level element is a secret: rendered as REDACTED */
  private secret = false;
  /** top-level words still to redact */
  private secretsLeft = 0;
  /** the command, when it is one that carries secrets */
  private cmd = '';
  /** this client has sent inline commands: after loss, one may start a chunk */
  private inline = false;
  private segStart = 0;

  constructor(
    private readonly isRequest: boolean,
    private readonly maxValueBytes: number,
    private readonly on: RespEvents,
  ) {
    this.state = S_LINE;
  }

  /** between messages (or not parsing): no message is in progress */
  get idle(): boolean {
    return this.msg === null;
  }

  /** the message in progress, if any */
  get current(): RespMessage | null {
    return this.msg;
  }

  /** waiting for a reply start after loss (server side), armed or not */
  get waiting(): boolean {
    return this.state === S_WAIT;
  }

  /** the stream is at an unknown point: look for the next command (client) or wait (server) */
  lose(): void {
    if (this.state === S_DEAD) return;
    this.reset();
    this.state = this.isRequest ? S_SCAN : S_WAIT;
    this.armed = false;
  }

  /** server side, waiting: from the next chunk on, resume at the first chunk that starts like a reply */
  arm(): void {
    if (this.state === S_WAIT) this.armed = true;
  }

  /** stop parsing this direction for good (a replication stream follows) */
  stop(): void {
    this.reset();
    this.state = S_DEAD;
  }

  /**
   * n bytes were lost. Inside a bulk payload that goes on past them the parser keeps
   * its place (the message is marked, true); anywhere else it loses it (false): the
   * message in progress is dropped and the parser looks for the next start.
   */
  gap(n: number): boolean {
    if (this.state === S_DEAD) return true;
    const m = this.msg;
    if (this.state === S_PAYLOAD && m !== null && n <= this.remaining) {
      this.remaining -= n;
      m.missingBytes += n;
      m.wireBytes += n;
      // what was kept before the hole is all the value shows
      if (this.skip >= n) this.skip -= n;
      else {
        this.skip = 0;
        if (this.keptLen < this.keep) {
          // (the event notes the loss; the rendering is not "cut at the limit")
          this.cutShort = false;
          this.decodeKept(this.kept ?? Buffer.alloc(0), 0, this.keptLen);
          this.keep = this.keptLen;
        }
      }
      if (this.remaining === 0) {
        this.state = S_CRLF;
        this.remaining = 2;
      }
      return true;
    }
    this.lose();
    return false;
  }

  feed(b: Buffer, off: number, len: number, sec: number, nsec: number): void {
    const end = off + len;
    let pos = off;
    if (this.state === S_DEAD) return;
    if (this.state === S_WAIT) {
      if (!this.armed || !startsLikeReply(b, off, end)) return;
      this.state = S_LINE;
      this.armed = false;
    } else if (this.state === S_SCAN) {
      pos = this.scan(b, off, end, true, sec, nsec);
      if (pos < 0) return;
    }
    this.segStart = pos;
    while (pos < end) {
      switch (this.state) {
        case S_LINE:
          pos = this.lineAt(b, pos, end, sec, nsec);
          break;
        case S_PAYLOAD: {
          const n = Math.min(this.remaining, end - pos);
          this.payload(b, pos, pos + n);
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.state = S_CRLF;
            this.remaining = 2;
          }
          break;
        }
        case S_CRLF:
          if (b[pos] !== (this.remaining === 2 ? CR : LF)) {
            this.violation('missing_crlf_after_payload');
            break;
          }
          pos++;
          if (--this.remaining === 0) {
            this.state = S_LINE;
            if (this.inStreamed) continue; // the next chunk of a streamed string
            this.valueDone(pos, sec, nsec);
          }
          break;
        case S_INLINE:
          pos = this.inlineAt(b, pos, end, sec, nsec);
          break;
        case S_SCAN:
          pos = this.scan(b, pos, end, false, sec, nsec);
          if (pos < 0) return;
          this.segStart = pos;
          break;
        default:
          // S_WAIT after a violation, or S_DEAD: the rest of the chunk is skipped
          return;
      }
    }
    if (this.msg !== null) this.msg.wireBytes += end - this.segStart;
  }

  /** the stream ended: a message in progress is dropped; returns it (the caller decides what it meant) */
  close(): RespMessage | null {
    const m = this.msg;
    this.reset();
    return m;
  }

  private reset(): void {
    this.msg = null;
    this.lineBuf = null;
    this.scanTail = null;
    this.kept = null;
    this.depth = 0;
    this.muted = 0;
    this.inStreamed = false;
    this.capturing = false;
    this.secret = false;
    this.secretsLeft = 0;
    if (this.state !== S_DEAD) this.state = S_LINE;
  }

  private violation(reason: string): void {
    this.lose();
    this.on.violation(reason);
  }

  private begin(pos: number, sec: number, nsec: number): RespMessage {
    const m = new RespMessage();
    m.startSec = sec;
    m.startNsec = nsec;
    this.msg = m;
    this.segStart = pos;
    this.room = this.maxValueBytes;
    this.secretsLeft = 0;
    this.cmd = '';
    return m;
  }

  private finish(pos: number, sec: number, nsec: number): void {
    const m = this.msg!;
    m.wireBytes += pos - this.segStart;
    m.endSec = sec;
    m.endNsec = nsec;
    this.msg = null;
    this.segStart = pos;
    this.on.message(m);
  }

  /** a line starting at pos: returns where parsing goes on */
  private lineAt(b: Buffer, pos: number, end: number, sec: number, nsec: number): number {
    if (this.msg === null) {
      const c = b[pos];
      if (this.isRequest && c !== 42) {
        // not '*': an inline command (empty lines between commands are skipped, as Redis does)
        if (c === CR || c === LF) return pos + 1;
        this.begin(pos, sec, nsec);
        this.state = S_INLINE;
        return pos;
      }
      this.begin(pos, sec, nsec);
    }
    const nl = lineEnd(b, pos, end);
    if (nl < 0) {
      this.gather(b, pos, end);
      return end;
    }
    let lb = b;
    let s = pos;
    let e = nl;
    if (this.lineBuf !== null) {
      lb = Buffer.concat([this.lineBuf, b.subarray(pos, nl + 1)]);
      this.lineBuf = null;
      s = 0;
      e = lb.length - 1;
    }
    if (e - s > MAX_LINE) {
      this.violation('line_too_long');
      return nl + 1;
    }
    if (e === s || lb[e - 1] !== CR) {
      this.violation('line_without_cr');
      return nl + 1;
    }
    this.line(lb, s, e - 1, nl + 1, sec, nsec);
    return nl + 1;
  }

  private gather(b: Buffer, pos: number, end: number): void {
    const part = b.subarray(pos, end);
    this.lineBuf = this.lineBuf === null ? Buffer.from(part) : Buffer.concat([this.lineBuf, part]);
    if (this.lineBuf.length > MAX_LINE) this.violation(this.state === S_INLINE ? 'inline_too_long' : 'line_too_long');
  }

  /** one line, lb[s, e) without its CRLF; `next` is where the stream goes on */
  private line(lb: Buffer, s: number, e: number, next: number, sec: number, nsec: number): void {
    const t = lb[s];
    if (this.inStreamed) {
      // a chunk of a streamed string: ";len", ";0" ends it
      const n = t === 59 ? parseLength(lb, s + 1, e) : -2;
      if (n < 0) return this.violation('bad_streamed_chunk');
      if (n === 0) {
        this.inStreamed = false;
        return this.valueDone(next, sec, nsec);
      }
      this.state = S_PAYLOAD;
      this.remaining = n;
      this.startPayload(n, false);
      return;
    }
    switch (t) {
      case 43: // + simple string
      case 45: // - simple error
        return this.scalar(t, lb.toString('utf8', s + 1, e), next, sec, nsec);
      case 58: // : integer
      case 40: // ( big number
        if (!isInteger(lb, s + 1, e)) return this.violation('bad_number');
        return this.scalar(t, lb.toString('latin1', s + 1, e), next, sec, nsec);
      case 44: // , double
        if (e - s < 2 || e - s > 400) return this.violation('bad_double');
        return this.scalar(t, lb.toString('latin1', s + 1, e), next, sec, nsec);
      case 35: // # boolean
        if (e - s !== 2 || (lb[s + 1] !== 116 && lb[s + 1] !== 102)) return this.violation('bad_boolean');
        return this.scalar(t, lb[s + 1] === 116 ? 'true' : 'false', next, sec, nsec);
      case 95: // _ null
        if (e - s !== 1) return this.violation('bad_null');
        return this.scalar(t, 'nil', next, sec, nsec, true);
      case 36: // $ bulk string
      case 33: // ! blob error
      case 61: {
        // = verbatim string
        const n = parseLength(lb, s + 1, e);
        if (n === -1) return this.scalar(t, 'nil', next, sec, nsec, true);
        if (n === -3 && t === 36) {
          this.start(t, false);
          this.inStreamed = true;
          return;
        }
        if (n < 0) return this.violation('bad_length');
        this.start(t, false);
        this.startPayload(n, t === 61);
        if (n === 0) {
          this.state = S_CRLF;
          this.remaining = 2;
        } else {
          this.state = S_PAYLOAD;
          this.remaining = n;
        }
        return;
      }
      case 42: // * array
      case 126: // ~ set
      case 62: // > push
      case 37: // % map
      case 124: {
        // | attribute
        const n = parseLength(lb, s + 1, e);
        if (n === -1 && t !== 124) return this.scalar(t, 'nil', next, sec, nsec, true);
        if (n < 0 && n !== -3) return this.violation('bad_length');
        if (this.depth === MAX_DEPTH) return this.violation('too_deep');
        return this.open(t, n === -3 ? -1 : n, next, sec, nsec);
      }
      case 46: {
        // . end of a streamed aggregate
        const d = this.depth - 1;
        if (e - s !== 1 || d < 0 || this.left[d] !== -1) return this.violation('unexpected_end');
        return this.close1(next, sec, nsec);
      }
      default:
        return this.violation('unknown_type');
    }
  }

  /** a value begins (not an attribute): separators, the message's type, the top-level word */
  private start(t: number, aggregate: boolean): void {
    const m = this.msg!;
    const d = this.depth;
    if (d === 0) {
      m.type = t;
      return;
    }
    const i = this.index[d - 1]++;
    const k = this.kind[d - 1];
    if (i > 0) this.put(k === K_COMMAND ? ' ' : k === K_MAP && i % 2 === 1 ? ': ' : ', ');
    if (d === 1 && k !== K_ATTR && this.muted === 0) {
      this.secret = this.secretsLeft > 0;
      if (this.secret) {
        this.secretsLeft--;
        this.put(REDACTED);
      }
      this.capturing = !aggregate && (i < ARGS_KEPT || this.left[0] === 1);
      this.word = this.secret ? REDACTED : '';
    }
  }

  private scalar(t: number, text: string, next: number, sec: number, nsec: number, isNull = false): void {
    this.start(t, false);
    if (!this.secret) {
      this.put(text);
      if (this.capturing) this.word = text.length > ARG_CHARS ? text.slice(0, ARG_CHARS) : text;
    }
    if (isNull && this.depth === 1 && this.capturing) {
      const i = this.index[0] - 1;
      if (i < 31) this.msg!.nulls |= 1 << i;
    }
    this.valueDone(next, sec, nsec);
  }

  private open(t: number, n: number, next: number, sec: number, nsec: number): void {
    const attr = t === 124;
    if (!attr) this.start(t, true);
    const kind = attr ? K_ATTR : t === 37 ? K_MAP : t === 42 && this.isRequest && this.depth === 0 ? K_COMMAND : K_ARRAY;
    if (this.depth === 0 && !attr) this.msg!.count = n;
    if (attr) this.muted++;
    else if (kind !== K_COMMAND) this.put(kind === K_MAP ? '{' : '[');
    const d = this.depth++;
    this.kind[d] = kind;
    this.left[d] = n < 0 ? -1 : kind === K_MAP || attr ? n * 2 : n;
    this.index[d] = 0;
    if (n === 0) this.close1(next, sec, nsec);
  }

  /** the innermost aggregate is complete */
  private close1(next: number, sec: number, nsec: number): void {
    const d = --this.depth;
    const k = this.kind[d];
    if (k === K_ATTR) {
      // an attribute is not an element: the value it describes follows
      this.muted--;
      return;
    }
    if (k !== K_COMMAND) this.put(k === K_MAP ? '}' : ']');
    if (d === 0 && this.msg!.count < 0) this.msg!.count = this.index[0];
    this.valueDone(next, sec, nsec);
  }

  /** a value is complete: count it in its aggregate, closing what it completes */
  private valueDone(next: number, sec: number, nsec: number): void {
    const d = this.depth - 1;
    if (d < 0) return this.finish(next, sec, nsec);
    if (d === 0 && this.kind[0] !== K_ATTR) this.word1();
    const left = this.left[d];
    if (left < 0) return; // streamed: until "."
    this.left[d] = left - 1;
    if (left === 1) this.close1(next, sec, nsec);
  }

  /** a top-level element is complete: keep it as a word; secrets that follow it */
  private word1(): void {
    if (this.muted > 0) return;
    const m = this.msg!;
    const i = this.index[0] - 1;
    if (i < ARGS_KEPT) m.args.push(this.capturing ? this.word : '');
    if (this.capturing) m.last = this.word;
    if (this.isRequest && this.kind[0] === K_COMMAND) {
      if (i === 0) this.cmd = hasSecrets(this.word) ? this.word.toUpperCase() : '';
      if (this.cmd !== '' && !this.secret && i < 16) this.secretsLeft = secretsAfter(this.cmd, i, i === 0 ? this.cmd : this.word.toUpperCase());
    }
    this.capturing = false;
    this.secret = false;
    this.word = '';
  }

  /**
   * A payload of n bytes begins (a bulk string, verbatim string, blob error or a
   * chunk of a streamed string): decide how much of it the rendering and the word keep.
   */
  private startPayload(n: number, verbatim: boolean): void {
    // a verbatim string's format ("txt:") is not part of its text
    this.skip = verbatim ? Math.min(4, n) : 0;
    const body = n - this.skip;
    const shown = this.muted === 0 && !this.secret;
    this.renderWant = shown ? Math.min(body, Math.max(0, this.room)) : 0;
    this.cutShort = shown && body > this.renderWant;
    if (shown) this.room -= this.renderWant;
    this.wordWant = this.capturing && !this.secret ? Math.min(body, ARG_CHARS * 4) : 0;
    this.keep = Math.max(this.renderWant, this.wordWant);
    this.kept = null;
    this.keptLen = 0;
    if (this.keep === 0 && this.cutShort) this.msg!.truncated = true;
  }

  /** payload bytes b[s, e): the kept part is decoded once it is complete, wherever the chunks split it */
  private payload(b: Buffer, s: number, e: number): void {
    if (this.skip > 0) {
      const k = Math.min(this.skip, e - s);
      this.skip -= k;
      s += k;
    }
    const k = Math.min(e - s, this.keep - this.keptLen);
    if (k <= 0) return;
    if (this.keptLen === 0 && k === this.keep) {
      this.keptLen = k;
      this.decodeKept(b, s, s + k);
      return;
    }
    const part = b.subarray(s, s + k);
    this.kept = this.kept === null ? Buffer.from(part) : Buffer.concat([this.kept, part]);
    this.keptLen += k;
    if (this.keptLen === this.keep) {
      this.decodeKept(this.kept, 0, this.keptLen);
      this.kept = null;
    }
  }

  private decodeKept(b: Buffer, s: number, e: number): void {
    const m = this.msg!;
    const r = Math.min(this.renderWant, e - s);
    const text = r > 0 ? b.toString('utf8', s, s + r) : '';
    m.text += text;
    if (this.cutShort) m.truncated = true;
    if (this.wordWant > 0 && this.word.length < ARG_CHARS) {
      const w = Math.min(this.wordWant, e - s);
      const t = w === r ? text : b.toString('utf8', s, s + w);
      this.word += t.length > ARG_CHARS - this.word.length ? t.slice(0, ARG_CHARS - this.word.length) : t;
    }
  }

  /** append to the rendering, within its budget */
  private put(s: string): void {
    if (this.muted > 0) return;
    const m = this.msg!;
    if (this.room <= 0) {
      if (s.length > 0) m.truncated = true;
      return;
    }
    if (s.length > this.room) {
      m.text += s.slice(0, this.room);
      this.room = 0;
      m.truncated = true;
      return;
    }
    m.text += s;
    this.room -= s.length;
  }

  /** an inline command's line (client side), up to LF */
  private inlineAt(b: Buffer, pos: number, end: number, sec: number, nsec: number): number {
    const nl = b.indexOf(LF, pos);
    if (nl < 0 || nl >= end) {
      this.gather(b, pos, end);
      return end;
    }
    let text: string;
    if (this.lineBuf !== null) {
      const lb = Buffer.concat([this.lineBuf, b.subarray(pos, nl)]);
      this.lineBuf = null;
      if (lb.length > MAX_LINE) {
        this.violation('inline_too_long');
        return nl + 1;
      }
      text = lb.toString('utf8');
    } else {
      if (nl - pos > MAX_LINE) {
        this.violation('inline_too_long');
        return nl + 1;
      }
      text = b.toString('utf8', pos, nl);
    }
    const words = splitInline(text) ?? text.trim().split(/\s+/);
    const m = this.msg!;
    if (words.length === 0 || (words.length === 1 && words[0] === '')) {
      // blank: no command (Redis skips it)
      this.msg = null;
      this.state = S_LINE;
      return nl + 1;
    }
    m.type = 0;
    m.count = words.length;
    this.inline = true;
    const cmd = words[0].toUpperCase();
    let secrets = 0;
    for (let i = 0; i < words.length; i++) {
      let w = words[i];
      if (secrets > 0) {
        secrets--;
        w = REDACTED;
      } else if (i < 16) {
        secrets = secretsAfter(cmd, i, w.toUpperCase());
      }
      if (i > 0) this.put(' ');
      this.put(w);
      const kept = w.length > ARG_CHARS ? w.slice(0, ARG_CHARS) : w;
      if (i < ARGS_KEPT) m.args.push(kept);
      if (i === words.length - 1) m.last = kept;
    }
    this.state = S_LINE;
    this.finish(nl + 1, sec, nsec);
    return nl + 1;
  }

  /**
   * Client side, after loss: the next command start from pos on. A candidate is a
   * line start that reads `*N\r\n$` (or, at a chunk's start on a connection that has
   * sent inline commands, a word followed by a space or line end: the tail of a value
   * looks like one too). Returns its position, or -1 when the chunk has none (a
   * candidate cut by the chunk's end is kept for the next one).
   */
  private scan(b: Buffer, pos: number, end: number, atChunkStart: boolean, sec: number, nsec: number): number {
    if (this.scanTail !== null) {
      const t = this.scanTail;
      this.scanTail = null;
      const probe = Buffer.concat([t, b.subarray(pos, Math.min(end, pos + 16))]);
      if (commandStart(probe, 0, probe.length) === 1) {
        this.state = S_LINE;
        this.feed(t, 0, t.length, sec, nsec);
        return pos;
      }
    } else if (atChunkStart && (commandStart(b, pos, end) === 1 || (this.inline && inlineStart(b, pos, end)))) {
      this.state = S_LINE;
      return pos;
    } else if (!atChunkStart && pos > 0 && b[pos - 1] === LF && commandStart(b, pos, end) === 1) {
      // where a line that was not RESP ended
      this.state = S_LINE;
      return pos;
    }
    for (;;) {
      const nl = b.indexOf(LF, pos);
      if (nl < 0 || nl + 1 >= end) return -1;
      const p = nl + 1;
      const r = commandStart(b, p, end);
      if (r === 1) {
        this.state = S_LINE;
        return p;
      }
      if (r === 0) {
        this.scanTail = Buffer.from(b.subarray(p, end));
        return -1;
      }
      pos = p;
    }
  }
}

/** position of the LF ending the line from pos, or -1 within [pos, end) */
function lineEnd(b: Buffer, pos: number, end: number): number {
  const nl = b.indexOf(LF, pos);
  return nl < 0 || nl >= end ? -1 : nl;
}

/** a length: digits (-1 for null), -3 for "?", -2 when not one */
function parseLength(b: Buffer, s: number, e: number): number {
  if (e - s === 1 && b[s] === 63) return -3;
  if (e - s === 2 && b[s] === 45 && b[s + 1] === 49) return -1;
  if (e <= s || e - s > 15) return -2;
  let n = 0;
  for (let i = s; i < e; i++) {
    const d = b[i] - 48;
    if (d < 0 || d > 9) return -2;
    n = n * 10 + d;
  }
  return n;
}

function isInteger(b: Buffer, s: number, e: number): boolean {
  if (s < e && (b[s] === 45 || b[s] === 43)) s++;
  if (s >= e) return false;
  for (let i = s; i < e; i++) if (b[i] < 48 || b[i] > 57) return false;
  return true;
}

/** `*N\r\n$` at p: 1 yes, 0 maybe (cut by the end), -1 no */
function commandStart(b: Buffer, p: number, end: number): number {
  if (p >= end) return 0;
  if (b[p] !== 42) return -1;
  let i = p + 1;
  for (; i < end && i - p <= 8; i++) {
    const c = b[i];
    if (c < 48 || c > 57) break;
  }
  if (i === end) return 0;
  if (i === p + 1 || i - p > 8) return -1;
  for (const want of [CR, LF, 36]) {
    if (i === end) return 0;
    if (b[i++] !== want) return -1;
  }
  return 1;
}

/** a word of letters followed by a space or a line end: an inline command */
function inlineStart(b: Buffer, p: number, end: number): boolean {
  let i = p;
  for (; i < end && i - p < 32; i++) {
    const c = b[i] | 0x20;
    if (c < 97 || c > 122) break;
  }
  return i > p && i < end && (b[i] === 32 || b[i] === CR || b[i] === LF);
}

/**
 * Does a chunk start with a reply (server side, resuming after loss)? Its first line
 * must be well formed for its type: a status or error of printable text, a number,
 * a length or count, a boolean, a null.
 */
export function startsLikeReply(b: Buffer, p: number, end: number): boolean {
  if (p >= end) return false;
  const t = b[p];
  let nl = b.indexOf(LF, p);
  if (nl < 0 || nl >= end) nl = -1;
  if (nl < 0) {
    // a line cut by the chunk's end: only text types can be judged on what is there
    if (t !== 43 && t !== 45) return false;
    for (let i = p + 1; i < end && i < p + 256; i++) if (b[i] < 32) return false;
    return true;
  }
  if (nl === p || b[nl - 1] !== CR) return false;
  const s = p + 1;
  const e = nl - 1;
  switch (t) {
    case 43:
    case 45:
      for (let i = s; i < e; i++) if (b[i] < 32 && b[i] !== 9) return false;
      return true;
    case 58:
    case 40:
      return isInteger(b, s, e);
    case 44:
      return e > s;
    case 35:
      return e - s === 1 && (b[s] === 116 || b[s] === 102);
    case 95:
      return e === s;
    case 36:
    case 33:
    case 61:
    case 42:
    case 126:
    case 62:
    case 37:
    case 124: {
      const n = parseLength(b, s, e);
      return n >= 0 || n === -1 || n === -3;
    }
    default:
      return false;
  }
}
