import { ReasonCounter, TransactionCounters } from '../../core/counters';
import { holdFrame, readBefore, type Hold } from '../../core/frame';
import { PendingTable } from '../../core/pending';
import type { Stats } from '../../core/stage';
import type { Packet } from '../../decode/packet';
import { datagramEndpoints, type Endpoints } from '../../events/endpoints';
import { closeEvent, transactionEvent, UNMATCHED_REQUEST, UNMATCHED_RESPONSE, type EventObject } from '../../events/transaction';
import type { DatagramAnalyzer, Emitter, Protocol, TcpAnalyzer, TcpContext } from '../analyzer';
import { GSS_PRIVACY, messageType, readCall, readReply, readResults, RpcCall, RpcReply } from './message';
import { authFlavor, NFS_PROGRAM, opName, statusName } from './names';

export interface NfsOptions {
  /** bytes of one RPC record over TCP, its fragments together (default 16 MiB: NFS servers take at most a few MiB of data a call) */
  maxRecordBytes: number;
  /** record-marking fragments of one record (default 1024; every client and server here sends one) */
  maxFragments: number;
  /** bytes kept of each message to read its header and a COMPOUND's operations from (default 16 KiB); the data of READ and WRITE is counted, not kept */
  maxHeaderBytes: number;
  /** operations of one COMPOUND listed in `nfs.operations` (default 128; Linux's nfsd takes at most 200, Ganesha 100) */
  maxOps: number;
  /** calls waiting for replies on one TCP connection (default 4096: a client's RPC slot table has up to 65536 but uses far fewer) */
  maxPending: number;
  /** calls waiting over all TCP connections, and over all UDP conversations (default 65536 each) */
  maxPendingTotal: number;
  /** seconds of packet time a call waits for its reply (default 60, packetbeat's transaction_timeout for nfs) */
  transactionTimeoutSec: number;
}

export const NFS_DEFAULTS: NfsOptions = {
  maxRecordBytes: 16 * 1024 * 1024,
  maxFragments: 1024,
  maxHeaderBytes: 16 * 1024,
  maxOps: 128,
  maxPending: 4096,
  maxPendingTotal: 65_536,
  transactionTimeoutSec: 60,
};

class NfsCounters extends TransactionCounters {
  calls = 0;
  replies = 0;
  /** records over TCP, and those of more than one fragment */
  records = 0;
  multiFragment = 0;
  /** calls to other programs than NFS (NFS_ACL, ...) and their replies: counted, not emitted */
  otherCalls = new ReasonCounter();
  otherReplies = 0;
  /** NFSv4.1 backchannel calls from the server on the client's connection, and their replies */
  callbacks = 0;
  /** COMPOUNDs whose operations could not all be listed, by why */
  readonly opsCut = new ReasonCounter();
  /** where a TCP stream lost its place, and how often it found it again */
  readonly lost = new ReasonCounter();
  resyncs = 0;
  /** UDP: calls sent again with an xid already waiting (not new transactions), and second replies to them */
  retransmitted = 0;
  duplicateReplies = 0;
  tcpPending = 0;
  udpPending: () => number = () => 0;
}

/** bytes a record start is recognised by: a mark and a call's header */
const FIND_BYTES = 28;
const EMPTY = Buffer.alloc(0);
const LOST = 0;
const MARK = 1;
const BODY = 2;

/** where one side of a TCP connection is in the record-marking framing */
interface RecordSink {
  record(side: number, b: Buffer, off: number, kept: number, total: number, r: RecordReader): void;
  violation(reason: string): void;
  /** a plausible record start while looking for one: a call, or a reply to a waiting call */
  plausible(side: number, b: Buffer, off: number, len: number): boolean;
}

/**
 * RFC 5531 record marking: each record is fragments, each a 4-byte mark (the last
 * fragment's top bit set, then the length) and bytes. A record in one chunk is read
 * where it lies; one spread over chunks or fragments is put together, its first
 * `maxHeaderBytes` kept and the rest counted.
 */
class RecordReader {
  state = MARK;
  private mark = 0;
  private markGot = 0;
  private fragLeft = 0;
  private lastFrag = false;
  private keep: Buffer | null = null;
  /** while a record start is looked for: the last bytes of the chunks so far (fewer than FIND_BYTES) */
  private tail = EMPTY;
  private kept = 0;
  /** bytes past a gap are not kept: what is kept stays in its place */
  private keeping = true;
  recordBytes = 0;
  fragments = 0;
  missing = 0;
  startSec = 0;
  startNsec = 0;
  endSec = 0;
  endNsec = 0;
  /** the stream position is unknown: a record start is looked for */
  constructor(
    private readonly side: number,
    private readonly opts: NfsOptions,
    private readonly n: NfsCounters,
    private readonly sink: RecordSink,
  ) {}

  get wireBytes(): number {
    return this.recordBytes + 4 * this.fragments;
  }

  /** inside a record (its mark begun) */
  get busy(): boolean {
    return this.state === BODY || (this.state === MARK && (this.markGot > 0 || this.fragments > 0));
  }

  feed(b: Buffer, off: number, len: number, sec: number, nsec: number): void {
    const end = off + len;
    let i = off;
    while (i < end) {
      if (this.state === LOST) {
        // the search looks across chunks: the bytes of a record start may come one by one
        const joined = this.tail.length > 0 ? Buffer.concat([this.tail, b.subarray(i, end)]) : null;
        const from = joined ?? b;
        const at = this.find(from, joined !== null ? 0 : i, joined !== null ? joined.length : end);
        if (at < 0) {
          const len = joined !== null ? joined.length : end - i;
          const keep = Math.min(len, FIND_BYTES - 1);
          this.tail = Buffer.from(from.subarray((joined !== null ? 0 : i) + len - keep, (joined !== null ? 0 : i) + len));
          return;
        }
        this.n.resyncs++;
        this.state = MARK;
        this.tail = EMPTY;
        if (joined !== null) {
          this.feed(joined, at, joined.length - at, sec, nsec);
          return;
        }
        i = at;
      }
      if (this.state === MARK) {
        if (this.markGot === 0 && this.fragments === 0) {
          this.startSec = sec;
          this.startNsec = nsec;
          // a whole single-fragment record in this chunk: read in place
          if (end - i >= 4) {
            const m = b.readUInt32BE(i);
            const size = m & 0x7fffffff;
            if (m >>> 31 === 1 && i + 4 + size <= end && size <= this.opts.maxRecordBytes && size > 0) {
              this.recordBytes = size;
              this.fragments = 1;
              this.endSec = sec;
              this.endNsec = nsec;
              this.n.records++;
              this.sink.record(this.side, b, i + 4, Math.min(size, this.opts.maxHeaderBytes), size, this);
              this.reset();
              i += 4 + size;
              continue;
            }
          }
        }
        while (this.markGot < 4 && i < end) {
          this.mark = ((this.mark << 8) | b[i++]) >>> 0;
          this.markGot++;
        }
        if (this.markGot < 4) return;
        const size = this.mark & 0x7fffffff;
        this.lastFrag = this.mark >>> 31 === 1;
        this.markGot = 0;
        this.mark = 0;
        this.fragments++;
        if (this.fragments > this.opts.maxFragments) {
          this.lose('too_many_fragments');
          continue;
        }
        if (this.recordBytes + size > this.opts.maxRecordBytes) {
          this.lose('record_too_large');
          continue;
        }
        this.recordBytes += size;
        this.fragLeft = size;
        this.state = BODY;
        if (size === 0) this.fragmentDone(sec, nsec);
        continue;
      }
      // BODY
      const take = Math.min(this.fragLeft, end - i);
      if (this.keeping && this.kept < this.opts.maxHeaderBytes) {
        const n = Math.min(take, this.opts.maxHeaderBytes - this.kept);
        // sized to what the record's fragments so far announce, up to the bound; let go after the record
        if (this.keep === null || this.keep.length < this.kept + n) {
          const grown = Buffer.allocUnsafe(Math.min(this.opts.maxHeaderBytes, Math.max(this.kept + this.fragLeft, this.recordBytes)));
          if (this.keep !== null) this.keep.copy(grown, 0, 0, this.kept);
          this.keep = grown;
        }
        b.copy(this.keep, this.kept, i, i + n);
        this.kept += n;
      }
      i += take;
      this.fragLeft -= take;
      if (this.fragLeft === 0) this.fragmentDone(sec, nsec);
    }
  }

  /** n bytes lost: inside a fragment's bytes the place is kept, elsewhere it is lost */
  gap(n: number, sec: number, nsec: number): void {
    if (this.state === BODY && n <= this.fragLeft) {
      this.fragLeft -= n;
      this.missing += n;
      this.keeping = false;
      // the fragment's last bytes were lost: it is over now
      if (this.fragLeft === 0) this.fragmentDone(sec, nsec);
      return;
    }
    if (this.state === LOST) {
      // what was held to look for a record start is no longer followed by its own bytes
      this.tail = EMPTY;
      return;
    }
    this.lose(this.busy ? 'gap_in_record' : 'gap');
  }

  /** the place is lost: the record in progress with it */
  lose(reason: string): void {
    this.tail = EMPTY;
    this.n.lost.add(`${this.side === 0 ? 'request' : 'response'}_${reason}`);
    if (reason !== 'gap' && reason !== 'gap_in_record' && reason !== 'mid_stream') this.sink.violation(reason);
    this.reset();
    this.state = LOST;
  }

  private fragmentDone(sec: number, nsec: number): void {
    if (!this.lastFrag) {
      this.state = MARK;
      return;
    }
    this.endSec = sec;
    this.endNsec = nsec;
    this.n.records++;
    if (this.fragments > 1) this.n.multiFragment++;
    if (this.recordBytes === 0) this.sink.violation('empty_record');
    else this.sink.record(this.side, this.keep ?? Buffer.alloc(0), 0, this.kept, this.recordBytes, this);
    this.reset();
  }

  private reset(): void {
    this.keep = null;
    this.state = MARK;
    this.markGot = 0;
    this.mark = 0;
    this.fragLeft = 0;
    this.kept = 0;
    this.keeping = true;
    this.recordBytes = 0;
    this.fragments = 0;
    this.missing = 0;
  }

  /** the first offset in [i, end) where a record plausibly starts */
  private find(b: Buffer, i: number, end: number): number {
    for (; i + FIND_BYTES <= end; i++) {
      const m = b.readUInt32BE(i);
      const size = m & 0x7fffffff;
      if (size < 12 || size > this.opts.maxRecordBytes) continue;
      if (this.sink.plausible(this.side, b, i + 4, end - i - 4)) return i;
    }
    return -1;
  }
}

/** a call waiting for its reply */
interface Waiting {
  call: RpcCall;
  ep: Endpoints;
  sec: number;
  hold: Hold | null;
}

/** Counters, options and event building shared by TCP connections and UDP. */
class NfsTransactions {
  readonly n = new NfsCounters();
  constructor(
    readonly opts: NfsOptions,
    readonly out: Emitter,
  ) {}

  violation(reason: string, ep: Endpoints | null, p: Packet | null): void {
    this.n.violations.add(reason);
    if (ep !== null) this.out.anomaly?.('nfs', reason, ep);
    else if (p !== null) this.out.packetAnomaly?.('nfs', reason, p);
  }

  /** a call read: NFS calls start transactions; others are counted */
  newCall(b: Buffer, off: number, kept: number, total: number): RpcCall | null {
    const c = new RpcCall();
    readCall(c, b, off, kept, total, this.opts.maxOps);
    if (c.short && c.prog === 0) return null;
    this.n.calls++;
    if (c.prog !== NFS_PROGRAM) {
      this.n.otherCalls.add(String(c.prog));
      return c;
    }
    if (c.opsCut !== '') this.n.opsCut.add(c.opsCut);
    this.n.started++;
    return c;
  }

  /**
   * A transaction: a call with its reply, or either alone (`note` says why). The
   * reply's results were read against the call.
   */
  emit(c: RpcCall | null, r: RpcReply | null, ep: Endpoints, note: string | null): void {
    const n = this.n;
    n.transactions++;
    const first = (c ?? r)!;
    const accepted = r !== null && r.replyStat === 0 && r.stat === 0;
    const failed = r !== null && !accepted;
    const status = c !== null && r !== null && accepted && (r.nfsStat <= 0) ? 'OK' : 'Error';
    const times = { startSec: first.startSec, startNsec: first.startNsec, endSec: r?.startSec ?? c!.endSec, endNsec: r?.startNsec ?? c!.endNsec };
    const proto = c === null ? 'nfs' : c.vers === 3 ? 'nfsv3' : c.vers === 4 ? 'nfsv4' : 'nfs';
    const e = transactionEvent('nfs', ep, times, status, c?.wireBytes ?? 0, r?.wireBytes ?? 0, proto);
    if (c !== null) {
      e.event.action = `nfs.${c.opcode}`;
      if (failed) e.event.outcome = 'failure';
      if (c.unix && c.machine !== '') {
        e.source.domain = c.machine;
        e.client.domain = c.machine;
      }
      if (c.unix) {
        e.user = { id: String(c.uid) };
        e.group = { id: String(c.gid) };
      }
    }
    const rpc: EventObject = { xid: xidHex(c?.xid ?? r!.xid) };
    if (c !== null) {
      rpc.auth_flavor = authFlavor(c.flavor);
      if (c.unix) rpc.cred = { stamp: c.stamp, machinename: c.machine === '' ? ep.clientIp : c.machine, uid: c.uid, gid: c.gid, gids: c.gids };
    }
    if (r !== null) rpc.status = r.rpcStatus;
    e.rpc = rpc;
    const notes: string[] = [];
    if (c !== null) {
      const nfs: EventObject = { version: c.vers };
      if (c.minor >= 0) {
        nfs.minor_version = c.minor;
        nfs.tag = c.tag;
      }
      nfs.opcode = c.opcode;
      if (r !== null && accepted && r.nfsStat >= 0) nfs.status = statusName(r.nfsStat);
      if (c.ops.length > 0) nfs.operations = operations(c, r !== null && accepted ? r : null);
      e.nfs = nfs;
      if (c.opsCut === 'limit') notes.push(`operations listed up to ${this.opts.maxOps} of ${c.opCount}`);
      else if (c.opsCut === 'cut') notes.push(`operations after the first ${c.ops.length} of ${c.opCount} not read (${this.opts.maxHeaderBytes} bytes kept)`);
      else if (c.opsCut === 'unknown_op') notes.push(`operations after ${opName(c.ops[c.ops.length - 1]) ?? `operation ${c.ops[c.ops.length - 1]}`} not read`);
      if (c.gss === GSS_PRIVACY) notes.push('RPCSEC_GSS privacy: arguments and results sealed');
      if (c.missingBytes > 0) notes.push(`packet loss: ${c.missingBytes} request bytes missing`);
    }
    if (r !== null && r.missingBytes > 0) notes.push(`packet loss: ${r.missingBytes} response bytes missing`);
    if (note !== null) notes.push(note);
    if ((c?.missingBytes ?? 0) > 0 || (r?.missingBytes ?? 0) > 0) n.partial++;
    closeEvent(e, notes, c === null ? UNMATCHED_RESPONSE : r === null ? UNMATCHED_REQUEST : null);
    this.out.emit(e);
  }

  stats(): Stats {
    const n = this.n;
    return {
      transactions_started: n.started,
      transactions_dropped: n.dropped.toJSON(),
      pending: n.tcpPending + n.udpPending(),
      calls: n.calls,
      replies: n.replies,
      transactions: n.transactions,
      partial: n.partial,
      records: n.records,
      multi_fragment_records: n.multiFragment,
      other_program_calls: n.otherCalls.toJSON(),
      other_program_replies: n.otherReplies,
      callbacks: n.callbacks,
      retransmitted_calls: n.retransmitted,
      duplicate_replies: n.duplicateReplies,
      operations_cut: n.opsCut.toJSON(),
      unmatched: n.unmatched.toJSON(),
      lost: n.lost.toJSON(),
      resyncs: n.resyncs,
      violations: n.violations.toJSON(),
    };
  }
}

function xidHex(x: number): string {
  return x.toString(16).padStart(8, '0');
}

/** each operation of a COMPOUND; with the reply, its status: a server runs them in order up to the first that fails, whose status is the COMPOUND's (RFC 7530 15.2, RFC 5661 16.2) */
function operations(c: RpcCall, r: RpcReply | null): EventObject[] {
  const out: EventObject[] = [];
  const done = r !== null && r.resCount >= 0 && r.nfsStat >= 0 ? r.resCount : 0;
  for (let i = 0; i < c.ops.length; i++) {
    const o: EventObject = { opcode: opName(c.ops[i]) ?? 'ILLEGAL' };
    if (i < done) o.status = i < done - 1 ? 'NFS_OK' : statusName(r!.nfsStat);
    out.push(o);
  }
  return out;
}

/** does a call to NFS start at b[off]? (xid, CALL, RPC version 2, the NFS program, version 2 to 4) */
function nfsCallHeader(b: Buffer, off: number, len: number): boolean {
  if (len < 24) return false;
  if (b.readUInt32BE(off + 4) !== 0 || b.readUInt32BE(off + 8) !== 2) return false;
  if (b.readUInt32BE(off + 12) !== NFS_PROGRAM) return false;
  const vers = b.readUInt32BE(off + 16);
  const proc = b.readUInt32BE(off + 20);
  return (vers === 3 && proc <= 21) || (vers === 4 && proc <= 1) || (vers === 2 && proc <= 17);
}

/**
 * NFS over TCP. Calls and replies pair by xid: a client sends many calls at once on
 * one connection, and the server answers them in any order.
 */
class NfsConnection implements TcpAnalyzer, RecordSink {
  private readonly readers: [RecordReader, RecordReader];
  private readonly waiting = new Map<number, RpcCall>();
  /** NFSv4.1 backchannel calls from the server, by xid, until the client answers */
  private readonly callbacks = new Set<number>();

  constructor(
    private readonly ep: Endpoints,
    private readonly tx: NfsTransactions,
    midStream: boolean,
  ) {
    this.readers = [new RecordReader(0, tx.opts, tx.n, this), new RecordReader(1, tx.opts, tx.n, this)];
    if (midStream) {
      this.readers[0].lose('mid_stream');
      this.readers[1].lose('mid_stream');
    }
  }

  data(side: number, buf: Buffer, off: number, len: number, sec: number, nsec: number): void {
    this.readers[side].feed(buf, off, len, sec, nsec);
  }

  gap(side: number, n: number, sec: number, nsec: number): void {
    this.readers[side].gap(n, sec, nsec);
  }

  close(): void {
    for (const r of this.readers) if (r.busy) this.tx.n.lost.add(r === this.readers[0] ? 'request_closed_inside_record' : 'response_closed_inside_record');
    for (const c of this.waiting.values()) this.unanswered(c, 'no_response', 'no response before the connection closed');
    this.waiting.clear();
    this.callbacks.clear();
  }

  expire(nowSec: number): void {
    const t = this.tx.opts.transactionTimeoutSec;
    for (const [xid, c] of this.waiting) {
      if (nowSec - c.endSec < t) break;
      this.waiting.delete(xid);
      this.unanswered(c, 'timeout', 'no response within the transaction timeout');
    }
  }

  discard(): void {
    for (const c of this.waiting.values()) if (c.prog === NFS_PROGRAM) this.tx.n.tcpPending--;
    this.waiting.clear();
    this.callbacks.clear();
  }

  violation(reason: string): void {
    this.tx.violation(reason, this.ep, null);
  }

  plausible(side: number, b: Buffer, off: number, len: number): boolean {
    if (side === 0) return nfsCallHeader(b, off, len);
    // a reply to a call that waits: xid, REPLY, accepted or denied
    return len >= 12 && b.readUInt32BE(off + 4) === 1 && b.readUInt32BE(off + 8) <= 1 && this.waiting.has(b.readUInt32BE(off));
  }

  record(side: number, b: Buffer, off: number, kept: number, total: number, rr: RecordReader): void {
    const type = messageType(b, off, kept);
    if (type < 0) {
      this.violation(kept < 8 ? 'record_too_short' : 'bad_message_type');
      return;
    }
    if (type === 0) {
      if (side === 1) {
        // the NFSv4.1 backchannel: the server calls the client on its connection
        this.tx.n.callbacks++;
        if (this.callbacks.size < 1024) this.callbacks.add(b.readUInt32BE(off));
        return;
      }
      const c = this.tx.newCall(b, off, kept, total);
      if (c === null) {
        this.violation('call_too_short');
        return;
      }
      this.stamp(c, rr);
      this.add(c);
      return;
    }
    const xid = b.readUInt32BE(off);
    if (side === 0) {
      if (this.callbacks.delete(xid)) return;
      this.violation('reply_from_client');
      return;
    }
    const tx = this.tx;
    tx.n.replies++;
    const r = new RpcReply();
    readReply(r, b, off, kept, total);
    stampReply(r, rr);
    const c = this.waiting.get(xid);
    if (c !== undefined) {
      this.waiting.delete(xid);
      if (c.prog !== NFS_PROGRAM) {
        tx.n.otherReplies++;
        return;
      }
      tx.n.tcpPending--;
      readResults(r, c, b, off, kept, total);
      tx.emit(c, r, this.ep, null);
      return;
    }
    tx.n.started++;
    tx.n.unmatched.add('response_without_request');
    tx.emit(null, r, this.ep, 'response without a request');
  }

  private stamp(c: RpcCall, rr: RecordReader): void {
    c.startSec = rr.startSec;
    c.startNsec = rr.startNsec;
    c.endSec = rr.endSec;
    c.endNsec = rr.endNsec;
    c.wireBytes = rr.wireBytes;
    c.missingBytes = rr.missing;
  }

  private add(c: RpcCall): void {
    const tx = this.tx;
    const old = this.waiting.get(c.xid);
    if (old !== undefined) {
      this.waiting.delete(c.xid);
      this.unanswered(old, 'replaced', 'another call with the same xid came before a reply');
    }
    this.waiting.set(c.xid, c);
    if (c.prog !== NFS_PROGRAM) return;
    tx.n.tcpPending++;
    while (this.waiting.size > 1 && (this.waiting.size > tx.opts.maxPending || tx.n.tcpPending > tx.opts.maxPendingTotal)) {
      const [xid, o] = this.waiting.entries().next().value as [number, RpcCall];
      this.waiting.delete(xid);
      const total = this.waiting.size < tx.opts.maxPending;
      this.unanswered(o, total ? 'pending_limit_total' : 'pending_limit', total ? 'too many calls waiting for replies over all connections' : 'too many calls waiting for replies');
    }
  }

  private unanswered(c: RpcCall, reason: string, note: string): void {
    if (c.prog !== NFS_PROGRAM) return;
    this.tx.n.tcpPending--;
    this.tx.n.unmatched.add(reason);
    this.tx.emit(c, null, this.ep, note);
  }
}

function stampReply(r: RpcReply, rr: RecordReader): void {
  r.startSec = rr.startSec;
  r.startNsec = rr.startNsec;
  r.endSec = rr.endSec;
  r.endNsec = rr.endNsec;
  r.wireBytes = rr.wireBytes;
  r.missingBytes = rr.missing;
}

interface UdpWaiting extends Waiting {}

/** NFS over UDP: one RPC message a datagram; calls and replies pair by conversation and xid. */
/** UDP replies remembered after pairing, so a second reply to a retransmitted call is known as such */
const ANSWERED_KEPT = 4096;

class NfsUdp implements DatagramAnalyzer {
  private readonly pending: PendingTable<UdpWaiting>;
  /** the keys of the calls answered last, oldest first */
  private readonly answered = new Map<string, boolean>();

  constructor(private readonly tx: NfsTransactions) {
    this.pending = new PendingTable<UdpWaiting>(tx.opts.maxPendingTotal, (w, why) => this.unanswered(w, why));
    tx.n.udpPending = () => this.pendingNfs;
  }

  private pendingNfs = 0;

  datagram(p: Packet): void {
    const tx = this.tx;
    const b = p.data;
    const off = p.payloadOff;
    const len = p.payloadLen;
    const type = messageType(b, off, len);
    if (type < 0) {
      tx.violation(len < 8 ? 'datagram_too_short' : 'bad_message_type', null, p);
      return;
    }
    const xid = b.readUInt32BE(off);
    if (type === 0) {
      const key = `${p.src0},${p.src1},${p.src2},${p.src3}|${p.srcPort}|${p.dst0},${p.dst1},${p.dst2},${p.dst3}|${p.dstPort}|${p.vlan}|${xid}`;
      if (this.pending.get(key) !== undefined) {
        // sent again before the reply came: the same transaction
        tx.n.retransmitted++;
        return;
      }
      const kept = Math.min(len, tx.opts.maxHeaderBytes);
      const c = tx.newCall(b, off, kept, len);
      if (c === null) {
        tx.violation('call_too_short', null, p);
        return;
      }
      c.startSec = c.endSec = p.tsSec;
      c.startNsec = c.endNsec = p.tsNsec;
      c.wireBytes = len;
      if (c.prog === NFS_PROGRAM) this.pendingNfs++;
      this.pending.add(key, { call: c, ep: datagramEndpoints(p, true), sec: p.tsSec, hold: holdFrame(p.frame) });
      return;
    }
    tx.n.replies++;
    const key = `${p.dst0},${p.dst1},${p.dst2},${p.dst3}|${p.dstPort}|${p.src0},${p.src1},${p.src2},${p.src3}|${p.srcPort}|${p.vlan}|${xid}`;
    const r = new RpcReply();
    const kept = Math.min(len, tx.opts.maxHeaderBytes);
    readReply(r, b, off, kept, len);
    r.startSec = r.endSec = p.tsSec;
    r.startNsec = r.endNsec = p.tsNsec;
    r.wireBytes = len;
    const w = this.pending.take(key);
    if (w !== undefined) {
      if (w.call.prog !== NFS_PROGRAM) {
        tx.n.otherReplies++;
        return;
      }
      this.answered.set(key, true);
      if (this.answered.size > ANSWERED_KEPT) this.answered.delete(this.answered.keys().next().value as string);
      this.pendingNfs--;
      readResults(r, w.call, b, off, kept, len);
      tx.emit(w.call, r, w.ep, null);
      return;
    }
    if (this.answered.delete(key)) {
      // the server answered a retransmitted call again (its duplicate request cache): the transaction was emitted
      tx.n.duplicateReplies++;
      return;
    }
    tx.n.started++;
    if (readBefore(p.frame)) {
      // read again after a Kafka restart point: its call came before it and was paired then
      tx.n.unmatched.add('paired_before_restart');
      tx.n.dropped.add('paired_before_restart');
      return;
    }
    tx.n.unmatched.add('response_without_request');
    tx.emit(null, r, datagramEndpoints(p, false), 'response without a request');
  }

  expire(nowSec: number): void {
    this.pending.expire(nowSec, this.tx.opts.transactionTimeoutSec);
  }

  flush(): void {
    this.pending.flush();
  }

  discard(): void {
    this.pending.discard();
    this.answered.clear();
    this.pendingNfs = 0;
  }

  stats(): Stats {
    return this.tx.stats();
  }

  private unanswered(w: UdpWaiting, why: 'replaced' | 'pending_limit' | 'timeout' | 'flushed'): void {
    if (w.call.prog !== NFS_PROGRAM) return;
    this.pendingNfs--;
    const reason = why === 'flushed' || why === 'timeout' ? (why === 'timeout' ? 'timeout' : 'no_response') : why;
    this.tx.n.unmatched.add(reason);
    const note = why === 'replaced' ? 'another call with the same xid came before a reply' : why === 'pending_limit' ? 'too many calls waiting for replies' : why === 'timeout' ? 'no response within the transaction timeout' : 'no response';
    this.tx.emit(w.call, null, w.ep, note);
  }
}

export const nfs: Protocol<NfsOptions> = {
  name: 'nfs',
  tcpPorts: [2049],
  udpPorts: [2049],
  probe(buf, off, len, side) {
    // a call: a record mark (a fragment of a plausible size), then the call's header in that fragment
    if (side !== 0 || len < 28) return false;
    const size = buf.readUInt32BE(off) & 0x7fffffff;
    return size >= 24 && size <= 16 * 1024 * 1024 && nfsCallHeader(buf, off + 4, Math.min(len - 4, size));
  },
  probeDatagram(buf, off, len) {
    return len >= 40 && nfsCallHeader(buf, off, len);
  },
  create(options, out) {
    const opts: NfsOptions = { ...NFS_DEFAULTS, ...options };
    const tx = new NfsTransactions(opts, out);
    const udp = new NfsUdp(tx);
    return {
      tcp: (ctx: TcpContext) => new NfsConnection(ctx.endpoints, tx, ctx.midStream),
      datagrams: udp,
      stats: () => tx.stats(),
    };
  },
};
