/**
 * Writes fixtures/edge/*: small captures of cases real clients do not produce on
 * demand. Deterministic: run `npx tsx test/gen/edge-cases.ts` and the files come out
 * byte-identical.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { LinkType } from '../../src/core/frame';
import {
  dnsMessage, dnsName, dnsRecord, dnsRecordsMessage, ether, F, ipv4, ipv6, ipv6FragBody, nullLink, sll, sll2, TcpConv, timed, udp, writePcap, writePcapng, type GenFrame,
} from './packets';

const ETH_IP4 = 0x0800;
const ETH_IP6 = 0x86dd;
const b = (s: string) => Buffer.from(s, 'latin1');

const req = (p: string, extra = '') => b(`GET ${p} HTTP/1.1\r\nHost: example.test\r\nUser-Agent: gen/1.0\r\n${extra}\r\n`);
const resp = (body: string, code = '200 OK', extra = '') => b(`HTTP/1.1 ${code}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`);

function eth4(pkts: Buffer[]): Buffer[] {
  return pkts.map((p) => ether(ETH_IP4, p));
}

/** keep-alive HTTP: the second response arrives in four segments, shuffled, one resent, one overlapping */
function tcpReorder(): GenFrame[] {
  const c = new TcpConv([{ ip: '192.168.1.10', port: 40000 }, { ip: '93.184.216.34', port: 80 }]);
  const out = [...c.handshake(), c.seg(0, F.PSH | F.ACK, req('/first')), c.seg(1, F.PSH | F.ACK, resp('one')), c.seg(0, F.PSH | F.ACK, req('/second'))];
  const body = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyz';
  const r = resp(body);
  const base = c.seq[1];
  const cut = [0, 30, 60, 80, r.length];
  const segs = cut.slice(0, -1).map((from, i) => c.at(1, base + from, F.ACK, r.subarray(from, cut[i + 1])));
  // overlapping copy: bytes 50..70 (spans segments 1 and 2)
  const overlap = c.at(1, base + 50, F.ACK, r.subarray(50, 70));
  c.seq[1] = (base + r.length) >>> 0;
  out.push(segs[0], segs[2], segs[3], overlap, segs[1], segs[0]);
  out.push(...c.close());
  return timed(eth4(out));
}

/** a capture that starts in the middle of a connection on a non-standard port: no handshake */
function midstream(): GenFrame[] {
  const c = new TcpConv([{ ip: '10.0.0.5', port: 51000 }, { ip: '10.0.0.6', port: 8080 }], [77777, 99999]);
  const out = [c.seg(1, F.PSH | F.ACK, b('tail of an earlier response')), c.seg(0, F.PSH | F.ACK, req('/mid')), c.seg(1, F.PSH | F.ACK, resp('mid-stream works')), ...c.close()];
  return timed(eth4(out));
}

function vlan(): GenFrame[] {
  const c = new TcpConv([{ ip: '10.1.0.1', port: 41000 }, { ip: '10.1.0.2', port: 80 }]);
  const pk = [...c.handshake(), c.seg(0, F.PSH | F.ACK, req('/vlan')), c.seg(1, F.PSH | F.ACK, resp('tagged')), ...c.close()];
  const d = new TcpConv([{ ip: '10.1.0.1', port: 41001 }, { ip: '10.1.0.2', port: 80 }]);
  const pk2 = [...d.handshake(), d.seg(0, F.PSH | F.ACK, req('/qinq')), d.seg(1, F.PSH | F.ACK, resp('double tagged')), ...d.close()];
  return timed([...pk.map((p) => ether(ETH_IP4, p, [{ id: 100 }])), ...pk2.map((p) => ether(ETH_IP4, p, [{ id: 200 }, { id: 300 }]))]);
}

function dnsUdp(id: number, name: string, client: string, server: string, sport: number, six = false): Buffer[] {
  const q = udp(sport, 53, dnsMessage(id, name, 1, false));
  const r = udp(53, sport, dnsMessage(id, name, 1, true, ['10.9.8.7']));
  return six ? [ipv6(client, server, 17, q), ipv6(server, client, 17, r)] : [ipv4(client, server, 17, q), ipv4(server, client, 17, r)];
}

function sll2Trace(): GenFrame[] {
  const c = new TcpConv([{ ip: '172.16.0.1', port: 42000 }, { ip: '172.16.0.2', port: 80 }]);
  const pk = [...dnsUdp(7, 'sll2.example.test', '172.16.0.1', '172.16.0.53', 33333), ...c.handshake(), c.seg(0, F.PSH | F.ACK, req('/sll2')), c.seg(1, F.PSH | F.ACK, resp('cooked')), ...c.close()];
  return timed(pk.map((p) => sll2(ETH_IP4, p)));
}

function sllTrace(): GenFrame[] {
  return timed(dnsUdp(8, 'sll.example.test', '172.16.0.1', '172.16.0.53', 33334).map((p) => sll(ETH_IP4, p)));
}

/** BSD loopback (link type NULL) carrying IPv6 HTTP */
function nullIpv6(): GenFrame[] {
  const c = new TcpConv([{ ip: '::1', port: 43000 }, { ip: '::1', port: 8080 }], [1, 2], true);
  const pk = [...c.handshake(), c.seg(0, F.PSH | F.ACK, req('/v6')), c.seg(1, F.PSH | F.ACK, resp('over ipv6')), ...c.close()];
  return timed(pk.map((p) => nullLink(30, p)));
}

/** IPv6 with hop-by-hop and destination options, and a DNS response split into two fragments sent in reverse order */
function ipv6Ext(): GenFrame[] {
  const opts = Buffer.from([0, 1, 4, 0, 0, 0, 0]); // hdr ext len 0, PadN
  const q = udp(34000, 53, dnsMessage(9, 'frag6.example.test', 1, false));
  const query = ipv6('2001:db8::1', '2001:db8::53', 17, q, [{ type: 0, body: opts }, { type: 60, body: opts }]);
  const answers = Array.from({ length: 40 }, (_, i) => `10.0.${i}.1`);
  const r = udp(53, 34000, dnsMessage(9, 'frag6.example.test', 1, true, answers));
  const first = r.subarray(0, 400);
  const second = r.subarray(400);
  const f1 = ipv6('2001:db8::53', '2001:db8::1', 17, first, [{ type: 44, body: ipv6FragBody(0, true, 0xabcd) }]);
  const f2 = ipv6('2001:db8::53', '2001:db8::1', 17, second, [{ type: 44, body: ipv6FragBody(400, false, 0xabcd) }]);
  return timed([query, f2, f1].map((p) => ether(ETH_IP6, p)));
}

/** an IPv4 DNS response in three fragments, out of order, one duplicated with overlap */
function ipv4Frag(): GenFrame[] {
  const q = ipv4('192.0.2.1', '192.0.2.53', 17, udp(35000, 53, dnsMessage(10, 'frag4.example.test', 1, false)));
  const answers = Array.from({ length: 60 }, (_, i) => `10.1.${i}.1`);
  const r = udp(53, 35000, dnsMessage(10, 'frag4.example.test', 1, true, answers));
  const frag = (from: number, to: number, mf: boolean) => ipv4('192.0.2.53', '192.0.2.1', 17, r.subarray(from, to), { id: 4242, fragOffset: from, mf });
  const pk = [q, frag(400, 800, true), frag(800, r.length, false), frag(0, 400, true), frag(392, 408, true)];
  return timed(eth4(pk));
}

/** three pipelined requests in one segment; a chunked response with extensions and a trailer, split at awkward points */
function pipelinedChunked(): GenFrame[] {
  const c = new TcpConv([{ ip: '10.2.0.1', port: 44000 }, { ip: '10.2.0.2', port: 80 }]);
  const reqs = Buffer.concat([req('/a'), req('/b'), b('HEAD /c HTTP/1.1\r\nHost: example.test\r\n\r\n')]);
  const chunked = b('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: yes\r\n\r\n');
  const r2 = resp('second', '404 Not Found');
  const r3 = b('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n'); // HEAD: no body follows
  const all = Buffer.concat([chunked, r2, r3]);
  const pk = [...c.handshake(), c.seg(0, F.PSH | F.ACK, reqs)];
  for (const [from, to] of [[0, 7], [7, 70], [70, 90], [90, 103], [103, all.length]]) pk.push(c.seg(1, F.ACK, all.subarray(from, to)));
  pk.push(...c.close());
  return timed(eth4(pk));
}

/** DNS over TCP: two queries in one segment, a response split across two segments */
function dnsTcp(): GenFrame[] {
  const c = new TcpConv([{ ip: '10.3.0.1', port: 45000 }, { ip: '10.3.0.53', port: 53 }]);
  const framed = (m: Buffer) => Buffer.concat([Buffer.from([m.length >> 8, m.length & 255]), m]);
  const q = Buffer.concat([framed(dnsMessage(1, 'a.example.test', 1, false)), framed(dnsMessage(2, 'b.example.test', 1, false))]);
  const r = Buffer.concat([framed(dnsMessage(1, 'a.example.test', 1, true, ['10.0.0.1'])), framed(dnsMessage(2, 'b.example.test', 1, true, [], 3))]);
  const pk = [...c.handshake(), c.seg(0, F.PSH | F.ACK, q), c.seg(1, F.ACK, r.subarray(0, 20)), c.seg(1, F.PSH | F.ACK, r.subarray(20)), ...c.close()];
  return timed(eth4(pk));
}

/** sequence numbers that wrap past 2^32 in the middle of a response */
function seqWrap(): GenFrame[] {
  const c = new TcpConv([{ ip: '10.4.0.1', port: 46000 }, { ip: '10.4.0.2', port: 80 }], [0xfffffff0, 0xffffffe0]);
  const r = resp('x'.repeat(100));
  const pk = [...c.handshake(), c.seg(0, F.PSH | F.ACK, req('/wrap')), c.seg(1, F.ACK, r.subarray(0, 40)), c.seg(1, F.ACK, r.subarray(40)), ...c.close()];
  return timed(eth4(pk));
}

/** a response segment lost for good: the transaction is kept, marked partial */
function lostSegment(): GenFrame[] {
  const c = new TcpConv([{ ip: '10.5.0.1', port: 47000 }, { ip: '10.5.0.2', port: 80 }]);
  const r = resp('y'.repeat(3000));
  const pk = [...c.handshake(), c.seg(0, F.PSH | F.ACK, req('/lossy'))];
  const s1 = c.seg(1, F.ACK, r.subarray(0, 1000));
  c.seg(1, F.ACK, r.subarray(1000, 2000)); // never captured
  const s3 = c.seg(1, F.PSH | F.ACK, r.subarray(2000));
  pk.push(s1, s3, c.seg(0, F.ACK), c.seg(0, F.PSH | F.ACK, req('/after')), c.seg(1, F.PSH | F.ACK, resp('fine')), ...c.close());
  return timed(eth4(pk));
}

/** deterministic bytes standing in for keys, digests and signatures */
function bytes(seed: string, n: number): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; out.length * 64 < n; i++) out.push(createHash('sha512').update(`${seed}/${i}`).digest());
  return Buffer.concat(out).subarray(0, n);
}

const u16 = (n: number) => Buffer.from([n >> 8, n & 255]);
const u32 = (n: number) => Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);

/** RFC 4034 B: the key tag of a DNSKEY's RDATA */
function keyTag(rdata: Buffer): number {
  let ac = 0;
  for (let i = 0; i < rdata.length; i++) ac += i & 1 ? rdata[i] : rdata[i] << 8;
  ac += (ac >> 16) & 0xffff;
  return ac & 0xffff;
}

/** RFC 4034 4.1.2: a type bit map listing `types` */
function typeBitmap(types: number[]): Buffer {
  const windows = new Map<number, number[]>();
  for (const t of [...types].sort((a, b) => a - b)) windows.set(t >> 8, [...(windows.get(t >> 8) ?? []), t & 255]);
  const parts: Buffer[] = [];
  for (const [w, low] of windows) {
    const map = Buffer.alloc((Math.max(...low) >> 3) + 1);
    for (const t of low) map[t >> 3] |= 0x80 >> (t & 7);
    parts.push(Buffer.from([w, map.length]), map);
  }
  return Buffer.concat(parts);
}

/**
 * A validating resolver's view of two signed zones (RFC 4034, 5155, 7344), over UDP
 * with the DO bit: DNSKEY and CDNSKEY with their RRSIG, DS and CDS, an NXDOMAIN
 * proved by NSEC in `example.test` and by NSEC3 (opt-out, salted) in `nsec3.test`,
 * and NSEC3PARAM. Keys, digests and signatures are stand-in bytes, but the key tags
 * and the DS digest are computed as a signer would (RFC 4034 B, 5.1.4).
 */
function dnssec(): GenFrame[] {
  const A = 1, NS = 2, SOA = 6, MX = 15, TXT = 16, AAAA = 28, DS = 43, RRSIG = 46, NSEC = 47, DNSKEY = 48, NSEC3 = 50, NSEC3PARAM = 51, CDS = 59, CDNSKEY = 60, CAA = 257;
  const inception = 1_700_000_000 - 86_400;
  const expiration = 1_700_000_000 + 30 * 86_400;
  const dnskey = (flags: number, alg: number, key: Buffer) => Buffer.concat([u16(flags), Buffer.from([3, alg]), key]);
  const ksk = dnskey(257, 13, bytes('ksk', 64));
  const zsk = dnskey(256, 13, bytes('zsk', 64));
  const rrsig = (covered: number, labels: number, ttl: number, signer: string, tag: number) =>
    Buffer.concat([u16(covered), Buffer.from([13, labels]), u32(ttl), u32(expiration), u32(inception), u16(tag), dnsName(signer), bytes(`sig/${covered}/${labels}`, 64)]);
  const ds = (owner: string, key: Buffer, digestType = 2) =>
    Buffer.concat([u16(keyTag(key)), Buffer.from([13, digestType]), createHash(digestType === 2 ? 'sha256' : 'sha384').update(Buffer.concat([dnsName(owner), key])).digest()]);
  const soa = Buffer.concat([dnsName('ns.example.test'), dnsName('hostmaster.example.test'), u32(2023111401), u32(7200), u32(3600), u32(1209600), u32(300)]);
  const nsec3 = (next: Buffer, types: number[]) => Buffer.concat([Buffer.from([1, 1]), u16(0), Buffer.from([4]), Buffer.from('aabbccdd', 'hex'), Buffer.from([next.length]), next, typeBitmap(types)]);
  const z = 'example.test';
  const n3 = 'nsec3.test';
  const exchanges: [number, string, number, Buffer[], Buffer[], number][] = [
    [0x5301, z, DNSKEY, [dnsRecord(z, DNSKEY, 3600, ksk), dnsRecord(z, DNSKEY, 3600, zsk), dnsRecord(z, RRSIG, 3600, rrsig(DNSKEY, 2, 3600, z, keyTag(ksk)))], [], 0],
    [0x5302, z, DS, [dnsRecord(z, DS, 86400, ds(z, ksk)), dnsRecord(z, RRSIG, 86400, rrsig(DS, 2, 86400, 'test', 4711))], [], 0],
    [0x5303, z, CDS, [dnsRecord(z, CDS, 3600, ds(z, ksk, 4)), dnsRecord(z, CDNSKEY, 3600, ksk)], [], 0],
    [
      0x5304, `nothing.${z}`, A, [],
      [
        dnsRecord(z, SOA, 300, soa),
        dnsRecord(z, RRSIG, 300, rrsig(SOA, 2, 300, z, keyTag(zsk))),
        dnsRecord(z, NSEC, 300, Buffer.concat([dnsName(`www.${z}`), typeBitmap([NS, SOA, MX, TXT, RRSIG, NSEC, DNSKEY, CAA])])),
        dnsRecord(z, RRSIG, 300, rrsig(NSEC, 2, 300, z, keyTag(zsk))),
      ],
      3,
    ],
    [0x5305, n3, NSEC3PARAM, [dnsRecord(n3, NSEC3PARAM, 0, Buffer.concat([Buffer.from([1, 0]), u16(0), Buffer.from([4]), Buffer.from('aabbccdd', 'hex')]))], [], 0],
    [
      0x5306, `missing.${n3}`, AAAA, [],
      [
        dnsRecord(`0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.${n3}`, NSEC3, 300, nsec3(bytes('h1', 20), [NS, SOA, RRSIG, DNSKEY, NSEC3PARAM])),
        dnsRecord(`0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.${n3}`, RRSIG, 300, rrsig(NSEC3, 3, 300, n3, 1234)),
        dnsRecord(`k8udemvp1j2f7eg6jebps17vp3n8i58h.${n3}`, NSEC3, 300, nsec3(bytes('h2', 20), [A, AAAA, RRSIG])),
      ],
      3,
    ],
  ];
  const pk: Buffer[] = [];
  exchanges.forEach(([id, name, qtype, answers, authorities, rcode], i) => {
    const port = 37000 + i;
    pk.push(ipv4('10.7.0.1', '10.7.0.53', 17, udp(port, 53, dnsRecordsMessage(id, name, qtype, false, { dnssecOk: true }))));
    pk.push(ipv4('10.7.0.53', '10.7.0.1', 17, udp(53, port, dnsRecordsMessage(id, name, qtype, true, { answers, authorities, rcode, dnssecOk: true }))));
  });
  return timed(eth4(pk));
}

export function edgeCases(): Record<string, Buffer> {
  const out: Record<string, Buffer> = {
    'tcp-reorder.pcap': writePcap(tcpReorder()),
    'midstream.pcap': writePcap(midstream()),
    'vlan-qinq.pcap': writePcap(vlan()),
    'sll2.pcap': writePcap(sll2Trace(), { linkType: LinkType.LINUX_SLL2 }),
    'sll.pcap': writePcap(sllTrace(), { linkType: LinkType.LINUX_SLL }),
    'null-ipv6.pcap': writePcap(nullIpv6(), { linkType: LinkType.NULL }),
    'ipv6-ext-frag.pcap': writePcap(ipv6Ext()),
    'ipv4-frag.pcap': writePcap(ipv4Frag()),
    'http-pipelined-chunked.pcap': writePcap(pipelinedChunked()),
    'dns-tcp.pcap': writePcap(dnsTcp()),
    'dns-dnssec.pcap': writePcap(dnssec()),
    'seq-wrap.pcap': writePcap(seqWrap()),
    'lost-segment.pcap': writePcap(lostSegment()),
    'big-endian-nsec.pcap': writePcap(vlan(), { nano: true, bigEndian: true }),
  };
  // two interfaces with their own link types and resolutions, plus simple packet blocks and blocks to skip
  const eth = vlan();
  const raw = timed(dnsUdp(11, 'ng.example.test', '10.6.0.1', '10.6.0.53', 36000), 1_700_000_000, undefined, 123_457);
  out['multi-iface.pcapng'] = writePcapng(
    [{ linkType: LinkType.ETHERNET }, { linkType: LinkType.RAW, tsresol: 9 }],
    [...eth.slice(0, 6), ...raw.map((f) => ({ ...f, iface: 1 })), ...eth.slice(6), { sec: 0, nsec: 0, data: eth[0].data, simple: true }],
    { extraBlocks: true },
  );
  out['big-endian.pcapng'] = writePcapng([{ linkType: LinkType.ETHERNET, tsresol: 0x80 | 20 }], vlan(), { bigEndian: true });
  // cut in the middle of the 9th record: eight frames survive
  const whole = writePcap(vlan());
  let off = 24;
  for (let i = 0; i < 8; i++) off += 16 + whole.readUInt32LE(off + 8);
  out['truncated.pcap'] = whole.subarray(0, off + 16 + 10);
  return out;
}

if (require.main === module) {
  const dir = path.join(__dirname, '..', '..', 'fixtures', 'edge');
  mkdirSync(dir, { recursive: true });
  for (const [name, data] of Object.entries(edgeCases())) writeFileSync(path.join(dir, name), data);
  console.log(`wrote ${Object.keys(edgeCases()).length} files to ${dir}`);
}
