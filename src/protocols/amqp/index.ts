/**
 * AMQP 0-9-1 (RabbitMQ and the brokers that speak it): frames of every type across
 * segments and many per segment; a synchronous method paired with its `-ok` on the
 * same channel (requests may come from either side: connection.start, a server's
 * channel.close); asynchronous methods (basic.ack, nack, reject) as transactions of
 * their own; basic.publish, basic.deliver and basic.return with their content
 * (properties, body size, the body when asked for) as transactions of their own, and
 * basic.get with its get-ok and content, as packetbeat reports them. A channel.close
 * or connection.close with a reply code of 300 or more is an error, and the requests
 * it answers instead of their `-ok` (a passive declare of a missing queue) carry its
 * reply code. Fields as packetbeat's amqp analyzer names them (`amqp.*`).
 */
import { ReasonCounter, TransactionCounters } from '../../core/counters';
import type { Stats } from '../../core/stage';
import type { Endpoints } from '../../events/endpoints';
import { closeEvent, transactionEvent, UNMATCHED_REQUEST, UNMATCHED_RESPONSE, type EventObject } from '../../events/transaction';
import type { Emitter, Protocol, TcpAnalyzer, TcpContext } from '../analyzer';
import { FrameCounters, FrameInfo, FrameParser, methodFrameAt, type FrameOwner } from './frames';
import { Kind, methodDef, type MethodDef } from './methods';
import { FRAME_BODY, FRAME_HEADER, FRAME_METHOD, readContentHeader, Reader } from './wire';

export interface AmqpOptions {
  /** put the method and its subject, or a published message's body, into `request` (packetbeat's send_request; default false) */
  sendRequest: boolean;
  /** put `OK`, or a delivered message's body, into `response` (packetbeat's send_response; default false) */
  sendResponse: boolean;
  /** bytes of a message body kept for `request` / `response` (packetbeat's max_body_length; default 1000) */
  maxBodyLength: number;
  /** read content properties (packetbeat's parse_headers; default true) */
  parseHeaders: boolean;
  /** read methods' `arguments` tables and the connection's properties (packetbeat's parse_arguments; default true) */
  parseArguments: boolean;
  /**
   * leave out connection set-up and flow control (connection.start/tune/open/..., channel.open/flow,
   * basic.qos) and closes with a reply code below 300: counted as dropped (packetbeat's
   * hide_connection_information; default true)
   */
  hideConnectionInformation: boolean;
  /** longest method or content-header frame payload read (default 1 MiB; RabbitMQ's frame_max is 128 KiB) */
  maxFrameBytes: number;
  /** bytes held for method and header frames that span segments, over all connections; past it such a frame is skipped (default 64 MiB) */
  maxBufferedBytes: number;
  /** requests waiting for replies and messages waiting for their content, per connection (default 1024) */
  maxPending: number;
  /** the same over all connections (default 16384); each connection keeps its newest */
  maxPendingTotal: number;
  /** seconds of packet time a request waits for its reply, and a message for its content (default 10, as packetbeat) */
  transactionTimeoutSec: number;
}

export const AMQP_DEFAULTS: AmqpOptions = {
  sendRequest: false,
  sendResponse: false,
  maxBodyLength: 1000,
  parseHeaders: true,
  parseArguments: true,
  hideConnectionInformation: true,
  maxFrameBytes: 1024 * 1024,
  maxBufferedBytes: 64 * 1024 * 1024,
  maxPending: 1024,
  maxPendingTotal: 16_384,
  transactionTimeoutSec: 10,
};

class Counters extends TransactionCounters {
  constructor(readonly frames: FrameCounters) {
    super();
  }
  /** method frames read, by method */
  readonly methods = new ReasonCounter();
  /** messages carried with content, by method */
  readonly contents = new ReasonCounter();
  /** requests answered by the peer's channel.close or connection.close instead of their -ok */
  answeredByClose = 0;
  /** protocol headers by version ("0-9-1") */
  readonly protocolHeaders = new ReasonCounter();
  /** connections that are not AMQP 0-9-1 after their protocol header (AMQP 1.0): not analysed */
  notAnalysed = 0;
}

/** one method as read, with its content when it carries one */
class Msg {
  fields: Record<string, unknown> = {};
  subject = '';
  notes: string[] | null = null;
  /** bytes lost to the capture inside it */
  missing = 0;
  wireBytes = 0;
  startSec = 0;
  startNsec = 0;
  endSec = 0;
  endNsec = 0;
  // content
  bodySize = -1;
  bodySeen = 0;
  body: Buffer | null = null;
  bodyKept = 0;
  /** the content did not complete: the capture lost part of it */
  partial = false;
  /** a basic.get-ok: the basic.get it answers */
  request: Msg | null = null;

  constructor(
    readonly side: number,
    readonly channel: number,
    readonly def: MethodDef,
  ) {}

  note(text: string): void {
    (this.notes ??= []).push(text);
  }

  get replyCode(): number {
    const c = this.fields['reply-code'];
    return typeof c === 'number' ? c : 0;
  }
}

/** the key of a connection.close in `closing`: past every channel */
const CONNECTION = 0x100000;

const isClose = (d: MethodDef) => d.name === 'connection.close' || d.name === 'channel.close';

const UNANSWERED = {
  closed: ['no_response', 'no response before the connection closed'],
  timeout: ['timeout', 'no response within the transaction timeout'],
  skipped: ['no_response', 'no response: a later request on the channel was answered'],
  lost: ['packet_loss', 'reply lost to packet loss'],
  unreadable: ['unreadable', 'reply lost in bytes that could not be read'],
  pending_limit: ['pending_limit', 'too many requests waiting for replies'],
  pending_limit_total: ['pending_limit_total', 'too many requests waiting for replies over all connections'],
} as const;

const INCOMPLETE = {
  closed: 'the connection closed before the content was complete',
  timeout: 'the content was not complete within the transaction timeout',
  next: 'content cut short by the next method on the channel',
  lost: 'content cut short by packet loss',
  unreadable: 'content cut short by bytes that could not be read',
  pending_limit: 'content cut short: too many messages waiting',
  oversized: 'content header frame not read: longer than maxFrameBytes, or the buffer budget spent',
} as const;

class AmqpConnection implements TcpAnalyzer, FrameOwner {
  private readonly parsers: [FrameParser, FrameParser];
  /** synchronous requests waiting for replies, by side * 65536 + channel, oldest first */
  private readonly waiting = new Map<number, Msg[]>();
  /** messages waiting for their content, by side * 65536 + channel */
  private readonly contents = new Map<number, Msg>();
  /** requests and contents this connection holds */
  private size = 0;
  /** channels a side has closed and whose close-ok has not come, by side * 65536 + channel (+ CONNECTION: the connection) */
  private readonly closing = new Set<number>();
  private readonly keepRequestBody: boolean;
  private readonly keepResponseBody: boolean;

  constructor(
    private readonly ep: Endpoints,
    private readonly out: Emitter,
    private readonly opts: AmqpOptions,
    private readonly n: Counters,
    midStream: boolean,
  ) {
    this.parsers = [new FrameParser(0, this, opts.maxFrameBytes, n.frames, midStream), new FrameParser(1, this, opts.maxFrameBytes, n.frames, midStream)];
    this.keepRequestBody = opts.sendRequest && opts.maxBodyLength > 0;
    this.keepResponseBody = opts.sendResponse && opts.maxBodyLength > 0;
  }

  data(side: number, buf: Buffer, off: number, len: number, tsSec: number, tsNsec: number): void {
    this.parsers[side].feed(buf, off, len, tsSec, tsNsec);
  }

  gap(side: number, n: number): void {
    this.parsers[side].gap(n);
  }

  close(): void {
    this.parsers[0].close();
    this.parsers[1].close();
    for (const m of [...this.contents.values()]) this.incomplete(m, 'closed');
    for (const q of [...this.waiting.values()]) for (const m of [...q]) this.unanswered(m, 'closed');
  }

  expire(nowSec: number): void {
    if (this.size === 0) return;
    const limit = this.opts.transactionTimeoutSec;
    for (const m of [...this.contents.values()]) if (nowSec - m.endSec >= limit) this.incomplete(m, 'timeout');
    for (const q of [...this.waiting.values()]) {
      for (const m of [...q]) {
        if (nowSec - m.endSec < limit) break;
        this.unanswered(m, 'timeout');
      }
    }
  }

  discard(): void {
    this.parsers[0].close();
    this.parsers[1].close();
    this.n.pending -= this.size;
    this.size = 0;
    this.waiting.clear();
    this.contents.clear();
  }

  // ---- frames

  violation(side: number, reason: string): void {
    const r = `${side === 0 ? 'request' : 'response'}_${reason}`;
    this.n.violations.add(r);
    this.out.anomaly?.('amqp', r, this.ep);
  }

  /**
   * The place in `side`'s stream was lost: its messages with content in progress end
   * there, and the other side's requests waiting may have had their replies in the
   * lost bytes: they leave unanswered rather than take a later reply that is not theirs.
   */
  lost(side: number, why: 'gap' | 'violation'): void {
    if (this.size === 0) return;
    for (const m of [...this.contents.values()]) if (m.side === side) this.incomplete(m, why === 'gap' ? 'lost' : 'unreadable');
    for (const [key, q] of [...this.waiting]) if (key >> 16 !== side) for (const m of [...q]) this.unanswered(m, why === 'gap' ? 'lost' : 'unreadable');
  }

  protocolHeader(side: number, a: number, b: number, c: number, d: number): void {
    if (a === 0 && b === 0 && c === 9) this.n.protocolHeaders.add(`0-9-${d}`);
    else if (a === 1 && b === 1) this.n.protocolHeaders.add(`0-${c}-${d}`);
    else {
      // AMQP 1.0 (protocol id 0, 2 for TLS, 3 for SASL): another protocol from here on
      this.n.protocolHeaders.add(`${a === 0 || a === 2 || a === 3 ? '1.0' : 'other'}`);
      this.n.notAnalysed++;
      this.parsers[side ^ 1].stop();
    }
  }

  bodyData(side: number, channel: number, buf: Buffer, off: number, len: number): void {
    const m = this.contents.get(side * 65536 + channel);
    if (m === undefined || m.body === null) return;
    const room = m.body.length - m.bodyKept;
    const take = Math.min(room, len);
    if (take > 0) {
      buf.copy(m.body, m.bodyKept, off, off + take);
      m.bodyKept += take;
    }
  }

  frame(side: number, f: FrameInfo): void {
    if (f.type === FRAME_METHOD) this.method(side, f);
    else if (f.type === FRAME_HEADER) this.contentHeader(side, f);
    else if (f.type === FRAME_BODY) this.bodyFrame(side, f);
  }

  private method(side: number, f: FrameInfo): void {
    const key = side * 65536 + f.channel;
    const open = this.contents.get(key);
    if (open !== undefined) {
      this.violation(side, 'content_incomplete');
      this.incomplete(open, 'next');
    }
    if (f.buf === null) return; // longer than maxFrameBytes: not read
    if (f.end - f.off < 4) {
      this.violation(side, 'method_too_short');
      return;
    }
    const def = methodDef(f.buf.readUInt16BE(f.off), f.buf.readUInt16BE(f.off + 2));
    if (def === undefined) {
      this.n.methods.add('unknown');
      this.violation(side, 'unknown_method');
      return;
    }
    this.n.methods.add(def.name);
    const m = new Msg(side, f.channel, def);
    m.wireBytes = f.size + 8;
    m.startSec = f.startSec;
    m.startNsec = f.startNsec;
    m.endSec = f.endSec;
    m.endNsec = f.endNsec;
    const r = new Reader(f.buf, f.off + 4, f.end);
    m.subject = def.args(r, m.fields, this.opts.parseArguments);
    if (r.failed) {
      this.violation(side, 'method_arguments');
      m.note('method arguments cut short');
    } else if (r.partial) m.note('a field table could not be read whole');

    if (def.content) return this.startContent(m);
    switch (def.kind) {
      case Kind.request:
        this.request(m);
        break;
      case Kind.reply:
        this.reply(m);
        break;
      default:
        this.n.started++;
        this.emit(m, null, null);
    }
  }

  private request(m: Msg): void {
    this.n.started++;
    const peer = (m.side ^ 1) * 65536;
    if (!isClose(m.def) && (this.closing.has(peer + m.channel) || this.closing.has(peer + CONNECTION))) {
      // the peer discards every method but close and close-ok until its close is answered
      this.n.unmatched.add('after_close');
      this.emit(m, null, 'sent after the peer closed the channel: discarded');
      return;
    }
    if (isClose(m.def)) this.closing.add(m.side * 65536 + (m.def.name === 'connection.close' ? CONNECTION : m.channel));
    if (m.fields['no-wait'] === true) {
      this.emit(m, null, null);
      return;
    }
    if (isClose(m.def)) this.closeAnswers(m);
    const key = m.side * 65536 + m.channel;
    let q = this.waiting.get(key);
    if (q === undefined) this.waiting.set(key, (q = []));
    q.push(m);
    this.size++;
    this.n.pending++;
    this.limit();
  }

  /** a close from one side answers the other side's requests on the channel (all channels: connection.close) */
  private closeAnswers(close: Msg): void {
    const all = close.def.name === 'connection.close';
    for (const [key, q] of [...this.waiting]) {
      if (key >> 16 === close.side || (!all && (key & 0xffff) !== close.channel)) continue;
      for (const m of [...q]) {
        if (isClose(m.def)) continue;
        this.take(m);
        this.n.answeredByClose++;
        const code = close.replyCode;
        m.note(`answered by ${close.def.name} ${code} ${String(close.fields['reply-text'] ?? '')}`.trimEnd());
        for (const k of ['reply-code', 'reply-text', 'class-id', 'method-id']) if (k in close.fields) m.fields[k] = close.fields[k];
        this.emit(m, null, null, code >= 300 ? 'Error' : undefined);
      }
    }
  }

  private reply(m: Msg): void {
    const req = this.answered(m);
    if (req === null) {
      this.n.started++;
      this.n.unmatched.add('response_without_request');
      this.emit(null, m, 'reply without a request');
      return;
    }
    if (isClose(req.def)) this.closing.delete(req.side * 65536 + (req.def.name === 'connection.close' ? CONNECTION : req.channel));
    this.emit(req, m, null);
  }

  /** the oldest request of the other side on the reply's channel that it answers, taken off the queue (those before it left unanswered) */
  private answered(m: Msg): Msg | null {
    const q = this.waiting.get((m.side ^ 1) * 65536 + m.channel);
    if (q === undefined) return null;
    let i = 0;
    while (i < q.length && !q[i].def.replies.includes(m.def.key)) i++;
    if (i === q.length) return null;
    const req = q[i];
    for (const skipped of q.slice(0, i)) this.unanswered(skipped, 'skipped');
    this.take(req);
    return req;
  }

  private take(m: Msg): void {
    const key = m.side * 65536 + m.channel;
    const q = this.waiting.get(key);
    if (q === undefined) return;
    const i = q.indexOf(m);
    if (i < 0) return;
    q.splice(i, 1);
    if (q.length === 0) this.waiting.delete(key);
    this.size--;
    this.n.pending--;
  }

  private startContent(m: Msg): void {
    if (m.def.kind === Kind.reply) {
      // basic.get-ok: the transaction is the basic.get's
      m.request = this.answered(m);
      if (m.request === null) {
        this.n.unmatched.add('response_without_request');
        m.note('reply without a request');
      } else {
        // it stays started: counted pending again below
        this.n.started--;
      }
    }
    this.n.started++;
    this.n.contents.add(m.def.name);
    const keep = m.side === 0 ? this.keepRequestBody : this.keepResponseBody;
    if (keep) m.body = Buffer.alloc(0);
    this.contents.set(m.side * 65536 + m.channel, m);
    this.size++;
    this.n.pending++;
    this.limit();
  }

  private contentHeader(side: number, f: FrameInfo): void {
    const m = this.contents.get(side * 65536 + f.channel);
    if (m === undefined || m.bodySize >= 0) {
      this.violation(side, 'unexpected_content_header');
      return;
    }
    m.wireBytes += f.size + 8;
    m.endSec = f.endSec;
    m.endNsec = f.endNsec;
    if (f.buf === null) return this.incomplete(m, 'oversized');
    const h = readContentHeader(f.buf, f.off, f.end, m.fields, this.opts.parseHeaders);
    if (h.bodySize < 0) {
      this.violation(side, 'content_header_too_short');
      return this.incomplete(m, 'lost');
    }
    if (h.partial) m.note('content properties could not be read whole');
    m.bodySize = h.bodySize;
    m.fields['body-size'] = h.bodySize;
    if (m.body !== null) m.body = Buffer.allocUnsafe(Math.min(this.opts.maxBodyLength, h.bodySize));
    if (h.bodySize === 0) this.completeContent(m);
  }

  private bodyFrame(side: number, f: FrameInfo): void {
    const m = this.contents.get(side * 65536 + f.channel);
    if (m === undefined || m.bodySize < 0) {
      this.violation(side, 'unexpected_body');
      return;
    }
    m.wireBytes += f.size + 8;
    m.bodySeen += f.size;
    m.missing += f.missing;
    m.endSec = f.endSec;
    m.endNsec = f.endNsec;
    if (m.bodySeen >= m.bodySize) {
      if (m.bodySeen > m.bodySize) {
        this.violation(side, 'body_too_long');
        m.note(`body frames of ${m.bodySeen} bytes for a body of ${m.bodySize}`);
      }
      this.completeContent(m);
    }
  }

  private completeContent(m: Msg): void {
    this.contents.delete(m.side * 65536 + m.channel);
    this.size--;
    this.n.pending--;
    if (m.missing > 0) m.note(`packet loss: ${m.missing} body bytes missing`);
    if (m.request !== null) this.emit(m.request, m, null);
    else if (m.def.kind === Kind.reply) this.emit(null, m, 'reply without a request');
    else this.emit(m, null, null);
  }

  private incomplete(m: Msg, why: keyof typeof INCOMPLETE): void {
    m.note(INCOMPLETE[why]);
    if (why === 'lost') m.partial = true;
    this.n.unmatched.add(`content_${why}`);
    this.completeContent(m);
  }

  private unanswered(m: Msg, why: keyof typeof UNANSWERED): void {
    this.take(m);
    const [reason, note] = UNANSWERED[why];
    this.n.unmatched.add(reason);
    this.emit(m, null, note);
  }

  /** the bounds on what waits: the oldest request (else the oldest content) leaves */
  private limit(): void {
    for (;;) {
      let why: 'pending_limit' | 'pending_limit_total';
      if (this.size > this.opts.maxPending) why = 'pending_limit';
      else if (this.n.pending > this.opts.maxPendingTotal && this.size > 1) why = 'pending_limit_total';
      else return;
      let oldest: Msg | null = null;
      for (const q of this.waiting.values()) if (oldest === null || before(q[0], oldest)) oldest = q[0];
      if (oldest !== null) this.unanswered(oldest, why);
      else {
        const c = this.contents.values().next().value as Msg | undefined;
        if (c === undefined) return;
        this.incomplete(c, 'pending_limit');
      }
    }
  }

  // ---- events

  /**
   * A transaction: `req` with its reply `resp`, or either alone. A request alone
   * without `note` expects no reply (asynchronous, no-wait, a message with its
   * content); with one it is unanswered.
   */
  private emit(req: Msg | null, resp: Msg | null, note: string | null, status?: 'Error'): void {
    const n = this.n;
    const first = (req ?? resp)!;
    const def = first.def;
    if (this.opts.hideConnectionInformation && (def.hidden || (isClose(def) && first.replyCode < 300))) {
      n.dropped.add('connection_information');
      return;
    }
    n.transactions++;
    const last = resp ?? req!;
    const unmatched = req === null ? UNMATCHED_RESPONSE : resp === null && note !== null ? UNMATCHED_REQUEST : null;
    let method = def.name;
    if (resp !== null && resp.def.name === 'basic.get-empty') method = 'basic.get-empty';
    const error = status === 'Error' || unmatched !== null || method === 'basic.return' || method === 'basic.reject' || (isClose(def) && first.replyCode >= 300);
    let clientBytes = 0;
    let serverBytes = 0;
    for (const m of [req, resp]) {
      if (m === null) continue;
      if (m.side === 0) clientBytes += m.wireBytes;
      else serverBytes += m.wireBytes;
    }
    const e = transactionEvent('amqp', this.ep, { startSec: first.startSec, startNsec: first.startNsec, endSec: last.endSec, endNsec: last.endNsec }, error ? 'Error' : 'OK', clientBytes, serverBytes);
    e.method = method;
    const o = this.opts;
    if (o.sendRequest && req !== null) e.request = req.side === 0 && req.def.content && req.body !== null ? bodyText(req) : req.subject !== '' ? `${method} ${req.subject}` : method;
    if (o.sendResponse) {
      const content = resp !== null && resp.def.content ? resp : req !== null && req.side === 1 && req.def.content ? req : null;
      if (content !== null && content.body !== null) e.response = bodyText(content);
      else if (resp !== null) e.response = 'OK';
    }
    const amqp: EventObject = { channel: first.channel };
    if (req !== null) Object.assign(amqp, req.fields);
    if (resp !== null) Object.assign(amqp, resp.fields);
    e.amqp = amqp;
    const notes: string[] = [];
    if (req?.notes) notes.push(...req.notes);
    if (resp?.notes) notes.push(...resp.notes);
    if (note !== null && !(resp?.notes?.includes(note) ?? false)) notes.push(note);
    if ((req?.missing ?? 0) > 0 || (resp?.missing ?? 0) > 0 || req?.partial || resp?.partial) n.partial++;
    closeEvent(e, notes, unmatched);
    this.out.emit(e);
  }
}

function before(a: Msg, b: Msg): boolean {
  return a.startSec < b.startSec || (a.startSec === b.startSec && a.startNsec < b.startNsec);
}

/** a body as packetbeat shows it: text for text and JSON without an encoding, else its bytes in decimal; ` [...]` when cut */
function bodyText(m: Msg): string {
  const body = m.body!.subarray(0, m.bodyKept);
  const type = m.fields['content-type'];
  const enc = m.fields['content-encoding'];
  const text = (enc === undefined || enc === '') && typeof type === 'string' && (type.includes('text') || type.includes('json'));
  const s = text ? body.toString('utf8') : Array.from(body, (c) => String(c)).join(' ');
  return m.bodyKept < Math.max(m.bodySize, m.bodySeen) ? `${s} [...]` : s;
}

/**
 * The first bytes of an AMQP 0-9-1 connection: the client's protocol header
 * ("AMQP" 0 0 9 1, or 1 1 0 9 / 0 0 9 0 of the older versions) or the server's
 * connection.start; on a connection seen mid-stream, a whole method frame of a known
 * method with its frame-end octet.
 */
export function probe(b: Buffer, off: number, len: number, side: number): boolean {
  if (len >= 8 && b.toString('latin1', off, off + 4) === 'AMQP') {
    const v = b.readUInt32BE(off + 4);
    return side === 0 && (v === 0x00000901 || v === 0x00000900 || v === 0x01010009 || v === 0x01010008);
  }
  return len >= 12 && b[off] === FRAME_METHOD && methodFrameAt(b, off, len);
}

export const amqp: Protocol<AmqpOptions> = {
  name: 'amqp',
  tcpPorts: [5672],
  udpPorts: [],
  probe,
  create(options, out) {
    const opts: AmqpOptions = { ...AMQP_DEFAULTS, ...options };
    const n = new Counters(new FrameCounters(opts.maxBufferedBytes));
    return {
      tcp: (ctx: TcpContext) => new AmqpConnection(ctx.endpoints, out, opts, n, ctx.midStream),
      stats: (): Stats => ({
        transactions_started: n.started,
        transactions_dropped: n.dropped.toJSON(),
        pending: n.pending,
        transactions: n.transactions,
        partial: n.partial,
        frames: { method: n.frames.method, header: n.frames.header, body: n.frames.body, heartbeat: n.frames.heartbeat, oversized: n.frames.oversized, budget_exceeded: n.frames.budgetExceeded },
        buffered_bytes: n.frames.held,
        methods: n.methods.toJSON(),
        contents: n.contents.toJSON(),
        answered_by_close: n.answeredByClose,
        protocol_headers: n.protocolHeaders.toJSON(),
        not_analysed: n.notAnalysed,
        bytes_skipped: n.frames.skipped,
        unmatched: n.unmatched.toJSON(),
        violations: n.violations.toJSON(),
      }),
    };
  },
};
