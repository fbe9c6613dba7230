import { isIP } from 'node:net';
import { ReasonCounter } from '../../core/counters';
import type { Stats } from '../../core/stage';
import type { Endpoints } from '../../events/endpoints';
import { closeEvent, transactionEvent, UNMATCHED_REQUEST, UNMATCHED_RESPONSE } from '../../events/transaction';
import type { Emitter, Protocol, TcpAnalyzer, TcpContext } from '../analyzer';
import { HttpMessage } from './message';
import { BodyMode, HttpParser, startsWithMethod, type HttpParserOptions, type ParserEvents } from './parser';

export interface HttpOptions {
  /** largest header section kept while parsing (default 64 KiB) */
  maxHeaderBytes: number;
  /** headers to put in http.*.headers besides Content-Length and Content-Type, which are always there (lower-case names), or 'all' (default none, as packetbeat) */
  sendHeaders: string[] | 'all';
  /** content types (prefixes) whose bodies go into http.*.body.content (default none) */
  includeBodyFor: string[];
  /** body bytes kept per message when included (default 1 MiB) */
  maxBodyBytes: number;
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
  maxPending: 64,
  maxPendingTotal: 16_384,
  transactionTimeoutSec: 10,
};

/** started = transactions (emitted) + dropped + waiting (0 at the end of a run) */
class HttpCounters {
  started = 0;
  readonly dropped = new ReasonCounter();
  requests = 0;
  responses = 0;
  transactions = 0;
  /** requests waiting over all connections */
  pending = 0;
  interim = 0;
  readonly unmatched = new ReasonCounter();
  readonly violations = new ReasonCounter();
  partial = 0;
}

/** a request lost to a gap before its headers: keeps pairing in step with responses */
function lostRequest(tsSec: number, tsNsec: number): HttpMessage {
  const m = new HttpMessage(true);
  m.startSec = m.endSec = tsSec;
  m.startNsec = m.endNsec = tsNsec;
  m.note('request lost to packet loss');
  return m;
}

class HttpConnection implements TcpAnalyzer {
  private readonly req: HttpParser;
  private readonly resp: HttpParser;
  /** requests whose responses have not completed, oldest first */
  private readonly pending: HttpMessage[] = [];

  constructor(
    midStream: boolean,
    private readonly ep: Endpoints,
    private readonly out: Emitter,
    private readonly opts: HttpOptions,
    parserOpts: HttpParserOptions,
    private readonly n: HttpCounters,
  ) {
    const reqEvents: ParserEvents = {
      headers: (m) => {
        this.n.requests++;
        this.n.started++;
        this.queue(m);
        if (this.pending.length > this.opts.maxPending) {
          this.n.unmatched.add('pending_limit');
          this.emit(this.take()!, null, 'too many requests waiting for responses');
        } else if (this.n.pending > this.opts.maxPendingTotal && this.pending.length > 1) {
          // over all connections: each keeps at least its newest request
          this.n.unmatched.add('pending_limit_total');
          this.emit(this.take()!, null, 'too many requests waiting for responses over all connections');
        }
        return m.chunked ? BodyMode.chunked : m.contentLength > 0 ? BodyMode.length : BodyMode.none;
      },
      message: () => {},
      violation: (reason) => {
        this.n.violations.add(`request_${reason}`);
        this.out.anomaly?.('http', `request_${reason}`, this.ep);
        if (reason === 'gap_in_headers') {
          this.n.started++;
          this.queue(lostRequest(0, 0));
        }
      },
    };
    const respEvents: ParserEvents = {
      headers: (m) => this.responseBody(m),
      message: (m) => this.response(m),
      violation: (reason) => {
        this.n.violations.add(`response_${reason}`);
        this.out.anomaly?.('http', `response_${reason}`, this.ep);
      },
    };
    this.req = new HttpParser(true, parserOpts, reqEvents);
    this.resp = new HttpParser(false, parserOpts, respEvents);
    if (midStream) {
      this.req.resync();
      this.resp.resync();
    }
  }

  data(side: number, buf: Buffer, off: number, len: number, tsSec: number, tsNsec: number): void {
    (side === 0 ? this.req : this.resp).feed(buf, off, len, tsSec, tsNsec);
  }

  gap(side: number, n: number, tsSec: number, tsNsec: number): void {
    (side === 0 ? this.req : this.resp).gap(n, tsSec, tsNsec);
  }

  close(tsSec: number, tsNsec: number): void {
    this.req.close(tsSec, tsNsec);
    this.resp.close(tsSec, tsNsec);
    while (this.pending.length > 0) {
      this.n.unmatched.add('no_response');
      this.emit(this.take()!, null, 'no response before the connection closed');
    }
  }

  expire(nowSec: number): void {
    // a response in progress keeps its request alive
    while (this.pending.length > 0 && this.resp.idle) {
      const m = this.pending[0];
      if (nowSec - m.startSec < this.opts.transactionTimeoutSec) break;
      this.take();
      this.n.unmatched.add('timeout');
      this.emit(m, null, 'no response within the transaction timeout');
    }
  }

  /** the connection's state is dropped unemitted (a Kafka rebalance): its requests no longer wait */
  discard(): void {
    this.n.pending -= this.pending.length;
    this.pending.length = 0;
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

  private responseBody(m: HttpMessage): number {
    const code = m.statusCode;
    const req = this.pending[0];
    if (code >= 100 && code < 200 && code !== 101) return BodyMode.none;
    if (code === 101 || (req !== undefined && req.method === 'CONNECT' && code >= 200 && code < 300)) return BodyMode.tunnel;
    if (code === 204 || code === 304 || (req !== undefined && req.method === 'HEAD')) return BodyMode.none;
    if (m.chunked) return BodyMode.chunked;
    if (m.contentLength >= 0) return BodyMode.length;
    return BodyMode.untilClose;
  }

  private response(m: HttpMessage): void {
    this.n.responses++;
    const code = m.statusCode;
    if (code >= 100 && code < 200 && code !== 101) {
      this.n.interim++; // 100 Continue and friends: the final response follows
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
    }
    this.emit(req, m, null);
  }

  /** a transaction: a request with its response, or either one alone (unmatched) */
  private emit(req: HttpMessage | null, resp: HttpMessage | null, note: string | null): void {
    this.n.transactions++;
    const first = (req ?? resp)!;
    const last = (resp ?? req)!;
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
    const e = transactionEvent('http', this.ep, { startSec: first.startSec, startNsec: first.startNsec, endSec: last.endSec, endNsec: last.endNsec }, status, req?.wireBytes ?? 0, resp?.wireBytes ?? 0, 'http', domain);
    const notes: string[] = [];
    if (req?.notes) notes.push(...req.notes);
    if (resp?.notes) notes.push(...resp.notes);
    const reqMissing = req?.missingBytes ?? 0;
    const respMissing = resp?.missingBytes ?? 0;
    if (reqMissing > 0) notes.push(`packet loss: ${reqMissing} request bytes missing`);
    if (respMissing > 0) notes.push(`packet loss: ${respMissing} response bytes missing`);
    if (note !== null) notes.push(note);
    if (reqMissing > 0 || respMissing > 0 || (req !== null && request === null)) this.n.partial++;

    if (request !== null) {
      e.method = request.method;
      e.query = `${request.method} ${path}`;
      e.url = url;
    }
    const http: Record<string, unknown> = {};
    if (last.version !== '') http.version = last.version;
    if (request !== null) http.request = message(request, true);
    if (resp !== null) http.response = message(resp, false);
    e.http = http;
    if (request !== null && request.userAgent !== '') e.user_agent = { original: request.userAgent };
    closeEvent(e, notes, resp === null ? UNMATCHED_REQUEST : req === null ? UNMATCHED_RESPONSE : null);
    this.out.emit(e);
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
        port = m[2] !== undefined ? +m[2] : 80;
      }
    }
    const host = domain.includes(':') ? `[${domain}]` : domain;
    const u: Url = {
      scheme: 'http',
      domain,
      port,
      path: p,
      full: `http://${host}${port !== 80 ? `:${port}` : ''}${p}${query !== '' ? `?${query}` : ''}`,
    };
    if (query !== '') u.query = query;
    const ext = extension(p);
    if (ext !== '') u.extension = ext;
    return u;
  }
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

function message(m: HttpMessage, isRequest: boolean): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (isRequest) o.method = m.method;
  else {
    o.status_code = m.statusCode;
    o.status_phrase = m.statusPhrase.toLowerCase();
  }
  o.bytes = m.wireBytes;
  const body: Record<string, unknown> = { bytes: m.bodyBytes };
  if (m.body !== null) body.content = Buffer.concat(m.body).toString('utf8');
  if (m.bodyTruncated) body.truncated = true;
  o.body = body;
  o.headers = headers(m);
  if (isRequest && m.referer !== '') o.referrer = m.referer;
  if (m.contentType !== '') o.mime_type = m.contentType.split(';')[0].trim().toLowerCase();
  return o;
}

/**
 * http.*.headers: Content-Length (a number: the header's value, else the body's size
 * after transfer decoding) and Content-Type always, as packetbeat; then the headers
 * the user asked for, in the order they came.
 */
function headers(m: HttpMessage): Record<string, string | number> {
  const h: Record<string, string | number> = { 'content-length': m.contentLength >= 0 ? m.contentLength : m.bodyBytes };
  if (m.contentType !== '') h['content-type'] = m.contentType;
  if (m.headers !== null) for (const k in m.headers) h[k] = m.headers[k];
  return h;
}

export const http: Protocol<HttpOptions> = {
  name: 'http',
  tcpPorts: [80, 8080, 8000, 8008, 8888, 3000, 5000, 9200],
  udpPorts: [],
  probe(buf, off, len, side) {
    if (side === 0) return startsWithMethod(buf, off, off + len);
    return len >= 7 && buf.toString('latin1', off, off + 7) === 'HTTP/1.';
  },
  create(options) {
    const opts: HttpOptions = { ...HTTP_DEFAULTS, ...options };
    const parserOpts: HttpParserOptions = {
      maxHeaderBytes: opts.maxHeaderBytes,
      captureHeaders: opts.sendHeaders === 'all' ? 'all' : opts.sendHeaders.map((h) => h.toLowerCase()).filter((h) => h !== 'content-length' && h !== 'content-type'),
      includeBodyFor: opts.includeBodyFor.map((t) => t.toLowerCase()),
      maxBodyBytes: opts.maxBodyBytes,
    };
    const n = new HttpCounters();
    return {
      tcp: (ctx: TcpContext) => new HttpConnection(ctx.midStream, ctx.endpoints, ctx.out, opts, parserOpts, n),
      stats: (): Stats => ({
        transactions_started: n.started,
        transactions_dropped: n.dropped.toJSON(),
        pending: n.pending,
        requests: n.requests,
        responses: n.responses,
        interim_responses: n.interim,
        transactions: n.transactions,
        partial: n.partial,
        unmatched: n.unmatched.toJSON(),
        violations: n.violations.toJSON(),
      }),
    };
  },
};

