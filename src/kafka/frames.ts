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
 * their two MAC addresses and EtherType. DHCP (UDP 67 and 68) is one conversation
 * whatever its addresses: an exchange crosses address pairs (a broadcast request, an
 * answer from the server's address or through a relay), and only its transaction id
 * ties it together, so all of it meets in one place. Malformed frames get key "0".
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
  if (!fragment && (p.proto === IPPROTO_TCP || p.proto === IPPROTO_UDP) && l4 + 4 <= b.length) {
    const sport = b.readUInt16BE(l4);
    const dport = b.readUInt16BE(l4 + 2);
    if (p.proto === IPPROTO_UDP && (isDhcpPort(sport) || isDhcpPort(dport))) return DHCP_HASH;
    if (p.proto === IPPROTO_TCP || !udpByAddresses) {
      p.srcPort = sport;
      p.dstPort = dport;
    }
  }
  return tupleHash(p) >>> 0;
}

const isDhcpPort = (port: number) => port === 67 || port === 68;
/** the one key of all DHCP traffic (frameKey's comment says why) */
const DHCP_HASH = 0x00430044;

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

type Headers = Record<string, Buffer | string | null | (Buffer | string | null)[] | undefined>;

/** a header's (first) value as text; a header without a value (null) counts as missing */
function header(h: Headers | undefined, name: string): string | undefined {
  const v = h?.[name];
  const one = Array.isArray(v) ? v[0] : v;
  if (one === undefined || one === null) return undefined;
  return typeof one === 'string' ? one : one.toString('latin1');
}

/** the value of bytes [from, to) of a header of ASCII digits (at most 15 of them), or -1 */
function digits(v: Headers[string], from = 0, to = Buffer.isBuffer(v) ? v.length : 0): number {
  if (!Buffer.isBuffer(v) || to <= from || to - from > 15) return -1;
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = v[i] - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}

/**
 * a consumed message back into a Frame; throws FrameMessageError naming what is wrong.
 * Headers as pktflow writes them (one value each, of plain digits) are read from their
 * bytes; anything else takes the general way (messageToFrameGeneral), with the same result.
 */
export function messageToFrame(value: Buffer | null, headers: Headers | undefined): Frame {
  if (value !== null && headers !== undefined) {
    const ts = headers[H.ts];
    const ltRaw = headers[H.linkType];
    const lt = Buffer.isBuffer(ltRaw) && ltRaw.length <= 5 ? digits(ltRaw) : -1;
    const orig = headers[H.origLen] == null ? value.length : digits(headers[H.origLen]);
    const iface = headers[H.iface] == null ? 0 : digits(headers[H.iface]);
    if (Buffer.isBuffer(ts) && lt >= 0 && orig >= 0 && iface >= 0) {
      const f = timedFrame(ts, 0, ts.length, lt, orig, iface, value);
      if (f !== null) return f;
    }
  }
  return messageToFrameGeneral(value, headers);
}

/**
 * the frame whose timestamp header is the digits b[from, to): nanoseconds since the
 * epoch, up to 19 digits, the last 9 the nanoseconds; null when they are not that
 */
function timedFrame(b: Buffer, from: number, to: number, lt: number, orig: number, iface: number, value: Buffer): Frame | null {
  if (to - from <= 9 || to - from > 19) return null;
  const sec = digits(b, from, to - 9);
  const nsec = digits(b, to - 9, to);
  return sec < 0 || nsec < 0 ? null : makeFrame(sec, nsec, lt, orig, iface, value);
}

export function messageToFrameGeneral(value: Buffer | null, headers: Headers | undefined): Frame {
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

/** zigzag varint at d.offset, as Kafka's records hold their lengths (kafkajs's readVarInt) */
export function readVarInt(d: { buffer: Buffer; offset: number }): number {
  const b = d.buffer;
  let result = 0;
  let shift = 0;
  let byte: number;
  do {
    byte = b[d.offset++];
    result += (byte & 0x7f) << shift;
    shift += 7;
  } while (byte >= 0x80);
  return (result >>> 1) ^ -(result & 1);
}

/** the headers pktflow writes, as bytes: their index is their place in recordFrame */
const NAMES = [H.ts, H.linkType, H.origLen, H.iface].map((n) => Buffer.from(n, 'latin1'));

function nameAt(b: Buffer, at: number, n: number): number {
  for (let i = 0; i < NAMES.length; i++) {
    const name = NAMES[i];
    if (name.length !== n) continue;
    let j = 0;
    while (j < n && b[at + j] === name[j]) j++;
    if (j === n) return i;
  }
  return -1;
}

const cursor: { buffer: Buffer; offset: number } = { buffer: Buffer.alloc(0), offset: 0 };

/**
 * The frame of a fetched record read from its header bytes in place: `b[at]` is where
 * the record's header count starts (kafkajs-fast.ts FetchedRecord). It is the frame
 * messageToFrame makes of the same record, or null where the headers are not as pktflow
 * writes them (a header twice or without a value, a value not of plain digits): then
 * messageToFrame, given the record's headers, decides, errors included.
 */
export function recordFrame(value: Buffer | null, b: Buffer, at: number): Frame | null {
  if (value === null) return null;
  const d = cursor;
  d.buffer = b;
  d.offset = at;
  const count = readVarInt(d);
  let seen = 0;
  let ts = -1;
  let tsEnd = -1;
  let lt = -1;
  let orig = value.length;
  let iface = 0;
  for (let i = 0; i < count; i++) {
    const kn = readVarInt(d);
    const k = d.offset;
    if (kn < 0 || k + kn > b.length) return null;
    d.offset += kn;
    const vn = readVarInt(d);
    const v = d.offset;
    if (v + vn > b.length) return null;
    if (vn > 0) d.offset += vn;
    const which = nameAt(b, k, kn);
    if (which < 0) continue;
    if (vn < 0 || (seen & (1 << which)) !== 0) return null;
    seen |= 1 << which;
    if (which === 0) {
      ts = v;
      tsEnd = v + vn;
    } else {
      const n = which === 1 && vn > 5 ? -1 : digits(b, v, v + vn);
      if (n < 0) return null;
      if (which === 1) lt = n;
      else if (which === 2) orig = n;
      else iface = n;
    }
  }
  return ts < 0 || lt < 0 ? null : timedFrame(b, ts, tsEnd, lt, orig, iface, value);
}
