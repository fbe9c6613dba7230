import { ReasonCounter } from '../../core/counters';
import { holdFrame, readBefore, type Frame, type Hold } from '../../core/frame';
import { PendingTable } from '../../core/pending';
import type { Stats } from '../../core/stage';
import type { Packet } from '../../decode/packet';
import { datagramEndpoints, type Endpoints } from '../../events/endpoints';
import { closeEvent, transactionEvent, UNMATCHED_REQUEST, UNMATCHED_RESPONSE, type EventObject } from '../../events/transaction';
import type { DatagramAnalyzer, Emitter, Protocol, TcpAnalyzer, TcpContext } from '../analyzer';
import { COUNTER_RESPONSE, OPCODE_QUITQ, opcodeName, statusName, T, UNKNOWN } from './codes';
import { McMessage } from './message';
import { McParser, type McParserOptions, type ParserEvents } from './parser';
import { probe } from './probe';

export interface MemcacheOptions {
  /** emit transactions of commands pktflow does not know, with `memcache.request.line` (packetbeat's parseunknown; default false: counted as dropped) */
  parseUnknown: boolean;
  /** values kept per message in `memcache.*.values`, base64 (packetbeat's maxvalues; default 0) */
  maxValues: number;
  /** bytes kept of each value (packetbeat's maxbytespervalue; default 1 MiB, memcached's largest item by default) */
  maxBytesPerValue: number;
  /** longest text command or response line kept (default 64 KiB: about 250 keys of memcached's longest) */
  maxLineBytes: number;
  /** STAT lines kept per response (default 1024) */
  maxStats: number;
  /** requests waiting for responses per TCP connection (default 1024: binary multi-gets send a quiet request per key) */
  maxPending: number;
  /** requests waiting over all TCP connections, and over all UDP conversations (default 16384 each) */
  maxPendingTotal: number;
  /** seconds of packet time a TCP request waits for its response (default 10, as packetbeat) */
  transactionTimeoutSec: number;
  /** seconds of packet time a UDP request waits for its response, and a response for its missing datagrams (packetbeat's udptransactiontimeout; default 10) */
  udpTransactionTimeoutSec: number;
  /** datagrams of one UDP message (default 1024: memcached sends at most 1400 bytes a datagram) */
  maxUdpDatagrams: number;
  /** bytes of UDP messages being reassembled, in total (default 16 MiB) */
  maxUdpReassemblyBytes: number;
}

export const MEMCACHE_DEFAULTS: MemcacheOptions = {
  parseUnknown: false,
  maxValues: 0,
  maxBytesPerValue: 1024 * 1024,
  maxLineBytes: 64 * 1024,
  maxStats: 1024,
  maxPending: 1024,
  maxPendingTotal: 16_384,
  transactionTimeoutSec: 10,
  udpTransactionTimeoutSec: 10,
  maxUdpDatagrams: 1024,
  maxUdpReassemblyBytes: 16 * 1024 * 1024,
};

/** requests no response is expected for: noreply, text quit, binary QuitQ */
function silent(m: McMessage): boolean {
  return m.noreply || (m.binary ? m.opcode === OPCODE_QUITQ : m.command === 'quit');
}

/** Counters, options and event building shared by every connection and conversation. */
class McTransactions {
  /** started = transactions (emitted) + dropped + pending */
  started = 0;
  readonly dropped = new ReasonCounter();
  requests = 0;
  responses = 0;
  transactions = 0;
  /** requests waiting over all TCP connections */
  tcpPending = 0;
  /** requests waiting in UDP conversations */
  udpPending: () => number = () => 0;
  partial = 0;
  readonly unmatched = new ReasonCounter();
  readonly violations = new ReasonCounter();
  readonly udp = { datagrams: 0, reassembled: 0, reassembly_dropped: new ReasonCounter() };

  constructor(
    readonly opts: MemcacheOptions,
    readonly out: Emitter,
  ) {}

  violation(reason: string, ep: Endpoints | null, p: Packet | null): void {
    this.violations.add(reason);
    if (ep !== null) this.out.anomaly?.('memcache', reason, ep);
    else if (p !== null) this.out.packetAnomaly?.('memcache', reason, p);
  }

  /**
   * A transaction: a request with its response, or either alone. A request alone
   * that expects no response (noreply, a quiet binary request, quit) is OK; one that
   * got none is an unmatched request.
   */
  emit(req: McMessage | null, resp: McMessage | null, ep: Endpoints, note: string | null): void {
    const request = req !== null && !req.lost ? req : null;
    if (request !== null && request.command === UNKNOWN && !this.opts.parseUnknown) {
      this.dropped.add('unknown_command');
      return;
    }
    this.transactions++;
    const first = (req !== null && !req.lost ? req : resp ?? req)!;
    const last = (resp ?? req)!;
    const quietly = request !== null && resp === null && note === null && (silent(request) || request.quiet);
    let status: 'OK' | 'Error' = 'Error';
    if (resp !== null && req !== null) status = resp.binary ? (resp.status === 0 ? 'OK' : 'Error') : resp.type === T.fail || resp.type === T.unknown ? 'Error' : 'OK';
    else if (quietly) status = 'OK';
    const e = transactionEvent('memcache', ep, { startSec: first.startSec, startNsec: first.startNsec, endSec: last.endSec, endNsec: last.endNsec }, status, req?.wireBytes ?? 0, resp?.wireBytes ?? 0);
    if (request !== null) {
      e.method = request.command.toUpperCase();
      e.query = request.binary ? (request.keys.length > 0 ? `${request.command} ${request.keys[0]}` : request.command) : request.line;
      if (request.keys.length > 0) e.resource = request.keys[0];
      e.event.action = `memcache.${request.type.toLowerCase()}`;
    }
    const mc: EventObject = { protocol_type: first.binary ? 'binary' : 'text' };
    if (request !== null) mc.request = requestFields(request);
    if (resp !== null) mc.response = responseFields(resp);
    e.memcache = mc;
    const notes: string[] = [];
    if (req?.lost) notes.push('request lost to packet loss');
    if (req?.notes) notes.push(...req.notes);
    if (resp?.notes) notes.push(...resp.notes);
    if (req !== null && req.missing > 0) notes.push(`packet loss: ${req.missing} request bytes missing`);
    if (resp !== null && resp.missing > 0) notes.push(`packet loss: ${resp.missing} response bytes missing`);
    if (note !== null) notes.push(note);
    if (req?.lost || (req?.missing ?? 0) > 0 || (resp?.missing ?? 0) > 0) this.partial++;
    closeEvent(e, notes, resp === null && !quietly ? UNMATCHED_REQUEST : req === null ? UNMATCHED_RESPONSE : null);
    this.out.emit(e);
  }

  stats(): Stats {
    return {
      transactions_started: this.started,
      transactions_dropped: this.dropped.toJSON(),
      pending: this.tcpPending + this.udpPending(),
      requests: this.requests,
      responses: this.responses,
      transactions: this.transactions,
      partial: this.partial,
      unmatched: this.unmatched.toJSON(),
      violations: this.violations.toJSON(),
      udp: { datagrams: this.udp.datagrams, reassembled: this.udp.reassembled, reassembly_dropped: this.udp.reassembly_dropped.toJSON() },
    };
  }
}

/** memcache.request: packetbeat's fields, in one order */
function requestFields(m: McMessage): EventObject {
  const o: EventObject = { command: m.command, type: m.type };
  if (m.command === UNKNOWN && !m.binary) o.line = m.line;
  binaryFields(m, o);
  if (m.binary) {
    o.vbucket = m.vbucket;
    o.quiet = m.quiet;
  }
  valueFields(m, o);
  if (m.exptime >= 0) o.exptime = m.exptime;
  if (m.cas >= 0) o.cas_unique = m.cas;
  if (m.delta >= 0) o.delta = m.delta;
  if (m.initial >= 0) o.initial = m.initial;
  if (m.value >= 0) o.value = m.value;
  if (m.verbosity >= 0) o.verbosity = m.verbosity;
  if (m.rawArgs !== null) o.raw_args = m.rawArgs;
  if (m.sourceClass !== null) o.source_class = m.sourceClass;
  if (m.destClass !== null) o.dest_class = m.destClass;
  if (m.automove !== null) o.automove = m.automove;
  if (m.sleepUs >= 0) o.sleep_us = m.sleepUs;
  if (!m.binary) o.noreply = m.noreply;
  return o;
}

/** memcache.response */
function responseFields(m: McMessage): EventObject {
  const o: EventObject = { command: m.command, type: m.type };
  binaryFields(m, o);
  if (m.binary) {
    o.status = statusName(m.status);
    o.status_code = m.status;
  }
  valueFields(m, o);
  if (m.cas >= 0) o.cas_unique = m.cas;
  if (m.value >= 0) o.value = m.value;
  if (m.errorMsg !== null) o.error_msg = m.errorMsg;
  if (m.stats !== null) o.stats = m.stats;
  if (m.version !== null) o.version = m.version;
  return o;
}

function binaryFields(m: McMessage, o: EventObject): void {
  if (!m.binary) return;
  o.opcode = opcodeName(m.opcode);
  o.opcode_value = m.opcode;
  o.opaque = m.opaque;
}

function valueFields(m: McMessage, o: EventObject): void {
  if (m.keys.length > 0) o.keys = m.keys;
  if (m.countValues > 0) {
    o.count_values = m.countValues;
    if (m.values !== null) o.values = m.values;
  }
  if (m.bytes >= 0) o.bytes = m.bytes;
  if (m.flags >= 0) o.flags = m.flags;
}

/** text responses each command can get, besides the errors any command can get (ERROR, CLIENT_ERROR, SERVER_ERROR, ...) */
const ANSWERS: Record<string, string[]> = {
  Load: ['VALUE', 'END', 'VA', 'EN', 'HD', 'NF'],
  Store: ['STORED', 'NOT_STORED', 'EXISTS', 'NOT_FOUND', 'TOUCHED', 'HD', 'NS', 'EX', 'NF'],
  Delete: ['DELETED', 'NOT_FOUND', 'OK', 'HD', 'NF', 'EX'],
  Counter: [COUNTER_RESPONSE, 'NOT_FOUND', 'HD', 'VA', 'NF', 'NS', 'EX'],
  Info: ['OK', 'VERSION', 'MN', 'ME', 'EN'],
};

/** could this text response answer this request? (a lost request's placeholder, or an unknown one, takes anything) */
function answers(resp: McMessage, req: McMessage): boolean {
  if (req.lost || req.binary || req.type === T.unknown || resp.type === T.fail || resp.type === T.unknown) return true;
  const ok = ANSWERS[req.type];
  // stats, slabs and lru_crawler answer with lines of their own
  return ok === undefined || ok.includes(resp.command);
}

/** the response's own key is compared with the request's for GetK, GetKQ, GatK, GatKQ: clients may reuse one opaque */
function keyed(opcode: number): boolean {
  return opcode === 0x0c || opcode === 0x0d || opcode === 0x23 || opcode === 0x24;
}

/**
 * Memcache over TCP. Text responses answer requests in order; binary responses
 * carry the request's opaque and opcode, and quiet requests (GetQ, SetQ, ...) are
 * answered only on a hit or an error: a response answers the first waiting request
 * with its opaque and opcode, and the quiet requests before it got none.
 */
class McConnection implements TcpAnalyzer, ParserEvents {
  private readonly req: McParser;
  private readonly resp: McParser;
  /** requests waiting for responses, oldest first: queue[head..] */
  private queue: McMessage[] = [];
  private head = 0;
  /** which parser is calling back */
  private side = 0;
  private sec = 0;
  private nsec = 0;

  constructor(
    private readonly ep: Endpoints,
    private readonly tx: McTransactions,
    parserOpts: McParserOptions,
    midStream: boolean,
  ) {
    this.req = new McParser(true, parserOpts, this);
    this.resp = new McParser(false, parserOpts, this);
    if (midStream) {
      this.req.resync();
      this.resp.resync();
    }
  }

  data(side: number, b: Buffer, off: number, len: number, sec: number, nsec: number): void {
    this.side = side;
    this.sec = sec;
    this.nsec = nsec;
    (side === 0 ? this.req : this.resp).feed(b, off, len, sec, nsec);
  }

  gap(side: number, n: number, sec: number, nsec: number): void {
    this.side = side;
    this.sec = sec;
    this.nsec = nsec;
    (side === 0 ? this.req : this.resp).gap(n, sec, nsec);
  }

  close(sec: number, nsec: number): void {
    this.side = 0;
    this.req.end(sec, nsec);
    this.side = 1;
    this.resp.end(sec, nsec);
    while (this.head < this.queue.length) this.unanswered(this.take(), 'no_response', 'no response before the connection closed');
  }

  expire(nowSec: number): void {
    // a response in progress keeps its request alive
    const timeout = this.tx.opts.transactionTimeoutSec;
    while (this.head < this.queue.length && this.resp.idle && nowSec - this.queue[this.head].startSec >= timeout) {
      this.unanswered(this.take(), 'timeout', 'no response within the transaction timeout');
    }
  }

  discard(): void {
    this.tx.tcpPending -= this.queue.length - this.head;
    this.queue = [];
    this.head = 0;
  }

  // --- parser events ----------------------------------------------------------

  message(m: McMessage): void {
    if (m.isRequest && this.side === 0) this.request(m);
    else if (!m.isRequest && this.side === 1) this.response(m);
    else this.violation(m.isRequest ? 'request_from_server' : 'response_from_client');
  }

  violation(reason: string): void {
    this.tx.violation(reason, this.ep, null);
  }

  lost(binary: boolean): void {
    // binary messages pair by opaque: a lost one leaves the others in step
    if (binary) return;
    if (this.side === 0) {
      const m = new McMessage(true);
      m.lost = true;
      m.startSec = m.endSec = this.sec;
      m.startNsec = m.endNsec = this.nsec;
      this.tx.started++;
      this.queue.push(m);
      this.tx.tcpPending++;
    } else if (this.head < this.queue.length) {
      this.unanswered(this.take(), 'lost', 'response lost to packet loss');
    }
  }

  context(): string {
    return this.head < this.queue.length ? this.queue[this.head].command : '';
  }

  // --- pairing ----------------------------------------------------------------

  private request(m: McMessage): void {
    const tx = this.tx;
    tx.requests++;
    tx.started++;
    if (silent(m)) {
      tx.emit(m, null, this.ep, null);
      return;
    }
    this.queue.push(m);
    tx.tcpPending++;
    const waiting = this.queue.length - this.head;
    if (waiting > tx.opts.maxPending) this.unanswered(this.take(), 'pending_limit', 'too many requests waiting for responses');
    else if (tx.tcpPending > tx.opts.maxPendingTotal && waiting > 1) this.unanswered(this.take(), 'pending_limit_total', 'too many requests waiting for responses over all connections');
  }

  private response(m: McMessage): void {
    const tx = this.tx;
    tx.responses++;
    let at = -1;
    const q = this.queue;
    if (m.binary) {
      for (let i = this.head; i < q.length; i++) {
        const r = q[i];
        if (r.binary && r.opaque === m.opaque && r.opcode === m.opcode && (!keyed(m.opcode) || m.keys.length === 0 || r.keys[0] === m.keys[0])) {
          at = i;
          break;
        }
      }
    } else if (this.head < q.length) {
      at = this.head;
      // MN answers the meta no-op: the quiet requests before it had nothing to say
      if (m.command === 'MN') while (at < q.length - 1 && q[at].quiet) at++;
      if (!answers(m, q[at])) {
        // the answer to a request before the capture (or lost to a gap): the request waits on
        tx.violation('response_does_not_fit_request', this.ep, null);
        at = -1;
      }
    }
    if (at < 0) {
      tx.started++;
      tx.unmatched.add('response_without_request');
      tx.emit(null, m, this.ep, 'response without a request');
      return;
    }
    while (this.head < at) {
      const r = this.take();
      if (r.quiet) tx.emit(r, null, this.ep, null);
      else this.unanswered(r, 'no_response', 'no response: the server answered a later request');
    }
    tx.emit(this.take(), m, this.ep, null);
  }

  private take(): McMessage {
    const m = this.queue[this.head++];
    this.tx.tcpPending--;
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return m;
  }

  /** a request leaves without its response: quiet ones quietly, the others as unmatched */
  private unanswered(m: McMessage, reason: string, note: string): void {
    if (m.quiet && reason !== 'lost') {
      this.tx.emit(m, null, this.ep, null);
      return;
    }
    this.tx.unmatched.add(reason);
    this.tx.emit(m, null, this.ep, note);
  }
}

/** a UDP request waiting for its response */
interface UdpPending {
  req: McMessage;
  ep: Endpoints;
  sec: number;
  hold: Hold | null;
  /** the reassembly key of its response's datagrams */
  respKey: string;
  /** the response, read as it comes: memcached may answer one request with several messages of datagrams */
  parser: McParser | null;
  /** bytes of the response's datagrams so far */
  respBytes: number;
}

/** a UDP message of several datagrams being put together */
interface Reassembly {
  parts: (Buffer | null)[];
  count: number;
  bytes: number;
  sec: number;
  nsec: number;
  first: Frame;
  hold: Hold | null;
}

/**
 * Memcache over UDP: each datagram starts with the frame header (request id,
 * sequence number, datagram count, reserved); a message of several datagrams is
 * put together in sequence order, whatever order they came in. Requests and
 * responses pair by conversation and request id. memcached 1.6 answers a get of
 * several keys with several such messages under one request id (a large value in
 * one, the next value and END in another), so a response is read as a stream until
 * it is complete, like a TCP one.
 */
class McUdp implements DatagramAnalyzer, ParserEvents {
  private readonly pending: PendingTable<UdpPending>;
  /** messages being reassembled, by sender and request id, oldest first */
  private readonly parts = new Map<string, Reassembly>();
  private partBytes = 0;
  /** for messages read alone: requests, and responses without a request */
  private readonly reqParser: McParser;
  private readonly respParser: McParser;
  private got: McMessage | null = null;
  private extra = 0;
  private packet: Packet | null = null;
  private ctx = '';
  private nowSec = 0;
  private nowNsec = 0;

  constructor(
    private readonly tx: McTransactions,
    private readonly parserOpts: McParserOptions,
  ) {
    this.reqParser = new McParser(true, parserOpts, this);
    this.respParser = new McParser(false, parserOpts, this);
    this.pending = new PendingTable<UdpPending>(tx.opts.maxPendingTotal, (p, why) => this.unanswered(p, why));
    tx.udpPending = () => this.pending.size;
  }

  datagram(p: Packet): void {
    const tx = this.tx;
    tx.udp.datagrams++;
    this.nowSec = p.tsSec;
    this.nowNsec = p.tsNsec;
    const b = p.data;
    const o = p.payloadOff;
    const len = p.payloadLen;
    if (len < 8) return this.bad('udp_header_short', p);
    const id = b.readUInt16BE(o);
    const seq = b.readUInt16BE(o + 2);
    const total = b.readUInt16BE(o + 4);
    if (total === 0 || seq >= total) return this.bad('udp_header_bad_sequence', p);
    if (total === 1) return this.whole(b, o + 8, len - 8, len, id, p, p.tsSec, p.tsNsec, p.frame);
    if (total > tx.opts.maxUdpDatagrams) return this.bad('udp_too_many_datagrams', p);
    // several datagrams: kept by sender and id until all came
    const key = `${p.src0},${p.src1},${p.src2},${p.src3}|${p.srcPort}|${p.dst0},${p.dst1},${p.dst2},${p.dst3}|${p.dstPort}|${p.vlan}|${id}`;
    let r = this.parts.get(key);
    if (r !== undefined && r.parts.length !== total) {
      this.drop(key, r, 'count_changed');
      r = undefined;
    }
    if (r === undefined) {
      r = { parts: new Array<Buffer | null>(total).fill(null), count: 0, bytes: 0, sec: p.tsSec, nsec: p.tsNsec, first: p.frame, hold: holdFrame(p.frame) };
      this.parts.set(key, r);
    }
    if (r.parts[seq] !== null) {
      tx.udp.reassembly_dropped.add('duplicate_datagram');
      return;
    }
    r.parts[seq] = Buffer.from(b.subarray(o + 8, o + len));
    r.count++;
    r.bytes += len;
    this.partBytes += len;
    if (r.count < total) {
      // the oldest give way past the byte cap
      for (const [k, old] of this.parts) {
        if (this.partBytes <= tx.opts.maxUdpReassemblyBytes || old === r) break;
        this.drop(k, old, 'byte_limit');
      }
      return;
    }
    this.parts.delete(key);
    this.partBytes -= r.bytes;
    tx.udp.reassembled++;
    const whole = Buffer.concat(r.parts as Buffer[]);
    this.whole(whole, 0, whole.length, r.bytes, id, p, r.sec, r.nsec, r.first);
    r.hold?.release();
  }

  expire(nowSec: number, nowNsec: number): void {
    this.nowSec = nowSec;
    this.nowNsec = nowNsec;
    this.pending.expire(nowSec, this.tx.opts.udpTransactionTimeoutSec);
    for (const [k, r] of this.parts) {
      if (nowSec - r.sec < this.tx.opts.udpTransactionTimeoutSec) break;
      this.drop(k, r, 'timeout');
    }
  }

  flush(): void {
    this.pending.flush();
    for (const [k, r] of this.parts) this.drop(k, r, 'incomplete');
  }

  discard(): void {
    this.pending.discard();
    for (const r of this.parts.values()) r.hold?.release();
    this.parts.clear();
    this.partBytes = 0;
  }

  stats(): Stats {
    return this.tx.stats();
  }

  // --- parser events ----------------------------------------------------------

  message(m: McMessage): void {
    if (this.got === null) this.got = m;
    else this.extra++;
  }

  violation(reason: string): void {
    this.tx.violation(reason, null, this.packet);
  }

  lost(): void {
    // datagrams come whole or not at all
  }

  context(): string {
    return this.ctx;
  }

  // ---------------------------------------------------------------------------

  private bad(reason: string, p: Packet): void {
    this.tx.violation(reason, null, p);
  }

  private drop(key: string, r: Reassembly, reason: string): void {
    this.parts.delete(key);
    this.partBytes -= r.bytes;
    r.hold?.release();
    this.tx.udp.reassembly_dropped.add(reason);
  }

  /** one whole message (its datagrams put together) from the packet's sender */
  private whole(b: Buffer, o: number, len: number, wire: number, id: number, p: Packet, sec: number, nsec: number, first: Frame): void {
    if (len === 0) return this.bad('udp_message_empty', p);
    // requests start with 0x80 or a lower-case command; responses with 0x81, a keyword or a number
    const c = b[o];
    const isRequest = c === 0x80 || (c >= 0x61 && c <= 0x7a);
    const ep = datagramEndpoints(p, isRequest);
    const conv = `${ep.clientIp}|${ep.clientPort}|${ep.serverIp}|${ep.serverPort}|${ep.vlan}|${id}`;
    const pend = isRequest ? undefined : this.pending.get(conv);
    this.packet = p;
    this.got = null;
    this.extra = 0;
    if (pend !== undefined) return this.responsePart(pend, conv, b, o, len, wire, sec, nsec);
    const parser = isRequest ? this.reqParser : this.respParser;
    this.ctx = '';
    parser.reset();
    parser.feed(b, o, len, sec, nsec);
    this.packet = null;
    const m = this.got as McMessage | null;
    if (m === null || !parser.idle) {
      this.bad(isRequest ? 'udp_request_incomplete' : 'udp_response_incomplete', p);
      parser.reset();
      return;
    }
    if (this.extra > 0) this.bad('udp_several_messages', p);
    m.wireBytes = wire;
    const tx = this.tx;
    if (isRequest) {
      tx.requests++;
      tx.started++;
      if (silent(m)) return tx.emit(m, null, ep, null);
      const respKey = `${p.dst0},${p.dst1},${p.dst2},${p.dst3}|${p.dstPort}|${p.src0},${p.src1},${p.src2},${p.src3}|${p.srcPort}|${p.vlan}|${id}`;
      this.pending.add(conv, { req: m, ep, sec, hold: holdFrame(first), respKey, parser: null, respBytes: 0 });
      return;
    }
    tx.responses++;
    tx.started++;
    if (readBefore(first)) {
      // read again after a restart point: its request came before it and was paired then
      tx.unmatched.add('paired_before_restart');
      tx.dropped.add('paired_before_restart');
      return;
    }
    tx.unmatched.add('response_without_request');
    tx.emit(null, m, ep, 'response without a request');
  }

  /** a message of the response to a waiting request: the response may still go on */
  private responsePart(pend: UdpPending, conv: string, b: Buffer, o: number, len: number, wire: number, sec: number, nsec: number): void {
    const parser = (pend.parser ??= new McParser(false, this.parserOpts, this));
    this.ctx = pend.req.command;
    parser.feed(b, o, len, sec, nsec);
    this.packet = null;
    pend.respBytes += wire;
    const m = this.got as McMessage | null;
    if (m === null) return;
    if (this.extra > 0 || !parser.idle) this.tx.violation('udp_several_messages', null, null);
    this.pending.take(conv);
    this.tx.responses++;
    m.wireBytes = pend.respBytes;
    this.tx.emit(pend.req, m, pend.ep, null);
  }

  /** a request leaves without its (whole) response */
  private unanswered(p: UdpPending, why: 'replaced' | 'pending_limit' | 'timeout' | 'flushed'): void {
    let resp: McMessage | null = null;
    if (p.parser !== null) {
      // part of the response came: it goes out as far as it came
      this.got = null;
      p.parser.end(this.nowSec, this.nowNsec, 'response incomplete');
      resp = this.got as McMessage | null;
      if (resp !== null) {
        this.tx.responses++;
        resp.wireBytes = p.respBytes;
      }
    }
    const r = this.parts.get(p.respKey);
    let note = why === 'replaced' ? 'another request with the same id came before a response' : why === 'pending_limit' ? 'too many requests waiting for responses' : 'no response';
    if (r !== undefined) {
      // datagrams of the response came, not all of them
      note = `response incomplete: ${r.count} of ${r.parts.length} datagrams`;
      this.drop(p.respKey, r, 'incomplete');
    }
    if (resp !== null) return this.tx.emit(p.req, resp, p.ep, r !== undefined ? note : null);
    if (p.req.quiet && r === undefined && (why === 'timeout' || why === 'flushed')) return this.tx.emit(p.req, null, p.ep, null);
    this.tx.unmatched.add(r !== undefined ? 'response_incomplete' : why === 'timeout' || why === 'flushed' ? 'no_response' : why);
    this.tx.emit(p.req, null, p.ep, note);
  }
}

export const memcache: Protocol<MemcacheOptions> = {
  name: 'memcache',
  tcpPorts: [11211],
  udpPorts: [11211],
  probe,
  create(options, out) {
    const opts: MemcacheOptions = { ...MEMCACHE_DEFAULTS, ...options };
    const parserOpts: McParserOptions = { maxLineBytes: opts.maxLineBytes, maxValues: opts.maxValues, maxBytesPerValue: opts.maxBytesPerValue, maxStats: opts.maxStats };
    const tx = new McTransactions(opts, out);
    const udp = new McUdp(tx, parserOpts);
    return {
      tcp: (ctx: TcpContext) => new McConnection(ctx.endpoints, tx, parserOpts, ctx.midStream),
      datagrams: udp,
      stats: () => tx.stats(),
    };
  },
};
