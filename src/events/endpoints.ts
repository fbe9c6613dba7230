import { createHash } from 'node:crypto';
import type { Packet } from '../decode/packet';
import { ipString, isInternal, writeAddress } from './ip';

/**
 * The two ends of a conversation as events name them: client and server (source
 * and destination in transaction events). Built once per connection or query,
 * never per packet.
 */
export interface Endpoints {
  type: 'ipv4' | 'ipv6';
  transport: 'tcp' | 'udp' | 'icmp' | 'ipv6-icmp';
  clientIp: string;
  clientPort: number;
  serverIp: string;
  serverPort: number;
  communityId: string;
  direction: string;
  vlan: number;
  vlanInner: number;
}

export interface AddressPair {
  ipVersion: number;
  c0: number;
  c1: number;
  c2: number;
  c3: number;
  s0: number;
  s1: number;
  s2: number;
  s3: number;
  clientPort: number;
  serverPort: number;
  vlan: number;
  vlanInner: number;
}

/** ECS network.transport by IP protocol number */
export const TRANSPORT_NAMES: Record<number, Endpoints['transport']> = { 6: 'tcp', 17: 'udp', 1: 'icmp', 58: 'ipv6-icmp' };

export function makeEndpoints(a: AddressPair, proto: number, oneWay = false): Endpoints {
  const v = a.ipVersion;
  const ci = isInternal(v, a.c0, a.c3);
  const si = isInternal(v, a.s0, a.s3);
  return {
    type: v === 4 ? 'ipv4' : 'ipv6',
    transport: TRANSPORT_NAMES[proto] ?? 'tcp',
    clientIp: ipString(v, a.c0, a.c1, a.c2, a.c3),
    clientPort: a.clientPort,
    serverIp: ipString(v, a.s0, a.s1, a.s2, a.s3),
    serverPort: a.serverPort,
    communityId: communityId(a, proto, oneWay),
    direction: ci && si ? 'internal' : ci ? 'outbound' : si ? 'inbound' : 'external',
    vlan: a.vlan,
    vlanInner: a.vlanInner,
  };
}

/** the ends of a UDP datagram's conversation: its sender is the client when `fromClient` (a query, a request), else the server */
export function datagramEndpoints(p: Packet, fromClient: boolean): Endpoints {
  const q = fromClient;
  return makeEndpoints(
    {
      ipVersion: p.ipVersion,
      c0: q ? p.src0 : p.dst0, c1: q ? p.src1 : p.dst1, c2: q ? p.src2 : p.dst2, c3: q ? p.src3 : p.dst3,
      s0: q ? p.dst0 : p.src0, s1: q ? p.dst1 : p.src1, s2: q ? p.dst2 : p.src2, s3: q ? p.dst3 : p.src3,
      clientPort: q ? p.srcPort : p.dstPort,
      serverPort: q ? p.dstPort : p.srcPort,
      vlan: p.vlan,
      vlanInner: p.vlanInner,
    },
    17,
  );
}

/**
 * The Community ID spec's ICMP "port" equivalents: a message type that has a
 * counterpart (echo and its reply, timestamp, information, router and mask requests,
 * and for ICMPv6 echo, multicast listener, router, neighbour, who-are-you and home
 * agent messages) is hashed as a two-way pair (type, counterpart); any other is
 * one-way, (type, code), kept in the order it was sent.
 */
const ICMP4_COUNTERPART: Record<number, number> = { 8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17 };
const ICMP6_COUNTERPART: Record<number, number> = { 128: 129, 129: 128, 130: 131, 131: 130, 133: 134, 134: 133, 135: 136, 136: 135, 139: 140, 140: 139, 144: 145, 145: 144 };

/**
 * Community ID v1 (seed 0): base64 of SHA-1 over the ordered tuple, the lower
 * (address, port) end first — the same for both directions. TCP, UDP and SCTP hash
 * their ports; ICMP its type with its counterpart type (two-way) or its code
 * (one-way: the sender first), from `clientPort` (the type) and `serverPort` (the
 * code); other protocols hash addresses only. `oneWay` keeps the client first for
 * any protocol.
 */
export function communityId(a: AddressPair, proto: number, oneWay = false): string {
  const v = a.ipVersion;
  const alen = v === 4 ? 4 : 16;
  let sport = a.clientPort;
  let dport = a.serverPort;
  let ports = proto === 6 || proto === 17 || proto === 132;
  if (proto === 1 || proto === 58) {
    ports = true;
    const counterpart = (proto === 1 ? ICMP4_COUNTERPART : ICMP6_COUNTERPART)[sport];
    if (counterpart === undefined) oneWay = true;
    else dport = counterpart;
  }
  const buf = Buffer.alloc(2 + 2 * alen + 2 + (ports ? 4 : 0));
  // compare client and server ends: address first, then port
  let cmp = 0;
  for (let i = v === 4 ? 3 : 0; i < 4 && cmp === 0; i++) {
    const c = i === 0 ? a.c0 : i === 1 ? a.c1 : i === 2 ? a.c2 : a.c3;
    const s = i === 0 ? a.s0 : i === 1 ? a.s1 : i === 2 ? a.s2 : a.s3;
    cmp = c < s ? -1 : c > s ? 1 : 0;
  }
  if (cmp === 0 && ports) cmp = sport < dport ? -1 : sport > dport ? 1 : 0;
  const clientFirst = oneWay || cmp <= 0;
  let o = 2; // seed 0
  if (clientFirst) {
    o = writeAddress(buf, o, v, a.c0, a.c1, a.c2, a.c3);
    o = writeAddress(buf, o, v, a.s0, a.s1, a.s2, a.s3);
  } else {
    o = writeAddress(buf, o, v, a.s0, a.s1, a.s2, a.s3);
    o = writeAddress(buf, o, v, a.c0, a.c1, a.c2, a.c3);
  }
  buf[o] = proto;
  buf[o + 1] = 0;
  if (ports) {
    buf.writeUInt16BE(clientFirst ? sport : dport, o + 2);
    buf.writeUInt16BE(clientFirst ? dport : sport, o + 4);
  }
  return '1:' + createHash('sha1').update(buf).digest('base64');
}
