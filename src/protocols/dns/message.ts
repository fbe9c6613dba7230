import { ipv6Text } from '../../events/ip';

/**
 * DNS message parsing (RFC 1035, 3596, 2782, 6891, 8659; DNSSEC records: RFC 4034,
 * 5155, 7344). Every read is bounds
 * checked; a malformed message throws DnsParseError with a reason that the
 * analyzer counts.
 */

export class DnsParseError extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

export interface DnsQuestion {
  name: string;
  type: string;
  class: string;
}

/** `ttl` is a decimal string, as packetbeat writes it */
export type DnsRecord = Record<string, string | number> & { name: string; type: string; class: string; ttl: string; data: string };

export interface DnsOpt {
  version: string;
  do: boolean;
  ext_rcode: string;
  udp_size: number;
}

export interface DnsMessage {
  id: number;
  response: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  ad: boolean;
  cd: boolean;
  /** full response code, extended by OPT when present */
  rcode: number;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
  counts: [number, number, number, number];
  opt: DnsOpt | null;
  size: number;
}

const TYPES: Record<number, string> = {
  1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 12: 'PTR', 13: 'HINFO', 15: 'MX', 16: 'TXT', 28: 'AAAA', 33: 'SRV',
  35: 'NAPTR', 39: 'DNAME', 41: 'OPT', 43: 'DS', 46: 'RRSIG', 47: 'NSEC', 48: 'DNSKEY', 50: 'NSEC3', 51: 'NSEC3PARAM', 52: 'TLSA',
  59: 'CDS', 60: 'CDNSKEY', 64: 'SVCB', 65: 'HTTPS', 99: 'SPF', 250: 'TSIG', 251: 'IXFR', 252: 'AXFR', 255: 'ANY', 257: 'CAA',
};
const CLASSES: Record<number, string> = { 1: 'IN', 3: 'CH', 4: 'HS', 254: 'NONE', 255: 'ANY' };
const RCODES: Record<number, string> = {
  0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED', 6: 'YXDOMAIN', 7: 'YXRRSET',
  8: 'NXRRSET', 9: 'NOTAUTH', 10: 'NOTZONE', 11: 'DSOTYPENI', 16: 'BADVERS', 17: 'BADKEY', 18: 'BADTIME', 19: 'BADMODE',
  20: 'BADNAME', 21: 'BADALG', 22: 'BADTRUNC', 23: 'BADCOOKIE',
};
const OPCODES: Record<number, string> = { 0: 'QUERY', 1: 'IQUERY', 2: 'STATUS', 4: 'NOTIFY', 5: 'UPDATE', 6: 'DSO' };
/** DNSSEC algorithms by their IANA mnemonics (RFC 4034 A.1, 5155, 5702, 5933, 6605, 8080, 9558, 9563) */
const ALGORITHMS: Record<number, string> = {
  1: 'RSAMD5', 2: 'DH', 3: 'DSA', 5: 'RSASHA1', 6: 'DSA-NSEC3-SHA1', 7: 'RSASHA1-NSEC3-SHA1', 8: 'RSASHA256', 10: 'RSASHA512',
  12: 'ECC-GOST', 13: 'ECDSAP256SHA256', 14: 'ECDSAP384SHA384', 15: 'ED25519', 16: 'ED448', 17: 'SM2SM3', 23: 'ECC-GOST12',
  252: 'INDIRECT', 253: 'PRIVATEDNS', 254: 'PRIVATEOID',
};
/** DS digest types (RFC 4034 A.2, 4509, 5933, 6605, 9558, 9563) and the NSEC3 hash (RFC 5155: 1), by the names packetbeat gives them */
const DIGESTS: Record<number, string> = { 1: 'SHA1', 2: 'SHA256', 3: 'GOST94', 4: 'SHA384', 5: 'GOST12', 6: 'SM3' };

export const typeName = (t: number): string => TYPES[t] ?? `TYPE${t}`;
export const className = (c: number): string => CLASSES[c] ?? `CLASS${c}`;
export const rcodeName = (r: number): string => RCODES[r] ?? `RCODE${r}`;
export const opcodeName = (o: number): string => OPCODES[o] ?? `OPCODE${o}`;
/** unknown algorithm and digest numbers as the number, as packetbeat */
export const algorithmName = (a: number): string => ALGORITHMS[a] ?? String(a);
export const digestName = (d: number): string => DIGESTS[d] ?? String(d);

const MAX_POINTER_HOPS = 64;
const MAX_NAME = 255;
const MAX_RECORDS = 4096;

/** A name at `off` in b[start, end): returns [name, offset after the name in place]. */
export function readName(b: Buffer, start: number, end: number, off: number): [string, number] {
  const labels: string[] = [];
  let o = off;
  let after = -1;
  let hops = 0;
  let length = 0;
  // compression pointers must point strictly backwards: no loop can then form
  let limit = off;
  for (;;) {
    if (o >= end) throw new DnsParseError('name_out_of_bounds');
    const l = b[o];
    if (l === 0) {
      if (after < 0) after = o + 1;
      break;
    }
    const kind = l & 0xc0;
    if (kind === 0xc0) {
      if (o + 1 >= end) throw new DnsParseError('name_out_of_bounds');
      const target = start + (((l & 0x3f) << 8) | b[o + 1]);
      if (after < 0) after = o + 2;
      if (++hops > MAX_POINTER_HOPS) throw new DnsParseError('name_pointer_chain_too_long');
      if (target >= limit) throw new DnsParseError('name_pointer_loop');
      limit = target;
      o = target;
      continue;
    }
    if (kind !== 0) throw new DnsParseError('bad_label_type');
    if (o + 1 + l > end) throw new DnsParseError('name_out_of_bounds');
    length += l + 1;
    if (length > MAX_NAME) throw new DnsParseError('name_too_long');
    labels.push(label(b, o + 1, o + 1 + l));
    o += 1 + l;
  }
  return [labels.length === 0 ? '.' : labels.join('.'), after];
}

/** a label as presentation text: dots and backslashes escaped, non-printables as \DDD */
function label(b: Buffer, from: number, to: number): string {
  let plain = true;
  for (let i = from; i < to; i++) {
    const c = b[i];
    if (c <= 0x20 || c >= 0x7f || c === 0x2e || c === 0x5c || c === 0x22) {
      plain = false;
      break;
    }
  }
  if (plain) return b.toString('latin1', from, to);
  let s = '';
  for (let i = from; i < to; i++) {
    const c = b[i];
    if (c === 0x2e || c === 0x5c || c === 0x22) s += '\\' + String.fromCharCode(c);
    else if (c <= 0x20 || c >= 0x7f) s += '\\' + String(c).padStart(3, '0');
    else s += String.fromCharCode(c);
  }
  return s;
}

export function parseDns(b: Buffer, start: number, len: number): DnsMessage {
  const end = start + len;
  if (len < 12) throw new DnsParseError('truncated_header');
  const flags = b.readUInt16BE(start + 2);
  const counts: [number, number, number, number] = [
    b.readUInt16BE(start + 4),
    b.readUInt16BE(start + 6),
    b.readUInt16BE(start + 8),
    b.readUInt16BE(start + 10),
  ];
  if (counts[0] + counts[1] + counts[2] + counts[3] > MAX_RECORDS) throw new DnsParseError('too_many_records');
  const m: DnsMessage = {
    id: b.readUInt16BE(start),
    response: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    ad: (flags & 0x0020) !== 0,
    cd: (flags & 0x0010) !== 0,
    rcode: flags & 0xf,
    questions: [],
    answers: [],
    authorities: [],
    additionals: [],
    counts,
    opt: null,
    size: len,
  };
  let o = start + 12;
  for (let i = 0; i < counts[0]; i++) {
    const [name, next] = readName(b, start, end, o);
    if (next + 4 > end) throw new DnsParseError('truncated_question');
    m.questions.push({ name, type: typeName(b.readUInt16BE(next)), class: className(b.readUInt16BE(next + 2)) });
    o = next + 4;
  }
  const sections = [m.answers, m.authorities, m.additionals];
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s + 1]; i++) o = record(b, start, end, o, m, sections[s]);
  }
  return m;
}

function record(b: Buffer, start: number, end: number, off: number, m: DnsMessage, into: DnsRecord[]): number {
  const [name, next] = readName(b, start, end, off);
  if (next + 10 > end) throw new DnsParseError('truncated_record');
  const type = b.readUInt16BE(next);
  const cls = b.readUInt16BE(next + 2);
  const ttl = b.readUInt32BE(next + 4);
  const rdlen = b.readUInt16BE(next + 8);
  const rd = next + 10;
  const rdEnd = rd + rdlen;
  if (rdEnd > end) throw new DnsParseError('truncated_rdata');
  if (type === 41) {
    // OPT pseudo-record: class is the UDP payload size, TTL carries extended rcode, version and DO
    const extRcode = ((ttl >>> 24) << 4) | m.rcode;
    m.rcode = extRcode;
    m.opt = { version: String((ttl >>> 16) & 0xff), do: (ttl & 0x8000) !== 0, ext_rcode: rcodeName(extRcode), udp_size: cls };
    return rdEnd;
  }
  const r: DnsRecord = { name, type: typeName(type), class: className(cls), ttl: String(ttl), data: '' };
  switch (type) {
    case 1:
      if (rdlen !== 4) throw new DnsParseError('bad_a_record');
      r.data = `${b[rd]}.${b[rd + 1]}.${b[rd + 2]}.${b[rd + 3]}`;
      break;
    case 28: {
      if (rdlen !== 16) throw new DnsParseError('bad_aaaa_record');
      r.data = ipv6At(b, rd);
      break;
    }
    case 2:
    case 5:
    case 12:
    case 39:
      r.data = readName(b, start, end, rd)[0];
      break;
    case 15: {
      if (rdlen < 3) throw new DnsParseError('bad_mx_record');
      r.preference = b.readUInt16BE(rd);
      r.data = readName(b, start, end, rd + 2)[0];
      break;
    }
    case 6: {
      const [mname, n1] = readName(b, start, end, rd);
      const [rname, n2] = readName(b, start, end, n1);
      if (n2 + 20 > rdEnd) throw new DnsParseError('bad_soa_record');
      r.data = mname;
      r.rname = rname;
      r.serial = b.readUInt32BE(n2);
      r.refresh = b.readUInt32BE(n2 + 4);
      r.retry = b.readUInt32BE(n2 + 8);
      r.expire = b.readUInt32BE(n2 + 12);
      r.minimum = b.readUInt32BE(n2 + 16);
      break;
    }
    case 16:
    case 99: {
      const parts: string[] = [];
      let o = rd;
      while (o < rdEnd) {
        const l = b[o];
        if (o + 1 + l > rdEnd) throw new DnsParseError('bad_txt_record');
        parts.push(b.toString('utf8', o + 1, o + 1 + l));
        o += 1 + l;
      }
      r.data = parts.join('');
      break;
    }
    case 33: {
      if (rdlen < 7) throw new DnsParseError('bad_srv_record');
      r.priority = b.readUInt16BE(rd);
      r.weight = b.readUInt16BE(rd + 2);
      r.port = b.readUInt16BE(rd + 4);
      r.data = readName(b, start, end, rd + 6)[0];
      break;
    }
    case 257: {
      if (rdlen < 2 || 2 + b[rd + 1] > rdlen) throw new DnsParseError('bad_caa_record');
      const tagLen = b[rd + 1];
      const tag = b.toString('latin1', rd + 2, rd + 2 + tagLen);
      const value = b.toString('utf8', rd + 2 + tagLen, rdEnd);
      r.flags = b[rd];
      r.tag = tag;
      r.value = value;
      r.data = `${b[rd]} ${tag} "${value}"`;
      break;
    }
    case 43: // DS
    case 59: {
      // CDS (RFC 7344): the DS layout. RFC 4034 5.1: key tag, algorithm, digest type, digest
      if (rdlen < 4) throw new DnsParseError('bad_ds_record');
      r.data = b.toString('hex', rd + 4, rdEnd).toUpperCase();
      r.key_tag = b.readUInt16BE(rd);
      r.algorithm = algorithmName(b[rd + 2]);
      r.digest_type = digestName(b[rd + 3]);
      break;
    }
    case 46: {
      // RRSIG, RFC 4034 3.1: type covered, algorithm, labels, original TTL, expiration, inception, key tag, signer's name, signature
      if (rdlen < 19) throw new DnsParseError('bad_rrsig_record');
      const [signer, sigStart] = readName(b, start, end, rd + 18);
      if (sigStart > rdEnd) throw new DnsParseError('bad_rrsig_record');
      r.data = b.toString('base64', sigStart, rdEnd);
      r.type_covered = typeName(b.readUInt16BE(rd));
      r.algorithm = algorithmName(b[rd + 2]);
      r.labels = b[rd + 3];
      r.original_ttl = b.readUInt32BE(rd + 4);
      r.expiration = sigTime(b.readUInt32BE(rd + 8));
      r.inception = sigTime(b.readUInt32BE(rd + 12));
      r.key_tag = b.readUInt16BE(rd + 16);
      r.signer_name = signer;
      break;
    }
    case 47: {
      // NSEC, RFC 4034 4.1: next domain name, type bit maps
      const [next, bits] = readName(b, start, end, rd);
      if (bits > rdEnd) throw new DnsParseError('bad_nsec_record');
      r.data = next;
      r.type_bits = typeBits(b, bits, rdEnd);
      break;
    }
    case 48: // DNSKEY
    case 60: {
      // CDNSKEY (RFC 7344): the DNSKEY layout. RFC 4034 2.1: flags, protocol, algorithm, public key
      if (rdlen < 4) throw new DnsParseError('bad_dnskey_record');
      r.data = b.toString('base64', rd + 4, rdEnd);
      r.flags = b.readUInt16BE(rd);
      r.protocol = b[rd + 2];
      r.algorithm = algorithmName(b[rd + 3]);
      break;
    }
    case 50: {
      // NSEC3, RFC 5155 3.2: hash algorithm, flags, iterations, salt length, salt, hash length, next hashed owner, type bit maps
      if (rdlen < 5) throw new DnsParseError('bad_nsec3_record');
      const saltEnd = rd + 5 + b[rd + 4];
      if (saltEnd + 1 > rdEnd) throw new DnsParseError('bad_nsec3_record');
      const hashEnd = saltEnd + 1 + b[saltEnd];
      if (hashEnd > rdEnd) throw new DnsParseError('bad_nsec3_record');
      r.data = base32hex(b, saltEnd + 1, hashEnd);
      r.hash = digestName(b[rd]);
      r.flags = b[rd + 1];
      r.iterations = b.readUInt16BE(rd + 2);
      r.salt = salt(b, rd + 5, saltEnd);
      r.type_bits = typeBits(b, hashEnd, rdEnd);
      break;
    }
    case 51: {
      // NSEC3PARAM, RFC 5155 4.2: hash algorithm, flags, iterations, salt length, salt
      if (rdlen < 5 || rd + 5 + b[rd + 4] !== rdEnd) throw new DnsParseError('bad_nsec3param_record');
      r.data = salt(b, rd + 5, rdEnd);
      r.hash = digestName(b[rd]);
      r.flags = b[rd + 1];
      r.iterations = b.readUInt16BE(rd + 2);
      break;
    }
    default:
      // a type pktflow does not decode: its RDATA as packetbeat shows an RFC 3597 record's
      r.data = escapedBytes(b, rd, rdEnd);
  }
  into.push(r);
  return rdEnd;
}

/**
 * RDATA as text the way packetbeat shows a record of a type it does not decode (its
 * hexStringToString over miekg's RFC 3597 form): printable ASCII as it is, `"` and `\`
 * escaped with a backslash, tab, CR and LF as `\t`, `\r`, `\n`, any other byte as `\DDD`.
 */
export function escapedBytes(b: Buffer, from: number, to: number): string {
  let s = '';
  for (let i = from; i < to; i++) {
    const c = b[i];
    if (c === 0x22 || c === 0x5c) s += '\\' + String.fromCharCode(c);
    else if (c === 0x09) s += '\\t';
    else if (c === 0x0d) s += '\\r';
    else if (c === 0x0a) s += '\\n';
    else if (c < 32 || c >= 127) s += '\\' + String(c).padStart(3, '0');
    else s += String.fromCharCode(c);
  }
  return s;
}

/**
 * An RRSIG time (seconds since 1970, unsigned 32-bit) in the presentation form of
 * RFC 4034 3.2, YYYYMMDDHHmmSS in UTC. Taken as it stands, not by RFC 1982 serial
 * arithmetic around the current time, so the output depends on the packet alone
 * (the two agree until 2106).
 */
function sigTime(t: number): string {
  const iso = new Date(t * 1000).toISOString(); // YYYY-MM-DDTHH:mm:ss.sssZ
  return iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 10) + iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 19);
}

/**
 * An NSEC or NSEC3 type bit map (RFC 4034 4.1.2) as the type names it lists, joined
 * with spaces (packetbeat's `type_bits`). Windows must come in increasing order with
 * 1 to 32 bitmap bytes each, so a record lists at most 65,536 types.
 */
function typeBits(b: Buffer, o: number, end: number): string {
  let types = '';
  let last = -1;
  while (o < end) {
    if (o + 2 > end) throw new DnsParseError('bad_type_bitmap');
    const window = b[o];
    const len = b[o + 1];
    if (window <= last || len < 1 || len > 32 || o + 2 + len > end) throw new DnsParseError('bad_type_bitmap');
    last = window;
    for (let i = 0; i < len; i++) {
      const bits = b[o + 2 + i];
      if (bits === 0) continue;
      for (let j = 0; j < 8; j++) if ((bits & (0x80 >> j)) !== 0) types += (types === '' ? '' : ' ') + typeName(window * 256 + i * 8 + j);
    }
    o += 2 + len;
  }
  return types;
}

/** an NSEC3 salt in presentation form (RFC 5155 3.3): upper-case hex, `-` when empty */
function salt(b: Buffer, from: number, to: number): string {
  return from === to ? '-' : b.toString('hex', from, to).toUpperCase();
}

const BASE32HEX = '0123456789ABCDEFGHIJKLMNOPQRSTUV';

/** RFC 4648 7, "base32hex" without padding: the NSEC3 next hashed owner name (RFC 5155 3.3) */
function base32hex(b: Buffer, from: number, to: number): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (let i = from; i < to; i++) {
    acc = ((acc << 8) | b[i]) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32HEX[(acc >> bits) & 31];
    }
  }
  if (bits > 0) out += BASE32HEX[(acc << (5 - bits)) & 31];
  return out;
}

function ipv6At(b: Buffer, o: number): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(b.readUInt16BE(o + 2 * i));
  return ipv6Text(g);
}
