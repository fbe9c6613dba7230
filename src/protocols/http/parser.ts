import { HttpMessage } from './message';

export interface HttpParserOptions {
  /** largest header section (start line and headers) before the parser gives up on it */
  maxHeaderBytes: number;
  /** headers to capture (lower-case), or 'all' */
  captureHeaders: readonly string[] | 'all';
  /** content types (lower-case substrings of the Content-Type, as packetbeat matches them) whose bodies are kept */
  includeBodyFor: readonly string[];
  /** body bytes kept per message */
  maxBodyBytes: number;
  /** what is kept of one message in all (its header section and body): packetbeat's max_message_size */
  maxMessageSize: number;
  /** keep the header section as sent, for the raw `request`/`response` field */
  keepRaw: boolean;
  /** requests: keep an application/x-www-form-urlencoded body, whose parameters go into url.query (as packetbeat) */
  keepFormBody: boolean;
  /** requests: read the Authorization header (for the basic-auth user name) */
  authorization: boolean;
  /** requests: the header that names the client behind a proxy (lower-case), '' for none */
  realIpHeader: string;
  /** keep the first bytes of every body, to detect its type from them */
  sniffBody: boolean;
}

/** bytes of a body kept to detect its type (as libbeat's detect_mime_type reads) */
export const SNIFF_BYTES = 8192;

/** How the body of a message is delimited, decided by the caller for responses. */
export const BodyMode = { none: 0, length: 1, chunked: 2, untilClose: 3, tunnel: 4 } as const;

export interface ParserEvents {
  /** headers parsed; returns how the body is framed */
  headers(msg: HttpMessage): number;
  /** message complete */
  message(msg: HttpMessage): void;
  /** a message could not be parsed (the reason is counted) */
  violation(reason: string): void;
  /** bytes after the parser stopped (an upgrade or a tunnel): what the connection speaks now */
  rest?(buf: Buffer, off: number, len: number, tsSec: number, tsNsec: number): void;
}

const S_IDLE = 0;
const S_HEADERS = 1;
const S_BODY = 2;
const S_CHUNK_SIZE = 3;
const S_CHUNK_DATA = 4;
const S_CHUNK_END = 5;
const S_TRAILER = 6;
const S_UNTIL_CLOSE = 7;
const S_SYNC = 8;
const S_DEAD = 9;

const CRLFCRLF = Buffer.from('\r\n\r\n');
const MAX_CHUNK_LINE = 1024;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/**
 * the headers header() reads whatever the options: content-length, transfer-encoding, connection, host, user-agent, referer, content-type, expect,
 * upgrade and http2-settings (an upgrade to HTTP/2; their lengths are those of referer and content-length, so they cost no other header a copy)
 */
const FRAMING_HEADERS = ['content-length', 'transfer-encoding', 'connection', 'host', 'user-agent', 'referer', 'content-type', 'expect', 'upgrade', 'http2-settings'];
const VERSIONS = ['1.0', '1.1', '0.9'];

/** "HTTP/d.d" at text[from, to) → "d.d", or '' */
/** what String#trim takes off in latin1 text: tab, LF, VT, FF, CR, space, no-break space */
export function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || c === 160;
}

function httpVersion(text: string, from: number, to: number): string {
  if (to - from !== 8 || !text.startsWith('HTTP/', from) || text.charCodeAt(from + 6) !== 46) return '';
  const a = text.charCodeAt(from + 5) - 48;
  const b = text.charCodeAt(from + 7) - 48;
  if (a < 0 || a > 9 || b < 0 || b > 9) return '';
  const v = text.slice(from + 5, to);
  return VERSIONS.includes(v) ? VERSIONS[VERSIONS.indexOf(v)] : v;
}

/**
 * Incremental HTTP/1.x parser for one direction of a connection. Fed bytes as
 * they arrive, in any split; emits complete messages. Every buffer is bounded:
 * the header section by maxHeaderBytes, a chunk-size line by 1 KiB, kept bodies by
 * maxBodyBytes. After a violation it resynchronises on the next start line.
 */
/** the name lengths table of each options object: made once, not per connection (it was a kilobyte of each) */
const lengthTables = new WeakMap<HttpParserOptions, Uint8Array>();

function interestingLengths(opts: HttpParserOptions): Uint8Array {
  let t = lengthTables.get(opts);
  if (t === undefined) {
    t = new Uint8Array(256);
    const names = [...FRAMING_HEADERS];
    if (opts.authorization) names.push('authorization');
    if (opts.realIpHeader !== '') names.push(opts.realIpHeader);
    for (const n of names) t[Math.min(n.length, 255)] = 1;
    lengthTables.set(opts, t);
  }
  return t;
}

export class HttpParser {
  private state = S_IDLE;
  private msg: HttpMessage | null = null;
  /** header bytes gathered across chunks (only when a header section spans them) */
  private hdr: Buffer | null = null;
  private remaining = 0;
  private line = '';
  /** body bytes kept of the current message at most (-1: the body is not kept) */
  private keepBody = -1;
  /** body bytes kept to detect the body's type (0: none) */
  private sniff = 0;
  /** name lengths of the headers header() reads: only those cost a lower-cased copy (longer names: index 255) */
  private readonly interesting: Uint8Array;

  constructor(
    private readonly isRequest: boolean,
    private readonly opts: HttpParserOptions,
    private readonly on: ParserEvents,
  ) {
    this.interesting = interestingLengths(opts);
  }

  get idle(): boolean {
    return this.state === S_IDLE || this.state === S_SYNC || this.state === S_DEAD;
  }

  /** the stream starts at an unknown point (no handshake seen): wait for a start line */
  resync(): void {
    this.state = S_SYNC;
  }

  /** stop parsing this direction for good (after an upgrade or CONNECT) */
  stop(): void {
    this.state = S_DEAD;
    this.msg = null;
    this.hdr = null;
  }

  feed(buf: Buffer, off: number, len: number, tsSec: number, tsNsec: number): void {
    const end = off + len;
    while (off < end) {
      switch (this.state) {
        case S_IDLE: {
          // tolerate empty lines between messages
          while (off < end && (buf[off] === 13 || buf[off] === 10)) off++;
          if (off === end) return;
          const m = new HttpMessage(this.isRequest);
          m.startSec = tsSec;
          m.startNsec = tsNsec;
          this.msg = m;
          this.state = S_HEADERS;
          break;
        }
        case S_HEADERS:
          off = this.headerBytes(buf, off, end, tsSec, tsNsec);
          break;
        case S_BODY: {
          const n = Math.min(this.remaining, end - off);
          this.bodyData(buf, off, n);
          off += n;
          this.remaining -= n;
          if (this.remaining === 0) this.complete(tsSec, tsNsec);
          break;
        }
        case S_CHUNK_SIZE:
        case S_TRAILER:
          off = this.chunkLine(buf, off, end, tsSec, tsNsec);
          break;
        case S_CHUNK_DATA: {
          const n = Math.min(this.remaining, end - off);
          this.bodyData(buf, off, n);
          off += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.state = S_CHUNK_END;
            this.remaining = 2;
          }
          break;
        }
        case S_CHUNK_END: {
          // the CRLF after chunk data
          const n = Math.min(this.remaining, end - off);
          this.msg!.wireBytes += n;
          off += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.state = S_CHUNK_SIZE;
            this.line = '';
          }
          break;
        }
        case S_UNTIL_CLOSE:
          this.bodyData(buf, off, end - off);
          off = end;
          break;
        case S_SYNC:
          off = this.sync(buf, off, end);
          break;
        default: // S_DEAD
          if (this.on.rest !== undefined) this.on.rest(buf, off, end - off, tsSec, tsNsec);
          return;
      }
    }
  }

  /** the capture lost n bytes of this direction */
  gap(n: number, tsSec: number, tsNsec: number): void {
    const m = this.msg;
    switch (this.state) {
      case S_BODY:
      case S_CHUNK_DATA: {
        // the lost bytes still belong to the body: its size stays what the framing says
        const lost = Math.min(n, this.remaining);
        m!.missingBytes += lost;
        m!.wireBytes += lost;
        m!.bodyBytes += lost;
        if (n < this.remaining) {
          this.remaining -= n;
          return;
        }
        if (this.state === S_BODY) {
          const rest = n - this.remaining;
          this.remaining = 0;
          this.complete(tsSec, tsNsec);
          if (rest > 0) this.state = S_SYNC;
          return;
        }
        m!.note('packet loss inside a chunked body');
        this.complete(tsSec, tsNsec);
        this.state = S_SYNC;
        return;
      }
      case S_UNTIL_CLOSE:
        m!.missingBytes += n;
        m!.wireBytes += n;
        m!.bodyBytes += n;
        return;
      case S_HEADERS:
      case S_CHUNK_SIZE:
      case S_CHUNK_END:
      case S_TRAILER:
        if (this.state === S_HEADERS) {
          this.on.violation('gap_in_headers');
          this.msg = null;
          this.hdr = null;
          this.state = S_SYNC;
          return;
        }
        m!.missingBytes += n;
        m!.note('packet loss inside a chunked body');
        this.complete(tsSec, tsNsec);
        this.state = S_SYNC;
        return;
      case S_IDLE:
        this.state = S_SYNC;
        return;
      default:
        return;
    }
  }

  /** the connection closed: finish a body delimited by close, or a message cut short */
  close(tsSec: number, tsNsec: number): void {
    if (this.state === S_UNTIL_CLOSE) {
      this.complete(tsSec, tsNsec);
      return;
    }
    if (this.msg !== null && this.state !== S_HEADERS && this.state !== S_DEAD) {
      this.msg.note('connection closed before the message was complete');
      this.complete(tsSec, tsNsec);
      return;
    }
    if (this.state === S_HEADERS) this.on.violation('closed_in_headers');
    this.msg = null;
  }

  private headerBytes(buf: Buffer, off: number, end: number, tsSec: number, tsNsec: number): number {
    const m = this.msg!;
    let section: Buffer;
    let from: number;
    let to: number;
    let consumed: number;
    if (this.hdr === null) {
      const i = buf.indexOf(CRLFCRLF, off);
      if (i >= 0 && i + 4 <= end) {
        section = buf;
        from = off;
        to = i;
        consumed = i + 4 - off;
      } else {
        if (end - off > this.opts.maxHeaderBytes) return this.overflow(end);
        this.hdr = Buffer.from(buf.subarray(off, end));
        return end;
      }
    } else {
      const prev = this.hdr.length;
      const joined = Buffer.concat([this.hdr, buf.subarray(off, end)]);
      const i = joined.indexOf(CRLFCRLF, prev >= 3 ? prev - 3 : 0);
      if (i < 0) {
        if (joined.length > this.opts.maxHeaderBytes) return this.overflow(end);
        this.hdr = joined;
        return end;
      }
      section = joined;
      from = 0;
      to = i;
      consumed = i + 4 - prev;
      this.hdr = null;
    }
    if (to - from + 4 > this.opts.maxHeaderBytes) return this.overflow(off + consumed);
    m.headerBytes = to - from + 4;
    m.wireBytes = m.headerBytes;
    if (!this.parseHead(m, section.toString('latin1', from, to))) {
      this.msg = null;
      this.state = S_SYNC;
      return off + consumed;
    }
    this.bodyKeeping(m);
    if (this.opts.keepRaw) m.raw = Buffer.from(section.subarray(from, to + 4));
    const mode = this.on.headers(m);
    switch (mode) {
      case BodyMode.length:
        if (m.contentLength > 0) {
          this.state = S_BODY;
          this.remaining = m.contentLength;
        } else this.complete(tsSec, tsNsec);
        break;
      case BodyMode.chunked:
        this.state = S_CHUNK_SIZE;
        this.line = '';
        break;
      case BodyMode.untilClose:
        this.state = S_UNTIL_CLOSE;
        break;
      case BodyMode.tunnel:
        this.complete(tsSec, tsNsec);
        this.state = S_DEAD;
        break;
      default:
        this.complete(tsSec, tsNsec);
    }
    return off + consumed;
  }

  /** what of the body is kept: for body.content (include_body_for), a form's parameters, its type's detection */
  private bodyKeeping(m: HttpMessage): void {
    const o = this.opts;
    this.keepBody = -1;
    this.sniff = o.sniffBody ? SNIFF_BYTES : 0;
    if (m.contentType === '' || (o.includeBodyFor.length === 0 && !o.keepFormBody)) return;
    const type = m.contentType.toLowerCase();
    m.sendBody = o.includeBodyFor.length > 0 && o.includeBodyFor.some((t) => type.includes(t));
    if (m.sendBody || (o.keepFormBody && m.contentLength > 0 && type.includes('urlencoded'))) {
      // what is kept of a message in all is bounded by maxMessageSize, its header section included;
      // a form kept only for its parameters (url.query) no further than a header section (every request may hold one)
      this.keepBody = Math.max(0, Math.min(m.sendBody ? o.maxBodyBytes : o.maxHeaderBytes, o.maxMessageSize - m.headerBytes));
    }
  }

  private overflow(next: number): number {
    this.on.violation('header_too_large');
    this.msg = null;
    this.hdr = null;
    this.state = S_SYNC;
    return next;
  }

  /** parse the start line and headers; false on a violation */
  private parseHead(m: HttpMessage, text: string): boolean {
    let eol = text.indexOf('\r\n');
    if (eol < 0) eol = text.length;
    if (!this.startLine(m, text.slice(0, eol))) return false;
    const capture = this.opts.captureHeaders;
    const all = capture === 'all';
    const wanted = all || capture.length > 0;
    if (wanted) m.headers = {};
    let pos = eol + 2;
    while (pos < text.length) {
      let next = text.indexOf('\r\n', pos);
      if (next < 0) next = text.length;
      const colon = text.indexOf(':', pos);
      if (colon < 0 || colon >= next || colon === pos) {
        const c = text.charCodeAt(pos);
        if (next > pos && c !== 32 && c !== 9) return this.bad('bad_header_line'); // else obsolete line folding
        pos = next + 2;
        continue;
      }
      let nameEnd = colon;
      while (nameEnd > pos && text.charCodeAt(nameEnd - 1) === 32) nameEnd--;
      const nameLen = nameEnd - pos;
      // only the headers the parser needs, or the user asked for, cost a lower-cased copy
      if (wanted || this.interesting[nameLen < 255 ? nameLen : 255] === 1) {
        const name = text.slice(pos, nameEnd).toLowerCase();
        // the value without the whitespace around it, as one slice (String#trim of a slice is a second string)
        let vs = colon + 1;
        let ve = next;
        while (vs < ve && isSpace(text.charCodeAt(vs))) vs++;
        while (ve > vs && isSpace(text.charCodeAt(ve - 1))) ve--;
        const value = text.slice(vs, ve);
        if (!this.header(m, name, value)) return false;
        // Content-Length and Content-Type go into every event anyway (from the message's fields)
        if (wanted && (all ? name !== 'content-length' && name !== 'content-type' : (capture as readonly string[]).includes(name))) {
          const h = m.headers!;
          h[name] = name in h ? `${h[name]}, ${value}` : value;
        }
      }
      pos = next + 2;
    }
    return true;
  }

  private startLine(m: HttpMessage, first: string): boolean {
    const sp1 = first.indexOf(' ');
    if (sp1 <= 0) return this.bad('bad_start_line');
    if (this.isRequest) {
      const sp2 = first.lastIndexOf(' ');
      if (sp2 === sp1) return this.bad('bad_start_line');
      const method = first.slice(0, sp1);
      const version = httpVersion(first, sp2 + 1, first.length);
      if (!TOKEN.test(method) || version === '') return this.bad('bad_start_line');
      m.method = method;
      m.uri = first.slice(sp1 + 1, sp2);
      m.version = version;
      return true;
    }
    const version = httpVersion(first, 0, sp1);
    if (version === '') return this.bad('bad_start_line');
    const sp2 = first.indexOf(' ', sp1 + 1);
    const codeEnd = sp2 < 0 ? first.length : sp2;
    if (codeEnd - sp1 !== 4) return this.bad('bad_status_code');
    let code = 0;
    for (let i = sp1 + 1; i < codeEnd; i++) {
      const d = first.charCodeAt(i) - 48;
      if (d < 0 || d > 9) return this.bad('bad_status_code');
      code = code * 10 + d;
    }
    m.version = version;
    m.statusCode = code;
    m.statusPhrase = sp2 < 0 ? '' : first.slice(sp2 + 1);
    return true;
  }

  /** the headers that decide framing and the event's fields */
  private header(m: HttpMessage, name: string, value: string): boolean {
    switch (name) {
      case 'content-length': {
        if (!/^\d{1,15}$/.test(value)) return this.bad('bad_content_length');
        const n = +value;
        if (m.contentLength >= 0 && m.contentLength !== n) return this.bad('conflicting_content_length');
        m.contentLength = n;
        break;
      }
      case 'transfer-encoding':
        m.chunked = /(^|,)\s*chunked\s*$/i.test(value);
        break;
      case 'connection':
        if (/(^|,)\s*close\s*(,|$)/i.test(value)) m.connectionClose = true;
        break;
      case 'host':
        m.host = value;
        break;
      case 'user-agent':
        m.userAgent = value;
        break;
      case 'referer':
        m.referer = value;
        break;
      case 'content-type':
        m.contentType = value;
        break;
      case 'expect':
        if (value.toLowerCase() === '100-continue') m.expectContinue = true;
        break;
      case 'authorization':
        if (this.opts.authorization) m.authorization = value;
        break;
      case 'upgrade':
        m.upgrade = value;
        break;
      case 'http2-settings':
        m.http2Settings = value;
        break;
    }
    if (name === this.opts.realIpHeader) {
      // the first address of X-Forwarded-For and the like (packetbeat's real_ip_header)
      const comma = value.indexOf(',');
      m.realIp = (comma < 0 ? value : value.slice(0, comma)).trim();
    }
    return true;
  }

  private bad(reason: string): false {
    this.on.violation(reason);
    return false;
  }

  /** a chunk-size line or a trailer line; bounded */
  private chunkLine(buf: Buffer, off: number, end: number, tsSec: number, tsNsec: number): number {
    const m = this.msg!;
    let i = off;
    while (i < end && buf[i] !== 10) i++;
    const piece = buf.toString('latin1', off, i);
    m.wireBytes += i - off + (i < end ? 1 : 0);
    this.line += piece;
    if (this.line.length > MAX_CHUNK_LINE) {
      this.on.violation(this.state === S_TRAILER ? 'trailer_too_large' : 'chunk_line_too_long');
      m.note('malformed chunked body');
      this.complete(tsSec, tsNsec);
      this.state = S_SYNC;
      return end;
    }
    if (i === end) return end; // line continues in the next chunk
    const line = this.line.endsWith('\r') ? this.line.slice(0, -1) : this.line;
    this.line = '';
    if (this.state === S_TRAILER) {
      if (line === '') this.complete(tsSec, tsNsec);
      return i + 1;
    }
    const semi = line.indexOf(';');
    const hex = (semi < 0 ? line : line.slice(0, semi)).trim();
    if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) {
      this.on.violation('bad_chunk_size');
      m.note('malformed chunked body');
      this.complete(tsSec, tsNsec);
      this.state = S_SYNC;
      return i + 1;
    }
    const size = parseInt(hex, 16);
    if (size === 0) this.state = S_TRAILER;
    else {
      this.state = S_CHUNK_DATA;
      this.remaining = size;
    }
    return i + 1;
  }

  private bodyData(buf: Buffer, off: number, n: number): void {
    const m = this.msg!;
    m.bodyBytes += n;
    m.wireBytes += n;
    if (n === 0) return;
    if (this.keepBody >= 0) {
      const room = this.keepBody - m.bodyKept;
      const take = Math.min(room, n);
      if (take > 0) {
        (m.body ??= []).push(Buffer.from(buf.subarray(off, off + take)));
        m.bodyKept += take;
      }
      if (take < n) m.bodyTruncated = true;
    } else if (this.sniff > 0) {
      // the body is not kept: its first bytes are, to detect its type
      const have = m.sniffed === null ? 0 : m.sniffed.length;
      const take = Math.min(this.sniff - have, n);
      if (take > 0) m.sniffed = have === 0 ? Buffer.from(buf.subarray(off, off + take)) : Buffer.concat([m.sniffed!, buf.subarray(off, off + take)]);
    }
  }

  private complete(tsSec: number, tsNsec: number): void {
    const m = this.msg!;
    m.endSec = tsSec;
    m.endNsec = tsNsec;
    this.msg = null;
    this.state = S_IDLE;
    this.on.message(m);
  }

  /** look for the next start line after a violation or a gap: only at a line start */
  private sync(buf: Buffer, off: number, end: number): number {
    let i = off;
    while (i < end) {
      if (this.looksLikeStart(buf, i, end)) {
        this.state = S_IDLE;
        return i;
      }
      const nl = buf.indexOf(10, i);
      if (nl < 0 || nl >= end) return end;
      i = nl + 1;
    }
    return end;
  }

  private looksLikeStart(buf: Buffer, i: number, end: number): boolean {
    if (!this.isRequest) return end - i >= 7 && buf.toString('latin1', i, i + 7) === 'HTTP/1.';
    return startsWithMethod(buf, i, end);
  }
}

const METHODS = ['GET ', 'POST ', 'PUT ', 'HEAD ', 'DELETE ', 'OPTIONS ', 'PATCH ', 'CONNECT ', 'TRACE '];

/** does buf[i..] begin with a common request method and a space */
export function startsWithMethod(buf: Buffer, i: number, end: number): boolean {
  const head = buf.toString('latin1', i, Math.min(end, i + 8));
  for (const m of METHODS) if (head.startsWith(m)) return true;
  return false;
}
