/**
 * HTTP/2 (RFC 9113) over a TCP connection: cleartext h2c with prior knowledge (its
 * preface, by content probe or handed on by the HTTP analyzer on HTTP's ports), h2c
 * after an HTTP/1.1 Upgrade (handed on by the HTTP analyzer with the upgraded request),
 * and decrypted h2 (handed on by the TLS analyzer). Frames are read per direction in
 * any split; header blocks (HEADERS or PUSH_PROMISE, then CONTINUATION) are decoded
 * with HPACK (./hpack.ts); each stream's request and response become one `type: http`
 * event, built by the HTTP analyzer's event builder with `http.version: "2"` and
 * `http2.stream_id`.
 *
 * A gap that frames cannot absorb (one inside a DATA frame's payload can) leaves the
 * direction's framing and HPACK state unknown: the direction is given up, counted
 * (`hpack_state_lost`) and reported as an anomaly; streams that waited for it are
 * emitted with a note, and streams that begin after it are counted as dropped
 * (`hpack_state_lost`) instead of being reported with wrong headers.
 */
import { ReasonCounter } from '../../core/counters';
import type { Stats } from '../../core/stage';
import type { Endpoints } from '../../events/endpoints';
import { closeEvent, UNMATCHED_REQUEST, UNMATCHED_RESPONSE } from '../../events/transaction';
import type { Emitter, Protocol, TcpAnalyzer, TcpContext } from '../analyzer';
import { HTTP_DEFAULTS, HttpCounters, HttpEventBuilder, httpStats, resolveHttpOptions, type HttpOptions, type Resolved } from '../http';
import { HttpMessage } from '../http/message';
import { SNIFF_BYTES, type HttpParserOptions } from '../http/parser';
import { DEFAULT_MAX_FRAME, errorName, Flag, FRAME_HEADER, FrameType, PREFACE, Setting, startsWithPreface } from './frames';
import { entrySize, HpackDecoder } from './hpack';

export interface Http2Options extends HttpOptions {
  /** the largest HPACK dynamic table kept per direction, whatever the peer's SETTINGS_HEADER_TABLE_SIZE allows (default 64 KiB) */
  maxHeaderTableBytes: number;
  /** the largest header block (HEADERS or PUSH_PROMISE with its CONTINUATION frames, compressed) gathered (default 256 KiB) */
  maxHeaderBlockBytes: number;
  /** the largest frame other than DATA held whole: the peer's SETTINGS_MAX_FRAME_SIZE, at most this (default 1 MiB) */
  maxFrameBytes: number;
  /** streams open at once per connection (default 256) */
  maxStreams: number;
}

export const HTTP2_DEFAULTS: Http2Options = {
  ...HTTP_DEFAULTS,
  maxHeaderTableBytes: 64 * 1024,
  maxHeaderBlockBytes: 256 * 1024,
  maxFrameBytes: 1024 * 1024,
  maxStreams: 256,
};

class Http2Counters extends HttpCounters {
  frames = 0;
  streams = 0;
  pushed = 0;
  resets = 0;
  goaways = 0;
  pings = 0;
  settings = 0;
  /** header fields left out of a message beyond maxHeaderBytes (the block is still decoded, for the table) */
  headerListTruncated = 0;
  /** directions whose framing and HPACK state were given up, by reason */
  readonly lost = new ReasonCounter();
}

/** an HTTP/2 analyzer the HTTP analyzer can hand an upgraded connection to */
export interface Http2Analyzer extends TcpAnalyzer {
  /** the connection was upgraded (`Upgrade: h2c` answered 101): `req` is stream 1's request, `resp` the 101 */
  upgraded(req: HttpMessage, resp: HttpMessage): void;
}

/** reader states, per direction */
const R_PREFACE = 0;
const R_HEAD = 1;
/** a frame's payload gathered across chunks */
const R_FRAME = 2;
/** a DATA frame's payload, passed through */
const R_DATA = 3;
/** a frame passed over (unknown type, or too large to hold) */
const R_SKIP = 4;
/** framing lost: nothing more is read */
const R_LOST = 5;

class Direction {
  state: number;
  readonly head = Buffer.alloc(FRAME_HEADER);
  headHave = 0;
  type = 0;
  flags = 0;
  stream = 0;
  length = 0;
  frame: Buffer | null = null;
  frameHave = 0;
  /** DATA: payload bytes left, data bytes left before the padding, the pad length still to read */
  remaining = 0;
  dataLeft = 0;
  needPad = false;
  dataStream: H2Stream | null = null;
  prefaceHave = 0;
  /** the largest frame held whole: what the peer's SETTINGS_MAX_FRAME_SIZE allows, capped */
  maxFrame = DEFAULT_MAX_FRAME;
  readonly hpack: HpackDecoder;
  /** a header block waiting for its CONTINUATION frames */
  block: Buffer[] | null = null;
  blockBytes = 0;
  blockStream = 0;
  blockEndStream = false;
  /** the promised stream of a PUSH_PROMISE's block, 0 for HEADERS */
  blockPromised = 0;
  /** frame bytes of the block (headers included) */
  blockWire = 0;
  blockSec = 0;
  blockNsec = 0;

  constructor(
    readonly side: number,
    tableCap: number,
  ) {
    this.state = side === 0 ? R_PREFACE : R_HEAD;
    this.hpack = new HpackDecoder(tableCap);
  }
}

/** one stream: its request (from HEADERS, a PUSH_PROMISE or an HTTP/1.1 upgrade) and response */
class H2Stream {
  req: HttpMessage | null = null;
  resp: HttpMessage | null = null;
  reqDone = false;
  respDone = false;
  /** body bytes kept at most for each message (-1: not kept), and bytes kept to detect its type */
  reqKeep = -1;
  respKeep = -1;
  reqSniff = 0;
  respSniff = 0;
  pushed = false;
  constructor(readonly id: number) {}
}

const EMPTY = Buffer.alloc(0);

class Http2Connection implements Http2Analyzer {
  private readonly dirs: [Direction, Direction];
  private readonly streams = new Map<number, H2Stream>();
  /** the highest stream ids seen: the client's (odd) and the server's pushed ones (even); below them an unknown stream is a closed one */
  private highestClient = 0;
  private highestPushed = 0;
  /** the highest stream counted undecodable (after a loss) */
  private highestLost = 0;
  /** a GOAWAY's error code, for the streams still open when the connection ends */
  private goaway = '';
  private readonly events: HttpEventBuilder;
  /** the message the header block being decoded fills (null: fields are only decoded, for the table) */
  private fm: HttpMessage | null = null;
  private fmListBytes = 0;
  private fmCookies: string[] | null = null;
  private fmRaw: string | null = null;
  private readonly sink = (name: string, value: string): void => this.field(name, value);

  constructor(
    /** the handshake was not seen: unless the client's first bytes are the preface, the connection was joined in the middle */
    private readonly midStream: boolean,
    private readonly ep: Endpoints,
    private readonly out: Emitter,
    private readonly r: Resolved,
    private readonly o: Http2Options,
    private readonly reqOpts: HttpParserOptions,
    private readonly respOpts: HttpParserOptions,
    private readonly n: Http2Counters,
  ) {
    this.events = new HttpEventBuilder(ep, r, n);
    this.dirs = [new Direction(0, o.maxHeaderTableBytes), new Direction(1, o.maxHeaderTableBytes)];
  }

  upgraded(req: HttpMessage, _resp: HttpMessage): void {
    const s = this.open(1);
    req.version = '2';
    s.req = req;
    s.reqDone = true;
    this.highestClient = 1;
    this.n.requests++;
    // HTTP2-Settings: the client's SETTINGS payload, base64url (RFC 7540 §3.2.1)
    if (req.http2Settings !== '') {
      const payload = Buffer.from(req.http2Settings.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
      this.settings(0, payload, 0, payload.length);
    }
  }

  data(side: number, buf: Buffer, off: number, len: number, tsSec: number, tsNsec: number): void {
    const d = this.dirs[side];
    const end = off + len;
    while (off < end) {
      switch (d.state) {
        case R_PREFACE: {
          const n = Math.min(end - off, PREFACE.length - d.prefaceHave);
          if (PREFACE.compare(buf, off, off + n, d.prefaceHave, d.prefaceHave + n) !== 0) {
            if (this.midStream) {
              // frames cannot be found in a stream joined in the middle, nor headers decoded without the table
              this.lose(0, 'mid_stream');
              this.lose(1, 'mid_stream');
            } else this.lose(0, 'no_preface');
            return;
          }
          d.prefaceHave += n;
          off += n;
          if (d.prefaceHave === PREFACE.length) d.state = R_HEAD;
          break;
        }
        case R_HEAD: {
          let h: Buffer;
          let p: number;
          if (d.headHave === 0 && end - off >= FRAME_HEADER) {
            h = buf;
            p = off;
            off += FRAME_HEADER;
          } else {
            const n = Math.min(end - off, FRAME_HEADER - d.headHave);
            buf.copy(d.head, d.headHave, off, off + n);
            d.headHave += n;
            off += n;
            if (d.headHave < FRAME_HEADER) return;
            h = d.head;
            p = 0;
          }
          d.headHave = 0;
          d.length = (h[p] << 16) | (h[p + 1] << 8) | h[p + 2];
          d.type = h[p + 3];
          d.flags = h[p + 4];
          d.stream = h.readUInt32BE(p + 5) & 0x7fffffff;
          this.n.frames++;
          this.frameStart(d, tsSec, tsNsec);
          if (d.state !== R_HEAD) break;
          // a frame held whole: its payload is here, or gathered
          if (d.length === 0) this.frame(d, EMPTY, 0, tsSec, tsNsec);
          else if (end - off >= d.length) {
            const at = off;
            off += d.length;
            this.frame(d, buf, at, tsSec, tsNsec);
          } else {
            d.frame = Buffer.allocUnsafe(d.length);
            d.frameHave = 0;
            d.state = R_FRAME;
          }
          break;
        }
        case R_FRAME: {
          const f = d.frame!;
          const n = Math.min(end - off, f.length - d.frameHave);
          buf.copy(f, d.frameHave, off, off + n);
          d.frameHave += n;
          off += n;
          if (d.frameHave === f.length) {
            d.frame = null;
            d.state = R_HEAD;
            this.frame(d, f, 0, tsSec, tsNsec);
          }
          break;
        }
        case R_DATA: {
          if (d.needPad) {
            d.needPad = false;
            d.remaining--;
            d.dataLeft = d.remaining - buf[off++];
            if (d.dataLeft < 0) {
              this.violation('bad_padding');
              d.dataLeft = 0;
            }
          }
          const n = Math.min(d.dataLeft, end - off);
          if (n > 0) {
            if (d.dataStream !== null) this.body(d.dataStream, side, buf, off, n);
            d.dataLeft -= n;
            d.remaining -= n;
            off += n;
          }
          const pad = Math.min(d.remaining - d.dataLeft, end - off);
          off += pad;
          d.remaining -= pad;
          if (d.remaining === 0) this.dataEnd(d, tsSec, tsNsec);
          break;
        }
        case R_SKIP: {
          const n = Math.min(d.remaining, end - off);
          off += n;
          d.remaining -= n;
          if (d.remaining === 0) d.state = R_HEAD;
          break;
        }
        default: // R_LOST
          return;
      }
    }
  }

  gap(side: number, n: number, tsSec: number, tsNsec: number): void {
    const d = this.dirs[side];
    if (d.state === R_LOST) return;
    // inside a DATA frame's payload or a frame passed over, the framing survives
    if ((d.state === R_DATA || d.state === R_SKIP) && n <= d.remaining) {
      if (d.state === R_DATA) {
        // the pad length lost with them: the rest of the payload counts as data
        if (d.needPad) {
          d.needPad = false;
          d.dataLeft = d.remaining;
        }
        const lost = Math.min(n, d.dataLeft);
        const s = d.dataStream;
        const m = s === null ? null : side === 0 ? s.req : s.resp;
        if (m !== null) {
          m.missingBytes += n;
          m.bodyBytes += lost;
        }
        d.dataLeft -= lost;
      }
      d.remaining -= n;
      if (d.remaining === 0) {
        if (d.state === R_DATA) this.dataEnd(d, tsSec, tsNsec);
        else d.state = R_HEAD;
      }
      return;
    }
    this.lose(side, 'gap');
  }

  close(tsSec: number, tsNsec: number): void {
    for (const s of [...this.streams.values()]) {
      if (s.resp !== null && !s.respDone) {
        s.resp.endSec = tsSec;
        s.resp.endNsec = tsNsec;
        s.resp.note('connection closed before the message was complete');
      }
      if (s.resp === null || !s.respDone) this.n.unmatched.add(s.resp === null ? 'no_response' : 'incomplete_response');
      if (this.goaway !== '') this.finish(s, `connection closed after GOAWAY (${this.goaway})`, `GOAWAY ${this.goaway}`, this.goaway);
      else this.finish(s, s.resp === null ? 'no response before the connection closed' : null, null, '');
    }
  }

  expire(nowSec: number): void {
    for (const s of this.streams.values()) {
      // a response begun keeps its stream
      if (s.resp !== null || s.req === null || nowSec - s.req.startSec < this.o.transactionTimeoutSec) continue;
      this.n.unmatched.add('timeout');
      this.finish(s, 'no response within the transaction timeout', null, '');
    }
  }

  discard(): void {
    this.n.pending -= this.streams.size;
    this.streams.clear();
  }

  /** a frame's header is read: DATA and frames passed over go their own ways; others are held whole (state stays R_HEAD) */
  private frameStart(d: Direction, tsSec: number, tsNsec: number): void {
    const t = d.type;
    if (d.block !== null && (t !== FrameType.CONTINUATION || d.stream !== d.blockStream)) return this.lose(d.side, 'continuation_expected');
    if (t === FrameType.DATA) {
      if (d.length > d.maxFrame) this.violation('frame_too_large');
      const s = this.streams.get(d.stream) ?? null;
      const m = s === null ? null : d.side === 0 ? s.req : s.resp;
      d.dataStream = m !== null ? s : null;
      if (m !== null) m.wireBytes += FRAME_HEADER + d.length;
      d.remaining = d.length;
      d.dataLeft = d.length;
      d.needPad = (d.flags & Flag.PADDED) !== 0;
      if (d.length === 0) {
        if (d.needPad) this.violation('bad_padding');
        d.needPad = false;
        this.dataEnd(d, tsSec, tsNsec);
        return;
      }
      d.state = R_DATA;
      return;
    }
    const known = t <= FrameType.CONTINUATION;
    const block = t === FrameType.HEADERS || t === FrameType.CONTINUATION || t === FrameType.PUSH_PROMISE;
    if (known && d.length <= d.maxFrame) return;
    if (known) {
      this.violation('frame_too_large');
      // a header block passed over leaves the table unknown
      if (block) return this.lose(d.side, 'frame_too_large');
    }
    d.remaining = d.length;
    if (d.length > 0) d.state = R_SKIP;
  }

  /** a whole frame other than DATA: its payload is p[at, at + d.length) */
  private frame(d: Direction, p: Buffer, at: number, tsSec: number, tsNsec: number): void {
    const len = d.length;
    switch (d.type) {
      case FrameType.HEADERS:
      case FrameType.PUSH_PROMISE: {
        if (d.stream === 0) return this.lose(d.side, 'headers_on_stream_0');
        let from = at;
        let to = at + len;
        if (d.flags & Flag.PADDED) {
          if (len < 1 || p[at] >= len) return this.lose(d.side, 'bad_padding');
          to -= p[at];
          from++;
        }
        let promised = 0;
        if (d.type === FrameType.PUSH_PROMISE) {
          if (to - from < 4 || d.side !== 1) return this.lose(d.side, 'bad_push_promise');
          promised = p.readUInt32BE(from) & 0x7fffffff;
          from += 4;
        } else if (d.flags & Flag.PRIORITY) {
          if (to - from < 5) return this.lose(d.side, 'bad_headers');
          from += 5;
        }
        d.blockStream = d.stream;
        d.blockEndStream = d.type === FrameType.HEADERS && (d.flags & Flag.END_STREAM) !== 0;
        d.blockPromised = promised;
        d.blockWire = FRAME_HEADER + len;
        d.blockSec = tsSec;
        d.blockNsec = tsNsec;
        if (d.flags & Flag.END_HEADERS) return this.headerBlock(d, p, from, to, tsSec, tsNsec);
        d.block = [Buffer.from(p.subarray(from, to))];
        d.blockBytes = to - from;
        if (d.blockBytes > this.o.maxHeaderBlockBytes) this.lose(d.side, 'header_block_too_large');
        return;
      }
      case FrameType.CONTINUATION: {
        if (d.block === null) return this.lose(d.side, 'unexpected_continuation');
        d.blockWire += FRAME_HEADER + len;
        d.blockBytes += len;
        if (d.blockBytes > this.o.maxHeaderBlockBytes) return this.lose(d.side, 'header_block_too_large');
        d.block.push(Buffer.from(p.subarray(at, at + len)));
        if (d.flags & Flag.END_HEADERS) {
          const whole = Buffer.concat(d.block);
          d.block = null;
          this.headerBlock(d, whole, 0, whole.length, tsSec, tsNsec);
        }
        return;
      }
      case FrameType.SETTINGS:
        if (d.stream !== 0 || len % 6 !== 0) return this.violation('bad_settings');
        if (d.flags & Flag.ACK) return;
        this.n.settings++;
        this.settings(d.side, p, at, len);
        return;
      case FrameType.RST_STREAM: {
        if (len !== 4 || d.stream === 0) return this.violation('bad_rst_stream');
        this.n.resets++;
        const s = this.streams.get(d.stream);
        if (s === undefined) return;
        const code = errorName(p.readUInt32BE(at));
        if (s.resp === null) this.n.unmatched.add('reset');
        this.finish(s, `stream reset by the ${d.side === 0 ? 'client' : 'server'} (RST_STREAM ${code})`, `RST_STREAM ${code}`, code, tsSec, tsNsec);
        return;
      }
      case FrameType.GOAWAY: {
        if (len < 8 || d.stream !== 0) return this.violation('bad_goaway');
        this.n.goaways++;
        const last = p.readUInt32BE(at) & 0x7fffffff;
        const code = errorName(p.readUInt32BE(at + 4));
        this.goaway = code;
        // the streams the sender's peer opened after `last` were not processed (RFC 9113 §6.8)
        const peerOdd = d.side === 1;
        for (const s of [...this.streams.values()]) {
          if (s.id > last && (s.id % 2 === 1) === peerOdd) {
            if (s.resp === null) this.n.unmatched.add('goaway');
            this.finish(s, `stream not processed: GOAWAY (${code}) with last stream ${last}`, `GOAWAY ${code}`, code, tsSec, tsNsec);
          }
        }
        return;
      }
      case FrameType.PING:
        if (len !== 8 || d.stream !== 0) return this.violation('bad_ping');
        if ((d.flags & Flag.ACK) === 0) this.n.pings++;
        return;
      case FrameType.PRIORITY:
        if (len !== 5 || d.stream === 0) this.violation('bad_priority');
        return;
      case FrameType.WINDOW_UPDATE:
        if (len !== 4) this.violation('bad_window_update');
        return;
    }
  }

  /** SETTINGS sent by `side`: they bound what the other side sends */
  private settings(side: number, p: Buffer, at: number, len: number): void {
    const peer = this.dirs[1 - side];
    for (let i = at; i + 6 <= at + len; i += 6) {
      const id = p.readUInt16BE(i);
      const v = p.readUInt32BE(i + 2);
      if (id === Setting.HEADER_TABLE_SIZE) peer.hpack.setAllowed(v);
      else if (id === Setting.MAX_FRAME_SIZE) peer.maxFrame = Math.min(Math.max(v, DEFAULT_MAX_FRAME), this.o.maxFrameBytes);
    }
  }

  /** a header block complete (p[from, to), compressed): decode it into its stream's request or response */
  private headerBlock(d: Direction, p: Buffer, from: number, to: number, tsSec: number, tsNsec: number): void {
    const side = d.side;
    const id = d.blockPromised !== 0 ? d.blockPromised : d.blockStream;
    let s = this.streams.get(id) ?? null;
    let m: HttpMessage | null = null;
    let isNew = false;
    if (d.blockPromised !== 0) {
      // a pushed stream's request, from the server (RFC 9113 §8.4)
      if (s === null && id > this.highestPushed && id % 2 === 0) {
        this.highestPushed = id;
        isNew = true;
      }
    } else if (side === 0) {
      if (s === null && id > this.highestClient && id % 2 === 1) {
        this.highestClient = id;
        isNew = true;
      }
    }
    if (isNew && (this.dirs[0].state === R_LOST || this.dirs[1].state === R_LOST)) {
      // after a loss this stream's exchange cannot be followed whole: counted, not reported
      this.undecodable(id);
      isNew = false;
    }
    if (isNew) {
      s = this.open(id);
      m = s.req = new HttpMessage(true);
      if (d.blockPromised !== 0) {
        s.pushed = true;
        s.reqDone = true;
        this.n.pushed++;
      }
      this.n.requests++;
    } else if (s !== null && side === 1 && d.blockPromised === 0 && (s.resp === null || isInterim(s.resp))) {
      m = s.resp = new HttpMessage(false);
    } else if (s === null && side === 1 && d.blockPromised === 0 && this.dirs[0].state === R_LOST) {
      if (id > this.highestLost) this.undecodable(id);
    } else if (s === null && side === 1 && d.blockPromised === 0 && id > (id % 2 === 1 ? this.highestClient : this.highestPushed)) this.violation('headers_on_unknown_stream');
    // else: trailers, or a stream closed or unknown: decoded for the table only
    const trailers = m === null && s !== null && d.blockPromised === 0;
    if (m !== null) {
      m.startSec = d.blockSec;
      m.startNsec = d.blockNsec;
      m.endSec = tsSec;
      m.endNsec = tsNsec;
      m.version = '2';
      m.headerBytes = d.blockWire;
      m.wireBytes = d.blockWire;
      m.headers = this.reqOpts.captureHeaders === 'all' || this.reqOpts.captureHeaders.length > 0 ? {} : null;
    } else if (trailers) {
      const t = side === 0 ? s!.req : s!.resp;
      if (t !== null) t.wireBytes += d.blockWire;
    }
    this.fm = m;
    this.fmListBytes = 0;
    this.fmCookies = null;
    const opts = side === 0 ? this.reqOpts : this.respOpts;
    this.fmRaw = m !== null && opts.keepRaw ? '' : null;
    const err = d.hpack.decode(p, from, to, this.sink);
    this.fm = null;
    if (d.hpack.overSettings > 0) {
      d.hpack.overSettings = 0;
      this.violation('table_size_over_settings');
    }
    if (err !== null) {
      if (m !== null && s !== null) {
        // what was read of the block is not trusted: the stream goes as it was before it
        if (m.isRequest) {
          this.streams.delete(s.id);
          this.n.pending--;
          this.n.requests--;
          this.undecodable(s.id, false);
        } else s.resp = null;
      }
      return this.lose(side, `hpack_${err}`);
    }
    if (m === null) {
      if (trailers && d.blockEndStream) this.streamEnd(s!, side, tsSec, tsNsec);
      return;
    }
    // (set by the decoder's calls to field())
    const cookies = this.fmCookies as string[] | null;
    const raw = this.fmRaw as string | null;
    if (cookies !== null) this.capture(m, 'cookie', cookies.join('; '), opts);
    if (raw !== null) m.raw = Buffer.from(`${raw}\r\n`, 'latin1');
    if (m.isRequest) this.bodyKeeping(s!, m, true);
    else {
      if (isInterim(m)) {
        // 1xx: the final response follows; its bytes count with it
        this.n.interim++;
        if (s!.req !== null) s!.req.interimBytes += m.wireBytes;
        s!.resp = null;
        return;
      }
      this.n.responses++;
      m.statusPhrase = statusPhrase(m.statusCode);
      this.bodyKeeping(s!, m, false);
    }
    if (d.blockEndStream) this.streamEnd(s!, side, tsSec, tsNsec);
  }

  /** one decoded field of the current block */
  private field(name: string, value: string): void {
    const m = this.fm;
    if (m === null) return;
    this.fmListBytes += entrySize(name, value);
    if (this.fmListBytes > this.o.maxHeaderBytes) {
      if (this.fmListBytes - entrySize(name, value) <= this.o.maxHeaderBytes) {
        this.n.headerListTruncated++;
        m.note(`header list over ${this.o.maxHeaderBytes} bytes: the fields beyond left out`);
      }
      return;
    }
    if (this.fmRaw !== null) this.fmRaw += `${name}: ${value}\r\n`;
    const opts = m.isRequest ? this.reqOpts : this.respOpts;
    if (name.charCodeAt(0) === 58) {
      // pseudo-headers (RFC 9113 §8.3)
      switch (name) {
        case ':method':
          m.method = value;
          break;
        case ':path':
          m.uri = value;
          break;
        case ':scheme':
          m.scheme = value === 'https' ? 'https' : 'http';
          break;
        case ':authority':
          m.host = value;
          break;
        case ':status': {
          const code = /^\d{3}$/.test(value) ? +value : 0;
          if (code === 0) this.violation('bad_status');
          m.statusCode = code;
          break;
        }
      }
      return;
    }
    switch (name) {
      case 'content-length':
        if (/^\d{1,15}$/.test(value)) m.contentLength = +value;
        else this.violation('bad_content_length');
        return;
      case 'content-type':
        m.contentType = value;
        return;
      case 'host':
        // :authority wins (RFC 9113 §8.3.1)
        if (m.host === '') m.host = value;
        break;
      case 'user-agent':
        m.userAgent = value;
        break;
      case 'referer':
        m.referer = value;
        break;
      case 'authorization':
        if (opts.authorization) m.authorization = value;
        break;
      case 'cookie':
        // split into fields for compression, joined again with "; " (RFC 9113 §8.2.3)
        (this.fmCookies ??= []).push(value);
        return;
    }
    if (name === opts.realIpHeader) {
      const comma = value.indexOf(',');
      m.realIp = (comma < 0 ? value : value.slice(0, comma)).trim();
    }
    this.capture(m, name, value, opts);
  }

  /** a header the user asked for, into m.headers (repeated ones joined with ", ", as HTTP/1.x's) */
  private capture(m: HttpMessage, name: string, value: string, opts: HttpParserOptions): void {
    const h = m.headers;
    if (h === null) return;
    const c = opts.captureHeaders;
    if (c !== 'all' && !c.includes(name)) return;
    h[name] = name in h ? `${h[name]}, ${value}` : value;
  }

  /** what of a message's body is kept, under the HTTP analyzer's options (its parser's bodyKeeping) */
  private bodyKeeping(s: H2Stream, m: HttpMessage, isReq: boolean): void {
    const opts = isReq ? this.reqOpts : this.respOpts;
    let keep = -1;
    if (m.contentType !== '' && (opts.includeBodyFor.length > 0 || opts.keepFormBody)) {
      const type = m.contentType.toLowerCase();
      m.sendBody = opts.includeBodyFor.length > 0 && opts.includeBodyFor.some((t) => type.includes(t));
      // HTTP/2 needs no Content-Length: a form body without one is kept too
      if (m.sendBody || (opts.keepFormBody && m.contentLength !== 0 && type.includes('urlencoded'))) {
        keep = Math.max(0, Math.min(m.sendBody ? opts.maxBodyBytes : opts.maxHeaderBytes, opts.maxMessageSize - m.headerBytes));
      }
    }
    const sniff = opts.sniffBody ? SNIFF_BYTES : 0;
    if (isReq) {
      s.reqKeep = keep;
      s.reqSniff = sniff;
    } else {
      s.respKeep = keep;
      s.respSniff = sniff;
    }
  }

  /** DATA bytes of a stream's message */
  private body(s: H2Stream, side: number, buf: Buffer, off: number, n: number): void {
    const m = (side === 0 ? s.req : s.resp)!;
    m.bodyBytes += n;
    const keep = side === 0 ? s.reqKeep : s.respKeep;
    if (keep >= 0) {
      const take = Math.min(keep - m.bodyKept, n);
      if (take > 0) {
        (m.body ??= []).push(Buffer.from(buf.subarray(off, off + take)));
        m.bodyKept += take;
      }
      if (take < n) m.bodyTruncated = true;
      return;
    }
    const sniff = side === 0 ? s.reqSniff : s.respSniff;
    if (sniff > 0) {
      const have = m.sniffed === null ? 0 : m.sniffed.length;
      const take = Math.min(sniff - have, n);
      if (take > 0) m.sniffed = have === 0 ? Buffer.from(buf.subarray(off, off + take)) : Buffer.concat([m.sniffed!, buf.subarray(off, off + take)]);
    }
  }

  private dataEnd(d: Direction, tsSec: number, tsNsec: number): void {
    d.state = R_HEAD;
    const s = d.dataStream;
    d.dataStream = null;
    if (s === null) return;
    const m = d.side === 0 ? s.req : s.resp;
    if (m !== null) {
      m.endSec = tsSec;
      m.endNsec = tsNsec;
    }
    if (d.flags & Flag.END_STREAM && this.streams.get(s.id) === s) this.streamEnd(s, d.side, tsSec, tsNsec);
  }

  /** END_STREAM from `side`: the request is complete, or the response and with it the stream */
  private streamEnd(s: H2Stream, side: number, tsSec: number, tsNsec: number): void {
    const m = side === 0 ? s.req : s.resp;
    if (m !== null) {
      m.endSec = tsSec;
      m.endNsec = tsNsec;
    }
    if (side === 0) s.reqDone = true;
    else if (s.resp !== null) {
      s.respDone = true;
      this.finish(s, null, null, '');
    }
  }

  /** a new stream: bounded per connection and over all of them */
  private open(id: number): H2Stream {
    this.n.started++;
    this.n.streams++;
    if (this.streams.size >= this.o.maxStreams) {
      this.n.unmatched.add('stream_limit');
      this.finish(this.streams.values().next().value as H2Stream, 'too many open streams', null, '');
    } else if (this.n.pending >= this.o.maxPendingTotal && this.streams.size > 0) {
      this.n.unmatched.add('pending_limit_total');
      this.finish(this.streams.values().next().value as H2Stream, 'too many requests waiting for responses over all connections', null, '');
    }
    const s = new H2Stream(id);
    this.streams.set(id, s);
    this.n.pending++;
    return s;
  }

  /** a stream that began after its connection's loss: counted as started and dropped */
  private undecodable(id: number, count = true): void {
    if (count) this.n.started++;
    this.n.dropped.add('hpack_state_lost');
    if (id > this.highestLost) this.highestLost = id;
  }

  /** the stream's event; `error`: error.message of a stream ended by RST_STREAM or GOAWAY (its code in http2.error_code) */
  private finish(s: H2Stream, note: string | null, error: string | null, code: string, tsSec = 0, tsNsec = 0): void {
    this.streams.delete(s.id);
    this.n.pending--;
    if (error !== null) {
      // the stream ended here
      const m = s.resp ?? s.req;
      if (m !== null && tsSec > 0 && (s.resp === null || !s.respDone)) {
        m.endSec = tsSec;
        m.endNsec = tsNsec;
      }
    }
    const notes: string[] = [];
    const e = this.events.event(s.req, s.resp, note, notes);
    if (error !== null) e.status = 'Error';
    const h2: Record<string, unknown> = { stream_id: s.id };
    if (s.pushed) h2.pushed = true;
    if (code !== '') h2.error_code = code;
    e.http2 = h2;
    closeEvent(e, notes, error ?? (s.resp === null ? UNMATCHED_REQUEST : s.req === null ? UNMATCHED_RESPONSE : null));
    this.out.emit(e);
  }

  /** the direction's framing or header table is lost: it is read no more */
  private lose(side: number, reason: string): void {
    const d = this.dirs[side];
    if (d.state === R_LOST) return;
    d.state = R_LOST;
    d.block = null;
    d.frame = null;
    d.dataStream = null;
    this.n.lost.add(reason);
    this.violation(reason);
    for (const s of [...this.streams.values()]) {
      if (side === 1 && !s.respDone) {
        // its response cannot be read
        this.n.partial++;
        this.n.unmatched.add('hpack_state_lost');
        this.finish(s, "packet loss: the server's HTTP/2 frames from here on cannot be decoded", null, '');
      } else if (side === 0 && !s.reqDone && s.req !== null) {
        s.req.note("packet loss: the client's HTTP/2 frames from here on cannot be decoded");
        s.reqDone = true;
      }
    }
  }

  private violation(reason: string): void {
    this.n.violations.add(reason);
    this.out.anomaly?.('http2', reason, this.ep);
  }
}

const isInterim = (m: HttpMessage): boolean => m.statusCode >= 100 && m.statusCode < 200;

export const http2: Protocol<Http2Options> = {
  name: 'http2',
  // h2c has no port of its own: on HTTP's ports the HTTP analyzer hands it over, elsewhere the probe finds its preface
  tcpPorts: [],
  udpPorts: [],
  probe(buf, off, len, side) {
    // "PRI * HTTP/2.0" at least
    return side === 0 && len >= 14 && startsWithPreface(buf, off, len);
  },
  create(options) {
    const o: Http2Options = { ...HTTP2_DEFAULTS, ...options };
    const { r, reqOpts, respOpts } = resolveHttpOptions(o);
    const n = new Http2Counters();
    return {
      tcp: (ctx: TcpContext) => new Http2Connection(ctx.midStream, ctx.endpoints, ctx.out, r, o, reqOpts, respOpts, n),
      stats: (): Stats => ({
        ...httpStats(n),
        frames: n.frames,
        streams: n.streams,
        pushed_streams: n.pushed,
        resets: n.resets,
        goaways: n.goaways,
        pings: n.pings,
        settings: n.settings,
        header_lists_truncated: n.headerListTruncated,
        hpack_state_lost: n.lost.toJSON(),
      }),
    };
  },
};

let phrases: Record<number, string | undefined> | null = null;
/** the reason phrase of a status (HTTP/2 sends none): node:http's table, loaded at the first response */
function statusPhrase(code: number): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  phrases ??= (require('node:http') as typeof import('node:http')).STATUS_CODES;
  return phrases[code] ?? '';
}
