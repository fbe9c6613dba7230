/**
 * Apache Thrift RPC: calls paired with their replies by sequence id and method (a
 * connection may carry many calls at once), over the binary and compact protocols,
 * unframed ("socket") or framed, told apart per message. Fields as packetbeat's
 * thrift analyzer names and renders them (`thrift.params`, `thrift.return_value`,
 * `thrift.exceptions`, `thrift.service`, `query`, `path`), with names for field ids
 * from IDL files when given.
 */
import { ReasonCounter, TransactionCounters } from '../../core/counters';
import type { Stats } from '../../core/stage';
import type { Endpoints } from '../../events/endpoints';
import { closeEvent, transactionEvent, UNMATCHED_REQUEST, UNMATCHED_RESPONSE } from '../../events/transaction';
import type { Emitter, Protocol, TcpAnalyzer, TcpContext } from '../analyzer';
import { loadIdl, type IdlMethod, type ThriftIdl } from './idl';
import { CALL, EXCEPTION, MESSAGE_TYPE_NAMES, ONEWAY, ThriftMessage } from './message';
import { plausibleStart, ThriftDecoder, type DecoderOptions } from './wire';

export interface ThriftOptions extends DecoderOptions {
  /** IDL files whose services name the methods' arguments and exceptions (packetbeat's idl_files) */
  idlFiles: string[];
  /** read the replies (packetbeat's capture_reply, default true); off: replies are paired, their values not shown */
  captureReply: boolean;
  /** put the query into a `request` field (packetbeat's send_request; default false) */
  sendRequest: boolean;
  /** put the return value or exceptions into a `response` field (packetbeat's send_response; default false) */
  sendResponse: boolean;
  /** calls waiting for replies on one connection (default 1000) */
  maxPending: number;
  /** calls waiting over all connections (default 65536); each connection keeps its newest */
  maxPendingTotal: number;
  /** text of their arguments kept over all connections (default 64 MiB); each connection keeps its newest */
  maxPendingBytesTotal: number;
  /** seconds of packet time a call waits for its reply (default 10, as packetbeat) */
  transactionTimeoutSec: number;
}

export const THRIFT_DEFAULTS: ThriftOptions = {
  idlFiles: [],
  captureReply: true,
  sendRequest: false,
  sendResponse: false,
  stringMaxSize: 200,
  collectionMaxSize: 15,
  dropAfterNStructFields: 500,
  obfuscateStrings: false,
  maxDepth: 32,
  maxTextBytes: 32 * 1024,
  maxMessageBytes: 16 * 1024 * 1024,
  maxPending: 1000,
  maxPendingTotal: 65_536,
  maxPendingBytesTotal: 64 * 1024 * 1024,
  transactionTimeoutSec: 10,
};

class ThriftCounters extends TransactionCounters {
  /** the argument text of the calls waiting, over all connections */
  pendingBytes = 0;
  readonly messages = new ReasonCounter();
  /** replies that came after their call was emitted unanswered (timeout, limits): consumed */
  lateReplies = 0;
  /** messages cut short: packet loss, damage, the connection's end */
  readonly cut = new ReasonCounter();
  /** messages with values left out of their text (maxTextBytes) */
  textCut = 0;
  /** strings shown cut at stringMaxSize */
  stringsCut = 0;
  /** collections and structs shown cut at collectionMaxSize */
  collectionsCut = 0;
  /** where a stream lost its place */
  readonly lost = new ReasonCounter();
}

/** a call waiting for its reply */
class Call {
  answered = false;
  /** the text it holds (its arguments) */
  readonly bytes: number;
  constructor(readonly msg: ThriftMessage) {
    let n = msg.method.length;
    for (const v of msg.fieldValues) n += v.length;
    this.bytes = n;
  }
}

/** calls whose replies are no longer awaited, remembered so a late reply is not taken for one without a call */
const MAX_GONE = 1024;

class ThriftConnection implements TcpAnalyzer {
  private readonly req: ThriftDecoder;
  private readonly resp: ThriftDecoder;
  /** calls waiting, oldest first (answered ones are skipped): q[head..] */
  private q: Call[] = [];
  private head = 0;
  private size = 0;
  /** waiting calls by sequence id */
  private readonly bySeq = new Map<number, Call[]>();
  /** `seq:method` of calls emitted unanswered */
  private readonly gone = new Set<string>();

  constructor(
    midStream: boolean,
    private readonly ep: Endpoints,
    private readonly out: Emitter,
    private readonly opts: ThriftOptions,
    private readonly idl: ThriftIdl | null,
    private readonly n: ThriftCounters,
  ) {
    this.req = new ThriftDecoder(opts, { message: (m) => this.request(m), violation: (r) => this.violation(`request_${r}`) });
    this.resp = new ThriftDecoder(opts, { message: (m) => this.response(m), violation: (r) => this.violation(`response_${r}`) });
    if (midStream) {
      this.req.lose();
      this.resp.lose();
    }
  }

  data(side: number, buf: Buffer, off: number, len: number, tsSec: number, tsNsec: number): void {
    (side === 0 ? this.req : this.resp).feed(buf, off, len, tsSec, tsNsec);
  }

  gap(side: number, len: number): void {
    const kept = (side === 0 ? this.req : this.resp).gap(len);
    if (!kept) this.n.lost.add(side === 0 ? 'request_gap' : 'response_gap');
  }

  close(): void {
    this.req.close();
    this.resp.close();
    while (this.size > 0) this.unanswered(this.shift()!, 'no_response', 'no response before the connection closed');
  }

  expire(nowSec: number): void {
    if (!this.resp.idle) return; // a reply in progress keeps its call alive
    while (this.size > 0) {
      const c = this.peekOldest()!;
      if (nowSec - c.msg.endSec < this.opts.transactionTimeoutSec) break;
      this.unanswered(this.shift()!, 'timeout', 'no response within the transaction timeout');
    }
  }

  discard(): void {
    this.n.pending -= this.size;
    for (let i = this.head; i < this.q.length; i++) if (!this.q[i].answered) this.n.pendingBytes -= this.q[i].bytes;
    this.q = [];
    this.head = 0;
    this.size = 0;
    this.bySeq.clear();
  }

  private violation(reason: string): void {
    this.n.violations.add(reason);
    this.out.anomaly?.('thrift', reason, this.ep);
  }

  private request(m: ThriftMessage): void {
    this.n.messages.add(MESSAGE_TYPE_NAMES[m.type]);
    this.counted(m, 'request');
    this.n.started++;
    if (m.type === ONEWAY) {
      this.emit(m, null, null);
      return;
    }
    const c = new Call(m);
    this.q.push(c);
    this.size++;
    let list = this.bySeq.get(m.seqId);
    if (list === undefined) this.bySeq.set(m.seqId, (list = []));
    list.push(c);
    this.n.pending++;
    this.n.pendingBytes += c.bytes;
    this.limit();
  }

  /** a message's cuts, in the counters */
  private counted(m: ThriftMessage, side: string): void {
    if (m.partial !== '') this.n.cut.add(`${side}_${m.partial === 'packet loss' ? 'packet_loss' : m.partial === 'unreadable' ? 'unreadable' : 'closed'}`);
    if (m.cut) this.n.textCut++;
    this.n.stringsCut += m.stringsCut;
    this.n.collectionsCut += m.collectionsCut;
  }

  private limit(): void {
    const o = this.opts;
    while (this.size > 1) {
      let reason: string;
      if (this.size > o.maxPending) reason = 'pending_limit';
      else if (this.n.pending > o.maxPendingTotal) reason = 'pending_limit_total';
      else if (this.n.pendingBytes > o.maxPendingBytesTotal) reason = 'pending_bytes_limit_total';
      else return;
      this.unanswered(this.shift()!, reason, 'too many calls waiting for replies');
    }
  }

  private response(m: ThriftMessage): void {
    this.n.messages.add(MESSAGE_TYPE_NAMES[m.type]);
    this.counted(m, 'response');
    const list = this.bySeq.get(m.seqId);
    let c: Call | undefined;
    if (list !== undefined) {
      // a multiplexed server answers `Calculator:add` as `add`
      const i = list.findIndex((x) => x.msg.method === m.method || baseName(x.msg.method) === m.method);
      if (i >= 0) {
        c = list[i];
        list.splice(i, 1);
        if (list.length === 0) this.bySeq.delete(m.seqId);
      }
    }
    if (c === undefined) {
      const key = `${m.seqId}:${baseName(m.method)}`;
      if (this.gone.delete(key)) {
        this.n.lateReplies++;
        return;
      }
      this.n.started++;
      this.n.unmatched.add('response_without_request');
      this.emit(null, m, 'response without a request');
      return;
    }
    c.answered = true;
    this.size--;
    this.n.pending--;
    this.n.pendingBytes -= c.bytes;
    this.compact();
    this.emit(c.msg, m, null);
  }

  private peekOldest(): Call | undefined {
    while (this.head < this.q.length && this.q[this.head].answered) this.head++;
    return this.head < this.q.length ? this.q[this.head] : undefined;
  }

  /** the oldest waiting call leaves the queue */
  private shift(): Call | undefined {
    const c = this.peekOldest();
    if (c === undefined) return undefined;
    this.head++;
    c.answered = true;
    this.size--;
    this.n.pending--;
    this.n.pendingBytes -= c.bytes;
    const list = this.bySeq.get(c.msg.seqId);
    if (list !== undefined) {
      const i = list.indexOf(c);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.bySeq.delete(c.msg.seqId);
    }
    this.compact();
    return c;
  }

  /** drops answered calls from the queue's front, and the queue's dead part when it is large */
  private compact(): void {
    while (this.head < this.q.length && this.q[this.head].answered) this.head++;
    if (this.head === this.q.length) {
      this.q.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.q.length) {
      this.q = this.q.slice(this.head);
      this.head = 0;
    }
  }

  private unanswered(c: Call, reason: string, note: string): void {
    this.n.unmatched.add(reason);
    if (this.gone.size >= MAX_GONE) this.gone.delete(this.gone.values().next().value!);
    this.gone.add(`${c.msg.seqId}:${baseName(c.msg.method)}`);
    this.emit(c.msg, null, note);
  }

  /** a transaction: a call with its reply, a call alone (oneway, or unanswered: `note`), or a reply alone */
  private emit(req: ThriftMessage | null, resp: ThriftMessage | null, note: string | null): void {
    const n = this.n;
    const o = this.opts;
    n.transactions++;
    const first = (req ?? resp)!;
    const oneway = req !== null && req.type === ONEWAY;
    const method: IdlMethod | undefined = this.idl?.find(first.method);
    let exceptions = '';
    let returnValue: string | null = null;
    if (resp !== null) {
      // a TApplicationException, or a declared exception (a reply whose field is not 0): shown even without captureReply
      if (resp.type === EXCEPTION) exceptions = formatStruct(resp, o.collectionMaxSize, undefined);
      else if (resp.fieldIds.length > 0 && resp.fieldIds[0] !== 0) exceptions = formatStruct(resp, o.collectionMaxSize, method?.exceptions);
      else returnValue = o.captureReply && resp.fieldValues.length > 0 ? resp.fieldValues[0] : '';
    }
    const status = req === null || exceptions !== '' || (resp === null && !oneway) ? 'Error' : 'OK';
    const end = resp !== null ? { endSec: resp.startSec, endNsec: resp.startNsec } : { endSec: first.endSec, endNsec: first.endNsec };
    const e = transactionEvent('thrift', this.ep, { startSec: first.startSec, startNsec: first.startNsec, ...end }, status, req?.wireBytes ?? 0, resp?.wireBytes ?? 0);
    let service = method?.service ?? '';
    let name = first.method;
    if (service === '' && name.includes(':')) {
      // TMultiplexedProtocol: `Service:method`
      const colon = name.indexOf(':');
      service = name.slice(0, colon);
    }
    let query = '';
    const thrift: Record<string, unknown> = {};
    if (req !== null) {
      const params = formatStruct(req, o.collectionMaxSize, method?.params);
      query = name + params;
      e.method = name;
      if (service !== '') e.path = service;
      e.query = query;
      thrift.params = params;
      if (service !== '') thrift.service = service;
    }
    if (resp !== null) {
      thrift.return_value = returnValue ?? '';
      if (exceptions !== '') thrift.exceptions = exceptions;
    }
    thrift.seq_id = first.seqId;
    if (req !== null) thrift.request_type = MESSAGE_TYPE_NAMES[req.type];
    if (resp !== null) thrift.response_type = MESSAGE_TYPE_NAMES[resp.type];
    thrift.protocol = first.protocol;
    thrift.transport = first.framed ? 'framed' : 'socket';
    e.thrift = thrift;
    if (o.sendRequest && req !== null) e.request = query;
    if (o.sendResponse && resp !== null) e.response = exceptions !== '' ? `Exceptions: ${exceptions}` : (returnValue ?? '');
    const notes: string[] = [];
    for (const [m, side] of [
      [req, 'request'],
      [resp, 'response'],
    ] as const) {
      if (m === null) continue;
      if (m.missingBytes > 0) notes.push(`packet loss: ${m.missingBytes} ${side} bytes missing`);
      if (m.partial === 'packet loss') notes.push(`${side} cut by packet loss`);
      else if (m.partial === 'unreadable') notes.push(`${side} unreadable after its header: values shown up to there`);
      else if (m.partial === 'connection closed') notes.push(`${side} cut by the connection's end`);
      if (m.cut) notes.push(`${side} values cut at ${o.maxTextBytes} bytes of text`);
    }
    if (note !== null) notes.push(note);
    if ((req !== null && req.partial !== '') || (resp !== null && resp.partial !== '')) n.partial++;
    closeEvent(e, notes, req === null ? UNMATCHED_RESPONSE : resp === null && !oneway ? UNMATCHED_REQUEST : null);
    this.out.emit(e);
  }
}

/** a method's name without the service a TMultiplexedProtocol call puts before it */
function baseName(name: string): string {
  const colon = name.lastIndexOf(':');
  return colon < 0 ? name : name.slice(colon + 1);
}

/** packetbeat's rendering of a message's top-level struct: `(1: x, 2: y)`, names for ids when known */
function formatStruct(m: ThriftMessage, max: number, names: Map<number, string> | undefined): string {
  let s = '(';
  const n = Math.min(m.fieldValues.length, max);
  for (let i = 0; i < n; i++) {
    const id = m.fieldIds[i];
    s += (i > 0 ? ', ' : '') + (names?.get(id) ?? String(id)) + ': ' + m.fieldValues[i];
  }
  if (m.fieldCount > n) s += n > 0 ? ', ...' : '...';
  return s + ')';
}

/** a call as the client's first bytes, or a reply as the server's: framed or not, binary or compact */
export function probe(b: Buffer, off: number, len: number, side: number): boolean {
  // calls and oneway calls from the client; replies and exceptions from the server
  return plausibleStart(b, off, len, side === 0 ? (1 << CALL) | (1 << ONEWAY) : (1 << 2) | (1 << EXCEPTION)) === 1;
}

export const thrift: Protocol<ThriftOptions> = {
  name: 'thrift',
  tcpPorts: [9090],
  udpPorts: [],
  probe,
  create(options) {
    const opts: ThriftOptions = { ...THRIFT_DEFAULTS, ...options };
    const idl = opts.idlFiles.length > 0 ? loadIdl(opts.idlFiles) : null;
    const n = new ThriftCounters();
    return {
      tcp: (ctx: TcpContext) => new ThriftConnection(ctx.midStream, ctx.endpoints, ctx.out, opts, idl, n),
      stats: (): Stats => ({
        transactions_started: n.started,
        transactions_dropped: n.dropped.toJSON(),
        pending: n.pending,
        pending_bytes: n.pendingBytes,
        transactions: n.transactions,
        messages: n.messages.toJSON(),
        late_replies: n.lateReplies,
        partial: n.partial,
        cut: n.cut.toJSON(),
        text_cut: n.textCut,
        strings_cut: n.stringsCut,
        collections_cut: n.collectionsCut,
        unmatched: n.unmatched.toJSON(),
        lost: n.lost.toJSON(),
        violations: n.violations.toJSON(),
      }),
    };
  },
};
