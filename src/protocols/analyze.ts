import { ReasonCounter } from '../core/counters';
import type { Stage, Stats } from '../core/stage';
import { IPPROTO_UDP } from '../decode/packet';
import { makeEndpoints } from '../events/endpoints';
import type { EventObject } from '../events/transaction';
import type { Event } from '../events/types';
import { DirectionFrom, type Connection } from '../tcp/connection';
import { ItemKind, type StreamItem } from '../tcp/items';
import type { Emitter, Protocol, ProtocolInstance, TcpAnalyzer, TcpContext } from './analyzer';
import { protocols as builtins } from './registry';
import type { AnomalyReporter } from '../events/anomaly';
import type { Endpoints } from '../events/endpoints';
import type { Packet } from '../decode/packet';

export interface AnalyzeOptions {
  /** protocols to run, by name (default: all registered) */
  protocols?: string[];
  /** ports per protocol, replacing its defaults: { http: [8080, 8000] } */
  ports?: Record<string, number[]>;
  /** recognise protocols on other ports by their first bytes (default true) */
  probe?: boolean;
  /** options per protocol, by name */
  options?: Record<string, Record<string, unknown>>;
  /** protocol violations as anomaly events; this stage also outputs the events other stages report there */
  anomalies?: AnomalyReporter;
}

/** content probing looks at this many payload chunks before giving up (Zeek looks at 100 packets / 1 KiB) */
const PROBE_CHUNKS = 4;

/**
 * What a connection's chunks looked at before its protocol was known may hold, to be
 * handed to the analyzer once it is chosen (a client's first command that only the
 * server's answer shows to be Redis): per connection and over all of them. A chunk
 * beyond either is handed on as a gap of its length.
 */
const PROBE_HOLD_BYTES = 16 * 1024;
const PROBE_HOLD_TOTAL = 16 * 1024 * 1024;

/** a chunk (or a gap: buf null) seen while the connection's protocol was looked for */
class Held {
  constructor(
    readonly side: number,
    readonly buf: Buffer | null,
    readonly len: number,
    readonly tsSec: number,
    readonly tsNsec: number,
  ) {}
}

/** UDP flows on unclaimed ports whose protocol is looked for by content (LRU beyond it) */
const UDP_PROBE_FLOWS = 16_384;

/** What the analyzer stage keeps on a UDP flow on ports no protocol claims: its protocol, once known. */
class UdpProbe {
  /** instance index + 1; 0 while undecided or when none fits */
  idx = 0;
  probed = 0;
  decided = false;
}

/** What the analyzer stage keeps on each TCP connection (in `conn.app`). */
class AppState {
  analyzer: TcpAnalyzer | null = null;
  /** payload chunks looked at without recognising a protocol */
  probed = 0;
  /** detection is over: an analyzer was chosen, or none fits */
  decided = false;
  /** what the probes saw, in order, for the analyzer chosen later */
  held: Held[] | null = null;
  heldBytes = 0;
}

/** a TCP analyzer's context: an object with a method, not a closure per connection */
class Context implements TcpContext {
  constructor(
    private readonly stage: AnalyzeStage,
    private readonly instance: number,
    readonly conn: Connection,
    readonly endpoints: Endpoints,
    readonly out: Emitter,
    readonly midStream: boolean,
  ) {}
  open(protocol: string, out?: Emitter, midStream?: boolean): TcpAnalyzer | null {
    return this.stage.openInside(this.instance, protocol, this.conn, this.endpoints, out ?? this.stage, midStream ?? this.midStream);
  }
}

/**
 * Stream items in, transaction events out. Picks an analyzer for each TCP
 * connection by server port, else by content probe; hands UDP datagrams to the
 * protocol that owns the port. The analyzers build plain objects; the stage hands
 * them on as the typed `Event` union (a cast, nothing done per event).
 */
export class AnalyzeStage implements Stage<StreamItem, Event>, Emitter {
  readonly name = 'analyze';
  readonly takes = 'StreamItem';
  readonly outputs = 'Event';
  private out: EventObject[] = [];
  private readonly instances: ProtocolInstance[] = [];
  private readonly names: string[] = [];
  private readonly probers: { p: Protocol; i: number }[] = [];
  private readonly udpProbers: { p: Protocol; i: number }[] = [];
  /** UDP flows on unclaimed ports, by canonical tuple, oldest first (a Map keeps insertion order) */
  private readonly udpFlows = new Map<string, UdpProbe>();
  private udpFlowsEvicted = 0;
  /** bytes of probed chunks held over all connections, chunks handed to a chosen analyzer, chunks not held (bounds) */
  private heldTotal = 0;
  private probeReplayed = 0;
  private probeNotHeld = 0;
  /** datagrams handed to each protocol because of a port, and because of a probe */
  private readonly udpByPort: number[] = [];
  private readonly udpByProbe: number[] = [];
  private udpUnrecognised = 0;
  /** port → instance index + 1 (0: none) */
  private readonly tcpPorts = new Uint8Array(65536);
  private readonly udpPorts = new Uint8Array(65536);
  /** IP protocol → instance index + 1, for protocols taken whole (ICMP) */
  private readonly ipProtos = new Uint8Array(256);
  private readonly active = new Set<Connection>();
  private nowSec = 0;
  private nowNsec = 0;
  private lastExpireSec = 0;
  events = 0;
  flowEvents = 0;
  readonly byProtocol: number[] = [];
  readonly connections = new ReasonCounter();
  private readonly anomalies: AnomalyReporter | null;

  constructor(options: AnalyzeOptions = {}, registry: readonly Protocol[] = builtins) {
    this.anomalies = options.anomalies ?? null;
    const wanted = options.protocols ?? registry.map((p) => p.name);
    for (const name of wanted) {
      const proto = registry.find((p) => p.name === name);
      if (proto === undefined) throw new Error(`unknown protocol "${name}" (known: ${registry.map((p) => p.name).join(', ')})`);
      const index = this.instances.length;
      const inst = proto.create(options.options?.[name] ?? {}, this);
      this.instances.push(inst);
      this.names.push(name);
      this.byProtocol.push(0);
      const ports = options.ports?.[name];
      for (const port of ports ?? proto.tcpPorts) if (inst.tcp) this.tcpPorts[port] = index + 1;
      for (const port of ports ?? proto.udpPorts) if (inst.datagrams) this.udpPorts[port] = index + 1;
      for (const ip of proto.ipProtocols ?? []) if (inst.datagrams) this.ipProtos[ip] = index + 1;
      if (proto.probe && inst.tcp && options.probe !== false) this.probers.push({ p: proto, i: index });
      if (proto.probeDatagram && inst.datagrams && options.probe !== false) this.udpProbers.push({ p: proto, i: index });
      this.udpByPort.push(0);
      this.udpByProbe.push(0);
    }
  }

  /** does a protocol claim this port (used by the reorderer to tell the server side) */
  isServerPort = (port: number): boolean => this.tcpPorts[port] !== 0;

  emit(event: EventObject): void {
    this.out.push(event);
  }

  anomaly(layer: string, reason: string, ep: Endpoints): void {
    this.anomalies?.conversation(layer, reason, ep, this.nowSec, this.nowNsec);
  }

  packetAnomaly(layer: string, reason: string, p: Packet): void {
    this.anomalies?.packet(layer, reason, p);
  }

  push(items: StreamItem[]): Event[] {
    this.out = [];
    for (let i = 0; i < items.length; i++) {
      const it = items[i];
      if (it.tsSec > this.nowSec || (it.tsSec === this.nowSec && it.tsNsec > this.nowNsec)) {
        this.nowSec = it.tsSec;
        this.nowNsec = it.tsNsec;
        // timeouts run as packet time passes each second, before the item that moved it:
        // where a batch ends (a file's chunk, a Kafka fetch) changes nothing
        if (this.nowSec - this.lastExpireSec >= 1) {
          this.lastExpireSec = this.nowSec;
          this.expire();
        }
      }
      switch (it.kind) {
        case ItemKind.data: {
          const c = it.conn!;
          let st = c.app as AppState | undefined;
          if (st === undefined) c.app = st = new AppState();
          if (!st.decided) this.detect(c, it, st);
          if (st.analyzer !== null) st.analyzer.data(it.side, it.buf!, it.off, it.len, it.tsSec, it.tsNsec);
          break;
        }
        case ItemKind.gap: {
          const st = it.conn!.app as AppState | undefined;
          if (st?.analyzer) st.analyzer.gap(it.side, it.len, it.tsSec, it.tsNsec);
          else if (st !== undefined && !st.decided) this.hold(st, it, false);
          break;
        }
        case ItemKind.close: {
          const c = it.conn!;
          const st = c.app as AppState | undefined;
          if (st !== undefined) this.release(st);
          st?.analyzer?.close(it.tsSec, it.tsNsec);
          this.active.delete(c);
          c.app = undefined;
          break;
        }
        case ItemKind.event: {
          const e = it.event!;
          this.out.push(typeof e === 'function' ? e() : e);
          break;
        }
        case ItemKind.datagram: {
          const p = it.packet!;
          if (p.ipVersion === 0) break;
          let idx: number;
          if (p.proto === IPPROTO_UDP) {
            idx = this.udpPorts[p.dstPort] || this.udpPorts[p.srcPort];
            if (idx !== 0) this.udpByPort[idx - 1]++;
            else if (this.udpProbers.length > 0) idx = this.probeDatagram(p);
          } else idx = this.ipProtos[p.proto];
          if (idx !== 0) this.instances[idx - 1].datagrams!.datagram(p);
          break;
        }
      }
    }
    this.count();
    return this.out as Event[];
  }

  tick(sec: number, nsec: number): Event[] {
    this.out = [];
    if (sec > this.nowSec || (sec === this.nowSec && nsec > this.nowNsec)) {
      this.nowSec = sec;
      this.nowNsec = nsec;
    }
    this.lastExpireSec = this.nowSec;
    this.expire();
    this.count();
    return this.out as Event[];
  }

  /** the packet time this stage has reached (--workers: the latest over the workers goes to setClock) */
  clock(): [number, number] {
    return [this.nowSec, this.nowNsec];
  }

  /**
   * packet time reached this in frames another worker saw (--workers, before the
   * flush, which stamps its events with it): no timer runs
   */
  setClock(sec: number, nsec: number): void {
    if (sec > this.nowSec || (sec === this.nowSec && nsec > this.nowNsec)) {
      this.nowSec = sec;
      this.nowNsec = nsec;
    }
  }

  flush(): Event[] {
    this.out = [];
    for (const c of this.active) {
      (c.app as AppState).analyzer!.close(this.nowSec, this.nowNsec);
      c.app = undefined;
    }
    this.active.clear();
    for (const inst of this.instances) inst.datagrams?.flush();
    this.count();
    return this.out as Event[];
  }

  discard(): void {
    for (const c of this.active) {
      (c.app as AppState).analyzer!.discard?.();
      c.app = undefined;
    }
    this.active.clear();
    for (const inst of this.instances) inst.datagrams?.discard();
    this.udpFlows.clear();
    this.heldTotal = 0;
  }

  stats(): Stats {
    const datagrams: Stats = {};
    this.names.forEach((n, i) => {
      if (this.udpByPort[i] > 0) datagrams[`${n}_by_port`] = this.udpByPort[i];
      if (this.udpByProbe[i] > 0) datagrams[`${n}_by_probe`] = this.udpByProbe[i];
    });
    datagrams.unrecognised = this.udpUnrecognised;
    const protocols: Stats = {};
    this.instances.forEach((inst, i) => {
      protocols[this.names[i]] = { events: this.byProtocol[i], ...inst.stats() };
    });
    return {
      events: this.events,
      flow_events: this.flowEvents,
      ...(this.anomalies !== null ? { anomaly_events: this.anomalies.stats() } : {}),
      connections: this.connections.toJSON(),
      datagrams,
      udp_probe_flows: { tracked: this.udpFlows.size, evicted: this.udpFlowsEvicted },
      tcp_probe_chunks: { held_bytes: this.heldTotal, replayed: this.probeReplayed, not_held: this.probeNotHeld },
      protocols,
    };
  }

  private count(): void {
    // anomaly events reported by this stage and the ones before it
    if (this.anomalies !== null) for (const e of this.anomalies.take()) this.out.push(e);
    const out = this.out;
    this.events += out.length;
    for (let i = 0; i < out.length; i++) {
      const idx = this.names.indexOf(out[i].type as string);
      if (idx >= 0) this.byProtocol[idx]++;
      else if (out[i].type === 'flow') this.flowEvents++;
    }
  }

  private expire(): void {
    for (const c of this.active) (c.app as AppState).analyzer!.expire(this.nowSec, this.nowNsec);
    for (const inst of this.instances) inst.datagrams?.expire(this.nowSec, this.nowNsec);
  }

  /**
   * A UDP datagram on ports no protocol claims: the protocol its flow was recognised as,
   * else the first prober that recognises this datagram; a flow none recognises in
   * PROBE_CHUNKS datagrams is left alone. Flows are kept up to UDP_PROBE_FLOWS, the
   * least recently seen given up first (a flood of new flows costs a probe each, and
   * bounded memory).
   */
  private probeDatagram(p: Packet): number {
    const a = p.srcPort < p.dstPort || (p.srcPort === p.dstPort && p.src0 <= p.dst0);
    const key = a
      ? `${p.ipVersion}|${p.src0}|${p.src1}|${p.src2}|${p.src3}|${p.srcPort}|${p.dst0}|${p.dst1}|${p.dst2}|${p.dst3}|${p.dstPort}|${p.vlan}`
      : `${p.ipVersion}|${p.dst0}|${p.dst1}|${p.dst2}|${p.dst3}|${p.dstPort}|${p.src0}|${p.src1}|${p.src2}|${p.src3}|${p.srcPort}|${p.vlan}`;
    let f = this.udpFlows.get(key);
    if (f === undefined) {
      if (this.udpFlows.size >= UDP_PROBE_FLOWS) {
        this.udpFlows.delete(this.udpFlows.keys().next().value as string);
        this.udpFlowsEvicted++;
      }
      this.udpFlows.set(key, (f = new UdpProbe()));
    } else {
      // most recently seen last
      this.udpFlows.delete(key);
      this.udpFlows.set(key, f);
    }
    if (!f.decided) {
      for (const { p: proto, i } of this.udpProbers) {
        if (proto.probeDatagram!(p.data, p.payloadOff, p.payloadLen)) {
          f.idx = i + 1;
          f.decided = true;
          break;
        }
      }
      if (!f.decided && ++f.probed >= PROBE_CHUNKS) f.decided = true;
    }
    if (f.idx !== 0) this.udpByProbe[f.idx - 1]++;
    else this.udpUnrecognised++;
    return f.idx;
  }

  /** choose the connection's analyzer: by server port, else by the first payload chunks */
  private detect(c: Connection, it: StreamItem, st: AppState): void {
    let idx = this.tcpPorts[c.serverPort];
    let how = 'port';
    if (idx === 0) {
      for (const { p, i } of this.probers) {
        if (p.probe!(it.buf!, it.off, it.len, it.side)) {
          idx = i + 1;
          how = 'probe';
          break;
        }
      }
    }
    if (idx === 0) {
      if (++st.probed < PROBE_CHUNKS && this.probers.length > 0) {
        this.hold(st, it, true);
        return;
      }
      this.connections.add('unrecognised');
      st.decided = true;
      this.release(st);
      return;
    }
    const midStream = c.directionFrom !== DirectionFrom.syn && c.directionFrom !== DirectionFrom.synAck;
    const a = this.tcpAnalyzer(idx - 1, c, makeEndpoints(c, 6), this, midStream);
    st.analyzer = a;
    st.decided = true;
    this.connections.add(`${this.names[idx - 1]}_by_${how}`);
    this.active.add(c);
    // what the probes saw first, the other side's first bytes included
    if (st.held !== null) {
      for (const h of st.held) {
        if (h.buf !== null) a.data(h.side, h.buf, 0, h.len, h.tsSec, h.tsNsec);
        else a.gap(h.side, h.len, h.tsSec, h.tsNsec);
      }
      this.probeReplayed += st.held.length;
      this.release(st);
    }
  }

  /** an analyzer of instance i on connection c; its context can open another protocol's on the same connection */
  tcpAnalyzer(i: number, conn: Connection, endpoints: Endpoints, out: Emitter, midStream: boolean): TcpAnalyzer {
    return this.instances[i].tcp!(new Context(this, i, conn, endpoints, out, midStream));
  }

  /** an analyzer of `protocol` inside one of instance i's connections (TcpContext.open) */
  openInside(i: number, protocol: string, conn: Connection, endpoints: Endpoints, out: Emitter, midStream: boolean): TcpAnalyzer | null {
    const j = this.names.indexOf(protocol);
    if (j < 0 || !this.instances[j].tcp) return null;
    this.connections.add(`${protocol}_inside_${this.names[i]}`);
    return this.tcpAnalyzer(j, conn, endpoints, out, midStream);
  }

  /** keep a chunk (a copy: the item's buffer is the capture's) or a gap seen while probing; over the bounds, a gap */
  private hold(st: AppState, it: StreamItem, data: boolean): void {
    const keep = data && st.heldBytes + it.len <= PROBE_HOLD_BYTES && this.heldTotal + it.len <= PROBE_HOLD_TOTAL;
    if (data && !keep) this.probeNotHeld++;
    (st.held ??= []).push(new Held(it.side, keep ? Buffer.from(it.buf!.subarray(it.off, it.off + it.len)) : null, it.len, it.tsSec, it.tsNsec));
    if (keep) {
      st.heldBytes += it.len;
      this.heldTotal += it.len;
    }
  }

  private release(st: AppState): void {
    this.heldTotal -= st.heldBytes;
    st.held = null;
    st.heldBytes = 0;
  }
}

export function analyze(options: AnalyzeOptions = {}): AnalyzeStage {
  return new AnalyzeStage(options);
}
