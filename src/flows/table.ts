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
  /** what every report repeats, made at the first one */
  id = '';
  communityId = '';
  srcIp = '';
  dstIp = '';

  /** next flow in the same hash bucket */
  chain: Flow | null = null;

  constructor(
    readonly hash: number,
    readonly startSec: number,
    readonly startNsec: number,
  ) {
    this.lastSec = startSec;
    this.lastNsec = startNsec;
  }

  /**
   * 1 if the packet goes the flow's way (source to destination), 0 the other way, -1 if
   * it is not of this flow. Ports are compared for TCP and UDP only: other IP traffic
   * between two hosts is one flow per protocol; non-IP frames, one per MAC pair and
   * EtherType.
   */
  match(p: Packet, sport: number, dport: number, smac: number, dmac: number): number {
    if (p.ipVersion !== this.ipVersion || p.vlan !== this.vlan || p.vlanInner !== this.vlanInner) return -1;
    if (p.ipVersion === 0) {
      if (p.etherType !== this.etherType) return -1;
      if (smac === this.smac && dmac === this.dmac) return 1;
      return smac === this.dmac && dmac === this.smac ? 0 : -1;
    }
    if (p.proto !== this.proto) return -1;
    const ports = this.proto === IPPROTO_TCP || this.proto === IPPROTO_UDP;
    if (
      (!ports || (sport === this.sport && dport === this.dport)) &&
      p.src3 === this.s3 && p.dst3 === this.d3 && p.src2 === this.s2 && p.dst2 === this.d2 &&
      p.src1 === this.s1 && p.dst1 === this.d1 && p.src0 === this.s0 && p.dst0 === this.d0
    ) return 1;
    if (
      (!ports || (sport === this.dport && dport === this.sport)) &&
      p.src3 === this.d3 && p.dst3 === this.s3 && p.src2 === this.d2 && p.dst2 === this.s2 &&
      p.src1 === this.d1 && p.dst1 === this.s1 && p.src0 === this.d0 && p.dst0 === this.s0
    ) return 0;
    return -1;
  }
}

function mix(h: number, v: number): number {
  h = Math.imul(h ^ v, 0x9e3779b1);
  return h ^ (h >>> 15);
}

/** symmetric: both directions of a flow hash alike */
function flowHash(p: Packet, sport: number, dport: number, smac: number, dmac: number): number {
  let a: number;
  let b: number;
  if (p.ipVersion === 0) {
    a = mix(mix(smac >>> 0, Math.floor(smac / 4294967296)), 1);
    b = mix(mix(dmac >>> 0, Math.floor(dmac / 4294967296)), 1);
  } else {
    a = mix(mix(mix(mix(sport, p.src0), p.src1), p.src2), p.src3);
    b = mix(mix(mix(mix(dport, p.dst0), p.dst1), p.dst2), p.dst3);
  }
  return mix(mix((a ^ b) | 0, (a + b) | 0), (p.vlan << 12) ^ p.vlanInner ^ (p.proto << 24) ^ (p.etherType << 8) ^ p.ipVersion);
}

const HEX2 = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0').toUpperCase());

/** a 48-bit MAC address held as a number, as packetbeat writes it: AA-BB-CC-DD-EE-FF */
function macString(n: number): string {
  const hi = Math.floor(n / 4294967296);
  const lo = n >>> 0;
  return `${HEX2[hi >>> 8]}-${HEX2[hi & 255]}-${HEX2[lo >>> 24]}-${HEX2[(lo >>> 16) & 255]}-${HEX2[(lo >>> 8) & 255]}-${HEX2[lo & 255]}`;
}

/**
 * A flow's id: 64 bits of two FNV-1a hashes (different offset bases) over its
 * canonical tuple (the lower end first, so both directions agree), base64url. Stable
 * across runs; made once per flow, at its first report.
 */
function flowId(f: Flow): string {
  const ports = f.proto === IPPROTO_TCP || f.proto === IPPROTO_UDP;
  const src = [f.s0, f.s1, f.s2, f.s3, ports ? f.sport : 0, f.smac >>> 0, Math.floor(Math.max(0, f.smac) / 4294967296)];
  const dst = [f.d0, f.d1, f.d2, f.d3, ports ? f.dport : 0, f.dmac >>> 0, Math.floor(Math.max(0, f.dmac) / 4294967296)];
  if (f.ipVersion !== 0) src[5] = src[6] = dst[5] = dst[6] = 0;
  let srcFirst = true;
  for (let i = 0; i < src.length; i++) {
    if (src[i] !== dst[i]) {
      srcFirst = src[i] < dst[i];
      break;
    }
  }
  const words = [f.ipVersion, f.proto, f.etherType, f.vlan, f.vlanInner, ...(srcFirst ? src : dst), ...(srcFirst ? dst : src)];
  let a = 0x811c9dc5;
  let b = 0x1b873593;
  for (const w of words) {
    for (let k = 0; k < 4; k++) {
      const c = (w >>> (8 * k)) & 255;
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x01000193);
    }
  }
  const buf = Buffer.allocUnsafe(8);
  buf.writeInt32BE(a, 0);
  buf.writeInt32BE(b, 4);
  return buf.toString('base64url');
}

/**
 * packetbeat-compatible flows for every packet: TCP, UDP, ICMP, other IP, and
 * non-IP frames by MAC addresses. Reports every period and a final report on idle
 * timeout, eviction or end of input; all on packet time.
 */
export class FlowTable {
  /** flows by symmetric hash, colliding ones chained */
  private readonly buckets = new Map<number, Flow>();
  private active = 0;
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
    return this.active;
  }

  packet(p: Packet): void {
    this.advance(p.tsSec, p.tsNsec);
    const ip = p.ipVersion !== 0;
    const ports = p.proto === IPPROTO_TCP || p.proto === IPPROTO_UDP;
    const sport = ip && ports ? p.srcPort : 0;
    const dport = ip && ports ? p.dstPort : 0;
    // MACs matter to non-IP flows only (an IP flow notes those of its first packet)
    const e = p.ethOff;
    const smac = !ip && e >= 0 ? p.frame.data.readUIntBE(e + 6, 6) : -1;
    const dmac = !ip && e >= 0 ? p.frame.data.readUIntBE(e, 6) : -1;
    const h = flowHash(p, sport, dport, smac, dmac);
    let f = this.buckets.get(h) ?? null;
    let way = -1;
    while (f !== null && (way = f.match(p, sport, dport, smac, dmac)) < 0) f = f.chain;
    if (f === null) {
      if (this.active >= this.maxFlows && this.lru.head !== null) {
        this.evicted++;
        this.final(this.lru.head);
      }
      f = this.create(p, h);
      way = 1;
    } else this.lru.touch(f);
    // a datagram rebuilt from fragments counts every fragment's frame
    const frames = p.frames;
    const bytes = p.wireBytes;
    if (way === 1) {
      f.packets0 += frames;
      f.bytes0 += bytes;
    } else {
      f.packets1 += frames;
      f.bytes1 += bytes;
    }
    f.lastSec = p.tsSec;
    f.lastNsec = p.tsNsec;
    f.fresh += frames;
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
    for (const make of this.flushDeferred()) this.out.push(make());
  }

  /**
   * End of input: every flow's final report, as a function that builds it, for the
   * caller to call when it hands the report on (the flows are out of the table: their
   * counters no longer change)
   */
  flushDeferred(): (() => EventObject)[] {
    const out: (() => EventObject)[] = [];
    const sec = this.nowSec;
    const nsec = this.nowNsec;
    while (this.lru.head !== null) {
      const f = this.lru.head;
      this.finals++;
      this.reports++;
      f.fresh = 0;
      this.remove(f);
      out.push(() => this.event(f, true, sec, nsec));
    }
    return out;
  }

  /** forget every flow without reporting it (its frames will be read again) */
  discard(): void {
    this.buckets.clear();
    this.active = 0;
    this.lru.head = this.lru.tail = null;
    this.out = [];
  }

  /** the events made since the last take */
  take(): EventObject[] {
    const o = this.out;
    if (o.length > 0) this.out = [];
    return o;
  }

  private create(p: Packet, h: number): Flow {
    const f = new Flow(h, p.tsSec, p.tsNsec);
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
    f.chain = this.buckets.get(h) ?? null;
    this.buckets.set(h, f);
    this.active++;
    this.lru.append(f);
    this.created++;
    return f;
  }

  /** the strings every report of the flow repeats */
  private describe(f: Flow): void {
    f.id = flowId(f);
    if (f.ipVersion === 0) return;
    f.srcIp = ipString(f.ipVersion, f.s0, f.s1, f.s2, f.s3);
    f.dstIp = ipString(f.ipVersion, f.d0, f.d1, f.d2, f.d3);
    // ICMP: the Community ID takes the type and code as its ports (and maps them)
    const pair = { ipVersion: f.ipVersion, c0: f.s0, c1: f.s1, c2: f.s2, c3: f.s3, s0: f.d0, s1: f.d1, s2: f.d2, s3: f.d3, clientPort: f.sport, serverPort: f.dport, vlan: f.vlan, vlanInner: f.vlanInner };
    f.communityId = communityId(pair, f.proto);
  }

  /** one end of the flow in event form: fields in a fixed order */
  private end(f: Flow, source: boolean): Record<string, unknown> {
    const o: Record<string, unknown> = {};
    if (f.ipVersion !== 0) {
      o.ip = source ? f.srcIp : f.dstIp;
      if (f.proto === IPPROTO_TCP || f.proto === IPPROTO_UDP) o.port = source ? f.sport : f.dport;
    }
    if (f.smac >= 0) o.mac = macString(source ? f.smac : f.dmac);
    o.packets = source ? f.packets0 : f.packets1;
    o.bytes = source ? f.bytes0 : f.bytes1;
    return o;
  }

  private report(f: Flow, final: boolean): void {
    f.fresh = 0;
    this.reports++;
    this.out.push(this.event(f, final, this.nowSec, this.nowNsec));
  }

  /** the flow's report at packet time sec.nsec */
  private event(f: Flow, final: boolean, sec: number, nsec: number): EventObject {
    if (f.id === '') this.describe(f);
    const network: Record<string, unknown> = {};
    if (f.ipVersion === 0) network.type = f.etherType === 0x0806 ? 'arp' : `0x${f.etherType.toString(16).padStart(4, '0')}`;
    else {
      network.type = f.ipVersion === 4 ? 'ipv4' : 'ipv6';
      network.transport = TRANSPORT_NAMES[f.proto] ?? String(f.proto);
      network.community_id = f.communityId;
    }
    if (f.vlan >= 0) network.vlan = f.vlanInner >= 0 ? { id: String(f.vlan), inner: { id: String(f.vlanInner) } } : { id: String(f.vlan) };
    network.packets = f.packets0 + f.packets1;
    network.bytes = f.bytes0 + f.bytes1;
    const start = isoTime(f.startSec, f.startNsec);
    return {
      '@timestamp': isoTime(sec, nsec),
      type: 'flow',
      event: {
        kind: 'event',
        category: ['network'],
        // packetbeat: a flow's last report ends the connection
        type: final ? ['connection', 'end'] : ['connection'],
        action: 'network_flow',
        dataset: 'flow',
        start,
        end: isoTime(f.lastSec, f.lastNsec),
        duration: tsDiffNs(f.lastSec, f.lastNsec, f.startSec, f.startNsec),
      },
      // packetbeat's flow.vlan: the tags, outer first (packetbeat writes one tag as a number;
      // Elasticsearch indexes a number and an array of one alike)
      flow: f.vlan < 0 ? { id: f.id, final } : { id: f.id, final, vlan: f.vlanInner >= 0 ? [f.vlan, f.vlanInner] : [f.vlan] },
      source: this.end(f, true),
      destination: this.end(f, false),
      network,
    };
  }

  private final(f: Flow): void {
    this.finals++;
    this.report(f, true);
    this.remove(f);
  }

  /** out of the table */
  private remove(f: Flow): void {
    let b = this.buckets.get(f.hash)!;
    if (b === f) {
      if (f.chain === null) this.buckets.delete(f.hash);
      else this.buckets.set(f.hash, f.chain);
    } else {
      while (b.chain !== f) b = b.chain!;
      b.chain = f.chain;
    }
    f.chain = null;
    this.active--;
    this.lru.unlink(f);
  }

  stats() {
    return { active: this.active, created: this.created, reports: this.reports, final: this.finals, evicted: this.evicted };
  }
}
