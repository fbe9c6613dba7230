import { createHash } from 'node:crypto';
import { isoTime, tsDiffNs } from '../core/frame';
import { IPPROTO_TCP, IPPROTO_UDP, type Packet } from '../decode/packet';
import { communityId } from '../events/endpoints';
import { ipString } from '../events/ip';
import type { Event } from '../events/transaction';
import { LruList } from '../core/lru';

export interface FlowOptions {
  /** seconds of packet time between reports of active flows (default 10, as packetbeat) */
  periodSec?: number;
  /** seconds of packet time without a packet before a flow's final report (default 30) */
  timeoutSec?: number;
  /** flows tracked at once; the least recently active one is reported and dropped to make room (default 262144) */
  maxFlows?: number;
}

const TRANSPORTS: Record<number, string> = { 6: 'tcp', 17: 'udp', 1: 'icmp', 58: 'ipv6-icmp' };

/** one flow: both directions of a conversation, "source" being the side of the first packet seen */
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

  constructor(
    readonly key: string,
    readonly id: string,
    /** the source's and destination's descriptions, in event form */
    readonly src: Record<string, unknown>,
    readonly dst: Record<string, unknown>,
    readonly network: Record<string, unknown>,
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
  private out: Event[] = [];
  created = 0;
  reports = 0;
  finals = 0;
  evicted = 0;

  constructor(options: FlowOptions = {}) {
    this.periodSec = options.periodSec ?? 10;
    this.timeoutSec = options.timeoutSec ?? 30;
    this.maxFlows = options.maxFlows ?? 262_144;
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
  take(): Event[] {
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
    const id = createHash('sha1').update(key).digest('base64url');
    const network: Record<string, unknown> = {};
    let src: Record<string, unknown>;
    let dst: Record<string, unknown>;
    const b = p.frame.data;
    const e = p.ethOff;
    if (p.ipVersion === 0) {
      src = e >= 0 ? { mac: mac(b, e + 6) } : {};
      dst = e >= 0 ? { mac: mac(b, e) } : {};
      network.type = p.etherType === 0x0806 ? 'arp' : `0x${p.etherType.toString(16).padStart(4, '0')}`;
    } else {
      const ports = p.proto === IPPROTO_TCP || p.proto === IPPROTO_UDP;
      src = { ip: ipString(p.ipVersion, p.src0, p.src1, p.src2, p.src3) };
      dst = { ip: ipString(p.ipVersion, p.dst0, p.dst1, p.dst2, p.dst3) };
      if (ports) {
        src.port = p.srcPort;
        dst.port = p.dstPort;
      }
      if (e >= 0) {
        src.mac = mac(b, e + 6);
        dst.mac = mac(b, e);
      }
      network.type = p.ipVersion === 4 ? 'ipv4' : 'ipv6';
      network.transport = TRANSPORTS[p.proto] ?? String(p.proto);
      if (ports || p.proto === 1 || p.proto === 58) {
        const pair = { ipVersion: p.ipVersion, c0: p.src0, c1: p.src1, c2: p.src2, c3: p.src3, s0: p.dst0, s1: p.dst1, s2: p.dst2, s3: p.dst3, clientPort: ports ? p.srcPort : p.icmpType, serverPort: ports ? p.dstPort : p.icmpCode, vlan: p.vlan, vlanInner: p.vlanInner };
        network.community_id = communityId(pair, p.proto, !ports);
      }
    }
    if (p.vlan >= 0) network.vlan = p.vlanInner >= 0 ? { id: String(p.vlan), inner: { id: String(p.vlanInner) } } : { id: String(p.vlan) };
    const f = new Flow(key, id, src, dst, network, forward, p.tsSec, p.tsNsec);
    this.flows.set(key, f);
    this.lru.append(f);
    this.created++;
    return f;
  }

  private report(f: Flow, final: boolean): void {
    f.fresh = 0;
    this.reports++;
    const start = isoTime(f.startSec, f.startNsec);
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
      flow: { id: f.id, final },
      source: { ...f.src, packets: f.packets0, bytes: f.bytes0 },
      destination: { ...f.dst, packets: f.packets1, bytes: f.bytes1 },
      network: { ...f.network, packets: f.packets0 + f.packets1, bytes: f.bytes0 + f.bytes1 },
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
