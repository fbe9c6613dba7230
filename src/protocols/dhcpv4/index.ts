import { ReasonCounter } from '../../core/counters';
import { holdFrame, readBefore, type Hold } from '../../core/frame';
import type { Stats } from '../../core/stage';
import type { Packet } from '../../decode/packet';
import { datagramEndpoints, type Endpoints } from '../../events/endpoints';
import { closeEvent, transactionEvent, UNMATCHED_REQUEST, UNMATCHED_RESPONSE, type EventObject } from '../../events/transaction';
import type { DatagramAnalyzer, Emitter, Protocol } from '../analyzer';
import { DhcpParseError, hardwareTypeName, looksLikeDhcp, MessageType as T, messageTypeName, parseDhcp, type DhcpMessage } from './message';

export interface Dhcpv4Options {
  /** seconds of packet time a client's message waits for the server's reply (default 10, packetbeat's transaction_timeout) */
  transactionTimeoutSec: number;
  /** client messages waiting for replies over all clients (default 16384) */
  maxPending: number;
}

export const DHCPV4_DEFAULTS: Dhcpv4Options = {
  transactionTimeoutSec: 10,
  maxPending: 16_384,
};

/**
 * The reply types each client message waits for; a message not listed here (DECLINE,
 * RELEASE) expects none and is an event at once. A BOOTP request (no option 53) waits
 * for a BOOTP reply (type 0).
 */
const EXPECTS: Record<number, readonly number[]> = {
  0: [0],
  [T.discover]: [T.offer],
  [T.request]: [T.ack, T.nak],
  [T.inform]: [T.ack, T.nak],
  [T.leasequery]: [T.leaseunassigned, T.leaseunknown, T.leaseactive],
  [T.bulkleasequery]: [T.leaseunassigned, T.leaseunknown, T.leaseactive, T.leasequerydone],
  [T.activeleasequery]: [T.leaseunassigned, T.leaseunknown, T.leaseactive, T.leasequerydone, T.leasequerystatus],
};

/** server messages that answer nothing: FORCERENEW (RFC 3203) starts an exchange of its own */
const UNSOLICITED = new Set<number>([T.forcerenew]);

/** address pairs whose endpoints are kept (a few KiB each at most) */
const ENDPOINT_CACHE = 1024;

class Waiting {
  constructor(
    readonly m: DhcpMessage,
    readonly ep: Endpoints,
    readonly sec: number,
    readonly nsec: number,
    readonly hold: Hold | null,
  ) {}
}

/** why a client message left without its reply: the counter and the event's note */
const UNANSWERED = {
  pending_limit: ['pending_limit', 'too many client messages waiting for replies'],
  timeout: ['no_response', 'no response'],
  flushed: ['no_response', 'no response'],
} as const;

/**
 * DHCPv4 over UDP (ports 67 and 68). The client broadcasts from 0.0.0.0 and the server
 * may answer to an address the client does not have yet, so messages are paired by
 * transaction id and client MAC (and VLAN), never by the address pair. A client that
 * sends the same message again before the reply (a retransmission) has each copy
 * waiting in order; a reply takes the oldest one of the kind it answers (an OFFER a
 * DISCOVER, an ACK or NAK a REQUEST or INFORM).
 */
class Dhcpv4Analyzer implements DatagramAnalyzer {
  /** waiting client messages by `vlan|xid|mac`, each list oldest first */
  private readonly pending = new Map<string, Waiting[]>();
  private pendingCount = 0;
  private started = 0;
  private readonly dropped = new ReasonCounter();
  private requests = 0;
  private responses = 0;
  private transactions = 0;
  private bootp = 0;
  /** messages by option 53 (index 0: BOOTP request, 256: BOOTP reply) */
  private readonly byType = new Float64Array(257);
  private readonly unmatched = new ReasonCounter();
  private readonly malformed = new ReasonCounter();
  private readonly violations = new ReasonCounter();
  /**
   * Endpoints by address pair and direction: DHCP has few (every client broadcasts from
   * 0.0.0.0:68 to 255.255.255.255:67), and each costs a Community ID hash. Emptied
   * when it reaches ENDPOINT_CACHE entries.
   */
  private readonly endpoints = new Map<string, Endpoints>();

  constructor(
    private readonly opts: Dhcpv4Options,
    private readonly out: Emitter,
  ) {}

  datagram(p: Packet): void {
    let m: DhcpMessage;
    try {
      m = parseDhcp(p.data, p.payloadOff, p.payloadLen);
    } catch (err) {
      if (!(err instanceof DhcpParseError)) throw err;
      this.malformed.add(err.reason);
      this.out.packetAnomaly?.('dhcpv4', err.reason, p);
      return;
    }
    for (const v of m.violations) {
      this.violations.add(v);
      this.out.packetAnomaly?.('dhcpv4', v, p);
    }
    this.byType[m.type === 0 && m.op === 2 ? 256 : m.type]++;
    if (m.type === 0) this.bootp++;
    const key = `${p.vlan}|${m.xid}|${m.chaddr}`;
    if (m.op === 1) {
      this.requests++;
      this.started++;
      const ep = this.endpointsOf(p, true);
      if (EXPECTS[m.type] === undefined) {
        // DECLINE, RELEASE: nothing comes back
        this.emit(m, null, ep, p.tsSec, p.tsNsec, p.tsSec, p.tsNsec, null);
        return;
      }
      // at least one waits, whatever the option says
      if (this.pendingCount > 0 && this.pendingCount >= this.opts.maxPending) this.evictOldest();
      let list = this.pending.get(key);
      if (list === undefined) this.pending.set(key, (list = []));
      list.push(new Waiting(m, ep, p.tsSec, p.tsNsec, holdFrame(p.frame)));
      this.pendingCount++;
      return;
    }
    this.responses++;
    const ep = this.endpointsOf(p, false);
    if (UNSOLICITED.has(m.type)) {
      this.started++;
      this.emit(null, m, ep, p.tsSec, p.tsNsec, p.tsSec, p.tsNsec, null);
      return;
    }
    const w = this.take(key, m.type);
    if (w === null) {
      // a reply alone is a transaction of its own
      this.started++;
      if (readBefore(p.frame)) {
        // read again after a restart point: its request came before it and was paired then
        this.unmatched.add('paired_before_restart');
        this.dropped.add('paired_before_restart');
        return;
      }
      this.unmatched.add('response_without_request');
      this.emit(null, m, ep, p.tsSec, p.tsNsec, p.tsSec, p.tsNsec, 'response without a request');
      return;
    }
    this.emit(w.m, m, w.ep, w.sec, w.nsec, p.tsSec, p.tsNsec, null);
  }

  private endpointsOf(p: Packet, fromClient: boolean): Endpoints {
    const k = `${fromClient ? 1 : 0}|${p.ipVersion}|${p.src0}|${p.src1}|${p.src2}|${p.src3}|${p.srcPort}|${p.dst0}|${p.dst1}|${p.dst2}|${p.dst3}|${p.dstPort}|${p.vlan}|${p.vlanInner}`;
    let ep = this.endpoints.get(k);
    if (ep === undefined) {
      if (this.endpoints.size >= ENDPOINT_CACHE) this.endpoints.clear();
      this.endpoints.set(k, (ep = datagramEndpoints(p, fromClient)));
    }
    return ep;
  }

  /** the oldest waiting message under `key` that a reply of type `type` answers */
  private take(key: string, type: number): Waiting | null {
    const list = this.pending.get(key);
    if (list === undefined) return null;
    for (let i = 0; i < list.length; i++) {
      if (EXPECTS[list[i].m.type].includes(type)) {
        const w = list[i];
        list.splice(i, 1);
        if (list.length === 0) this.pending.delete(key);
        this.pendingCount--;
        w.hold?.release();
        return w;
      }
    }
    return null;
  }

  /** the bound: the oldest message of the client known longest leaves unanswered */
  private evictOldest(): void {
    const [key, list] = this.pending.entries().next().value as [string, Waiting[]];
    const w = list.shift()!;
    if (list.length === 0) this.pending.delete(key);
    this.leave(w, 'pending_limit');
  }

  private leave(w: Waiting, why: keyof typeof UNANSWERED): void {
    this.pendingCount--;
    w.hold?.release();
    const [reason, note] = UNANSWERED[why];
    this.unmatched.add(reason);
    this.emit(w.m, null, w.ep, w.sec, w.nsec, w.sec, w.nsec, note);
  }

  expire(nowSec: number): void {
    if (this.pendingCount === 0) return;
    const t = this.opts.transactionTimeoutSec;
    for (const [key, list] of this.pending) {
      while (list.length > 0 && nowSec - list[0].sec >= t) this.leave(list.shift()!, 'timeout');
      if (list.length === 0) this.pending.delete(key);
    }
  }

  flush(): void {
    for (const [key, list] of this.pending) {
      this.pending.delete(key);
      for (const w of list) this.leave(w, 'flushed');
    }
  }

  discard(): void {
    for (const list of this.pending.values()) for (const w of list) w.hold?.release();
    this.pending.clear();
    this.pendingCount = 0;
  }

  stats(): Stats {
    return {
      transactions_started: this.started,
      transactions_dropped: this.dropped.toJSON(),
      requests: this.requests,
      responses: this.responses,
      transactions: this.transactions,
      pending: this.pendingCount,
      bootp: this.bootp,
      message_types: this.messageTypes(),
      unmatched: this.unmatched.toJSON(),
      malformed: this.malformed.toJSON(),
      violations: this.violations.toJSON(),
    };
  }

  private messageTypes(): Stats {
    const out: Stats = {};
    const names: [string, number][] = [];
    for (let t = 0; t <= 256; t++) {
      if (this.byType[t] > 0) names.push([t === 0 ? 'bootrequest' : t === 256 ? 'bootreply' : messageTypeName(t), this.byType[t]]);
    }
    for (const [n, c] of names.sort((a, b) => (a[0] < b[0] ? -1 : 1))) out[n] = c;
    return out;
  }

  private emit(q: DhcpMessage | null, r: DhcpMessage | null, ep: Endpoints, s: number, sn: number, e: number, en: number, note: string | null): void {
    this.transactions++;
    const first = (q ?? r)!;
    const last = (r ?? q)!;
    // an exchange that needs no reply is complete with the request alone
    const complete = q === null ? UNSOLICITED.has(r!.type) : r !== null || EXPECTS[q.type] === undefined;
    const status = complete && last.type !== T.nak ? 'OK' : 'Error';
    const ev = transactionEvent('dhcpv4', ep, { startSec: s, startNsec: sn, endSec: e, endNsec: en }, status, q?.size ?? 0, r?.size ?? 0);
    if (q !== null) ev.method = q.type === 0 ? 'BOOTREQUEST' : messageTypeName(q.type).toUpperCase();
    const d: EventObject = {
      transaction_id: '0x' + first.xid.toString(16).padStart(8, '0'),
      op_code: first.op === 1 ? 'bootrequest' : 'bootreply',
      hardware_type: hardwareTypeName(first.htype),
      hops: first.hops,
      seconds: first.secs,
      flags: first.flags & 0x8000 ? 'broadcast' : 'unicast',
      client_mac: first.chaddr,
    };
    // the request's address where it has one, else the reply's; what only a server fills in, the reply's first
    const ips = ev.related.ip as string[];
    let v = q !== null && q.ciaddr !== '' ? q.ciaddr : r !== null ? r.ciaddr : '';
    if (v !== '') d.client_ip = related(ips, v);
    v = r !== null && r.yiaddr !== '' ? r.yiaddr : q !== null ? q.yiaddr : '';
    if (v !== '') d.assigned_ip = related(ips, v);
    v = r !== null && r.siaddr !== '' ? r.siaddr : q !== null ? q.siaddr : '';
    if (v !== '') d.server_ip = v;
    v = q !== null && q.giaddr !== '' ? q.giaddr : r !== null ? r.giaddr : '';
    if (v !== '') d.relay_ip = related(ips, v);
    v = r !== null && r.sname !== '' ? r.sname : q !== null ? q.sname : '';
    if (v !== '') d.server_name = v;
    v = r !== null && r.file !== '' ? r.file : q !== null ? q.file : '';
    if (v !== '') d.boot_file_name = v;
    // the options of both, the reply's where both have one; message_type is the last message's
    let option: EventObject;
    if (q !== null && r !== null) {
      option = q.option;
      for (const k in r.option) option[k] = r.option[k];
    } else option = first.option;
    if (last.type !== 0) option.message_type = messageTypeName(last.type);
    for (const _ in option) {
      d.option = option;
      break;
    }
    ev.dhcpv4 = d;
    closeEvent(ev, note !== null ? [note] : [], status === 'OK' || complete ? null : r === null ? UNMATCHED_REQUEST : UNMATCHED_RESPONSE);
    if (complete && last.type === T.nak) ev.error = { message: last.option.message !== undefined ? `NAK: ${last.option.message}` : 'NAK' };
    this.out.emit(ev);
  }
}

/** an address of the event, added to related.ip once */
function related(ips: string[], ip: string): string {
  if (!ips.includes(ip)) ips.push(ip);
  return ip;
}

export const dhcpv4: Protocol<Dhcpv4Options> = {
  name: 'dhcpv4',
  tcpPorts: [],
  udpPorts: [67, 68],
  probeDatagram: looksLikeDhcp,
  create(options, out) {
    const opts: Dhcpv4Options = { ...DHCPV4_DEFAULTS, ...options };
    const a = new Dhcpv4Analyzer(opts, out);
    return { datagrams: a, stats: () => a.stats() };
  },
};
