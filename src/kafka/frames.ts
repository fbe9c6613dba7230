import { hostname } from 'node:os';
import { makeFrame, type Frame } from '../core/frame';
import { decodeIpv4, ipv4FragmentOffset } from '../decode/ipv4';
import { decodeIpv6, ipv6Frag } from '../decode/ipv6';
import { decodeLink, ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from '../decode/link';
import { IPPROTO_TCP, IPPROTO_UDP, Packet } from '../decode/packet';
import { tupleHash } from '../tcp/connection';

/** Header names of a raw-frame message (docs/kafka.md). */
export const H = {
  ts: 'pktflow.ts_ns',
  linkType: 'pktflow.linktype',
  origLen: 'pktflow.origlen',
  iface: 'pktflow.iface',
  host: 'pktflow.host',
} as const;

export interface FrameMessage {
  key: string;
  value: Buffer;
  headers: Record<string, string>;
}

const scratch = new Packet(makeFrame(0, 0, 0, 0, 0, Buffer.alloc(0)));

/**
 * The partition key of a frame: a hash that is the same for both directions of a
 * conversation, so a connection's frames land in one partition, in order. TCP and
 * UDP hash the 5-tuple and VLANs; IP fragments, which carry no ports after the
 * first, and other IP protocols hash the addresses and protocol; non-IP frames hash
 * their two MAC addresses and EtherType. Malformed frames get key "0".
 */
export function frameKey(f: Frame): string {
  const h = flowHash(f, false);
  return h < 0 ? '0' : h.toString(16);
}

/**
 * The symmetric flow hash of frameKey as an unsigned 32-bit number, -1 for a
 * malformed frame. With `udpByAddresses`, UDP is hashed by its addresses and
 * protocol, as its fragments are, so a datagram and its fragmented neighbours meet
 * in one place (--workers deals frames by this: the UDP analyzers pair across
 * datagrams of one address pair).
 */
export function flowHash(f: Frame, udpByAddresses: boolean): number {
  const p = scratch;
  p.frame = f;
  p.data = f.data;
  p.vlan = p.vlanInner = -1;
  p.ethOff = -1;
  p.etherType = p.ipVersion = p.proto = p.srcPort = p.dstPort = 0;
  p.src0 = p.src1 = p.src2 = p.src3 = p.dst0 = p.dst1 = p.dst2 = p.dst3 = 0;
  const b = f.data;
  const ip = decodeLink(p, b, f.linkType);
  if (ip < 0) return -1;
  let l4 = -1;
  let fragment = false;
  if (p.etherType === ETHERTYPE_IPV4) {
    l4 = decodeIpv4(p, b, ip);
    fragment = l4 >= 0 && ipv4FragmentOffset(b, ip) >= 0;
  } else if (p.etherType === ETHERTYPE_IPV6) {
    l4 = decodeIpv6(p, b, ip);
    fragment = l4 >= 0 && ipv6Frag.off >= 0;
  } else {
    // non-IP: both MAC addresses, in a fixed order, as the two "addresses"
    if (p.ethOff >= 0 && b.length >= 12) {
      const a = b.readUInt32BE(0) ^ b.readUInt16BE(4);
      const z = b.readUInt32BE(6) ^ b.readUInt16BE(10);
      p.src3 = a < z ? a : z;
      p.dst3 = a < z ? z : a;
      p.proto = p.etherType & 0xff;
    }
    return tupleHash(p) >>> 0;
  }
  if (l4 < 0) return -1;
  if (!fragment && (p.proto === IPPROTO_TCP || (p.proto === IPPROTO_UDP && !udpByAddresses)) && l4 + 4 <= b.length) {
    p.srcPort = b.readUInt16BE(l4);
    p.dstPort = b.readUInt16BE(l4 + 2);
  }
  return tupleHash(p) >>> 0;
}

const HOST = hostname();

export function frameToMessage(f: Frame, host = HOST): FrameMessage {
  return {
    key: frameKey(f),
    value: f.data,
    headers: {
      [H.ts]: `${f.tsSec}${String(f.tsNsec).padStart(9, '0')}`,
      [H.linkType]: String(f.linkType),
      [H.origLen]: String(f.origLen),
      [H.iface]: String(f.iface),
      [H.host]: host,
    },
  };
}

export class FrameMessageError extends Error {}

function header(h: Record<string, Buffer | string | (Buffer | string)[] | undefined> | undefined, name: string): string | undefined {
  const v = h?.[name];
  if (v === undefined) return undefined;
  const one = Array.isArray(v) ? v[0] : v;
  return typeof one === 'string' ? one : one.toString('latin1');
}

/** a consumed message back into a Frame; throws FrameMessageError naming what is wrong */
export function messageToFrame(value: Buffer | null, headers: Record<string, Buffer | string | (Buffer | string)[] | undefined> | undefined): Frame {
  if (value === null) throw new FrameMessageError('message without a value');
  const ts = header(headers, H.ts);
  const lt = header(headers, H.linkType);
  if (ts === undefined || !/^\d{1,19}$/.test(ts)) throw new FrameMessageError(`header ${H.ts} missing or not a number`);
  if (lt === undefined || !/^\d{1,5}$/.test(lt)) throw new FrameMessageError(`header ${H.linkType} missing or not a number`);
  const padded = ts.padStart(10, '0');
  const sec = Number(padded.slice(0, -9));
  const nsec = Number(padded.slice(-9));
  const orig = Number(header(headers, H.origLen) ?? value.length);
  const iface = Number(header(headers, H.iface) ?? 0);
  return makeFrame(sec, nsec, Number(lt), Number.isFinite(orig) ? orig : value.length, Number.isFinite(iface) ? iface : 0, value);
}
