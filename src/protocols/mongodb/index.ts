import { ReasonCounter, TransactionCounters } from '../../core/counters';
import type { Stats } from '../../core/stage';
import type { Endpoints } from '../../events/endpoints';
import { closeEvent, transactionEvent, UNMATCHED_REQUEST, UNMATCHED_RESPONSE, type EventObject } from '../../events/transaction';
import type { Emitter, Protocol, TcpAnalyzer, TcpContext } from '../analyzer';
import { Cut, FrameBudget, Framer, plausibleHeader, type FrameSink } from './framer';
import { MongoDecoder, MongoMessage, Op, opcodeName, type ViolationSink } from './wire';

export interface MongodbOptions {
  /** put the whole request into `request` (default false, as packetbeat's send_request) */
  sendRequest: boolean;
  /** put the reply's documents into `response` (default false, as packetbeat's send_response) */
  sendResponse: boolean;
  /** documents of a reply in `response`, then `[...]` (default 10, as packetbeat's max_docs) */
  maxDocs: number;
  /** characters of each document shown, and of `query` and `request`, then ` ...` (default 5000, as packetbeat's max_doc_length) */
  maxDocLength: number;
  /** nesting of documents decoded (default 100, MongoDB's own limit) */
  maxDepth: number;
  /** a longer message is decoded from its first 64 KiB only (default 10 MiB, packetbeat's stream limit) */
  maxMessageBytes: number;
  /** bytes of messages split across packets held over all connections (default 64 MiB) */
  maxBufferedBytes: number;
  /** requests waiting for replies, per connection (default 256) */
  maxPending: number;
  /** requests waiting for replies over all connections (default 16384) */
  maxPendingTotal: number;
  /** seconds of packet time a request waits for its reply (default 10, as packetbeat) */
  transactionTimeoutSec: number;
}

export const MONGODB_DEFAULTS: MongodbOptions = {
  sendRequest: false,
  sendResponse: false,
  maxDocs: 10,
  maxDocLength: 5000,
  maxDepth: 100,
  maxMessageBytes: 10 * 1024 * 1024,
  maxBufferedBytes: 64 * 1024 * 1024,
  maxPending: 256,
  maxPendingTotal: 16_384,
  transactionTimeoutSec: 10,
};

class MongoCounters extends TransactionCounters {
  requests = 0;
  responses = 0;
  readonly notDecoded = new ReasonCounter();
  readonly compressed = new ReasonCounter();
}

/** what the protocol instance shares between its connections */
interface Shared {
  readonly opts: MongodbOptions;
  readonly n: MongoCounters;
  readonly decoder: MongoDecoder;
  readonly budget: FrameBudget;
}

/** moreToCome requests remembered per connection */
const QUIET_KEPT = 8;

const CUT_REASON = ['', 'message_too_large', 'buffer_limit', 'gap', 'closed'];

class MongoConnection implements TcpAnalyzer, FrameSink, ViolationSink {
  private readonly framers: [Framer, Framer];
  /** requests waiting for replies, by requestID, oldest first */
  private readonly pending = new Map<number, MongoMessage>();
  /**
   * replies waiting for their requests, by responseTo: loss in the request direction
   * holds the requests behind it in the reorderer while their replies come through
   */
  private readonly early = new Map<number, MongoMessage>();
  /** bytes of this direction were lost: a reply without its request may be why */
  private readonly lost = [false, false];
  /** the last requests that asked for no reply (moreToCome), to explain a server that answers anyway */
  private readonly quiet: MongoMessage[] = [];

  constructor(
    private readonly ep: Endpoints,
    private readonly out: Emitter,
    private readonly s: Shared,
    midStream: boolean,
  ) {
    this.framers = [new Framer(0, this, s.budget, midStream), new Framer(1, this, s.budget, midStream)];
  }

  data(side: number, buf: Buffer, off: number, len: number, tsSec: number, tsNsec: number): void {
    this.framers[side].data(buf, off, len, tsSec, tsNsec);
  }

  gap(side: number, n: number, tsSec: number, tsNsec: number): void {
    this.lost[side] = true;
    this.framers[side].gap(n, tsSec, tsNsec);
  }

  close(tsSec: number, tsNsec: number): void {
    this.framers[0].close(tsSec, tsNsec);
    this.framers[1].close(tsSec, tsNsec);
    for (const m of this.pending.values()) this.unanswered(m, 'no_response', 'no response before the connection closed');
    for (const m of this.early.values()) this.orphan(m);
  }

  expire(nowSec: number): void {
    const timeout = this.s.opts.transactionTimeoutSec;
    // a message in progress may be the one that completes a transaction
    if (!this.framers[1].busy) {
      for (const m of this.pending.values()) {
        if (nowSec - m.startSec < timeout) break;
        this.unanswered(m, 'timeout', 'no response within the transaction timeout');
      }
    }
    if (!this.framers[0].busy) {
      for (const m of this.early.values()) {
        if (nowSec - m.startSec < timeout) break;
        this.orphan(m);
      }
    }
  }

  discard(): void {
    this.s.n.pending -= this.pending.size + this.early.size;
    this.pending.clear();
    this.early.clear();
    this.framers[0].discard();
    this.framers[1].discard();
  }

  violation(reason: string): void {
    this.s.n.violations.add(reason);
    this.out.anomaly?.('mongodb', reason, this.ep);
  }

  undecoded(reason: string): void {
    this.s.n.notDecoded.add(reason);
  }

  message(side: number, b: Buffer, off: number, len: number, total: number, cut: Cut, missing: number, startSec: number, startNsec: number, endSec: number, endNsec: number): void {
    const m = new MongoMessage();
    m.startSec = startSec;
    m.startNsec = startNsec;
    m.endSec = endSec;
    m.endNsec = endNsec;
    m.wireBytes = total;
    m.missingBytes = missing;
    this.s.decoder.parse(b, off, len, cut !== Cut.none, m, this);
    if (m.compressor !== '') this.s.n.compressed.add(m.compressor);
    if (cut !== Cut.none) {
      this.s.n.notDecoded.add(CUT_REASON[cut]);
      if (cut === Cut.tooLarge) m.note(`${m.side} of ${total} bytes is over maxMessageBytes: read from its first ${len} bytes`);
      else if (cut === Cut.bufferLimit) m.note(`${m.side} of ${total} bytes not buffered (maxBufferedBytes reached): read from its first ${len} bytes`);
      else if (cut === Cut.closed) m.note(`connection closed ${total - len} bytes before the end of the ${m.side}`);
    }
    if (m.isResponse !== (side === 1)) this.violation('direction_mismatch');
    if (m.isResponse) this.response(m);
    else this.request(m);
  }

  private request(m: MongoMessage): void {
    const n = this.s.n;
    n.requests++;
    const resp = m.expectsReply ? this.early.get(m.requestId) : undefined;
    if (resp !== undefined) {
      // its reply came first: the transaction it started is completed
      this.take(this.early, resp.responseTo);
      this.answered(m, resp);
      return;
    }
    n.started++;
    if (!m.expectsReply) {
      // moreToCome, and the legacy writes: the server sends nothing back
      if (m.moreToCome) {
        if (this.quiet.length === QUIET_KEPT) this.quiet.shift();
        this.quiet.push(m);
      }
      this.emit(m, null, null);
      return;
    }
    const old = this.pending.get(m.requestId);
    if (old !== undefined) this.unanswered(old, 'replaced', 'another request with the same requestID before a response');
    this.wait(this.pending, m.requestId, m);
  }

  private response(m: MongoMessage): void {
    const n = this.s.n;
    n.responses++;
    const req = this.pending.get(m.responseTo);
    if (req !== undefined) {
      this.take(this.pending, m.responseTo);
      this.answered(req, m);
      return;
    }
    n.started++;
    const quiet = this.quiet.find((q) => q.requestId === m.responseTo);
    if (quiet !== undefined) {
      // a server that answers what asked for no answer (FerretDB 1.24 answers the driver's endSessions)
      n.unmatched.add('response_to_more_to_come');
      this.emit(null, m, `response to a request that expected none (${quiet.method || quiet.side} with moreToCome)`);
      return;
    }
    // its request may still come (held behind a loss), else it is emitted alone at the timeout
    const old = this.early.get(m.responseTo);
    if (old !== undefined) this.orphan(old);
    this.wait(this.early, m.responseTo, m);
  }

  private answered(req: MongoMessage, resp: MongoMessage): void {
    if (resp.moreToCome) {
      // an exhaust cursor: the server sends the next batch unasked, answering this reply's requestID
      this.s.n.started++;
      this.wait(this.pending, resp.requestId, req.continuation(resp));
    }
    this.emit(req, resp, null);
  }

  /** into a waiting table, within the bounds per connection and over all connections */
  private wait(table: Map<number, MongoMessage>, key: number, m: MongoMessage): void {
    const n = this.s.n;
    table.set(key, m);
    n.pending++;
    const total = n.pending > this.s.opts.maxPendingTotal && table.size > 1;
    if (table.size <= this.s.opts.maxPending && !total) return;
    // the oldest leaves; over all connections, each keeps at least its newest
    const oldest = table.values().next().value!;
    const reason = total && table.size <= this.s.opts.maxPending ? 'pending_limit_total' : 'pending_limit';
    if (table === this.early) {
      this.orphan(oldest, reason);
      return;
    }
    this.unanswered(oldest, reason, reason === 'pending_limit' ? 'too many requests waiting for responses' : 'too many requests waiting for responses over all connections');
  }

  private take(table: Map<number, MongoMessage>, key: number): void {
    table.delete(key);
    this.s.n.pending--;
  }

  private unanswered(m: MongoMessage, reason: string, note: string): void {
    this.take(this.pending, m.requestId);
    this.s.n.unmatched.add(reason);
    this.emit(m, null, note);
  }

  /** a reply whose request did not come: at the timeout, the close, or pushed out by the bounds (`reason`) */
  private orphan(m: MongoMessage, reason = 'response_without_request'): void {
    this.take(this.early, m.responseTo);
    this.s.n.unmatched.add(reason);
    this.emit(null, m, this.lost[0] ? 'response without a request (request bytes were lost)' : 'response without a request');
  }

  /** a transaction: a request with its reply, a request that expects none, or either alone (unmatched) */
  private emit(req: MongoMessage | null, resp: MongoMessage | null, note: string | null): void {
    const { n, opts } = this.s;
    n.transactions++;
    const first = (req ?? resp)!;
    const last = resp ?? req!;
    // an OP_REPLY's ok: 0 is an error only for a command (a found document may well hold ok: 0)
    const error = resp === null || (resp.errorIfCommand && (req === null || !req.command)) ? '' : resp.error;
    const answered = req !== null && (resp !== null || !req.expectsReply);
    const e = transactionEvent('mongodb', this.ep, { startSec: first.startSec, startNsec: first.startNsec, endSec: last.endSec, endNsec: last.endNsec }, answered && error === '' ? 'OK' : 'Error', req?.wireBytes ?? 0, resp?.wireBytes ?? 0);
    if (req !== null && req.method !== '') {
      e.method = req.method;
      if (req.resource !== '') e.resource = req.resource;
      e.query = queryText(req, req.params);
    }
    e.mongodb = fields(req, resp, error);
    if (opts.sendRequest && req !== null && req.method !== '' && req.request !== '') e.request = queryText(req, req.request);
    if (opts.sendResponse && resp !== null && resp.documents !== null && resp.documents !== '') e.response = resp.documents;
    const notes: string[] = [];
    if (req?.notes) notes.push(...req.notes);
    if (resp?.notes) notes.push(...resp.notes);
    const reqMissing = req?.missingBytes ?? 0;
    const respMissing = resp?.missingBytes ?? 0;
    if (reqMissing > 0) notes.push(`packet loss: ${reqMissing} request bytes missing`);
    if (respMissing > 0) notes.push(`packet loss: ${respMissing} response bytes missing`);
    if (note !== null) notes.push(note);
    if (reqMissing > 0 || respMissing > 0 || (req !== null && !req.decoded) || (resp !== null && !resp.decoded)) n.partial++;
    closeEvent(e, notes, req === null ? UNMATCHED_RESPONSE : !answered ? UNMATCHED_REQUEST : null);
    this.out.emit(e);
  }
}

/** `resource.method(params)`, with `.skip(n)` and `.limit(n)` of a legacy query, as packetbeat writes it */
function queryText(m: MongoMessage, params: string): string {
  let q = m.resource !== '' ? `${m.resource}.${m.method}(${params})` : `${m.method}(${params})`;
  if (m.numberToSkip > 0) q += `.skip(${m.numberToSkip})`;
  if ((m.opCode === Op.getMore || (m.opCode === Op.query && !m.command)) && m.numberToReturn > 0 && m.numberToReturn < 0x7fffffff) q += `.limit(${m.numberToReturn})`;
  return q;
}

/** mongodb.*: the request's wire fields, then the reply's (the reply's cursor id wins) */
function fields(req: MongoMessage | null, resp: MongoMessage | null, error: string): EventObject {
  const f: EventObject = { opcodeName: opcodeName((req ?? resp)!.opCode) };
  if (req !== null) {
    if (req.fullCollectionName !== '') f.fullCollectionName = req.fullCollectionName;
    if (!Number.isNaN(req.numberToSkip)) f.numberToSkip = req.numberToSkip;
    if (!Number.isNaN(req.numberToReturn)) f.numberToReturn = req.numberToReturn;
    if (req.query !== '') f.query = req.query;
    if (req.returnFieldsSelector !== '') f.returnFieldsSelector = req.returnFieldsSelector;
    if (req.selector !== '') f.selector = req.selector;
    if (req.update !== '') f.update = req.update;
    if (req.message !== '') f.message = req.message;
  }
  if (resp !== null) {
    if (!Number.isNaN(resp.numberReturned)) f.numberReturned = resp.numberReturned;
    if (!Number.isNaN(resp.startingFrom)) f.startingFrom = resp.startingFrom;
  }
  const cursorId = resp !== null && resp.cursorId !== '' ? resp.cursorId : (req?.cursorId ?? '');
  if (cursorId !== '') f.cursorId = cursorId;
  if (error !== '') {
    f.error = error;
    if (!Number.isNaN(resp!.errorCode)) f.errorCode = resp!.errorCode;
    if (resp!.codeName !== '') f.codeName = resp!.codeName;
  }
  return f;
}

export const mongodb: Protocol<MongodbOptions> = {
  name: 'mongodb',
  tcpPorts: [27017],
  udpPorts: [],
  probe(buf, off, len) {
    // a whole plausible header and the first fields of its body (a length in range, a known
    // operation): text protocols and the other binary ones of this codebase fail the length or the opcode
    return plausibleHeader(buf, off, off + len) === 1;
  },
  create(options) {
    const opts: MongodbOptions = { ...MONGODB_DEFAULTS, ...options };
    const s: Shared = {
      opts,
      n: new MongoCounters(),
      decoder: new MongoDecoder(opts),
      budget: new FrameBudget(opts.maxMessageBytes, opts.maxBufferedBytes),
    };
    const n = s.n;
    return {
      tcp: (ctx: TcpContext) => new MongoConnection(ctx.endpoints, ctx.out, s, ctx.midStream),
      stats: (): Stats => ({
        transactions_started: n.started,
        transactions_dropped: n.dropped.toJSON(),
        pending: n.pending,
        requests: n.requests,
        responses: n.responses,
        transactions: n.transactions,
        partial: n.partial,
        unmatched: n.unmatched.toJSON(),
        violations: n.violations.toJSON(),
        not_decoded: n.notDecoded.toJSON(),
        compressed: n.compressed.toJSON(),
        resync_skipped_bytes: s.budget.resyncSkipped,
        buffered_bytes: s.budget.held,
        buffered_peak_bytes: s.budget.peak,
      }),
    };
  },
};
