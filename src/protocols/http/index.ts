import { isIP } from 'node:net';
import { ReasonCounter, TransactionCounters } from '../../core/counters';
import { isoTime } from '../../core/frame';
import type { Stats } from '../../core/stage';
import type { Endpoints } from '../../events/endpoints';
import { closeEvent, transactionEvent, UNMATCHED_REQUEST, UNMATCHED_RESPONSE, type EventObject } from '../../events/transaction';
import type { Emitter, Protocol, TcpAnalyzer, TcpContext } from '../analyzer';
import { PREFACE } from '../http2/frames';
import type { Http2Analyzer } from '../http2';
import { HttpMessage } from './message';
import { detectMimeType } from './mime';
import { BodyMode, HttpParser, startsWithMethod, type HttpParserOptions, type ParserEvents } from './parser';
import { renderQuery } from './query';
import { isStartLine } from '../sip/message';

export interface HttpOptions {
  /** largest header section kept while parsing (default 64 KiB) */
  maxHeaderBytes: number;
  /** headers to put in http.*.headers besides Content-Length and Content-Type, which are always there (lower-case names), or 'all' (default none, as packetbeat) */
  sendHeaders: string[] | 'all';
  /** content types whose bodies go into http.*.body.content: a Content-Type that contains one matches, whatever the case (packetbeat's include_body_for; default none) */
  includeBodyFor: string[];
  /** body bytes kept per message when included (default 1 MiB) */
  maxBodyBytes: number;
  /** what is kept of one message in all, header section and body, for `request`/`response` and body.content (packetbeat's max_message_size; default 10 MiB) */
  maxMessageSize: number;
  /** the request as sent (header section, and the body when included) in `request` (packetbeat's send_request; default off) */
  sendRequest: boolean;
  /** the response as sent in `response` (send_response; default off) */
  sendResponse: boolean;
  /** a header naming the client behind a proxy, e.g. X-Forwarded-For: its first address goes to network.forwarded_ip and related.ip (real_ip_header; default none) */
  realIpHeader: string;
  /** Authorization and Proxy-Authorization values replaced by `*`, in headers and the raw request; no user.name then (redact_authorization; default off) */
  redactAuthorization: boolean;
  /** headers whose captured values become `REDACTED` (redact_headers; default none) */
  redactHeaders: string[];
  /** query and form parameters whose values url.query shows as `xxxxx` (hide_keywords; default none) */
  hideKeywords: string[];
  /** captured Cookie and Set-Cookie headers as maps of name to value (split_cookie; default off) */
  splitCookie: boolean;
  /** http.*.mime_type detected from the body's bytes (libbeat's detect_mime_type processor) instead of taken from Content-Type (default off) */
  detectMimeType: boolean;
  /** requests waiting for their responses, per connection (default 64) */
  maxPending: number;
  /** requests waiting for their responses over all connections (default 16384) */
  maxPendingTotal: number;
  /** seconds of packet time a request waits for its response (default 10, as packetbeat) */
  transactionTimeoutSec: number;
}

export const HTTP_DEFAULTS: HttpOptions = {
  maxHeaderBytes: 64 * 1024,
  sendHeaders: [],
  includeBodyFor: [],
  maxBodyBytes: 1024 * 1024,
  maxMessageSize: 10 * 1024 * 1024,
  sendRequest: false,
  sendResponse: false,
  realIpHeader: '',
  redactAuthorization: false,
  redactHeaders: [],
  hideKeywords: [],
  splitCookie: false,
  detectMimeType: false,
  maxPending: 64,
  maxPendingTotal: 16_384,
  transactionTimeoutSec: 10,
};

/** the counters of HTTP's transactions, as HTTP/1.x and HTTP/2 report them */
export function httpStats(n: HttpCounters): Stats {
  return {
    transactions_started: n.started,
    transactions_dropped: n.dropped.toJSON(),
    pending: n.pending,
    requests: n.requests,
    responses: n.responses,
    interim_responses: n.interim,
    transactions: n.transactions,
    partial: n.partial,
    truncated_messages: n.truncated,
    unmatched: n.unmatched.toJSON(),
    violations: n.violations.toJSON(),
  };
}

export class HttpCounters extends TransactionCounters {
  requests = 0;
  responses = 0;
  interim = 0;
  /** messages whose kept text (body.content, `request`/`response`) was cut at maxBodyBytes or maxMessageSize */
  truncated = 0;
}

/** the options as the connections use them, resolved once */
export interface Resolved {
  readonly o: HttpOptions;
  readonly hide: ReadonlySet<string>;
  readonly redact: readonly string[];
  /** the headers maps need work at emit time (redaction, cookies) */
  readonly rewriteHeaders: boolean;
}

/** a request lost to a gap before its headers: keeps pairing in step with responses */
function lostRequest(tsSec: number, tsNsec: number): HttpMessage {
  const m = new HttpMessage(true);
  m.startSec = m.endSec = tsSec;
  m.startNsec = m.endNsec = tsNsec;
  m.note('request lost to packet loss');
  return m;
}

/** what a connection speaks: HTTP/1.x; not known yet (its client's first bytes may be HTTP/2's preface); HTTP/2, after a preface or an Upgrade */
const MODE_H1 = 0;
const MODE_FIRST = 1;
const MODE_H2 = 2;
/**
 * the server's bytes held while the client's first bytes are awaited: an HTTP/2 server's
 * first flight (SETTINGS, WINDOW_UPDATE) is tens of bytes, and an HTTP/1.x server does not
 * speak first; small, since every connection on HTTP's ports may hold it
 */
const FIRST_HOLD_BYTES = 4096;

/**
 * What a connection's parsers tell it, as small objects with methods rather than
 * closures: a connection costs half a kilobyte less (65,536 connections are held).
 */
class RequestEvents implements ParserEvents {
  constructor(private readonly c: HttpConnection) {}
  headers(m: HttpMessage): number {
    return this.c.requestHeaders(m);
  }
  message(): void {}
  violation(reason: string): void {
    this.c.violation('request', reason);
  }
}

class ResponseEvents implements ParserEvents {
  constructor(private readonly c: HttpConnection) {}
  headers(m: HttpMessage): number {
    return this.c.responseBody(m);
  }
  message(m: HttpMessage): void {
    this.c.response(m);
  }
  violation(reason: string): void {
    this.c.violation('response', reason);
  }
  rest(buf: Buffer, off: number, len: number, tsSec: number, tsNsec: number): void {
    this.c.afterUpgrade(buf, off, len, tsSec, tsNsec);
  }
}

class HttpConnection implements TcpAnalyzer {
  private readonly req: HttpParser;
  private readonly resp: HttpParser;
  /** requests whose responses have not completed, oldest first */
  private readonly pending: HttpMessage[] = [];
  private readonly events: HttpEventBuilder;
  private mode: number;
  /** the HTTP/2 analyzer the connection was handed to */
  private h2: Http2Analyzer | null = null;
  /** while MODE_FIRST: the chunks seen (copies), and how many of the client's bytes matched the preface */
  private held: { side: number; buf: Buffer; tsSec: number; tsNsec: number }[] = [];
  private heldBytes = 0;
  private prefaceHave = 0;

  constructor(
    midStream: boolean,
    private readonly ep: Endpoints,
    private readonly out: Emitter,
    private readonly r: Resolved,
    reqOpts: HttpParserOptions,
    respOpts: HttpParserOptions,
    private readonly n: HttpCounters,
    private readonly ctx: TcpContext,
  ) {
    this.events = new HttpEventBuilder(ep, r, n);
    // HTTP/2 with prior knowledge starts with the preface: only a connection seen from its start, where another analyzer can be opened
    this.mode = ctx.open !== undefined && !midStream ? MODE_FIRST : MODE_H1;
    this.req = new HttpParser(true, reqOpts, new RequestEvents(this));
    this.resp = new HttpParser(false, respOpts, new ResponseEvents(this));
    if (midStream) {
      this.req.resync();
      this.resp.resync();
    }
  }

  data(side: number, buf: Buffer, off: number, len: number, tsSec: number, tsNsec: number): void {
    if (this.mode !== MODE_H1) return this.notH1(side, buf, off, len, tsSec, tsNsec);
    (side === 0 ? this.req : this.resp).feed(buf, off, len, tsSec, tsNsec);
  }

  /** the connection's first bytes (is it HTTP/2 with prior knowledge?), or HTTP/2's */
  private notH1(side: number, buf: Buffer, off: number, len: number, tsSec: number, tsNsec: number): void {
    if (this.mode === MODE_H2) return this.h2!.data(side, buf, off, len, tsSec, tsNsec);
    if (side === 0) {
      const n = Math.min(len, PREFACE.length - this.prefaceHave);
      let match = true;
      for (let i = 0; i < n && match; i++) match = buf[off + i] === PREFACE[this.prefaceHave + i];
      if (!match) {
        this.decide(false);
        return this.data(side, buf, off, len, tsSec, tsNsec);
      }
      this.prefaceHave += n;
      if (this.prefaceHave === PREFACE.length) {
        this.decide(true);
        return this.data(side, buf, off, len, tsSec, tsNsec);
      }
    } else if (this.heldBytes + len > FIRST_HOLD_BYTES) {
      this.decide(false);
      return this.data(side, buf, off, len, tsSec, tsNsec);
    }
    this.held.push({ side, buf: Buffer.from(buf.subarray(off, off + len)), tsSec, tsNsec });
    this.heldBytes += len;
  }

  /** the connection's protocol is known: HTTP/2 (when its analyzer runs) or HTTP/1.x; what was held goes to it */
  private decide(h2: boolean): void {
    if (h2) this.h2 = this.ctx.open!('http2') as Http2Analyzer | null;
    this.mode = this.h2 !== null ? MODE_H2 : MODE_H1;
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    for (const h of held) this.data(h.side, h.buf, 0, h.buf.length, h.tsSec, h.tsNsec);
  }

  gap(side: number, n: number, tsSec: number, tsNsec: number): void {
    if (this.mode === MODE_FIRST) this.decide(false);
    if (this.mode === MODE_H2) return this.h2!.gap(side, n, tsSec, tsNsec);
    (side === 0 ? this.req : this.resp).gap(n, tsSec, tsNsec);
  }

  close(tsSec: number, tsNsec: number): void {
    if (this.mode === MODE_FIRST) this.decide(false);
    this.h2?.close(tsSec, tsNsec);
    this.req.close(tsSec, tsNsec);
    this.resp.close(tsSec, tsNsec);
    while (this.pending.length > 0) {
      this.n.unmatched.add('no_response');
      this.emit(this.take()!, null, 'no response before the connection closed');
    }
  }

  expire(nowSec: number, nowNsec: number): void {
    this.h2?.expire(nowSec, nowNsec);
    // a response in progress keeps its request alive
    while (this.pending.length > 0 && this.resp.idle) {
      const m = this.pending[0];
      if (nowSec - m.startSec < this.r.o.transactionTimeoutSec) break;
      this.take();
      this.n.unmatched.add('timeout');
      this.emit(m, null, 'no response within the transaction timeout');
    }
  }

  /** the connection's state is dropped unemitted (a Kafka rebalance): its requests no longer wait */
  discard(): void {
    this.h2?.discard?.();
    this.n.pending -= this.pending.length;
    this.pending.length = 0;
  }

  /** a request's headers are parsed: it waits for its response; returns how its body is framed */
  requestHeaders(m: HttpMessage): number {
    this.n.requests++;
    this.n.started++;
    this.queue(m);
    if (this.pending.length > this.r.o.maxPending) {
      this.n.unmatched.add('pending_limit');
      this.emit(this.take()!, null, 'too many requests waiting for responses');
    } else if (this.n.pending > this.r.o.maxPendingTotal && this.pending.length > 1) {
      // over all connections: each keeps at least its newest request
      this.n.unmatched.add('pending_limit_total');
      this.emit(this.take()!, null, 'too many requests waiting for responses over all connections');
    }
    return m.chunked ? BodyMode.chunked : m.contentLength > 0 ? BodyMode.length : BodyMode.none;
  }

  violation(side: 'request' | 'response', reason: string): void {
    this.n.violations.add(`${side}_${reason}`);
    this.out.anomaly?.('http', `${side}_${reason}`, this.ep);
    if (side === 'request' && reason === 'gap_in_headers') {
      this.n.started++;
      this.queue(lostRequest(0, 0));
    }
  }

  /** what follows a 101 in its chunk: HTTP/2 after an upgrade to it */
  afterUpgrade(buf: Buffer, off: number, len: number, tsSec: number, tsNsec: number): void {
    if (this.h2 !== null) this.h2.data(1, buf, off, len, tsSec, tsNsec);
  }

  private queue(m: HttpMessage): void {
    this.pending.push(m);
    this.n.pending++;
  }

  private take(): HttpMessage | undefined {
    const m = this.pending.shift();
    if (m !== undefined) this.n.pending--;
    return m;
  }

  responseBody(m: HttpMessage): number {
    const code = m.statusCode;
    const req = this.pending[0];
    if (code >= 100 && code < 200 && code !== 101) return BodyMode.none;
    if (code === 101 || (req !== undefined && req.method === 'CONNECT' && code >= 200 && code < 300)) return BodyMode.tunnel;
    if (code === 204 || code === 304 || (req !== undefined && req.method === 'HEAD')) return BodyMode.none;
    if (m.chunked) return BodyMode.chunked;
    if (m.contentLength >= 0) return BodyMode.length;
    return BodyMode.untilClose;
  }

  response(m: HttpMessage): void {
    this.n.responses++;
    const code = m.statusCode;
    if (code >= 100 && code < 200 && code !== 101) {
      // 100 Continue and friends: the final response follows; their bytes count with it
      this.n.interim++;
      if (this.pending.length > 0) this.pending[0].interimBytes += m.wireBytes;
      return;
    }
    const req = this.take();
    if (req === undefined) {
      // only the response is known (the capture began after its request, or the request was unparseable)
      this.n.started++;
      this.n.unmatched.add('response_without_request');
      this.emit(null, m, 'response without a request');
      return;
    }
    if (req.method === '') {
      // a request lost to a gap: the transaction starts with what we saw
      req.startSec = req.endSec = m.startSec;
      req.startNsec = req.endNsec = m.startNsec;
    }
    if (code === 101 || (req.method === 'CONNECT' && code >= 200 && code < 300)) {
      // the connection now speaks another protocol
      this.req.stop();
      this.resp.stop();
      if (code === 101 && this.upgradeToH2(req, m)) return;
    }
    this.emit(req, m, null);
  }

  /**
   * `Upgrade: h2c` answered 101 (RFC 7540 §3.2): the rest of the connection is HTTP/2,
   * the request is its stream 1's, answered there. False when the http2 analyzer does not run.
   */
  private upgradeToH2(req: HttpMessage, resp: HttpMessage): boolean {
    if (this.ctx.open === undefined || !/(^|,)\s*h2c\s*(,|$)/i.test(req.upgrade)) return false;
    const h2 = this.ctx.open('http2') as Http2Analyzer | null;
    if (h2 === null) return false;
    this.h2 = h2;
    this.mode = MODE_H2;
    // counted here as handed on; the http2 analyzer counts its stream 1
    this.n.dropped.add('upgraded_to_http2');
    req.interimBytes += resp.wireBytes;
    h2.upgraded(req, resp);
    return true;
  }

  /** a transaction: a request with its response, or either one alone (unmatched) */
  private emit(req: HttpMessage | null, resp: HttpMessage | null, note: string | null): void {
    const notes: string[] = [];
    const e = this.events.event(req, resp, note, notes);
    closeEvent(e, notes, resp === null ? UNMATCHED_REQUEST : req === null ? UNMATCHED_RESPONSE : null);
    this.out.emit(e);
  }
}

/**
 * Builds the `type: http` event of a transaction from its messages: HTTP/1.x's, and
 * HTTP/2's (src/protocols/http2), whose streams become the same events.
 */
export class HttpEventBuilder {
  constructor(
    private readonly ep: Endpoints,
    private readonly r: Resolved,
    private readonly n: HttpCounters,
  ) {}

  /**
   * The event of a transaction (a request with its response, or either one alone),
   * without its closing fields: its notes are added to `notes`, for closeEvent.
   */
  event(req: HttpMessage | null, resp: HttpMessage | null, note: string | null, notes: string[]): EventObject {
    this.n.transactions++;
    const o = this.r.o;
    // a placeholder for a request lost to a gap has no method
    const request = req !== null && req.method !== '' ? req : null;
    const status = req !== null && resp !== null && resp.statusCode < 400 ? 'OK' : 'Error';
    let path = '';
    let url: Url | null = null;
    if (request !== null) {
      const split = splitUri(request.uri);
      path = split.path;
      url = this.url(request, path, split.query);
    }
    const domain = url !== null && isIP(url.domain) === 0 ? url.domain : '';
    // as packetbeat: from the request's first packet to the response's first packet (the last packet of the response is http.response.end)
    const first = (req ?? resp)!;
    const t = resp !== null ? { startSec: first.startSec, startNsec: first.startNsec, endSec: resp.startSec, endNsec: resp.startNsec } : { startSec: first.startSec, startNsec: first.startNsec, endSec: first.endSec, endNsec: first.endNsec };
    // interim (1xx) responses are bytes the server sent in this transaction too
    const serverBytes = (resp?.wireBytes ?? 0) + (req?.interimBytes ?? 0);
    const e = transactionEvent('http', this.ep, t, status, req?.wireBytes ?? 0, serverBytes, 'http', domain);
    if (req?.notes) notes.push(...req.notes);
    if (resp?.notes) notes.push(...resp.notes);
    const reqMissing = req?.missingBytes ?? 0;
    const respMissing = resp?.missingBytes ?? 0;
    if (reqMissing > 0) notes.push(`packet loss: ${reqMissing} request bytes missing`);
    if (respMissing > 0) notes.push(`packet loss: ${respMissing} response bytes missing`);
    if (note !== null) notes.push(note);
    if (reqMissing > 0 || respMissing > 0 || (req !== null && request === null)) this.n.partial++;
    if (request !== null && request.realIp !== '') {
      e.network.forwarded_ip = request.realIp;
      if (!e.related.ip.includes(request.realIp)) e.related.ip.push(request.realIp);
    }
    const user = request !== null && !o.redactAuthorization ? basicAuthUser(request.authorization) : '';
    if (user !== '') e.related.user = [user];

    if (request !== null) {
      e.method = request.method;
      e.query = `${request.method} ${path}`;
      e.url = url;
    }
    const http: Record<string, unknown> = {};
    // the request line's version, as packetbeat (the response's when there is no request)
    const version = request !== null ? request.version : resp !== null ? resp.version : '';
    if (version !== '') http.version = version;
    if (request !== null) http.request = this.message(request);
    if (resp !== null) http.response = this.message(resp);
    e.http = http;
    if (request !== null && request.userAgent !== '') e.user_agent = { original: request.userAgent };
    if (user !== '') e.user = { name: user };
    if (o.sendRequest && request !== null) e.request = this.raw(request);
    if (o.sendResponse && resp !== null) e.response = this.raw(resp);
    return e;
  }

  private url(req: HttpMessage, path: string, query: string): Url {
    let domain = this.ep.serverIp;
    let port = this.ep.serverPort;
    let p = path;
    const abs = /^https?:\/\/([^/?#]+)(.*)$/i.exec(req.uri);
    const authority = abs !== null ? abs[1] : req.host;
    if (abs !== null) {
      const rest = splitUri(abs[2] || '/');
      p = rest.path;
      query = rest.query;
    }
    if (authority !== '') {
      const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(authority);
      if (m !== null) {
        domain = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1];
        // a Host without a port: the connection's server port, as packetbeat
        if (m[2] !== undefined) port = +m[2];
      }
    }
    // packetbeat's rendering, with a form body's parameters folded in
    const form = req.body !== null && req.contentType.toLowerCase().includes('urlencoded') ? Buffer.concat(req.body).toString('latin1') : '';
    const q = renderQuery(query, form, this.r.hide);
    const host = domain.includes(':') ? `[${domain}]` : domain;
    const scheme = req.scheme;
    const u: Url = {
      scheme,
      domain,
      port,
      path: p,
      full: `${scheme}://${host}${port !== (scheme === 'https' ? 443 : 80) ? `:${port}` : ''}${p}${q !== '' ? `?${q}` : ''}`,
    };
    if (q !== '') u.query = q;
    const ext = extension(p);
    if (ext !== '') u.extension = ext;
    return u;
  }

  /** http.request or http.response */
  private message(m: HttpMessage): Record<string, unknown> {
    const o: Record<string, unknown> = {};
    if (m.isRequest) o.method = m.method;
    else {
      o.status_code = m.statusCode;
      o.status_phrase = m.statusPhrase.toLowerCase();
    }
    o.bytes = m.wireBytes;
    const body: Record<string, unknown> = { bytes: m.bodyBytes };
    if (m.sendBody && m.body !== null) body.content = Buffer.concat(m.body).toString('utf8');
    if (m.bodyTruncated && m.sendBody) body.truncated = true;
    o.body = body;
    if (m.bodyTruncated) this.n.truncated++;
    o.headers = this.headers(m);
    if (m.isRequest && m.referer !== '') o.referrer = m.referer;
    const detected = this.r.o.detectMimeType ? detectMimeType(m.body !== null ? Buffer.concat(m.body) : (m.sniffed ?? EMPTY)) : '';
    if (detected !== '') o.mime_type = detected;
    else if (m.contentType !== '') o.mime_type = m.contentType.split(';')[0].trim().toLowerCase();
    if (!m.isRequest) o.end = isoTime(m.endSec, m.endNsec);
    return o;
  }

  /**
   * http.*.headers: Content-Length (a number: the header's value, else the body's size
   * after transfer decoding) and Content-Type always, as packetbeat; then the headers
   * the user asked for, in the order they came, redacted and split as asked.
   */
  private headers(m: HttpMessage): Record<string, unknown> {
    const h: Record<string, unknown> = { 'content-length': m.contentLength >= 0 ? m.contentLength : m.bodyBytes };
    if (m.contentType !== '') h['content-type'] = m.contentType;
    if (m.headers === null) return h;
    for (const k in m.headers) h[k] = m.headers[k];
    if (!this.r.rewriteHeaders) return h;
    const o = this.r.o;
    if (o.redactAuthorization && m.isRequest) {
      for (const k of ['authorization', 'proxy-authorization']) if (h[k] !== undefined && h[k] !== '') h[k] = '*';
    }
    for (const k of this.r.redact) if (h[k] !== undefined) h[k] = 'REDACTED';
    const cookie = m.isRequest ? 'cookie' : 'set-cookie';
    if (o.splitCookie && typeof h[cookie] === 'string') h[cookie] = splitCookies(h[cookie] as string);
    return h;
  }

  /** the message as sent: its header section, then its body when included (send_request, send_response), bounded by maxMessageSize */
  private raw(m: HttpMessage): string {
    if (m.raw === null) return '';
    let bytes = m.sendBody && m.body !== null ? Buffer.concat([m.raw, ...m.body]) : m.raw;
    if (bytes.length > this.r.o.maxMessageSize) {
      bytes = bytes.subarray(0, this.r.o.maxMessageSize);
      if (!m.bodyTruncated) this.n.truncated++;
    }
    const text = bytes.toString('utf8');
    return this.r.o.redactAuthorization && m.isRequest ? redactAuthorization(text) : text;
  }
}

const EMPTY = Buffer.alloc(0);

/** the user of a `Basic` Authorization value (base64 of user:password), '' when there is none */
function basicAuthUser(auth: string): string {
  if (auth.length < 6 || auth.slice(0, 6).toLowerCase() !== 'basic ') return '';
  const b64 = auth.slice(6).trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) return '';
  const text = Buffer.from(b64, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  return colon < 0 ? '' : text.slice(0, colon);
}

/** the values of Authorization and Proxy-Authorization in a header section replaced by `*`, character for character, as packetbeat */
function redactAuthorization(text: string): string {
  return text.replace(/^((?:proxy-)?authorization:)([^\r\n]*)/gim, (_, name: string, value: string) => name + '*'.repeat(value.length));
}

/** a Cookie or Set-Cookie value as packetbeat's split_cookie: `name=value` pairs split on `;`, names lower-cased, values unquoted */
function splitCookies(value: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of value.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    let v = part.slice(eq + 1).trim();
    if (v.length > 1 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    out[part.slice(0, eq).trim().toLowerCase()] = v;
  }
  return out;
}

interface Url {
  scheme: string;
  domain: string;
  port: number;
  path: string;
  full: string;
  query?: string;
  extension?: string;
}

/**
 * ECS url.extension: what follows the last dot of the path's last segment ("gz" of
 * /a/b.tar.gz), '' when it has none or ends in the dot. packetbeat takes whatever
 * follows the last dot of the whole path, so /v1.2/users gives it "2/users".
 */
function extension(path: string): string {
  const dot = path.lastIndexOf('.');
  if (dot < 0 || dot === path.length - 1 || path.indexOf('/', dot) >= 0) return '';
  return path.slice(dot + 1);
}

function splitUri(uri: string): { path: string; query: string } {
  const q = uri.indexOf('?');
  return q < 0 ? { path: uri, query: '' } : { path: uri.slice(0, q), query: uri.slice(q + 1) };
}

/** the options resolved once, for the connections and their parsers (HTTP/2's streams take the same) */
export function resolveHttpOptions(options: Partial<HttpOptions>): { r: Resolved; reqOpts: HttpParserOptions; respOpts: HttpParserOptions } {
  const o: HttpOptions = { ...HTTP_DEFAULTS, ...options };
  const lower = (l: string[]) => l.map((x) => x.toLowerCase());
  const redact = lower(o.redactHeaders);
  const r: Resolved = { o, hide: new Set(lower(o.hideKeywords)), redact, rewriteHeaders: o.redactAuthorization || o.splitCookie || redact.length > 0 };
  const common = {
    maxHeaderBytes: o.maxHeaderBytes,
    captureHeaders: o.sendHeaders === 'all' ? ('all' as const) : lower(o.sendHeaders).filter((h) => h !== 'content-length' && h !== 'content-type'),
    includeBodyFor: lower(o.includeBodyFor),
    maxBodyBytes: o.maxBodyBytes,
    maxMessageSize: o.maxMessageSize,
    sniffBody: o.detectMimeType,
  };
  const reqOpts: HttpParserOptions = { ...common, keepRaw: o.sendRequest, keepFormBody: true, authorization: true, realIpHeader: o.realIpHeader.toLowerCase() };
  const respOpts: HttpParserOptions = { ...common, keepRaw: o.sendResponse, keepFormBody: false, authorization: false, realIpHeader: '' };
  return { r, reqOpts, respOpts };
}

export const http: Protocol<HttpOptions> = {
  name: 'http',
  tcpPorts: [80, 8080, 8000, 8008, 8888, 3000, 5000, 9200],
  udpPorts: [],
  probe(buf, off, len, side) {
    // OPTIONS (and any method) ending its line in SIP/2.0 is SIP's
    if (side === 0) return startsWithMethod(buf, off, off + len) && !isStartLine(buf, off, off + len);
    return len >= 7 && buf.toString('latin1', off, off + 7) === 'HTTP/1.';
  },
  create(options) {
    const { r, reqOpts, respOpts } = resolveHttpOptions(options);
    const n = new HttpCounters();
    return {
      tcp: (ctx: TcpContext) => new HttpConnection(ctx.midStream, ctx.endpoints, ctx.out, r, reqOpts, respOpts, n, ctx),
      stats: (): Stats => httpStats(n),
    };
  },
};

