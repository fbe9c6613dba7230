/**
 * Builds packets and capture files byte by byte, for edge cases no real client
 * produces on demand: reordering, overlaps, VLAN stacks, cooked links, fragments,
 * damaged files. Checksums are left zero (pktflow does not verify them; neither
 * does packetbeat).
 */
import { LinkType } from '../../src/core/frame';

export interface GenFrame {
  sec: number;
  nsec: number;
  data: Buffer;
  linkType?: number;
  iface?: number;
  origLen?: number;
}

export function ip4(s: string): Buffer {
  return Buffer.from(s.split('.').map(Number));
}

export function ip6(s: string): Buffer {
  const [head, tail] = s.includes('::') ? s.split('::') : [s, ''];
  const h = head === '' ? [] : head.split(':');
  const t = tail === '' ? [] : tail.split(':');
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

export interface Ipv4Opts {
  id?: number;
  mf?: boolean;
  fragOffset?: number;
  ttl?: number;
  options?: Buffer;
  totalLength?: number;
}

export function ipv4(src: string, dst: string, proto: number, payload: Buffer, o: Ipv4Opts = {}): Buffer {
  const opts = o.options ?? Buffer.alloc(0);
  const hl = 20 + opts.length;
  const h = Buffer.alloc(hl);
  h[0] = 0x40 | (hl / 4);
  h.writeUInt16BE(o.totalLength ?? hl + payload.length, 2);
  h.writeUInt16BE(o.id ?? 1, 4);
  h.writeUInt16BE(((o.mf ? 1 : 0) << 13) | ((o.fragOffset ?? 0) / 8), 6);
  h[8] = o.ttl ?? 64;
  h[9] = proto;
  ip4(src).copy(h, 12);
  ip4(dst).copy(h, 16);
  opts.copy(h, 20);
  return Buffer.concat([h, payload]);
}

/** extension headers: [nextHeaderType, body] pairs applied in order before the payload */
export function ipv6(src: string, dst: string, proto: number, payload: Buffer, ext: { type: number; body: Buffer }[] = []): Buffer {
  const parts: Buffer[] = [];
  let chain = payload;
  let next = proto;
  for (let i = ext.length - 1; i >= 0; i--) {
    const e = ext[i];
    const hdr = Buffer.concat([Buffer.from([next]), e.body]);
    chain = Buffer.concat([hdr, chain]);
    next = e.type;
  }
  const h = Buffer.alloc(40);
  h[0] = 0x60;
  h.writeUInt16BE(chain.length, 4);
  h[6] = next;
  h[7] = 64;
  ip6(src).copy(h, 8);
  ip6(dst).copy(h, 24);
  parts.push(h, chain);
  return Buffer.concat(parts);
}

/** an IPv6 fragment header body (7 bytes after the next-header byte) */
export function ipv6FragBody(offset: number, more: boolean, id: number): Buffer {
  const b = Buffer.alloc(7);
  b.writeUInt16BE(offset | (more ? 1 : 0), 1);
  b.writeUInt32BE(id, 3);
  return b;
}

export const F = { FIN: 1, SYN: 2, RST: 4, PSH: 8, ACK: 16 } as const;

export function tcp(sport: number, dport: number, seq: number, ack: number, flags: number, payload: Buffer = Buffer.alloc(0), options: Buffer = Buffer.alloc(0)): Buffer {
  const hl = 20 + options.length;
  const h = Buffer.alloc(hl);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt32BE(seq >>> 0, 4);
  h.writeUInt32BE(ack >>> 0, 8);
  h[12] = (hl / 4) << 4;
  h[13] = flags;
  h.writeUInt16BE(65535, 14);
  options.copy(h, 20);
  return Buffer.concat([h, payload]);
}

export function udp(sport: number, dport: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([h, payload]);
}

export function icmpEcho(type: number, id: number, seq: number, data: Buffer = Buffer.alloc(8)): Buffer {
  const h = Buffer.alloc(8);
  h[0] = type;
  h.writeUInt16BE(id, 4);
  h.writeUInt16BE(seq, 6);
  return Buffer.concat([h, data]);
}

const MAC_A = Buffer.from([2, 0, 0, 0, 0, 1]);
const MAC_B = Buffer.from([2, 0, 0, 0, 0, 2]);

export function ether(etherType: number, payload: Buffer, vlans: { tpid?: number; id: number }[] = []): Buffer {
  const tags = vlans.map((v, i) => {
    const t = Buffer.alloc(4);
    t.writeUInt16BE(v.tpid ?? (i === 0 && vlans.length > 1 ? 0x88a8 : 0x8100), 0);
    t.writeUInt16BE(v.id, 2);
    return t;
  });
  const type = Buffer.alloc(2);
  type.writeUInt16BE(etherType, 0);
  return Buffer.concat([MAC_B, MAC_A, ...tags, type, payload]);
}

export function sll(protocol: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt16BE(0, 0); // to us
  h.writeUInt16BE(1, 2); // ARPHRD_ETHER
  h.writeUInt16BE(6, 4);
  MAC_A.copy(h, 6);
  h.writeUInt16BE(protocol, 14);
  return Buffer.concat([h, payload]);
}

export function sll2(protocol: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(protocol, 0);
  h.writeUInt32BE(1, 4); // interface index
  h.writeUInt16BE(1, 8); // ARPHRD_ETHER
  h[10] = 0;
  h[11] = 6;
  MAC_A.copy(h, 12);
  return Buffer.concat([h, payload]);
}

export function nullLink(family: number, payload: Buffer, bigEndian = false): Buffer {
  const h = Buffer.alloc(4);
  if (bigEndian) h.writeUInt32BE(family, 0);
  else h.writeUInt32LE(family, 0);
  return Buffer.concat([h, payload]);
}

export interface PcapOpts {
  nano?: boolean;
  bigEndian?: boolean;
  linkType?: number;
  snaplen?: number;
}

export function writePcap(frames: GenFrame[], o: PcapOpts = {}): Buffer {
  const be = o.bigEndian === true;
  const u32 = (b: Buffer, v: number, off: number) => (be ? b.writeUInt32BE(v >>> 0, off) : b.writeUInt32LE(v >>> 0, off));
  const u16 = (b: Buffer, v: number, off: number) => (be ? b.writeUInt16BE(v, off) : b.writeUInt16LE(v, off));
  const g = Buffer.alloc(24);
  u32(g, o.nano ? 0xa1b23c4d : 0xa1b2c3d4, 0);
  u16(g, 2, 4);
  u16(g, 4, 6);
  u32(g, o.snaplen ?? 262144, 16);
  u32(g, o.linkType ?? LinkType.ETHERNET, 20);
  const parts: Buffer[] = [g];
  for (const f of frames) {
    const h = Buffer.alloc(16);
    u32(h, f.sec, 0);
    u32(h, o.nano ? f.nsec : Math.floor(f.nsec / 1000), 4);
    u32(h, f.data.length, 8);
    u32(h, f.origLen ?? f.data.length, 12);
    parts.push(h, f.data);
  }
  return Buffer.concat(parts);
}

export interface PcapngIface {
  linkType: number;
  /** if_tsresol byte (default 6: microseconds) */
  tsresol?: number;
  snaplen?: number;
}

function pad4(b: Buffer): Buffer {
  const p = (4 - (b.length % 4)) % 4;
  return p === 0 ? b : Buffer.concat([b, Buffer.alloc(p)]);
}

export function writePcapng(ifaces: PcapngIface[], frames: (GenFrame & { simple?: boolean })[], o: { bigEndian?: boolean; extraBlocks?: boolean } = {}): Buffer {
  const be = o.bigEndian === true;
  const u32 = (b: Buffer, v: number, off: number) => (be ? b.writeUInt32BE(v >>> 0, off) : b.writeUInt32LE(v >>> 0, off));
  const u16 = (b: Buffer, v: number, off: number) => (be ? b.writeUInt16BE(v, off) : b.writeUInt16LE(v, off));
  const block = (type: number, body: Buffer) => {
    const len = 12 + body.length;
    const h = Buffer.alloc(8);
    u32(h, type, 0);
    u32(h, len, 4);
    const t = Buffer.alloc(4);
    u32(t, len, 0);
    return Buffer.concat([h, body, t]);
  };
  const parts: Buffer[] = [];
  const shb = Buffer.alloc(16);
  u32(shb, 0x1a2b3c4d, 0);
  u16(shb, 1, 4);
  u16(shb, 0, 6);
  shb.writeInt32LE(-1, 8);
  shb.writeInt32LE(-1, 12);
  parts.push(block(0x0a0d0d0a, shb));
  for (const i of ifaces) {
    const opts: Buffer[] = [];
    if (i.tsresol !== undefined) {
      const opt = Buffer.alloc(8);
      u16(opt, 9, 0);
      u16(opt, 1, 2);
      opt[4] = i.tsresol;
      opts.push(opt);
      opts.push(Buffer.alloc(4)); // opt_endofopt
    }
    const body = Buffer.alloc(8);
    u16(body, i.linkType, 0);
    u32(body, i.snaplen ?? 0, 4);
    parts.push(block(1, Buffer.concat([body, ...opts])));
  }
  if (o.extraBlocks) {
    // a name resolution block with no records and a custom block: readers skip both
    const nrb = Buffer.alloc(4);
    parts.push(block(4, nrb));
    parts.push(block(0x00000bad, Buffer.from('pktflow!')));
  }
  for (const f of frames) {
    const iface = ifaces[f.iface ?? 0];
    if (f.simple) {
      const body = Buffer.alloc(4);
      u32(body, f.origLen ?? f.data.length, 0);
      parts.push(block(3, Buffer.concat([body, pad4(f.data)])));
      continue;
    }
    const res = iface.tsresol ?? 6;
    const units = res & 0x80 ? BigInt(2) ** BigInt(res & 0x7f) : BigInt(10) ** BigInt(res);
    const ts = BigInt(f.sec) * units + (BigInt(f.nsec) * units) / 1_000_000_000n;
    const body = Buffer.alloc(20);
    u32(body, f.iface ?? 0, 0);
    u32(body, Number(ts >> 32n), 4);
    u32(body, Number(ts & 0xffffffffn), 8);
    u32(body, f.data.length, 12);
    u32(body, f.origLen ?? f.data.length, 16);
    parts.push(block(6, Buffer.concat([body, pad4(f.data)])));
  }
  return Buffer.concat(parts);
}

/** A TCP conversation whose sequence numbers the builder keeps. Side 0 is the client. */
export class TcpConv {
  readonly seq: [number, number];
  constructor(
    readonly ends: [{ ip: string; port: number }, { ip: string; port: number }],
    isn: [number, number] = [1000, 5000],
    readonly v6 = false,
  ) {
    this.seq = [isn[0] >>> 0, isn[1] >>> 0];
  }

  private ip(side: number, seg: Buffer): Buffer {
    const a = this.ends[side];
    const b = this.ends[1 - side];
    return this.v6 ? ipv6(a.ip, b.ip, 6, seg) : ipv4(a.ip, b.ip, 6, seg);
  }

  /** one segment from `side` with the current sequence numbers; advances them */
  seg(side: number, flags: number, payload: Buffer = Buffer.alloc(0)): Buffer {
    const a = this.ends[side];
    const b = this.ends[1 - side];
    const s = tcp(a.port, b.port, this.seq[side], this.seq[1 - side], flags, payload);
    this.seq[side] = (this.seq[side] + payload.length + (flags & (F.SYN | F.FIN) ? 1 : 0)) >>> 0;
    return this.ip(side, s);
  }

  /** a segment at an explicit sequence number, sequence state untouched */
  at(side: number, seq: number, flags: number, payload: Buffer): Buffer {
    const a = this.ends[side];
    const b = this.ends[1 - side];
    return this.ip(side, tcp(a.port, b.port, seq, this.seq[1 - side], flags, payload));
  }

  handshake(): Buffer[] {
    return [this.seg(0, F.SYN), this.seg(1, F.SYN | F.ACK), this.seg(0, F.ACK)];
  }

  close(): Buffer[] {
    return [this.seg(0, F.FIN | F.ACK), this.seg(1, F.FIN | F.ACK), this.seg(0, F.ACK)];
  }
}

/**
 * A scripted TCP conversation over TcpConv: the handshake (unless it is left out), the
 * segments each side sends (strings as latin1), segments lost on the way (the sequence
 * moves on, no packet), and the close. Side 0 is the client.
 */
export class TcpScript {
  readonly c: TcpConv;
  readonly pk: Buffer[] = [];
  constructor(client: string, cport: number, server: string, sport: number, handshake = true, isn: [number, number] = [1000, 5000]) {
    this.c = new TcpConv([{ ip: client, port: cport }, { ip: server, port: sport }], isn);
    if (handshake) this.pk.push(...this.c.handshake());
  }
  send(side: number, ...parts: (Buffer | string)[]): this {
    for (const p of parts) this.pk.push(this.c.seg(side, F.PSH | F.ACK, bytes(p)));
    return this;
  }
  lose(side: number, part: Buffer | string): this {
    this.c.seg(side, F.PSH | F.ACK, bytes(part));
    return this;
  }
  /** request and reply pairs, each in a segment of its own */
  pairs(list: [Buffer, Buffer][]): this {
    for (const [a, b] of list) this.send(0, a).send(1, b);
    return this;
  }
  close(): Buffer[] {
    return [...this.pk, ...this.c.close()];
  }
}

const bytes = (p: Buffer | string): Buffer => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p);

/** IPv4 packets as Ethernet frames, one millisecond apart */
export const etherFrames = (pk: Buffer[]): GenFrame[] => timed(pk.map((p) => ether(0x0800, p)));

/** frames one millisecond apart from a fixed start: deterministic captures */
export function timed(datas: Buffer[], start = 1_700_000_000, linkType?: number, stepNs = 1_000_000): GenFrame[] {
  return datas.map((data, i) => {
    const total = i * stepNs;
    return { sec: start + Math.floor(total / 1e9), nsec: total % 1e9, data, linkType };
  });
}

/** a DNS message: one question, optional A answers, with compression pointers to the question name */
export function dnsMessage(id: number, name: string, qtype: number, response: boolean, answers: string[] = [], rcode = 0): Buffer {
  const labels = name.split('.').filter((l) => l !== '');
  const qname = Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]);
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE((response ? 0x8180 : 0x0100) | rcode, 2);
  h.writeUInt16BE(1, 4);
  h.writeUInt16BE(answers.length, 6);
  const q = Buffer.concat([qname, Buffer.from([0, qtype, 0, 1])]);
  const rrs = answers.map((a) => {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(1, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(300, 6);
    rr.writeUInt16BE(4, 10);
    ip4(a).copy(rr, 12);
    return rr;
  });
  return Buffer.concat([h, q, ...rrs]);
}

/** a DNS name in wire form, uncompressed */
export function dnsName(name: string): Buffer {
  const labels = name.split('.').filter((l) => l !== '');
  return Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])), Buffer.from([0])]);
}

/** one resource record in wire form, class IN: name, type, TTL, RDATA */
export function dnsRecord(name: string, type: number, ttl: number, rdata: Buffer): Buffer {
  const h = Buffer.alloc(10);
  h.writeUInt16BE(type, 0);
  h.writeUInt16BE(1, 2);
  h.writeUInt32BE(ttl, 4);
  h.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([dnsName(name), h, rdata]);
}

export interface DnsSections {
  answers?: Buffer[];
  authorities?: Buffer[];
  additionals?: Buffer[];
  rcode?: number;
  /** an OPT record with the DNSSEC OK bit (RFC 3225) ends the additionals */
  dnssecOk?: boolean;
}

/** a DNS message with whole records in its sections (built with dnsRecord) */
export function dnsRecordsMessage(id: number, name: string, qtype: number, response: boolean, s: DnsSections = {}): Buffer {
  const answers = s.answers ?? [];
  const authorities = s.authorities ?? [];
  const additionals = [...(s.additionals ?? [])];
  if (s.dnssecOk) {
    const opt = Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]); // root, OPT, UDP 1232, DO
    additionals.push(opt);
  }
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE((response ? 0x8180 : 0x0100) | (s.rcode ?? 0), 2);
  h.writeUInt16BE(1, 4);
  h.writeUInt16BE(answers.length, 6);
  h.writeUInt16BE(authorities.length, 8);
  h.writeUInt16BE(additionals.length, 10);
  const q = Buffer.concat([dnsName(name), Buffer.from([qtype >> 8, qtype & 255, 0, 1])]);
  return Buffer.concat([h, q, ...answers, ...authorities, ...additionals]);
}

/** n keep-alive HTTP transactions on `conns` connections, interleaved, as Ethernet frames */
export function httpLoad(n: number, conns = 4, start = 1_700_000_000): GenFrame[] {
  const out: Buffer[] = [];
  const cs = Array.from({ length: conns }, (_, i) => new TcpConv([{ ip: '10.9.0.1', port: 30000 + i }, { ip: '10.9.0.2', port: 80 }]));
  for (const c of cs) out.push(...c.handshake());
  const body = 'x'.repeat(200);
  for (let i = 0; i < n; i++) {
    const c = cs[i % conns];
    out.push(c.seg(0, F.PSH | F.ACK, Buffer.from(`GET /item/${i} HTTP/1.1\r\nHost: load.test\r\nUser-Agent: gen\r\n\r\n`)));
    out.push(c.seg(1, F.PSH | F.ACK, Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`)));
    out.push(c.seg(0, F.ACK));
  }
  for (const c of cs) out.push(...c.close());
  return timed(out.map((p) => ether(0x0800, p)), start, undefined, 10_000);
}
