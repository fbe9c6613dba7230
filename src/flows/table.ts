import { createHash } from 'node:crypto';
import { isoTime, tsDiffNs } from '../core/frame';
import { IPPROTO_TCP, IPPROTO_UDP, type Packet } from '../decode/packet';
import { communityId, TRANSPORT_NAMES } from '../events/endpoints';
import { ipString } from '../events/ip';
import type { EventObject } from '../events/transaction';
import { LruList } from '../core/lru';

export interface FlowOptions {
  /** seconds of packet time between reports of active flows (default 10, as packetbeat) */
  periodSec?: number;
  /** seconds of packet time without a packet before a flow's final report (default 30) */
  timeoutSec?: number;
  /** flows tracked at once; the least recently active one is reported and dropped to make room (default 65536) */
  maxFlows?: number;
}


/**
 * One flow: both directions of a conversation, "source" being the side of the first
 * packet seen. Kept compact (numbers, no event objects): the table may hold hundreds
 * of thousands; the event fields are built only when the flow is reported.
 */
class Flow {
  packets0 = 0;
  bytes0 = 0;
  packets1 = 0;
  bytes1 = 0;
  lastSec: number;
  lastNsec: number;
  /** packets since the last report */
  fresh = 0;
  prev: Flow | null = null;
  next: Flow | null = null;
  // the first packet's description, source side first
  ipVersion = 0;
  proto = 0;
  etherType = 0;
  s0 = 0;
  s1 = 0;
  s2 = 0;
  s3 = 0;
  d0 = 0;
  d1 = 0;
  d2 = 0;
  d3 = 0;
  /** ports, or ICMP type and code */
  sport = 0;
  dport = 0;
  vlan = -1;
  vlanInner = -1;
  /** 48-bit MAC addresses as numbers, -1 without an Ethernet header */
  smac = -1;
  dmac = -1;

  constructor(
    readonly key: string,
    /** the source is the first end of the canonical key */
    readonly sourceFirst: boolean,
    readonly startSec: number,
    readonly startNsec: number,
  ) {
    this.lastSec = startSec;
    this.lastNsec = startNsec;
  }
}

function mac(b: Buffer, o: number): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += (i > 0 ? '-' : '') + b[o + i].toString(16).padStart(2, '0').toUpperCase();
  return s;
}

function macString(n: number): string {
  return mac(Buffer.from(n.toString(16).padStart(12, '0'), 'hex'), 0);
}

/**
 * packetbeat-compatible flows for every packet: TCP, UDP, ICMP, other IP, and
 * non-IP frames by MAC addresses. Reports every period and a final report on idle
 * timeout, eviction or end of input; all on packet time.
 */
export class FlowTable {
  private readonly flows = new Map<string, Flow>();
  /** flows, least recently active first */
  private readonly lru = new LruList<Flow>();
  private readonly periodSec: number;
  private readonly timeoutSec: number;
  private readonly maxFlows: number;
  private nextReportSec = -1;
  private nowSec = 0;
  private nowNsec = 0;
  private out: EventObject[] = [];
  created = 0;
  reports = 0;
  finals = 0;
  evicted = 0;

  constructor(options: FlowOptions = {}) {
    this.periodSec = options.periodSec ?? 10;
    this.timeoutSec = options.timeoutSec ?? 30;
    this.maxFlows = options.maxFlows ?? 65_536;
  }

  get size(): number {
    return this.flows.size;
  }

  packet(p: Packet): void {
    this.advance(p.tsSec, p.tsNsec);
    const k = this.keyOf(p);
    let f = this.flows.get(k.key);
    if (f === undefined) {
      if (this.flows.size >= this.maxFlows && this.lru.head !== null) {
        this.evicted++;
        this.final(this.lru.head);
      }
      f = this.create(p, k.key, k.forward);
    } else this.lru.touch(f);
    const bytes = p.frame.origLen;
    if (k.forward === f.sourceFirst) {
      f.packets0++;
      f.bytes0 += bytes;
    } else {
      f.packets1++;
      f.bytes1 += bytes;
    }
    f.lastSec = p.tsSec;
    f.lastNsec = p.tsNsec;
    f.fresh++;
  }

  /** packet time moved on (a packet or a tick): periodic reports and idle timeouts */
  advance(sec: number, nsec: number): void {
    if (sec < this.nowSec || (sec === this.nowSec && nsec <= this.nowNsec)) return;
    this.nowSec = sec;
    this.nowNsec = nsec;
    if (this.nextReportSec < 0) this.nextReportSec = sec + this.periodSec;
    while (this.lru.head !== null && this.lru.head.lastSec + this.timeoutSec <= sec) this.final(this.lru.head);
    if (this.periodSec > 0 && sec >= this.nextReportSec) {
      for (let f = this.lru.head; f !== null; f = f.next) if (f.fresh > 0) this.report(f, false);
      this.nextReportSec = sec + this.periodSec;
    }
  }

  /** end of input: every flow's final report */
  flush(): void {
    while (this.lru.head !== null) this.final(this.lru.head);
  }

  /** forget every flow without reporting it (its frames will be read again) */
  discard(): void {
    this.flows.clear();
    this.lru.head = this.lru.tail = null;
    this.out = [];
  }

  /** the events made since the last take */
  take(): EventObject[] {
    const o = this.out;
    if (o.length > 0) this.out = [];
    return o;
  }

  private keyOf(p: Packet): { key: string; forward: boolean } {
    if (p.ipVersion === 0) {
      const b = p.frame.data;
      const e = p.ethOff;
      const a = e >= 0 ? mac(b, e + 6) : '';
      const z = e >= 0 ? mac(b, e) : '';
      const forward = a <= z;
      return { key: `l2|${p.vlan}|${p.vlanInner}|${p.etherType}|${forward ? a : z}|${forward ? z : a}`, forward };
    }
    const ports = p.proto === IPPROTO_TCP || p.proto === IPPROTO_UDP;
    const sp = ports ? p.srcPort : 0;
    const dp = ports ? p.dstPort : 0;
    const a = `${p.src0},${p.src1},${p.src2},${p.src3},${sp}`;
    const z = `${p.dst0},${p.dst1},${p.dst2},${p.dst3},${dp}`;
    const forward = a <= z;
    return { key: `${p.ipVersion}|${p.vlan}|${p.vlanInner}|${p.proto}|${forward ? a : z}|${forward ? z : a}`, forward };
  }

  private create(p: Packet, key: string, forward: boolean): Flow {
    const f = new Flow(key, forward, p.tsSec, p.tsNsec);
    const e = p.ethOff;
    if (e >= 0) {
      f.smac = p.frame.data.readUIntBE(e + 6, 6);
      f.dmac = p.frame.data.readUIntBE(e, 6);
    }
    f.ipVersion = p.ipVersion;
    f.proto = p.proto;
    f.etherType = p.etherType;
    f.s0 = p.src0;
    f.s1 = p.src1;
    f.s2 = p.src2;
    f.s3 = p.src3;
    f.d0 = p.dst0;
    f.d1 = p.dst1;
    f.d2 = p.dst2;
    f.d3 = p.dst3;
    const ports = p.proto === IPPROTO_TCP || p.proto === IPPROTO_UDP;
    f.sport = ports ? p.srcPort : p.icmpType;
    f.dport = ports ? p.dstPort : p.icmpCode;
    f.vlan = p.vlan;
    f.vlanInner = p.vlanInner;
    this.flows.set(key, f);
    this.lru.append(f);
    this.created++;
    return f;
  }

  /** the flow's source, destination and network fields, in event form */
  private describe(f: Flow): { src: Record<string, unknown>; dst: Record<string, unknown>; network: Record<string, unknown> } {
    const network: Record<string, unknown> = {};
    let src: Record<string, unknown>;
    let dst: Record<string, unknown>;
    if (f.ipVersion === 0) {
      src = {};
      dst = {};
      network.type = f.etherType === 0x0806 ? 'arp' : `0x${f.etherType.toString(16).padStart(4, '0')}`;
    } else {
      const ports = f.proto === IPPROTO_TCP || f.proto === IPPROTO_UDP;
      src = { ip: ipString(f.ipVersion, f.s0, f.s1, f.s2, f.s3) };
      dst = { ip: ipString(f.ipVersion, f.d0, f.d1, f.d2, f.d3) };
      if (ports) {
        src.port = f.sport;
        dst.port = f.dport;
      }
      network.type = f.ipVersion === 4 ? 'ipv4' : 'ipv6';
      network.transport = TRANSPORT_NAMES[f.proto] ?? String(f.proto);
      if (ports || f.proto === 1 || f.proto === 58) {
        const pair = { ipVersion: f.ipVersion, c0: f.s0, c1: f.s1, c2: f.s2, c3: f.s3, s0: f.d0, s1: f.d1, s2: f.d2, s3: f.d3, clientPort: f.sport, serverPort: f.dport, vlan: f.vlan, vlanInner: f.vlanInner };
        network.community_id = communityId(pair, f.proto, !ports);
      }
    }
    if (f.smac >= 0) {
      src.mac = macString(f.smac);
      dst.mac = macString(f.dmac);
    }
    if (f.vlan >= 0) network.vlan = f.vlanInner >= 0 ? { id: String(f.vlan), inner: { id: String(f.vlanInner) } } : { id: String(f.vlan) };
    return { src, dst, network };
  }

  private report(f: Flow, final: boolean): void {
    f.fresh = 0;
    this.reports++;
    const start = isoTime(f.startSec, f.startNsec);
    const { src, dst, network } = this.describe(f);
    this.out.push({
      '@timestamp': isoTime(this.nowSec, this.nowNsec),
      type: 'flow',
      event: {
        kind: 'event',
        category: ['network'],
        type: ['connection'],
        action: 'network_flow',
        dataset: 'flow',
        start,
        end: isoTime(f.lastSec, f.lastNsec),
        duration: tsDiffNs(f.lastSec, f.lastNsec, f.startSec, f.startNsec),
      },
      flow: { id: createHash('sha1').update(f.key).digest('base64url'), final },
      source: { ...src, packets: f.packets0, bytes: f.bytes0 },
      destination: { ...dst, packets: f.packets1, bytes: f.bytes1 },
      network: { ...network, packets: f.packets0 + f.packets1, bytes: f.bytes0 + f.bytes1 },
    });
  }

  private final(f: Flow): void {
    this.finals++;
    this.report(f, true);
    this.flows.delete(f.key);
    this.lru.unlink(f);
  }

  stats() {
    return { active: this.flows.size, created: this.created, reports: this.reports, final: this.finals, evicted: this.evicted };
  }
}
