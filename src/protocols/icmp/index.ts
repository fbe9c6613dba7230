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
/**
 * icmp.*.message as packetbeat writes it: the String() of gopacket's ICMPv4TypeCode and
 * ICMPv6TypeCode (`EchoRequest`, `DestinationUnreachable(Port)`): the type's name, then
 * the code's in parentheses for types that have codes, `(Code: n)` for a code it does
 * not name, and `type(code)` in numbers for a type it does not know.
 */
const V4_NAMES: Record<number, [string, Record<number, string> | null]> = {
  0: ['EchoReply', null],
  3: ['DestinationUnreachable', { 0: 'Net', 1: 'Host', 2: 'Protocol', 3: 'Port', 4: 'FragmentationNeeded', 5: 'SourceRoutingFailed', 6: 'NetUnknown', 7: 'HostUnknown', 8: 'SourceIsolated', 9: 'NetAdminProhibited', 10: 'HostAdminProhibited', 11: 'NetTOS', 12: 'HostTOS', 13: 'CommAdminProhibited', 14: 'HostPrecedence', 15: 'PrecedenceCutoff' }],
  4: ['SourceQuench', null],
  5: ['Redirect', { 0: 'Net', 1: 'Host', 2: 'TOS+Net', 3: 'TOS+Host' }],
  8: ['EchoRequest', null],
  9: ['RouterAdvertisement', null],
  10: ['RouterSolicitation', null],
  11: ['TimeExceeded', { 0: 'TTLExceeded', 1: 'FragmentReassemblyTimeExceeded' }],
  12: ['ParameterProblem', { 0: 'PointerIndicatesError', 1: 'MissingOption', 2: 'BadLength' }],
  13: ['TimestampRequest', null],
  14: ['TimestampReply', null],
  15: ['InfoRequest', null],
  16: ['InfoReply', null],
  17: ['AddressMaskRequest', null],
  18: ['AddressMaskReply', null],
};
const V6_NAMES: Record<number, [string, Record<number, string> | null]> = {
  1: ['DestinationUnreachable', { 0: 'NoRouteToDst', 1: 'AdminProhibited', 2: 'BeyondScopeOfSrc', 3: 'AddressUnreachable', 4: 'PortUnreachable', 5: 'SrcAddressFailedPolicy', 6: 'RejectRouteToDst' }],
  2: ['PacketTooBig', null],
  3: ['TimeExceeded', { 0: 'HopLimitExceeded', 1: 'FragmentReassemblyTimeExceeded' }],
  4: ['ParameterProblem', { 0: 'ErroneousHeaderField', 1: 'UnrecognizedNextHeader', 2: 'UnrecognizedIPv6Option' }],
  128: ['EchoRequest', null],
  129: ['EchoReply', null],
  133: ['RouterSolicitation', null],
  134: ['RouterAdvertisement', null],
  135: ['NeighborSolicitation', null],
  136: ['NeighborAdvertisement', null],
  137: ['Redirect', null],
};

function messageName(v6: boolean, type: number, code: number): string {
  const info = (v6 ? V6_NAMES : V4_NAMES)[type];
  if (info === undefined) return `${type}(${code})`;
  const [name, codes] = info;
  if (codes === null) return code === 0 ? name : `${name}(Code: ${code})`;
  const c = codes[code];
  return c === undefined ? `${name}(Code: ${code})` : `${name}(${c})`;
}

/**
 * source.bytes and destination.bytes: the message's data as packetbeat counts it, the
 * payload gopacket's layer leaves: after the 8-byte ICMPv4 header, after the 4-byte
 * ICMPv6 header (type, code, checksum: an echo's identifier and sequence count).
 */
function dataBytes(p: Packet, v6: boolean): number {
  return v6 && p.payloadOff - p.l4Off >= 8 ? p.payloadLen + 4 : p.payloadLen;
}

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
    const bytes = dataBytes(p, v6);
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
    const first = (req ?? reply)!;
    const last = (reply ?? req)!;
    const e = transactionEvent('icmp', ep, { startSec: first.sec, startNsec: first.nsec, endSec: last.sec, endNsec: last.nsec }, req !== null && reply !== null ? 'OK' : 'Error', req?.p.bytes ?? 0, reply?.bytes ?? 0);
    icmpFields(e, ep);
    const icmp: Record<string, unknown> = { version: v };
    if (req !== null) icmp.request = { message: messageName(v === 6, req.p.type, req.p.code), type: req.p.type, code: req.p.code };
    if (reply !== null) icmp.response = { message: messageName(v === 6, reply.type, reply.code), type: reply.type, code: reply.code };
    e.icmp = icmp;
    closeEvent(e, note !== null ? [note] : [], reply === null ? UNMATCHED_REQUEST : req === null ? UNMATCHED_RESPONSE : null);
    this.out.emit(e);
  }

  /** an error message: from its sender to the host that sent the quoted datagram */
  private error(p: Packet, v6: boolean): void {
    this.started++;
    this.transactions++;
    const ep = makeEndpoints({ ...pairOf(p, false), clientPort: p.icmpType, serverPort: p.icmpCode }, p.proto, true);
    const e = transactionEvent('icmp', ep, { startSec: p.tsSec, startNsec: p.tsNsec, endSec: p.tsSec, endNsec: p.tsNsec }, 'Error', dataBytes(p, v6), 0);
    icmpFields(e, ep);
    const icmp: Record<string, unknown> = { version: v6 ? 6 : 4, request: { message: messageName(v6, p.icmpType, p.icmpCode), type: p.icmpType, code: p.icmpCode } };
    const original = quoted(p.data, p.payloadOff, p.payloadOff + p.payloadLen);
    if (original !== null) icmp.original = original;
    e.icmp = icmp;
    this.out.emit(e);
  }
}

/**
 * What ICMP events have of their own, as packetbeat: no ports (the endpoint objects
 * carry ip and bytes only), event.type `connection` alone, and `path`, the address the
 * request went to.
 */
function icmpFields(e: Record<string, any>, ep: Endpoints): void {
  for (const k of ['source', 'destination', 'client', 'server']) delete e[k].port;
  e.event.type = ['connection'];
  e.path = ep.serverIp;
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
