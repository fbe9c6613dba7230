import { isoTime } from '../core/frame';
import type { Stats } from '../core/stage';
import type { Packet } from '../decode/packet';
import { TRANSPORT_NAMES, type Endpoints } from './endpoints';
import { ipString } from './ip';
import type { EventObject } from './transaction';

export interface AnomalyOptions {
  /** anomaly events per second of packet time, per layer and reason (default 10) */
  ratePerSec?: number;
  /** how many may come at once before the rate applies (default 10) */
  burst?: number;
}

/** a token bucket per layer and reason, on packet time */
class Bucket {
  tokens: number;
  lastSec: number;
  suppressed = 0;
  constructor(burst: number, sec: number) {
    this.tokens = burst;
    this.lastSec = sec;
  }
}

/**
 * Protocol violations and decode errors as `type: anomaly` events, like Suricata's
 * anomaly events or Zeek's weird.log: the layer, the reason, and the tuple where one
 * is known. Every stage that counts an anomaly reports it here too; the analyzer
 * stage puts the events in its output. Rate limited per layer and reason on packet
 * time; an event says how many of its kind were suppressed before it, and the stats
 * say how many were emitted and suppressed in all.
 */
export class AnomalyReporter {
  private readonly rate: number;
  private readonly burst: number;
  private readonly buckets = new Map<string, Bucket>();
  private out: EventObject[] = [];
  emitted = 0;
  suppressed = 0;

  constructor(options: AnomalyOptions = {}) {
    this.rate = options.ratePerSec ?? 10;
    this.burst = options.burst ?? 10;
  }

  /** a decoder's complaint about one packet: the addresses and ports it got as far as */
  packet(layer: string, reason: string, p: Packet): void {
    const b = this.admit(layer, reason, p.tsSec + p.tsNsec / 1e9);
    if (b === null) return;
    const e = this.event(b, layer, reason, p.tsSec, p.tsNsec);
    if (p.ipVersion !== 0) {
      const src: Record<string, unknown> = { ip: ipString(p.ipVersion, p.src0, p.src1, p.src2, p.src3) };
      const dst: Record<string, unknown> = { ip: ipString(p.ipVersion, p.dst0, p.dst1, p.dst2, p.dst3) };
      if (p.proto === 6 || p.proto === 17) {
        src.port = p.srcPort;
        dst.port = p.dstPort;
      }
      e.source = src;
      e.destination = dst;
      e.network = p.proto !== 0 ? { type: `ipv${p.ipVersion}`, transport: TRANSPORT_NAMES[p.proto] ?? String(p.proto) } : { type: `ipv${p.ipVersion}` };
    }
    this.out.push(e);
  }

  /** a complaint about a conversation (client as source); endpoints made only for an event that is let through */
  conversation(layer: string, reason: string, endpoints: Endpoints | (() => Endpoints), sec: number, nsec: number): void {
    const b = this.admit(layer, reason, sec + nsec / 1e9);
    if (b === null) return;
    const ep = typeof endpoints === 'function' ? endpoints() : endpoints;
    const e = this.event(b, layer, reason, sec, nsec);
    e.source = { ip: ep.clientIp, port: ep.clientPort };
    e.destination = { ip: ep.serverIp, port: ep.serverPort };
    e.network = { type: ep.type, transport: ep.transport, community_id: ep.communityId };
    this.out.push(e);
  }

  /** the events made since the last take */
  take(): EventObject[] {
    const o = this.out;
    if (o.length > 0) this.out = [];
    return o;
  }

  stats(): Stats {
    return { emitted: this.emitted, suppressed: this.suppressed };
  }

  /** the reason's bucket when an event may go out now, else null; `t`: packet time in seconds (a float is precise enough for a rate) */
  private admit(layer: string, reason: string, t: number): Bucket | null {
    const key = `${layer}/${reason}`;
    let b = this.buckets.get(key);
    if (b === undefined) this.buckets.set(key, (b = new Bucket(this.burst, t)));
    if (t > b.lastSec) {
      b.tokens = Math.min(this.burst, b.tokens + (t - b.lastSec) * this.rate);
      b.lastSec = t;
    }
    if (b.tokens < 1) {
      b.suppressed++;
      this.suppressed++;
      return null;
    }
    b.tokens--;
    this.emitted++;
    return b;
  }

  private event(b: Bucket, layer: string, reason: string, sec: number, nsec: number): EventObject {
    const e: EventObject = {
      '@timestamp': isoTime(sec, nsec),
      type: 'anomaly',
      event: { kind: 'event', category: ['network'], type: ['info'], dataset: 'anomaly' },
      anomaly: { layer, reason, suppressed: b.suppressed },
    };
    b.suppressed = 0;
    return e;
  }
}
