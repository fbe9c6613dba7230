/**
 * Cassandra's CQL native protocol, v3 to v5: requests paired with their responses by
 * stream id (many in flight on one connection, answered in any order), server
 * pushes (EVENT on a negative stream) as events of their own, v5 frames with their
 * CRCs, LZ4 and Snappy compression. Fields as packetbeat's cassandra analyzer names
 * them (`cassandra.request.*`, `cassandra.response.*`), with what it leaves out
 * filled in: prepared statements' text on EXECUTE and BATCH, consistency levels, v5.
 */
import { ReasonCounter, TransactionCounters } from '../../core/counters';
import type { Stats } from '../../core/stage';
import type { Endpoints } from '../../events/endpoints';
import { closeEvent, transactionEvent, UNMATCHED_REQUEST, UNMATCHED_RESPONSE } from '../../events/transaction';
import type { Emitter, Protocol, TcpAnalyzer, TcpContext } from '../analyzer';
import { decodeRequest, decodeResponse, Reader } from './body';
import { looksLikeCql } from './probe';
import { Budget, DirectionParser, StreamShared, type Envelope, type StreamOwner } from './stream';
import { bodyVersion, flagsName, Op, opName, type Compression } from './wire';

export interface CassandraOptions {
  /** put the request's fields into events (default true, as packetbeat's send_request) */
  sendRequest: boolean;
  /** put the response's fields into events (default true) */
  sendResponse: boolean;
  /** with the request: its envelope header (default true, as packetbeat's send_request_header) */
  sendRequestHeader: boolean;
  /** with the response: its envelope header (default true) */
  sendResponseHeader: boolean;
  /** opcodes whose transactions are not emitted: ['OPTIONS', 'SUPPORTED'] (packetbeat's ignored_ops; default none) */
  ignoredOps: string[];
  /** compression of connections whose STARTUP was not seen: 'lz4' or 'snappy' (default: both are tried) */
  compressor: '' | Compression;
  /** body bytes kept and decoded per message, decompressed bodies included (default 4 MiB) */
  maxBodyBytes: number;
  /** bytes kept for bodies and v5 frames over all connections; past it a body keeps its first 4 KiB (default 64 MiB) */
  maxBufferedBytes: number;
  /** query text kept per request (default 16 KiB) */
  maxQueryBytes: number;
  /** requests waiting for their responses per connection (default 1024) */
  maxPending: number;
  /** requests waiting over all connections (default 16384; each connection keeps its newest) */
  maxPendingTotal: number;
  /** seconds of packet time a request waits for its response (default 10, as packetbeat) */
  transactionTimeoutSec: number;
  /** prepared statements whose text is remembered, for EXECUTE and BATCH (default 4096) */
  maxPreparedStatements: number;
}

export const CASSANDRA_DEFAULTS: CassandraOptions = {
  sendRequest: true,
  sendResponse: true,
  sendRequestHeader: true,
  sendResponseHeader: true,
  ignoredOps: [],
  compressor: '',
  maxBodyBytes: 4 * 1024 * 1024,
  maxBufferedBytes: 64 * 1024 * 1024,
  maxQueryBytes: 16 * 1024,
  maxPending: 1024,
  maxPendingTotal: 16_384,
  transactionTimeoutSec: 10,
  maxPreparedStatements: 4096,
};

class Counters extends TransactionCounters {
  requests = 0;
  responses = 0;
  pushed = 0;
  readonly unreadable = new ReasonCounter();
  readonly compressed = new ReasonCounter();
}

/** One request or response, as kept until its transaction is emitted. */
class CqlMessage {
  version = 0;
  flags = 0;
  stream = 0;
  op = 0;
  length = 0;
  wireBytes = 0;
  startSec = 0;
  startNsec = 0;
  endSec = 0;
  endNsec = 0;
  /** `cassandra.request` / `cassandra.response` fields besides the header */
  fields: Record<string, unknown> | null = null;
  query = '';
  resource = '';
  preparedId = '';
  notes: string[] | null = null;
  partial = false;

  note(text: string): void {
    (this.notes ??= []).push(text);
  }
}

/** what a request left without its response: the counter and the event's note */
const UNANSWERED = {
  replaced: ['replaced', 'another request on the same stream before a response'],
  pending_limit: ['pending_limit', 'too many requests waiting for responses'],
  pending_limit_total: ['pending_limit_total', 'too many requests waiting for responses over all connections'],
  timeout: ['timeout', 'no response within the transaction timeout'],
  closed: ['no_response', 'no response before the connection closed'],
} as const;

/** why a compressed body was not decoded, after "compressed request body not decoded: " */
const UNREADABLE_NOTES: Record<string, string> = {
  compressed_unsupported: 'its compression is not supported',
  decompression_failed: 'it does not decompress',
  decompressed_too_large: 'it decompresses to more than maxBodyBytes',
  compressed_body_incomplete: 'it is incomplete',
};

/** shared by the connections of one analyzer stage */
class Shared {
  readonly n = new Counters();
  readonly stream: StreamShared;
  /** prepared statement text by id (hex), oldest first */
  readonly prepared = new Map<string, string>();
  readonly ignored: Set<number>;

  constructor(readonly opts: CassandraOptions) {
    this.stream = new StreamShared(opts.maxBodyBytes, new Budget(opts.maxBufferedBytes));
    const names = new Set(opts.ignoredOps.map((o) => o.trim().toUpperCase()));
    this.ignored = new Set([...Array(17).keys()].filter((op) => names.has(opName(op))));
  }

  remember(id: string, query: string): void {
    this.prepared.delete(id);
    this.prepared.set(id, query);
    if (this.prepared.size > this.opts.maxPreparedStatements) this.prepared.delete(this.prepared.keys().next().value as string);
  }

  lookup = (id: string): string | undefined => this.prepared.get(id);
}

class CassandraConnection implements TcpAnalyzer, StreamOwner {
  private readonly parsers: [DirectionParser, DirectionParser];
  /** requests waiting for their responses by stream id, oldest first */
  private readonly pending = new Map<number, CqlMessage>();
  /** requests given up at the transaction timeout, by stream id, until the id is used again: a late response is reported with its query */
  private readonly timedOut = new Map<number, CqlMessage>();
  version = 0;
  /** the COMPRESSION option of the STARTUP seen ('' none; null: STARTUP not seen) */
  private negotiated: string | null = null;
  private readonly n: Counters;
  private readonly opts: CassandraOptions;

  constructor(
    private readonly ep: Endpoints,
    private readonly out: Emitter,
    private readonly s: Shared,
    midStream: boolean,
  ) {
    this.n = s.n;
    this.opts = s.opts;
    this.parsers = [new DirectionParser(0, this, s.stream, midStream), new DirectionParser(1, this, s.stream, midStream)];
  }

  data(side: number, buf: Buffer, off: number, len: number, tsSec: number, tsNsec: number): void {
    this.parsers[side].feed(buf, off, len, tsSec, tsNsec);
  }

  gap(side: number, n: number, tsSec: number, tsNsec: number): void {
    this.parsers[side].gap(n, tsSec, tsNsec);
  }

  close(tsSec: number, tsNsec: number): void {
    this.parsers[0].close(tsSec, tsNsec);
    this.parsers[1].close(tsSec, tsNsec);
    for (const m of this.pending.values()) this.unanswered(m, 'closed');
  }

  expire(nowSec: number): void {
    for (const m of this.pending.values()) {
      if (nowSec - m.startSec < this.opts.transactionTimeoutSec) break;
      this.unanswered(m, 'timeout');
    }
  }

  discard(): void {
    this.n.pending -= this.pending.size;
    this.pending.clear();
    this.timedOut.clear();
  }

  compression(): Compression | null | undefined {
    const c = this.negotiated ?? this.opts.compressor;
    if (c === 'lz4' || c === 'snappy') return c;
    return this.negotiated === null || this.negotiated === '' ? undefined : null;
  }

  violation(side: number, reason: string): void {
    const r = `${side === 0 ? 'request' : 'response'}_${reason}`;
    this.n.violations.add(r);
    this.out.anomaly?.('cassandra', r, this.ep);
  }

  envelope(side: number, e: Envelope): void {
    const m = new CqlMessage();
    m.version = e.version;
    m.flags = e.flags;
    m.stream = e.stream;
    m.op = e.op;
    m.length = e.length;
    m.wireBytes = e.wireBytes;
    m.startSec = e.startSec;
    m.startNsec = e.startNsec;
    m.endSec = e.endSec;
    m.endNsec = e.endNsec;
    const what = side === 0 ? 'request' : 'response';
    if (e.compression !== '') this.n.compressed.add(e.compression);
    if (e.unreadable !== '') {
      this.n.unreadable.add(e.unreadable);
      m.note(`compressed ${what} body not decoded: ${UNREADABLE_NOTES[e.unreadable]}`);
      m.partial = true;
    }
    if (e.missing > 0) {
      m.note(`packet loss: ${e.missing} ${what} bytes missing`);
      m.partial = true;
    }
    if (e.ended) {
      m.note(`the connection ended inside the ${what}`);
      m.partial = true;
    } else if (e.cut && e.missing === 0 && e.unreadable === '') m.note(`${what} body of ${e.length} bytes: only its first ${e.bodyEnd - e.bodyOff} decoded`);
    if (this.version === 0) this.version = e.version;
    if (side === 0) this.request(m, e);
    else this.response(m, e);
  }

  private request(m: CqlMessage, e: Envelope): void {
    this.n.requests++;
    this.n.started++;
    if (e.body !== null && e.unreadable === '') {
      const b = decodeRequest(bodyVersion(e.version), e.flags, e.op, new Reader(e.body, e.bodyOff, e.bodyEnd), this.opts.maxQueryBytes, this.s.lookup);
      m.fields = b.fields;
      m.query = b.query;
      if (b.queryCut) m.note(`query text cut at ${this.opts.maxQueryBytes} bytes`);
      if (e.op === Op.STARTUP) this.negotiated = b.compression;
    }
    const old = this.pending.get(m.stream);
    if (old !== undefined) this.unanswered(old, 'replaced');
    this.timedOut.delete(m.stream);
    if (this.pending.size >= this.opts.maxPending) this.unanswered(this.pending.values().next().value as CqlMessage, 'pending_limit');
    else if (this.n.pending >= this.opts.maxPendingTotal && this.pending.size > 0) this.unanswered(this.pending.values().next().value as CqlMessage, 'pending_limit_total');
    this.pending.set(m.stream, m);
    this.n.pending++;
  }

  private response(m: CqlMessage, e: Envelope): void {
    this.n.responses++;
    if (e.body !== null && e.unreadable === '') {
      const b = decodeResponse(bodyVersion(e.version), e.flags, e.op, new Reader(e.body, e.bodyOff, e.bodyEnd));
      m.fields = b.fields;
      m.resource = b.resource;
      m.preparedId = b.preparedId;
    }
    if (m.op === Op.EVENT) {
      // a push: no request to pair with
      this.n.started++;
      this.n.pushed++;
      this.emit(null, m, null, true);
      return;
    }
    const req = this.pending.get(m.stream);
    if (req === undefined) {
      this.n.started++;
      const late = this.timedOut.get(m.stream);
      if (late !== undefined) {
        this.timedOut.delete(m.stream);
        this.n.unmatched.add('late_response');
        this.emit(late, m, 'response after the transaction timeout', false, true);
        return;
      }
      this.n.unmatched.add('response_without_request');
      this.emit(null, m, 'response without a request', false);
      return;
    }
    this.pending.delete(m.stream);
    this.n.pending--;
    if (req.op === Op.PREPARE && m.preparedId !== '' && req.query !== '' && req.notes === null) this.s.remember(m.preparedId, req.query);
    if (req.op === Op.STARTUP) {
      this.version = m.version;
      // v5: frames from here on, both ways
      if (req.version === 5 && m.version === 5 && (m.op === Op.READY || m.op === Op.AUTHENTICATE)) {
        const lz4 = this.negotiated === 'lz4';
        this.parsers[0].startFrames(lz4);
        this.parsers[1].startFrames(lz4);
      }
    }
    this.emit(req, m, null, false);
  }

  private unanswered(m: CqlMessage, why: keyof typeof UNANSWERED): void {
    this.pending.delete(m.stream);
    this.n.pending--;
    const [reason, note] = UNANSWERED[why];
    this.n.unmatched.add(reason);
    if (why === 'timeout') {
      if (this.timedOut.size >= this.opts.maxPending) this.timedOut.delete(this.timedOut.keys().next().value as number);
      this.timedOut.set(m.stream, m);
    }
    this.emit(m, null, note, false);
  }

  /**
   * a transaction: a request with its response, either alone (unmatched), or a push; `late`:
   * a response whose request was already reported at the timeout, with that request's
   * query and fields but not its bytes or times (they were in that event)
   */
  private emit(req: CqlMessage | null, resp: CqlMessage | null, note: string | null, pushed: boolean, late = false): void {
    const ignored = this.s.ignored;
    if ((req !== null && ignored.has(req.op)) || (resp !== null && ignored.has(resp.op))) {
      this.n.dropped.add('ignored_op');
      return;
    }
    this.n.transactions++;
    const first = (late ? resp : (req ?? resp))!;
    const last = (resp ?? req)!;
    const status = pushed || (req !== null && resp !== null && !late && resp.op !== Op.ERROR) ? 'OK' : 'Error';
    const e = transactionEvent('cassandra', this.ep, { startSec: first.startSec, startNsec: first.startNsec, endSec: last.endSec, endNsec: last.endNsec }, status, late ? 0 : (req?.wireBytes ?? 0), resp?.wireBytes ?? 0);
    if (req !== null) {
      e.method = opName(req.op);
      if (req.query !== '') e.query = req.query;
    }
    if (resp !== null && resp.resource !== '') e.resource = resp.resource;
    const cassandra: Record<string, unknown> = {};
    if (pushed) cassandra.no_request = true;
    if (req !== null && this.opts.sendRequest && !late) cassandra.request = fields(req, this.opts.sendRequestHeader);
    if (resp !== null && this.opts.sendResponse) cassandra.response = fields(resp, this.opts.sendResponseHeader);
    e.cassandra = cassandra;
    const notes: string[] = [];
    if (req?.notes && !late) notes.push(...req.notes);
    if (resp?.notes) notes.push(...resp.notes);
    if (note !== null) notes.push(note);
    if (req?.partial || resp?.partial) this.n.partial++;
    closeEvent(e, notes, pushed ? null : resp === null ? UNMATCHED_REQUEST : req === null || late ? UNMATCHED_RESPONSE : null);
    this.out.emit(e);
  }
}

function fields(m: CqlMessage, withHeader: boolean): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (withHeader) o.headers = { version: m.version, flags: flagsName(m.flags), stream: m.stream, op: opName(m.op), length: m.length };
  if (m.fields !== null) for (const k in m.fields) o[k] = m.fields[k];
  return o;
}

export const cassandra: Protocol<CassandraOptions> = {
  name: 'cassandra',
  tcpPorts: [9042],
  udpPorts: [],
  probe: looksLikeCql,
  create(options, out) {
    const opts: CassandraOptions = { ...CASSANDRA_DEFAULTS, ...options };
    const s = new Shared(opts);
    const n = s.n;
    return {
      tcp: (ctx: TcpContext) => new CassandraConnection(ctx.endpoints, out, s, ctx.midStream),
      stats: (): Stats => ({
        transactions_started: n.started,
        transactions_dropped: n.dropped.toJSON(),
        pending: n.pending,
        requests: n.requests,
        responses: n.responses,
        pushed_events: n.pushed,
        transactions: n.transactions,
        partial: n.partial,
        unmatched: n.unmatched.toJSON(),
        violations: n.violations.toJSON(),
        unreadable_bodies: n.unreadable.toJSON(),
        compressed_bodies: n.compressed.toJSON(),
        v5_frames: s.stream.frames,
        bytes_skipped: s.stream.skipped,
        buffer_budget_exceeded: s.stream.budget.exceeded,
        prepared_statements: s.prepared.size,
      }),
    };
  },
};
