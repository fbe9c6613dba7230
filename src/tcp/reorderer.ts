import { ReasonCounter } from '../core/counters';
import type { Stage, Stats } from '../core/stage';
import { IPPROTO_TCP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type Packet } from '../decode/packet';
import { Connection, DirectionFrom, HalfStream, tupleHash, type Segment } from './connection';
import { ItemKind, StreamItem } from './items';
import { LruList } from '../core/lru';
import { holdFrame } from '../core/frame';
import type { AnomalyReporter } from '../events/anomaly';
import { makeEndpoints } from '../events/endpoints';
import { FlowTable, type FlowOptions } from '../flows/table';

export interface TcpOptions {
  /** connections tracked at once; the least recently active is closed to make room (default 65536) */
  maxConnections?: number;
  /** out-of-order bytes queued per direction of a connection (default 1 MiB) */
  maxBufferedPerDirection?: number;
  /** out-of-order bytes queued over all connections (default 128 MiB) */
  maxBufferedTotal?: number;
  /** seconds of packet time without a packet before a connection is closed (default 120) */
  idleTimeoutSec?: number;
  /** seconds of packet time a hole may wait for its bytes before it becomes a gap (default 10) */
  holeTimeoutSec?: number;
  /** ports that mark the server side when the handshake was not seen (analyzers' default ports) */
  isServerPort?: (port: number) => boolean;
  /** keep packetbeat-style flow records for every packet, reported as events (default off) */
  flows?: FlowOptions | false;
  /** where stream gaps go as anomaly events (off when absent) */
  anomalies?: AnomalyReporter;
  /** connections closed by FIN or RST remembered this long, so copies of their packets are known (default 60 s, Linux's TIME-WAIT) */
  closedMemorySec?: number;
  /** ... and at most this many (default 16384; the oldest forgotten first) */
  maxClosedMemory?: number;
}

/**
 * What is remembered of a connection closed by FIN or RST: its sequence spaces. A copy
 * of one of its packets that comes after the close (the same capture on a second
 * interface, `dumpcap -i lo -i any`, whose file holds each interface's packets in
 * blocks of their own) is a retransmission, not a new connection.
 */
class Closed {
  constructor(
    /** the client's SYN sequence number, the server's, or -1 */
    readonly syn0: number,
    readonly syn1: number,
    /** the sequence number past the last byte (and FIN) each side sent */
    readonly end0: number,
    readonly end1: number,
    readonly sec: number,
  ) {}
}

function closedKey(v: number, vlan: number, inner: number, a0: number, a1: number, a2: number, a3: number, ap: number, b0: number, b1: number, b2: number, b3: number, bp: number): string {
  return `${v}|${vlan}|${inner}|${a0}|${a1}|${a2}|${a3}|${ap}|${b0}|${b1}|${b2}|${b3}|${bp}`;
}

/** 32-bit sequence comparison: is a after b (wraparound-safe within 2^31) */
function seqAfter(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

/**
 * The TCP reorderer: packets in, in-order byte streams out (as StreamItems).
 * Retransmissions are dropped, overlaps trimmed (first copy wins), out-of-order
 * segments copied and held until the hole before them fills — under per-direction
 * and global byte caps and a hole timeout, past which the hole becomes an explicit
 * gap. Connections close on FIN from both sides, RST, idle timeout (packet time),
 * eviction, or end of input.
 */
export class TcpReorderer implements Stage<Packet, StreamItem> {
  readonly name = 'tcp';
  readonly takes = 'Packet';
  readonly outputs = 'StreamItem';
  private readonly buckets = new Map<number, Connection>();
  /** connections closed by FIN or RST, by tuple (client end first), oldest first */
  private readonly closed = new Map<string, Closed>();
  private readonly closedSec: number;
  private readonly maxClosed: number;
  /** connections, least recently active first */
  private readonly lru = new LruList<Connection>();
  private readonly maxConnections: number;
  private readonly maxPerDirection: number;
  private readonly maxTotal: number;
  private readonly idleSec: number;
  private readonly holeSec: number;
  private readonly isServerPort: (port: number) => boolean;
  private readonly flows: FlowTable | null;
  private readonly anomalies: AnomalyReporter | null;
  private out: StreamItem[] = [];
  private nowSec = 0;
  private nowNsec = 0;
  /** time stamped on items: the packet being handled, or the clock (flush, sweeps) */
  private itemSec = 0;
  private itemNsec = 0;
  private lastSweepSec = 0;
  private nextId = 1;
  active = 0;
  buffered = 0;
  bufferedPeak = 0;
  // counters
  opened = 0;
  readonly closedBy = new ReasonCounter();
  readonly ignored = new ReasonCounter();
  segments = 0;
  retransmitted = 0;
  overlaps = 0;
  reordered = 0;
  gaps = 0;
  gapBytes = 0;
  readonly gapCause = new ReasonCounter();

  constructor(options: TcpOptions = {}) {
    this.maxConnections = options.maxConnections ?? 65_536;
    this.maxPerDirection = options.maxBufferedPerDirection ?? 1024 * 1024;
    this.maxTotal = options.maxBufferedTotal ?? 128 * 1024 * 1024;
    this.idleSec = options.idleTimeoutSec ?? 120;
    this.holeSec = options.holeTimeoutSec ?? 10;
    this.isServerPort = options.isServerPort ?? (() => false);
    this.closedSec = options.closedMemorySec ?? 60;
    this.maxClosed = options.maxClosedMemory ?? 16_384;
    this.flows = options.flows ? new FlowTable(options.flows) : null;
    this.anomalies = options.anomalies ?? null;
  }

  push(packets: Packet[]): StreamItem[] {
    const out: StreamItem[] = (this.out = []);
    for (let i = 0; i < packets.length; i++) {
      const p = packets[i];
      if (p.tsSec > this.nowSec || (p.tsSec === this.nowSec && p.tsNsec > this.nowNsec)) {
        this.nowSec = p.tsSec;
        this.nowNsec = p.tsNsec;
      }
      if (this.flows !== null) {
        this.flows.packet(p);
        this.flowEvents();
      }
      if (p.proto === IPPROTO_TCP && p.ipVersion !== 0) this.tcp(p);
      else out.push(new StreamItem(ItemKind.datagram, null, p, 0, null, 0, 0, p.tsSec, p.tsNsec, ''));
    }
    if (this.nowSec - this.lastSweepSec >= 1) {
      this.lastSweepSec = this.nowSec;
      this.sweepNow();
    }
    return out;
  }

  /** the packet time this stage has reached (--workers: the latest over the workers goes to setClock) */
  clock(): [number, number] {
    return [this.nowSec, this.nowNsec];
  }

  /**
   * packet time reached this in frames another worker saw (--workers, before the
   * flush, which stamps its events with it); the second's timers already ran at its tick
   */
  setClock(sec: number, nsec: number): void {
    if (sec > this.nowSec || (sec === this.nowSec && nsec > this.nowNsec)) {
      this.nowSec = sec;
      this.nowNsec = nsec;
    }
    this.flows?.advance(sec, nsec);
  }

  /** end of input: every connection is closed, its held bytes released as data and gaps */
  flush(): StreamItem[] {
    this.out = [];
    this.itemSec = this.nowSec;
    this.itemNsec = this.nowNsec;
    while (this.lru.head !== null) this.close(this.lru.head, 'end_of_input');
    if (this.flows !== null) {
      this.flowEvents();
      // every flow still open: its final report is built when the item is handed on, a
      // slice at a time, not all at once here (64,706 flows' events were ~120 MiB)
      for (const make of this.flows.flushDeferred()) this.out.push(new StreamItem(ItemKind.event, null, null, 0, null, 0, 0, this.nowSec, this.nowNsec, '', make));
    }
    return this.out;
  }

  /** flow reports made so far, as items in the output */
  private flowEvents(): void {
    for (const e of this.flows!.take()) this.out.push(new StreamItem(ItemKind.event, null, null, 0, null, 0, 0, this.nowSec, this.nowNsec, '', e));
  }

  /** advance packet time without a packet (a live source's idle tick) */
  tick(sec: number, nsec: number): StreamItem[] {
    this.out = [];
    if (sec > this.nowSec || (sec === this.nowSec && nsec > this.nowNsec)) {
      this.nowSec = sec;
      this.nowNsec = nsec;
    }
    this.sweepNow();
    if (this.flows !== null) {
      this.flows.advance(sec, nsec);
      this.flowEvents();
    }
    return this.out;
  }

  stats(): Stats {
    return {
      connections: { active: this.active, opened: this.opened, closed: this.closedBy.toJSON() },
      segments: this.segments,
      retransmitted: this.retransmitted,
      overlaps: this.overlaps,
      reordered: this.reordered,
      gaps: this.gaps,
      gap_bytes: this.gapBytes,
      gap_causes: this.gapCause.toJSON(),
      buffered_bytes: this.buffered,
      buffered_peak_bytes: this.bufferedPeak,
      closed_remembered: this.closed.size,
      ignored: this.ignored.toJSON(),
      ...(this.flows !== null ? { flows: this.flows.stats() } : {}),
    };
  }

  private tcp(p: Packet): void {
    this.itemSec = p.tsSec;
    this.itemNsec = p.tsNsec;
    const h = tupleHash(p);
    let c = this.buckets.get(h) ?? null;
    let side = -1;
    while (c !== null) {
      side = c.sideOf(p);
      if (side >= 0) break;
      c = c.chain;
    }
    const flags = p.tcpFlags;
    const syn = (flags & TCP_SYN) !== 0;
    const ack = (flags & TCP_ACK) !== 0;
    // a new SYN on a tuple whose client already sent another sequence space: the tuple is reused
    if (c !== null && syn && !ack && side === 0 && c.half[0].synSeq >= 0 && c.half[0].synSeq !== p.seq) {
      this.close(c, 'reused');
      c = null;
    }
    if (c === null && this.closed.size > 0 && this.copyOfClosed(p, syn, ack)) {
      this.retransmitted++;
      this.ignored.add('copy_of_closed_connection');
      return;
    }
    if (c === null) {
      if ((flags & TCP_RST) !== 0) {
        this.ignored.add('rst_without_connection');
        return;
      }
      if (!syn && p.payloadLen + p.payloadMissing === 0) {
        // nothing to reassemble: a stray ACK or FIN (often the last ones after a close)
        this.ignored.add((flags & TCP_FIN) !== 0 ? 'fin_without_connection' : 'ack_without_connection');
        return;
      }
      c = this.open(p, h);
      side = c.clientPort === p.srcPort && c.c3 === p.src3 && c.c0 === p.src0 && c.c1 === p.src1 && c.c2 === p.src2 ? 0 : 1;
      if (c.clientPort === c.serverPort && c.c3 === c.s3 && c.c0 === c.s0 && c.c1 === c.s1 && c.c2 === c.s2) side = 0;
    } else {
      this.lru.touch(c);
    }
    c.lastSec = p.tsSec;
    c.lastNsec = p.tsNsec;
    this.segments++;
    const hs = c.half[side];
    hs.packets++;
    hs.ipBytes += p.ipLen;
    let seq = p.seq;
    if (syn) {
      hs.synSeq = p.seq;
      seq = (seq + 1) >>> 0;
      if (!hs.seqKnown || hs.delivered === 0) {
        hs.nextSeq = seq;
        hs.seqKnown = true;
      }
    } else if (!hs.seqKnown) {
      hs.nextSeq = seq;
      hs.seqKnown = true;
    }
    if (ack) {
      // the peer acknowledged bytes we never saw: they will not be sent again. Before this
      // packet's own bytes: they were sent after the acknowledged ones (a reply after its request)
      const peer = c.half[1 - side];
      if (peer.ooo.length > 0 && peer.seqKnown && seqAfter(p.ack, peer.nextSeq)) this.forceGap(c, 1 - side, p.ack, 'acked_unseen');
    }
    const len = p.payloadLen + p.payloadMissing;
    if ((flags & TCP_FIN) !== 0 && hs.finSeq < 0) hs.finSeq = (seq + len) >>> 0;
    if (len > 0) this.segment(c, side, hs, seq, p);
    this.checkFin(hs);
    if (this.holeSec > 0) {
      for (let s = 0; s < 2; s++) {
        const q = c.half[s];
        if (q.ooo.length > 0 && this.nowSec - q.holeSince >= this.holeSec) this.forceGap(c, s, -1, 'hole_timeout');
      }
    }
    if ((flags & TCP_RST) !== 0) this.close(c, 'rst');
    else if (c.half[0].finDone && c.half[1].finDone) this.close(c, 'fin');
  }

  /**
   * The packet belongs to a connection closed by FIN or RST a little while ago: the same
   * SYN (or SYN-ACK) again, or bytes it had already sent. A SYN with another sequence
   * number is a new connection on the same tuple: the closed one is forgotten.
   */
  private copyOfClosed(p: Packet, syn: boolean, ack: boolean): boolean {
    // a bare ACK carries nothing to deliver twice (the last ACK of a close is one)
    if (!syn && p.payloadLen + p.payloadMissing === 0 && (p.tcpFlags & TCP_FIN) === 0) return false;
    const fwd = closedKey(p.ipVersion, p.vlan, p.vlanInner, p.src0, p.src1, p.src2, p.src3, p.srcPort, p.dst0, p.dst1, p.dst2, p.dst3, p.dstPort);
    let k = fwd;
    let side = 0;
    let m = this.closed.get(k);
    if (m === undefined) {
      k = closedKey(p.ipVersion, p.vlan, p.vlanInner, p.dst0, p.dst1, p.dst2, p.dst3, p.dstPort, p.src0, p.src1, p.src2, p.src3, p.srcPort);
      side = 1;
      m = this.closed.get(k);
      if (m === undefined) return false;
    }
    if (syn) {
      if (p.seq === (side === 0 ? m.syn0 : m.syn1) && ack === (side === 1)) return true;
      if (side === 0 && !ack) this.closed.delete(k);
      return false;
    }
    // a segment ending at or before where that side's stream ended was sent already
    const end = side === 0 ? m.end0 : m.end1;
    const last = (p.seq + p.payloadLen + p.payloadMissing + ((p.tcpFlags & TCP_FIN) !== 0 ? 1 : 0)) >>> 0;
    return !seqAfter(last, end);
  }

  /** forget closed connections past their time, or past the bound */
  private forgetClosed(): void {
    for (const [k, m] of this.closed) {
      if (this.closed.size <= this.maxClosed && this.nowSec - m.sec < this.closedSec) break;
      this.closed.delete(k);
    }
  }

  private segment(c: Connection, side: number, hs: HalfStream, seq: number, p: Packet): void {
    const capLen = p.payloadLen;
    const total = capLen + p.payloadMissing;
    const rel = (seq - hs.nextSeq) | 0;
    if (rel > 0) {
      this.enqueue(c, side, hs, seq, p.data, p.payloadOff, capLen);
      return;
    }
    if (rel + total <= 0) {
      hs.retransmitted++;
      this.retransmitted++;
      return;
    }
    if (rel < 0) {
      hs.overlaps++;
      this.overlaps++;
    }
    const skip = -rel;
    if (skip < capLen) this.deliver(c, side, hs, p.data, p.payloadOff + skip, capLen - skip);
    const missing = skip < capLen ? p.payloadMissing : total - skip;
    if (missing > 0) this.gap(c, side, hs, missing, 'snaplen');
    this.drain(c, side, hs);
  }

  private enqueue(c: Connection, side: number, hs: HalfStream, seq: number, b: Buffer, off: number, len: number): void {
    if (len === 0) return;
    const q = hs.ooo;
    const rel = (seq - hs.nextSeq) | 0;
    let i = q.length;
    while (i > 0 && ((q[i - 1].seq - hs.nextSeq) | 0) > rel) i--;
    if (i > 0 && q[i - 1].seq === seq && q[i - 1].bytes.length >= len) {
      hs.retransmitted++;
      this.retransmitted++;
      return;
    }
    const seg: Segment = { seq, bytes: Buffer.from(b.subarray(off, off + len)) };
    if (q.length === 0) hs.holeSince = this.nowSec;
    q.splice(i, 0, seg);
    hs.oooBytes += len;
    hs.reordered++;
    this.reordered++;
    this.buffered += len;
    if (this.buffered > this.bufferedPeak) this.bufferedPeak = this.buffered;
    while (hs.ooo.length > 0 && hs.oooBytes > this.maxPerDirection) this.forceGap(c, side, -1, 'connection_buffer_limit');
    while (hs.ooo.length > 0 && this.buffered > this.maxTotal) this.forceGap(c, side, -1, 'total_buffer_limit');
  }

  /** release queued segments that the stream has reached */
  private drain(c: Connection, side: number, hs: HalfStream): void {
    const q = hs.ooo;
    while (q.length > 0) {
      const s = q[0];
      const rel = (s.seq - hs.nextSeq) | 0;
      if (rel > 0) break;
      q.shift();
      const len = s.bytes.length;
      hs.oooBytes -= len;
      this.buffered -= len;
      if (rel + len <= 0) {
        hs.retransmitted++;
        this.retransmitted++;
        continue;
      }
      if (rel < 0) {
        hs.overlaps++;
        this.overlaps++;
      }
      this.deliver(c, side, hs, s.bytes, -rel, len + rel);
    }
    if (q.length > 0) hs.holeSince = this.nowSec;
    this.checkFin(hs);
  }

  /** give up on the hole before the first queued segment (or up to `upTo`, if it comes first) */
  private forceGap(c: Connection, side: number, upTo: number, cause: string): void {
    const hs = c.half[side];
    if (hs.ooo.length === 0) return;
    const first = hs.ooo[0].seq;
    const end = upTo >= 0 && seqAfter(first, upTo) ? upTo : first;
    const missing = (end - hs.nextSeq) | 0;
    if (missing > 0) this.gap(c, side, hs, missing, cause);
    this.drain(c, side, hs);
  }

  private deliver(c: Connection, side: number, hs: HalfStream, b: Buffer, off: number, len: number): void {
    hs.nextSeq = (hs.nextSeq + len) >>> 0;
    hs.delivered += len;
    this.out.push(new StreamItem(ItemKind.data, c, null, side, b, off, len, this.itemSec, this.itemNsec, ''));
  }

  private gap(c: Connection, side: number, hs: HalfStream, n: number, cause: string): void {
    hs.nextSeq = (hs.nextSeq + n) >>> 0;
    hs.gaps++;
    hs.gapBytes += n;
    this.gaps++;
    this.gapBytes += n;
    this.gapCause.add(cause);
    this.anomalies?.conversation('tcp', `gap_${cause}`, () => makeEndpoints(c, 6), this.itemSec, this.itemNsec);
    this.out.push(new StreamItem(ItemKind.gap, c, null, side, null, 0, n, this.itemSec, this.itemNsec, cause));
  }

  private checkFin(hs: HalfStream): void {
    if (hs.finSeq >= 0 && !hs.finDone && hs.nextSeq === hs.finSeq) {
      hs.finDone = true;
      hs.nextSeq = (hs.nextSeq + 1) >>> 0;
    }
  }

  private open(p: Packet, h: number): Connection {
    if (this.active >= this.maxConnections && this.lru.head !== null) this.close(this.lru.head, 'evicted');
    const syn = (p.tcpFlags & TCP_SYN) !== 0;
    const ack = (p.tcpFlags & TCP_ACK) !== 0;
    let srcIsClient: boolean;
    let from: string;
    if (syn) {
      srcIsClient = !ack;
      from = ack ? DirectionFrom.synAck : DirectionFrom.syn;
    } else {
      const srcServer = this.isServerPort(p.srcPort);
      const dstServer = this.isServerPort(p.dstPort);
      if (srcServer !== dstServer) {
        srcIsClient = dstServer;
        from = DirectionFrom.port;
      } else if ((p.srcPort < 1024) !== (p.dstPort < 1024)) {
        srcIsClient = p.dstPort < 1024;
        from = DirectionFrom.port;
      } else {
        srcIsClient = true;
        from = DirectionFrom.firstPacket;
      }
    }
    const c = srcIsClient
      ? new Connection(this.nextId++, h, p.ipVersion, p.src0, p.src1, p.src2, p.src3, p.dst0, p.dst1, p.dst2, p.dst3, p.srcPort, p.dstPort, p.vlan, p.vlanInner, from, p.tsSec, p.tsNsec)
      : new Connection(this.nextId++, h, p.ipVersion, p.dst0, p.dst1, p.dst2, p.dst3, p.src0, p.src1, p.src2, p.src3, p.dstPort, p.srcPort, p.vlan, p.vlanInner, from, p.tsSec, p.tsNsec);
    c.hold = holdFrame(p.frame);
    c.chain = this.buckets.get(h) ?? null;
    this.buckets.set(h, c);
    this.lru.append(c);
    this.active++;
    this.opened++;
    return c;
  }

  private close(c: Connection, reason: string): void {
    for (let side = 0; side < 2; side++) {
      const hs = c.half[side];
      while (hs.ooo.length > 0) this.forceGap(c, side, -1, 'connection_closed');
      // a FIN seen beyond a hole: the hole's bytes are lost
      if (hs.finSeq >= 0 && !hs.finDone && hs.seqKnown) {
        const missing = (hs.finSeq - hs.nextSeq) | 0;
        if (missing > 0) this.gap(c, side, hs, missing, 'connection_closed');
        hs.finDone = true;
      }
    }
    c.closed = true;
    if ((reason === 'fin' || reason === 'rst') && c.half[0].seqKnown && c.half[1].seqKnown) {
      const k = closedKey(c.ipVersion, c.vlan, c.vlanInner, c.c0, c.c1, c.c2, c.c3, c.clientPort, c.s0, c.s1, c.s2, c.s3, c.serverPort);
      this.closed.delete(k);
      this.closed.set(k, new Closed(c.half[0].synSeq, c.half[1].synSeq, c.half[0].nextSeq, c.half[1].nextSeq, this.nowSec));
      if (this.closed.size > this.maxClosed) this.forgetClosed();
    }
    this.out.push(new StreamItem(ItemKind.close, c, null, 0, null, 0, 0, this.itemSec, this.itemNsec, reason));
    this.closedBy.add(reason);
    this.active--;
    // unlink from its bucket
    let b = this.buckets.get(c.hash)!;
    if (b === c) {
      if (c.chain === null) this.buckets.delete(c.hash);
      else this.buckets.set(c.hash, c.chain);
    } else {
      while (b.chain !== c) b = b.chain!;
      b.chain = c.chain;
    }
    c.chain = null;
    this.lru.unlink(c);
    c.hold?.release();
  }

  /** forget every connection without a word: its frames will be read again */
  discard(): void {
    for (let c = this.lru.head; c !== null; c = c.next) {
      c.closed = true;
      c.hold?.release();
    }
    this.buckets.clear();
    this.closed.clear();
    this.lru.head = this.lru.tail = null;
    this.active = 0;
    this.buffered = 0;
    this.flows?.discard();
  }

  /** sweeps happen at the clock's time, not a packet's */
  private sweepNow(): void {
    this.itemSec = this.nowSec;
    this.itemNsec = this.nowNsec;
    this.sweep();
    this.forgetClosed();
  }

  private sweep(): void {
    const limit = this.nowSec - this.idleSec;
    while (this.lru.head !== null && this.lru.head.lastSec < limit) this.close(this.lru.head, 'idle');
    if (this.holeSec > 0) {
      // holes in connections that went quiet
      const holeLimit = this.nowSec - this.holeSec;
      for (let c = this.lru.head; c !== null && c.lastSec < holeLimit; c = c.next) {
        for (let s = 0; s < 2; s++) {
          const q = c.half[s];
          if (q.ooo.length > 0 && q.holeSince <= holeLimit) this.forceGap(c, s, -1, 'hole_timeout');
        }
      }
    }
  }
}

export function tcpReorder(options: TcpOptions = {}): TcpReorderer {
  return new TcpReorderer(options);
}
