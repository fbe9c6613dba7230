import { createHash } from 'node:crypto';
import { ReasonCounter } from '../../core/counters';
import { holdFrame, readBefore, type Hold } from '../../core/frame';
import type { Stats } from '../../core/stage';
import type { Packet } from '../../decode/packet';
import { datagramEndpoints, makeEndpoints, type Endpoints } from '../../events/endpoints';
import { closeEvent, transactionEvent, UNMATCHED_REQUEST, UNMATCHED_RESPONSE, type EventObject } from '../../events/transaction';
import type { DatagramAnalyzer, Emitter, Protocol, TcpAnalyzer, TcpContext } from '../analyzer';
import { headEnd, isStartLine, parseAuth, parseHead, parseNameAddr, parseSdp, parseUri, SipMessage, SipParseError, type SipUri } from './message';

export interface SipOptions {
  /** decode Authorization / Proxy-Authorization (and a response's challenge) into `sip.auth.*` and `user.name` (packetbeat's parse_authorization; default true) */
  parseAuthorization: boolean;
  /** decode an SDP body into `sip.sdp.*` (packetbeat's parse_body; default true) */
  parseBody: boolean;
  /** the request as sent in `event.original` (packetbeat's keep_original; default true) */
  keepOriginal: boolean;
  /** the request as sent in a `request` field (default false) */
  sendRequest: boolean;
  /** the final response as sent in a `response` field (default false) */
  sendResponse: boolean;
  /** the largest header section read (default 64 KiB); over TCP a longer one loses the stream's place until the next start line */
  maxHeaderBytes: number;
  /** the largest body kept and decoded (default 64 KiB); a longer one is counted and skipped */
  maxBodyBytes: number;
  /** transactions waiting for their final response, over all conversations (default 16384) */
  maxPending: number;
  /** bytes of the requests they hold (header sections and bodies), over all conversations (default 64 MiB) */
  maxPendingBytes: number;
  /** finished transactions remembered, so a retransmitted request or final response is known as one (default 16384) */
  maxCompleted: number;
  /** seconds of packet time a transaction waits for its next response (default 32: RFC 3261's Timer B and F, 64 × T1) */
  transactionTimeoutSec: number;
}

export const SIP_DEFAULTS: SipOptions = {
  parseAuthorization: true,
  parseBody: true,
  keepOriginal: true,
  sendRequest: false,
  sendResponse: false,
  maxHeaderBytes: 64 * 1024,
  maxBodyBytes: 64 * 1024,
  maxPending: 16_384,
  maxPendingBytes: 64 * 1024 * 1024,
  maxCompleted: 16_384,
  transactionTimeoutSec: 32,
};

/** a transaction waiting for its final response */
class Pending {
  provisional = 0;
  /** what it holds: the request's header section and body */
  readonly bytes: number;
  provisionalBytes = 0;
  constructor(
    readonly req: SipMessage,
    readonly ep: Endpoints,
    /** packet time of the last message: a provisional response keeps the transaction alive */
    public last: number,
    readonly hold: Hold | null,
    /** the TCP connection's set of its keys (null over UDP) */
    readonly keys: Set<string> | null,
  ) {
    this.bytes = req.head.length + (req.body?.length ?? 0);
  }
}

/**
 * Transactions of every conversation, UDP and TCP: a request, the provisional
 * responses that follow it, and the final response that ends it, matched by
 * Call-ID, CSeq (number and method) and the top Via's branch (RFC 3261 17.1.3: a
 * response carries its request's). ACK, which gets no response, is a transaction of
 * its own as soon as it is seen. Over UDP a request or a final response sent again
 * (retransmissions, RFC 3261 17) is counted, not reported again.
 */
class SipTransactions {
  /** waiting, least recently active first (a Map keeps insertion order; activity moves an entry to the end) */
  private readonly pending = new Map<string, Pending>();
  /** keys of finished transactions, oldest first, with the time they finished */
  private readonly completed = new Map<string, number>();
  private pendingBytes = 0;
  started = 0;
  readonly dropped = new ReasonCounter();
  transactions = 0;
  requests = 0;
  responses = 0;
  provisional = 0;
  readonly retransmissions = { requests: 0, responses: 0 };
  completedEvicted = 0;
  keepalives = 0;
  readonly unmatched = new ReasonCounter();
  readonly violations = new ReasonCounter();
  readonly bodies = { decoded: 0, too_large: 0, incomplete: 0, encoded: 0 };
  readonly lost = new ReasonCounter();
  lostBytes = 0;

  constructor(
    readonly opts: SipOptions,
    readonly out: Emitter,
  ) {}

  violation(reason: string, ep: Endpoints | null, p: Packet | null): void {
    this.violations.add(reason);
    if (ep !== null) this.out.anomaly?.('sip', reason, ep);
    else if (p !== null) this.out.packetAnomaly?.('sip', reason, p);
  }

  /**
   * A message of a conversation. `scope` keeps TCP connections apart ('' over UDP);
   * `ep` has the request's sender as client; `frame` is the datagram's (null over TCP).
   */
  message(scope: string, m: SipMessage, ep: Endpoints | null, p: Packet | null, keys: Set<string> | null): void {
    // over UDP the endpoints are made only when a transaction needs them (a paired response's are its request's)
    const frame = p === null ? null : p.frame;
    let key = `${scope}${m.callId}|${m.cseqNum}|${m.cseqMethod}|${m.branch}`;
    // a key is remembered after its transaction: a long one (a Call-ID of kilobytes) by its hash
    if (key.length > 256) key = `#${createHash('sha1').update(key).digest('base64')}`;
    if (m.isRequest) {
      this.requests++;
      if (this.pending.has(key) || this.completed.has(key)) {
        this.retransmissions.requests++;
        return;
      }
      this.started++;
      if (m.method === 'ACK') {
        // no response comes to an ACK: a transaction of its own (RFC 3261 17.1.1.3); one sent
        // again (for each 2xx sent again) is a retransmission
        this.remember(key, m.sec);
        this.emit(m, null, ep ?? datagramEndpoints(p!, true), 0, 0, null);
        return;
      }
      if (this.pending.size >= this.opts.maxPending) {
        const [k, old] = this.pending.entries().next().value as [string, Pending];
        this.leave(k, old, 'pending_limit', 'too many transactions waiting for responses');
      }
      const w = new Pending(m, ep ?? datagramEndpoints(p!, true), m.sec, frame === null ? null : holdFrame(frame), keys);
      while (this.pendingBytes + w.bytes > this.opts.maxPendingBytes && this.pending.size > 0) {
        const [k, old] = this.pending.entries().next().value as [string, Pending];
        this.leave(k, old, 'pending_bytes_limit', 'too many bytes of transactions waiting for responses');
      }
      this.pendingBytes += w.bytes;
      this.pending.set(key, w);
      keys?.add(key);
      return;
    }
    this.responses++;
    const w = this.pending.get(key);
    if (m.code < 200) {
      this.provisional++;
      if (w !== undefined) {
        w.provisional++;
        w.provisionalBytes += m.size;
        w.last = m.sec;
        this.pending.delete(key);
        this.pending.set(key, w);
        return;
      }
      if (this.completed.has(key)) {
        this.retransmissions.responses++;
        return;
      }
    } else if (w !== undefined) {
      this.pending.delete(key);
      this.pendingBytes -= w.bytes;
      w.keys?.delete(key);
      w.hold?.release();
      this.remember(key, m.sec);
      this.emit(w.req, m, w.ep, w.provisionalBytes, w.provisional, null);
      return;
    } else if (this.completed.has(key)) {
      // a final response sent again (a 2xx to INVITE until its ACK comes, a lost ACK, ...)
      this.retransmissions.responses++;
      return;
    }
    this.started++;
    if (frame !== null && readBefore(frame)) {
      // read again after a restart point: its request came before it and was paired then
      this.unmatched.add('paired_before_restart');
      this.dropped.add('paired_before_restart');
      return;
    }
    this.unmatched.add('response_without_request');
    this.emit(null, m, ep ?? datagramEndpoints(p!, false), 0, 0, 'response without a request');
  }

  expire(nowSec: number): void {
    const timeout = this.opts.transactionTimeoutSec;
    for (const [k, p] of this.pending) {
      if (nowSec - p.last < timeout) break;
      this.leave(k, p, 'timeout', 'no final response within the transaction timeout');
    }
    for (const [k, t] of this.completed) {
      if (nowSec - t < timeout) break;
      this.completed.delete(k);
    }
  }

  /** end of input: every waiting transaction leaves unanswered */
  flush(): void {
    for (const [k, p] of this.pending) this.leave(k, p, 'no_response', 'no final response');
  }

  /** a TCP connection closed: its waiting transactions leave unanswered */
  closeConnection(keys: Set<string>): void {
    for (const k of keys) {
      const p = this.pending.get(k);
      if (p !== undefined) this.leave(k, p, 'no_response', 'no final response before the connection closed');
    }
    keys.clear();
  }

  /** forget without emitting (the frames will be read again) */
  discard(keys?: Set<string>): void {
    for (const k of keys ?? [...this.pending.keys()]) {
      const p = this.pending.get(k);
      if (p === undefined) continue;
      this.pending.delete(k);
      this.pendingBytes -= p.bytes;
      p.hold?.release();
      this.started--;
    }
    keys?.clear();
    if (keys === undefined) this.completed.clear();
  }

  stats(): Stats {
    return {
      transactions_started: this.started,
      transactions_dropped: this.dropped.toJSON(),
      pending: this.pending.size,
      pending_bytes: this.pendingBytes,
      transactions: this.transactions,
      requests: this.requests,
      responses: this.responses,
      provisional_responses: this.provisional,
      retransmissions: { ...this.retransmissions },
      completed_remembered: this.completed.size,
      completed_evicted: this.completedEvicted,
      keepalives: this.keepalives,
      bodies: { ...this.bodies },
      unmatched: this.unmatched.toJSON(),
      lost: this.lost.toJSON(),
      lost_bytes: this.lostBytes,
      violations: this.violations.toJSON(),
    };
  }

  private remember(key: string, sec: number): void {
    if (this.completed.size >= this.opts.maxCompleted) {
      this.completed.delete(this.completed.keys().next().value as string);
      this.completedEvicted++;
    }
    this.completed.set(key, sec);
  }

  private leave(key: string, p: Pending, reason: string, note: string): void {
    this.pending.delete(key);
    this.pendingBytes -= p.bytes;
    p.keys?.delete(key);
    p.hold?.release();
    this.unmatched.add(reason);
    this.emit(p.req, null, p.ep, p.provisionalBytes, p.provisional, note);
  }

  private emit(req: SipMessage | null, resp: SipMessage | null, ep: Endpoints, provBytes: number, provCount: number, note: string | null): void {
    this.transactions++;
    const o = this.opts;
    const main = (req ?? resp)!;
    const last = resp ?? req!;
    const ok = req !== null && (resp !== null ? resp.code < 400 : req.method === 'ACK');
    const e = transactionEvent('sip', ep, { startSec: main.sec, startNsec: main.nsec, endSec: last.sec, endNsec: last.nsec }, ok ? 'OK' : 'Error', req?.size ?? 0, (resp?.size ?? 0) + provBytes);
    const method = req?.method ?? main.cseqMethod;
    e.event.action = `sip-${method.toLowerCase()}`;
    if (resp !== null) {
      e.event.outcome = resp.code >= 200 && resp.code < 300 ? 'success' : 'failure';
      if (resp.phrase !== '') e.event.reason = resp.phrase;
    }
    e.event.sequence = main.cseqNum;
    if (o.keepOriginal) e.event.original = original(main);
    if (req !== null && req.authorization !== '') e.event.category.push('authentication');
    const users: string[] = [];
    const hosts: string[] = [];
    const uriFields = (u: SipUri): EventObject => {
      const f: EventObject = { original: u.original };
      if (u.scheme !== '') f.scheme = u.scheme;
      if (u.username !== '' && u.username !== '-' && u.username !== ' ') {
        f.username = u.username;
        if (!users.includes(u.username)) users.push(u.username);
      }
      if (u.host !== '') {
        f.host = u.host;
        if (!hosts.includes(u.host)) hosts.push(u.host);
      }
      if (u.port >= 0) f.port = u.port;
      return f;
    };
    if (req !== null) {
      e.method = req.method;
      e.query = `${req.method} ${req.uri}`;
    }
    const sip: EventObject = { type: req !== null ? 'request' : 'response' };
    if (req !== null) {
      sip.method = req.method;
      sip.uri = uriFields(parseUri(req.uri));
    }
    sip.version = main.version;
    if (resp !== null) {
      sip.code = resp.code;
      sip.status = resp.phrase;
    }
    const accept = main.accept || resp?.accept || '';
    if (accept !== '') sip.accept = accept;
    const allow = main.allow ?? resp?.allow ?? null;
    if (allow !== null) sip.allow = allow;
    sip.call_id = main.callId;
    // the body described is the request's, else the final response's (an answer to an offer-less INVITE)
    const bodied = main.contentLength > 0 || resp === null || resp.contentLength <= 0 ? main : resp;
    if (bodied.contentLength >= 0) sip.content_length = bodied.contentLength;
    if (bodied.contentType !== '') sip.content_type = bodied.contentType;
    if (main.maxForwards >= 0) sip.max_forwards = main.maxForwards;
    const supported = main.supported ?? resp?.supported ?? null;
    if (supported !== null) sip.supported = supported;
    if (main.userAgent !== '') sip.user_agent = { original: main.userAgent };
    const privateUri = main.privateUri || resp?.privateUri || '';
    if (privateUri !== '') sip.private = { uri: uriFields(parseUri(privateUri)) };
    sip.cseq = { code: main.cseqNum, method: main.cseqMethod };
    sip.via = { original: main.via };
    for (const which of ['from', 'to'] as const) {
      if (main[which] === '') continue;
      const a = parseNameAddr(main[which]);
      const f: EventObject = {};
      if (a.display !== '') f.display_info = a.display;
      f.uri = uriFields(a.uri);
      // the To tag is the answering side's: its response has it when the request does not
      const tag = a.params.tag ?? (which === 'to' && resp !== null && resp.to !== '' ? parseNameAddr(resp.to).params.tag : undefined);
      if (tag !== undefined && tag !== '') f.tag = tag;
      sip[which] = f;
    }
    if (main.contact !== '' && main.contact !== '*') {
      const a = parseNameAddr(main.contact);
      const f: EventObject = {};
      if (a.display !== '') f.display_info = a.display;
      f.uri = uriFields(a.uri);
      const up = a.uri.params;
      if (up?.transport !== undefined && up.transport !== '') f.transport = up.transport.toLowerCase();
      if (up?.line !== undefined && up.line !== '') f.line = up.line;
      if (a.params.expires !== undefined && /^\d{1,10}$/.test(a.params.expires)) f.expires = Number(a.params.expires);
      if (a.params.q !== undefined && /^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(a.params.q)) f.q = Number(a.params.q);
      sip.contact = f;
    }
    let userName = '';
    if (o.parseAuthorization) {
      // the credentials a request carries; else the challenge its response made
      const header = req !== null && req.authorization !== '' ? req.authorization : resp?.challenge ?? main.challenge;
      if (header !== '') {
        const a = parseAuth(header);
        const f: EventObject = { scheme: a.scheme };
        if (a.params.realm !== undefined) f.realm = a.params.realm;
        if (a.params.uri !== undefined) {
          const u = parseUri(a.params.uri);
          const uf: EventObject = { original: u.original };
          if (u.scheme !== '') uf.scheme = u.scheme;
          if (u.host !== '') uf.host = u.host;
          if (u.port >= 0) uf.port = u.port;
          f.uri = uf;
        }
        sip.auth = f;
        const name = a.params.username;
        if (name !== undefined && name !== '' && name !== '-' && header === req?.authorization) {
          userName = name;
          if (!users.includes(name)) users.push(name);
        }
      }
    }
    if (o.parseBody && bodied.body !== null && bodied.contentType.split(';')[0].trim() === 'application/sdp') {
      if (bodied.contentEncoding !== '') this.bodies.encoded++;
      else {
        this.bodies.decoded++;
        const text = bodied.body.toString('utf8');
        const s = parseSdp(text);
        const f: EventObject = {};
        if (s.version !== '') f.version = s.version;
        if (s.ownerSessionId !== '') {
          const owner: EventObject = {};
          if (s.ownerUsername !== '') {
            owner.username = s.ownerUsername;
            if (!users.includes(s.ownerUsername)) users.push(s.ownerUsername);
          }
          owner.session_id = s.ownerSessionId;
          owner.version = s.ownerVersion;
          owner.ip = s.ownerIp;
          f.owner = owner;
        }
        if (s.sessionName !== '') f.session = { name: s.sessionName };
        if (s.connectionInfo !== '') {
          f.connection = { info: s.connectionInfo, address: s.connectionAddress };
          if (s.connectionAddress !== '' && !hosts.includes(s.connectionAddress)) hosts.push(s.connectionAddress);
        }
        f.body = { original: text };
        sip.sdp = f;
      }
    }
    e.sip = sip;
    if (userName !== '') e.user = { name: userName };
    if (hosts.length > 0) e.related.hosts = hosts;
    if (users.length > 0) e.related.user = users;
    if (o.sendRequest && req !== null) e.request = original(req);
    if (o.sendResponse && resp !== null) e.response = original(resp);
    const notes: string[] = [];
    if (req?.notes) notes.push(...req.notes);
    if (resp?.notes) notes.push(...resp.notes);
    if (note !== null) notes.push(provCount > 0 && resp === null ? `${note} (after ${provCount} provisional)` : note);
    closeEvent(e, notes, req === null ? UNMATCHED_RESPONSE : resp === null && req.method !== 'ACK' ? UNMATCHED_REQUEST : null);
    this.out.emit(e);
  }
}

/** a message as sent: its header section and its body as far as it was kept */
function original(m: SipMessage): string {
  return m.body === null ? m.head : m.head + m.body.toString('utf8');
}

/**
 * The body of a message whose header section is b[off, he) and whose bytes end at
 * `end` (a datagram): Content-Length bytes, or the rest of the datagram when it has
 * none (RFC 3261 18.3).
 */
function datagramBody(m: SipMessage, b: Buffer, he: number, end: number, tx: SipTransactions, p: Packet): void {
  const rest = end - he;
  let n = m.contentLength < 0 ? rest : m.contentLength;
  if (n > rest) {
    tx.violation('body_truncated', null, p);
    m.note(`body shorter than its Content-Length: ${rest} of ${n} bytes`);
    tx.bodies.incomplete++;
    return;
  }
  if (n === 0) return;
  if (n > tx.opts.maxBodyBytes) {
    tx.bodies.too_large++;
    m.note(`body of ${n} bytes not decoded: longer than ${tx.opts.maxBodyBytes}`);
    return;
  }
  m.body = Buffer.from(b.subarray(he, he + n));
}

/** SIP over UDP: one message per datagram */
class SipUdp implements DatagramAnalyzer {
  constructor(private readonly tx: SipTransactions) {}

  datagram(p: Packet): void {
    const tx = this.tx;
    const b = p.data;
    let o = p.payloadOff;
    const end = o + p.payloadLen;
    // keep-alives (RFC 5626 4.4.1: CRLF CRLF, and its CRLF pong)
    while (o < end && (b[o] === 0x0d || b[o] === 0x0a)) o++;
    if (o === end) {
      tx.keepalives++;
      return;
    }
    const he = headEnd(b, o, Math.min(end, o + tx.opts.maxHeaderBytes));
    if (he < 0) {
      tx.violation(end - o > tx.opts.maxHeaderBytes ? 'header_too_large' : 'no_end_of_header', null, p);
      return;
    }
    let m: SipMessage;
    try {
      m = parseHead(b, o, he);
    } catch (err) {
      if (!(err instanceof SipParseError)) throw err;
      tx.violation(err.reason, null, p);
      return;
    }
    m.sec = p.tsSec;
    m.nsec = p.tsNsec;
    m.size = p.payloadLen;
    datagramBody(m, b, he, end, tx, p);
    tx.message('', m, null, p, null);
  }

  expire(nowSec: number): void {
    this.tx.expire(nowSec);
  }

  flush(): void {
    this.tx.flush();
  }

  discard(): void {
    this.tx.discard();
  }

  stats(): Stats {
    return this.tx.stats();
  }
}

const S_HEAD = 0;
const S_BODY = 1;
const S_SKIP = 2;
const S_LOST = 3;

/**
 * One direction of a SIP connection: messages framed by their header section and
 * Content-Length (RFC 3261 18.3, mandatory on streams). Keep-alive CRLFs between
 * messages are skipped. Where the place is lost (a gap outside a body, bytes that
 * do not parse, a header section too large, a capture begun mid-stream) the next
 * line that is a SIP start line begins a message again.
 */
class SipStream {
  private state = S_HEAD;
  private held: Buffer | null = null;
  private heldSec = 0;
  private heldNsec = 0;
  private msg: SipMessage | null = null;
  private need = 0;
  private parts: Buffer[] = [];
  private missing = 0;

  constructor(
    private readonly side: number,
    private readonly conn: SipTcp,
    private readonly tx: SipTransactions,
    midStream: boolean,
  ) {
    if (midStream) this.state = S_LOST;
  }

  feed(b: Buffer, off: number, len: number, sec: number, nsec: number): void {
    let data = b;
    let o = off;
    let end = off + len;
    let startSec = sec;
    let startNsec = nsec;
    if (this.held !== null) {
      data = Buffer.concat([this.held, b.subarray(off, end)]);
      o = 0;
      end = data.length;
      startSec = this.heldSec;
      startNsec = this.heldNsec;
      this.held = null;
    }
    const tx = this.tx;
    while (o < end) {
      if (this.state === S_HEAD) {
        while (o < end && (data[o] === 0x0d || data[o] === 0x0a)) o++;
        if (o === end) break;
        const max = tx.opts.maxHeaderBytes;
        const he = headEnd(data, o, Math.min(end, o + max));
        if (he < 0) {
          if (end - o >= max) {
            // look for the next start line after this one
            this.lose('header_too_large');
            o = nextLine(data, o, end);
            continue;
          }
          this.keep(data, o, end, startSec, startNsec);
          return;
        }
        let m: SipMessage;
        try {
          m = parseHead(data, o, he);
        } catch (err) {
          if (!(err instanceof SipParseError)) throw err;
          this.lose(err.reason);
          o = nextLine(data, o, end);
          continue;
        }
        m.sec = startSec;
        m.nsec = startNsec;
        m.size = he - o;
        o = he;
        // what follows begins in this chunk
        startSec = sec;
        startNsec = nsec;
        let cl = m.contentLength;
        if (cl < 0) {
          tx.violation('no_content_length', this.conn.ep(0), null);
          cl = 0;
        }
        if (cl === 0) {
          this.conn.message(this.side, m);
          continue;
        }
        this.msg = m;
        this.need = cl;
        this.parts = [];
        this.missing = 0;
        if (cl <= tx.opts.maxBodyBytes) this.state = S_BODY;
        else {
          tx.bodies.too_large++;
          m.note(`body of ${cl} bytes not decoded: longer than ${tx.opts.maxBodyBytes}`);
          this.state = S_SKIP;
        }
      } else if (this.state === S_BODY || this.state === S_SKIP) {
        const take = Math.min(this.need, end - o);
        if (this.state === S_BODY) this.parts.push(Buffer.from(data.subarray(o, o + take)));
        this.msg!.size += take;
        this.need -= take;
        o += take;
        if (this.need === 0) this.done();
        startSec = sec;
        startNsec = nsec;
      } else {
        // lost: a start line at the beginning of a line
        let found = -1;
        let i = o;
        while (i < end) {
          if (i === o || data[i - 1] === 0x0a) {
            const r = startLineAt(data, i, end);
            if (r === 1) {
              found = i;
              break;
            }
            if (r < 0) {
              // the line is not complete: wait for the rest of it
              tx.lostBytes += i - o;
              this.keep(data, i, end, sec, nsec);
              return;
            }
          }
          i++;
        }
        if (found < 0) {
          tx.lostBytes += end - o;
          return;
        }
        tx.lostBytes += found - o;
        o = found;
        this.state = S_HEAD;
        startSec = sec;
        startNsec = nsec;
      }
    }
  }

  gap(n: number): void {
    this.held = null;
    if ((this.state === S_BODY || this.state === S_SKIP) && n < this.need) {
      // inside a body: the body cannot be decoded, the message and the stream go on
      const m = this.msg!;
      if (this.state === S_BODY) {
        this.tx.bodies.incomplete++;
        this.parts = [];
        this.state = S_SKIP;
      }
      this.missing += n;
      m.size += n;
      this.need -= n;
      return;
    }
    if (this.state === S_BODY || this.state === S_SKIP) {
      // the message's end is lost with the stream's place: it goes on as far as it came
      this.missing += this.need;
      this.msg!.size += this.need;
      this.need = 0;
      this.state = S_SKIP;
      this.done();
    }
    this.tx.lost.add('gap');
    this.state = S_LOST;
  }

  /** the connection ended: a message still waiting for its body goes on as far as it came */
  end(): void {
    if (this.state === S_BODY || this.state === S_SKIP) {
      this.msg!.note(`body incomplete at close: ${this.need} bytes missing`);
      if (this.state === S_BODY) this.tx.bodies.incomplete++;
      this.parts = [];
      this.state = S_SKIP;
      this.need = 0;
      this.done();
    }
    this.held = null;
  }

  private done(): void {
    const m = this.msg!;
    this.msg = null;
    if (this.state === S_BODY) m.body = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
    else if (this.missing > 0) {
      m.note(`packet loss: ${this.missing} bytes missing`);
      this.tx.bodies.incomplete++;
    }
    this.parts = [];
    this.missing = 0;
    this.state = S_HEAD;
    this.conn.message(this.side, m);
  }

  private keep(data: Buffer, from: number, end: number, sec: number, nsec: number): void {
    this.held = Buffer.from(data.subarray(from, end));
    this.heldSec = sec;
    this.heldNsec = nsec;
  }

  private lose(reason: string): void {
    this.tx.violation(reason, this.conn.ep(0), null);
    this.tx.lost.add(reason);
    this.state = S_LOST;
  }
}

/** the index after the line that starts at i (end when the line does not end there) */
function nextLine(b: Buffer, i: number, end: number): number {
  const nl = b.indexOf(0x0a, i);
  return nl < 0 || nl >= end ? end : nl + 1;
}

/** 1: a SIP start line begins at i; 0: not; -1: cannot tell before the line ends */
function startLineAt(b: Buffer, i: number, end: number): number {
  if (isStartLine(b, i, end)) return 1;
  for (let j = i; j < end && j < i + 4096; j++) if (b[j] === 0x0a) return 0;
  return end - i < 4096 ? -1 : 0;
}

/**
 * SIP over TCP. Either end may send requests on a connection (the callee's BYE
 * comes back over the caller's connection): the client of each transaction is the
 * sender of its request.
 */
class SipTcp implements TcpAnalyzer {
  private readonly streams: [SipStream, SipStream];
  private readonly eps: [Endpoints, Endpoints | null];
  private readonly keys = new Set<string>();
  private readonly scope: string;

  constructor(
    private readonly ctx: TcpContext,
    private readonly tx: SipTransactions,
  ) {
    this.streams = [new SipStream(0, this, tx, ctx.midStream), new SipStream(1, this, tx, ctx.midStream)];
    this.eps = [ctx.endpoints, null];
    this.scope = `t${ctx.conn.id}|`;
  }

  /** the endpoints with `side`'s end as client */
  ep(side: number): Endpoints {
    if (side === 0) return this.eps[0];
    const c = this.ctx.conn;
    return (this.eps[1] ??= makeEndpoints(
      { ipVersion: c.ipVersion, c0: c.s0, c1: c.s1, c2: c.s2, c3: c.s3, s0: c.c0, s1: c.c1, s2: c.c2, s3: c.c3, clientPort: c.serverPort, serverPort: c.clientPort, vlan: c.vlan, vlanInner: c.vlanInner },
      6,
    ));
  }

  message(side: number, m: SipMessage): void {
    this.tx.message(this.scope, m, this.ep(m.isRequest ? side : 1 - side), null, this.keys);
  }

  data(side: number, b: Buffer, off: number, len: number, sec: number, nsec: number): void {
    this.streams[side].feed(b, off, len, sec, nsec);
  }

  gap(side: number, n: number): void {
    this.streams[side].gap(n);
  }

  close(): void {
    this.streams[0].end();
    this.streams[1].end();
    this.tx.closeConnection(this.keys);
  }

  expire(): void {
    // waiting transactions time out in the shared table
  }

  discard(): void {
    this.tx.discard(this.keys);
  }
}

/** a SIP start line first (after keep-alive CRLFs): `INVITE sip:... SIP/2.0` or `SIP/2.0 180 Ringing` */
export function looksLikeSip(b: Buffer, off: number, len: number): boolean {
  const end = off + len;
  while (off < end && (b[off] === 0x0d || b[off] === 0x0a)) off++;
  return isStartLine(b, off, end);
}

export const sip: Protocol<SipOptions> = {
  name: 'sip',
  tcpPorts: [5060],
  udpPorts: [5060],
  probe: (b, off, len) => looksLikeSip(b, off, len),
  probeDatagram: looksLikeSip,
  create(options, out) {
    const opts: SipOptions = { ...SIP_DEFAULTS, ...options };
    const tx = new SipTransactions(opts, out);
    return {
      datagrams: new SipUdp(tx),
      tcp: (ctx: TcpContext) => new SipTcp(ctx, tx),
      stats: () => tx.stats(),
    };
  },
};
