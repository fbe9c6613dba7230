import { ReasonCounter } from '../../core/counters';
import { PendingTable } from '../../core/pending';
import { holdFrame, readBefore, type Hold } from '../../core/frame';
import type { Stats } from '../../core/stage';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, type Packet } from '../../decode/packet';
import { makeEndpoints, type AddressPair, type Endpoints } from '../../events/endpoints';
import { ipString } from '../../events/ip';
import { closeEvent, transactionEvent, UNMATCHED_REQUEST, UNMATCHED_RESPONSE } from '../../events/transaction';
import type { DatagramAnalyzer, Emitter, Protocol } from '../analyzer';

export interface IcmpOptions {
  /** seconds of packet time a request waits for its reply (default 10) */
  transactionTimeoutSec: number;
  /** requests waiting for replies (default 16384) */
  maxPending: number;
}

export const ICMP_DEFAULTS: IcmpOptions = { transactionTimeoutSec: 10, maxPending: 16_384 };

/** request type → reply type (the Community ID spec's pairs) */
const V4_PAIRS: Record<number, number> = { 8: 0, 13: 14, 15: 16, 10: 9, 17: 18 };
const V6_PAIRS: Record<number, number> = { 128: 129, 133: 134, 135: 136, 130: 131, 144: 145 };
const V4_NAMES: Record<number, string> = {
  0: 'Echo (ping) Reply', 3: 'Destination Unreachable', 4: 'Source Quench', 5: 'Redirect', 8: 'Echo (ping) Request',
  9: 'Router Advertisement', 10: 'Router Solicitation', 11: 'Time Exceeded', 12: 'Parameter Problem',
  13: 'Timestamp Request', 14: 'Timestamp Reply', 15: 'Information Request', 16: 'Information Reply',
  17: 'Address Mask Request', 18: 'Address Mask Reply',
};
const V6_NAMES: Record<number, string> = {
  1: 'Destination Unreachable', 2: 'Packet Too Big', 3: 'Time Exceeded', 4: 'Parameter Problem',
  128: 'Echo (ping) Request', 129: 'Echo (ping) Reply', 130: 'Multicast Listener Query', 131: 'Multicast Listener Report',
  133: 'Router Solicitation', 134: 'Router Advertisement', 135: 'Neighbor Solicitation', 136: 'Neighbor Advertisement',
  137: 'Redirect', 144: 'Home Agent Address Discovery Request', 145: 'Home Agent Address Discovery Reply',
};
/** messages that quote the datagram that caused them */
const V4_ERRORS = new Set([3, 4, 5, 11, 12]);
const V6_ERRORS = new Set([1, 2, 3, 4]);
/** neighbour discovery and router chatter: counted, not reported (as packetbeat) */
const V6_QUIET = new Set([130, 131, 133, 134, 135, 136, 137, 143]);

/** one ICMP message of a transaction */
interface Message {
  type: number;
  code: number;
  bytes: number;
  sec: number;
  nsec: number;
}

interface Pending {
  p: { type: number; code: number; bytes: number };
  ep: Endpoints;
  sec: number;
  nsec: number;
  hold: Hold | null;
}

function pairOf(p: Packet, reverse: boolean): AddressPair {
  return reverse
    ? { ipVersion: p.ipVersion, c0: p.dst0, c1: p.dst1, c2: p.dst2, c3: p.dst3, s0: p.src0, s1: p.src1, s2: p.src2, s3: p.src3, clientPort: 0, serverPort: 0, vlan: p.vlan, vlanInner: p.vlanInner }
    : { ipVersion: p.ipVersion, c0: p.src0, c1: p.src1, c2: p.src2, c3: p.src3, s0: p.dst0, s1: p.dst1, s2: p.dst2, s3: p.dst3, clientPort: 0, serverPort: 0, vlan: p.vlan, vlanInner: p.vlanInner };
}

/**
 * ICMPv4 and ICMPv6: requests and replies (echo, timestamp, ...) paired into
 * transactions with their round-trip time, as packetbeat's `icmp` type; errors
 * (unreachable, time exceeded, ...) reported on their own with the tuple of the
 * datagram they quote.
 */
/** why a request left without its reply: the counter and the event's note */
const UNANSWERED = {
  replaced: ['repeated_request', 'another request with the same id and sequence arrived before a reply'],
  pending_limit: ['pending_limit', 'too many requests waiting for replies'],
  timeout: ['no_reply', 'no reply'],
  flushed: ['no_reply', 'no reply'],
} as const;

class Icmp implements DatagramAnalyzer {
  private readonly pending: PendingTable<Pending>;
  /** started = transactions (emitted) + dropped + pending */
  started = 0;
  readonly dropped = new ReasonCounter();
  requests = 0;
  replies = 0;
  errors = 0;
  transactions = 0;
  readonly ignored = new ReasonCounter();
  readonly unmatched = new ReasonCounter();

  constructor(
    private readonly opts: IcmpOptions,
    private readonly out: Emitter,
  ) {
    this.pending = new PendingTable<Pending>(opts.maxPending, (p, why) => {
      const [reason, note] = UNANSWERED[why];
      this.unmatched.add(reason);
      this.emit(p.ep, p, null, note);
    });
  }

  datagram(p: Packet): void {
    const v6 = p.proto === IPPROTO_ICMPV6;
    if ((v6 && p.ipVersion !== 6) || (!v6 && p.proto !== IPPROTO_ICMP)) return;
    const type = p.icmpType;
    const pairs = v6 ? V6_PAIRS : V4_PAIRS;
    const bytes = p.ipLen;
    if (v6 && V6_QUIET.has(type)) {
      this.ignored.add('neighbour_discovery');
      return;
    }
    if (pairs[type] !== undefined) {
      // a request: client is the sender; id and sequence tie it to its reply
      this.requests++;
      this.started++;
      const ep = makeEndpoints({ ...pairOf(p, false), clientPort: type, serverPort: pairs[type] }, p.proto);
      const key = `${ep.clientIp}|${ep.serverIp}|${p.vlan}|${type}|${p.icmpId}|${p.icmpSeq}`;
      this.pending.add(key, { p: { type, code: p.icmpCode, bytes }, ep, sec: p.tsSec, nsec: p.tsNsec, hold: holdFrame(p.frame) });
      return;
    }
    const req = Object.keys(pairs).find((k) => pairs[+k] === type);
    if (req !== undefined) {
      this.replies++;
      const reqType = +req;
      const key = `${ipString(p.ipVersion, p.dst0, p.dst1, p.dst2, p.dst3)}|${ipString(p.ipVersion, p.src0, p.src1, p.src2, p.src3)}|${p.vlan}|${reqType}|${p.icmpId}|${p.icmpSeq}`;
      const pend = this.pending.take(key);
      if (pend === undefined) {
        this.started++;
        if (readBefore(p.frame)) {
          // read again after a restart point: its request came before it and was paired then
          this.unmatched.add('paired_before_restart');
          this.dropped.add('paired_before_restart');
          return;
        }
        this.unmatched.add('reply_without_request');
        const ep = makeEndpoints({ ...pairOf(p, true), clientPort: reqType, serverPort: type }, p.proto);
        this.emit(ep, null, { type, code: p.icmpCode, bytes, sec: p.tsSec, nsec: p.tsNsec }, 'reply without a request');
        return;
      }
      this.emit(pend.ep, pend, { type, code: p.icmpCode, bytes, sec: p.tsSec, nsec: p.tsNsec }, null);
      return;
    }
    if ((v6 ? V6_ERRORS : V4_ERRORS).has(type)) {
      this.errors++;
      this.error(p, v6);
      return;
    }
    this.ignored.add(`type_${type}`);
  }

  expire(nowSec: number): void {
    this.pending.expire(nowSec, this.opts.transactionTimeoutSec);
  }

  flush(): void {
    this.pending.flush();
  }

  discard(): void {
    this.pending.discard();
  }

  stats(): Stats {
    return {
      transactions_started: this.started,
      transactions_dropped: this.dropped.toJSON(),
      requests: this.requests,
      replies: this.replies,
      errors: this.errors,
      transactions: this.transactions,
      pending: this.pending.size,
      unmatched: this.unmatched.toJSON(),
      ignored: this.ignored.toJSON(),
    };
  }

  /** a request with its reply, or either one alone (unmatched) */
  private emit(ep: Endpoints, req: Pending | null, reply: Message | null, note: string | null): void {
    this.transactions++;
    const v = ep.type === 'ipv4' ? 4 : 6;
    const names = v === 4 ? V4_NAMES : V6_NAMES;
    const first = (req ?? reply)!;
    const last = (reply ?? req)!;
    const e = transactionEvent('icmp', ep, { startSec: first.sec, startNsec: first.nsec, endSec: last.sec, endNsec: last.nsec }, req !== null && reply !== null ? 'OK' : 'Error', req?.p.bytes ?? 0, reply?.bytes ?? 0);
    stripPorts(e);
    const icmp: Record<string, unknown> = { version: v };
    if (req !== null) icmp.request = { message: names[req.p.type] ?? `Type ${req.p.type}`, type: req.p.type, code: req.p.code };
    if (reply !== null) icmp.response = { message: names[reply.type] ?? `Type ${reply.type}`, type: reply.type, code: reply.code };
    e.icmp = icmp;
    closeEvent(e, note !== null ? [note] : [], reply === null ? UNMATCHED_REQUEST : req === null ? UNMATCHED_RESPONSE : null);
    this.out.emit(e);
  }

  /** an error message: from its sender to the host that sent the quoted datagram */
  private error(p: Packet, v6: boolean): void {
    this.started++;
    this.transactions++;
    const ep = makeEndpoints({ ...pairOf(p, false), clientPort: p.icmpType, serverPort: p.icmpCode }, p.proto, true);
    const e = transactionEvent('icmp', ep, { startSec: p.tsSec, startNsec: p.tsNsec, endSec: p.tsSec, endNsec: p.tsNsec }, 'Error', p.ipLen, 0);
    stripPorts(e);
    const names = v6 ? V6_NAMES : V4_NAMES;
    const icmp: Record<string, unknown> = { version: v6 ? 6 : 4, request: { message: names[p.icmpType] ?? `Type ${p.icmpType}`, type: p.icmpType, code: p.icmpCode } };
    const original = quoted(p.data, p.payloadOff, p.payloadOff + p.payloadLen);
    if (original !== null) icmp.original = original;
    e.icmp = icmp;
    this.out.emit(e);
  }
}

/** ICMP has no ports: the endpoint objects carry ip and bytes only */
function stripPorts(e: Record<string, any>): void {
  for (const k of ['source', 'destination', 'client', 'server']) delete e[k].port;
}

/** the tuple of the IP datagram an ICMP error quotes (its header and first 8 payload bytes) */
function quoted(b: Buffer, off: number, end: number): Record<string, unknown> | null {
  if (off >= end) return null;
  const v = b[off] >> 4;
  let proto: number;
  let l4: number;
  let src: string;
  let dst: string;
  if (v === 4) {
    const hl = (b[off] & 0x0f) * 4;
    if (hl < 20 || off + hl > end) return null;
    proto = b[off + 9];
    src = ipString(4, 0, 0, 0, b.readUInt32BE(off + 12));
    dst = ipString(4, 0, 0, 0, b.readUInt32BE(off + 16));
    l4 = off + hl;
  } else if (v === 6) {
    if (off + 40 > end) return null;
    proto = b[off + 6];
    const w = (o: number) => b.readUInt32BE(off + o);
    src = ipString(6, w(8), w(12), w(16), w(20));
    dst = ipString(6, w(24), w(28), w(32), w(36));
    l4 = off + 40;
  } else return null;
  const o: Record<string, unknown> = { transport: proto === 6 ? 'tcp' : proto === 17 ? 'udp' : proto === 1 ? 'icmp' : proto === 58 ? 'ipv6-icmp' : String(proto) };
  const ports = (proto === 6 || proto === 17) && l4 + 4 <= end;
  o.source = ports ? { ip: src, port: b.readUInt16BE(l4) } : { ip: src };
  o.destination = ports ? { ip: dst, port: b.readUInt16BE(l4 + 2) } : { ip: dst };
  return o;
}

export const icmp: Protocol<IcmpOptions> = {
  name: 'icmp',
  tcpPorts: [],
  udpPorts: [],
  ipProtocols: [IPPROTO_ICMP, IPPROTO_ICMPV6],
  create(options, out) {
    const a = new Icmp({ ...ICMP_DEFAULTS, ...options }, out);
    return { datagrams: a, stats: () => a.stats() };
  },
};
