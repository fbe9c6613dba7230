/**
 * Writes fixtures/dhcpv4/edge-*.pcap: DHCP that dnsmasq, udhcpc and dhcping do not
 * produce on demand: a relay agent (giaddr, hops, option 82) on a VLAN, plain BOOTP
 * without the magic cookie, option overload and a long option split in parts
 * (RFC 3396), a request never answered, a reply without a request, FORCERENEW and
 * DECLINE, damaged messages, and DHCP on ports that are not 67/68. Deterministic:
 * `npx tsx test/gen/dhcpv4.ts` rewrites the files byte-identical.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { ether, ip4, ipv4, udp, writePcap, type GenFrame } from './packets';

export interface Bootp {
  op: number;
  xid: number;
  mac?: string;
  htype?: number;
  hlen?: number;
  hops?: number;
  secs?: number;
  broadcast?: boolean;
  ciaddr?: string;
  yiaddr?: string;
  siaddr?: string;
  giaddr?: string;
  sname?: string | Buffer;
  file?: string | Buffer;
  /** false: no magic cookie (RFC 951 BOOTP) */
  cookie?: boolean;
  /** [code, value] in order; the End option is added unless `end` is false */
  options?: [number, Buffer | string | number[]][];
  end?: boolean;
}

const field = (v: string | Buffer | undefined, n: number): Buffer => {
  const b = Buffer.alloc(n);
  if (v !== undefined) (typeof v === 'string' ? Buffer.from(v) : v).copy(b, 0, 0, n);
  return b;
};

/** a BOOTP/DHCP message as a client, relay or server writes it */
export function dhcp(m: Bootp): Buffer {
  const h = Buffer.alloc(236);
  h[0] = m.op;
  h[1] = m.htype ?? 1;
  h[2] = m.hlen ?? 6;
  h[3] = m.hops ?? 0;
  h.writeUInt32BE(m.xid >>> 0, 4);
  h.writeUInt16BE(m.secs ?? 0, 8);
  h.writeUInt16BE(m.broadcast ? 0x8000 : 0, 10);
  ip4(m.ciaddr ?? '0.0.0.0').copy(h, 12);
  ip4(m.yiaddr ?? '0.0.0.0').copy(h, 16);
  ip4(m.siaddr ?? '0.0.0.0').copy(h, 20);
  ip4(m.giaddr ?? '0.0.0.0').copy(h, 24);
  Buffer.from((m.mac ?? '02:00:00:00:00:01').split(':').map((x) => parseInt(x, 16))).copy(h, 28);
  field(m.sname, 64).copy(h, 44);
  field(m.file, 128).copy(h, 108);
  if (m.cookie === false) return Buffer.concat([h, Buffer.alloc(64)]);
  const parts: Buffer[] = [h, Buffer.from([0x63, 0x82, 0x53, 0x63])];
  for (const [code, v] of m.options ?? []) {
    const b = typeof v === 'string' ? Buffer.from(v) : Buffer.isBuffer(v) ? v : Buffer.from(v);
    parts.push(Buffer.from([code, b.length]), b);
  }
  if (m.end !== false) parts.push(Buffer.from([255]));
  return Buffer.concat(parts);
}

export const ipOpt = (...a: string[]) => Buffer.concat(a.map(ip4));
export const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n | 0, 0);
  return b;
};

type Pk = { data: Buffer; at: number };

/** one frame: UDP in IPv4 in Ethernet (VLAN tags when given), at `at` ms after the start */
function frame(at: number, src: string, sport: number, dst: string, dport: number, payload: Buffer, vlan?: number): Pk {
  return { data: ether(0x0800, ipv4(src, dst, 17, udp(sport, dport, payload)), vlan !== undefined ? [{ id: vlan }] : []), at };
}

const frames = (pk: Pk[], start = 1_700_000_000): GenFrame[] => pk.map((p) => ({ sec: start + Math.floor(p.at / 1000), nsec: (p.at % 1000) * 1_000_000, data: p.data }));

const RELAY = '10.20.0.1';
const SERVER = '192.0.2.10';
const MAC = '02:00:5e:10:00:01';
const rai = Buffer.concat([Buffer.from([1, 6]), Buffer.from('eth0/7'), Buffer.from([2, 6, 0x02, 0x00, 0x5e, 0x10, 0x00, 0x01])]);

/** a relay agent on VLAN 30 carries a client's DORA to a server on another network */
function relay(): GenFrame[] {
  const xid = 0x5eed0001;
  const common = { xid, mac: MAC, hops: 1, giaddr: RELAY };
  const prl: [number, number[]] = [55, [1, 3, 6, 15, 119]];
  const serverOpts = (type: number): [number, Buffer | string | number[]][] => [
    [53, [type]], [54, ipOpt(SERVER)], [51, u32(86400)], [1, ipOpt('255.255.255.0')], [3, ipOpt('10.20.0.1')], [6, ipOpt('192.0.2.53', '192.0.2.54')], [15, 'corp.example'], [82, rai],
  ];
  return frames([
    frame(0, RELAY, 67, SERVER, 67, dhcp({ ...common, op: 1, secs: 3, options: [[53, [1]], [61, [1, 0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]], [12, 'laptop-7'], prl, [82, rai]] }), 30),
    frame(2, SERVER, 67, RELAY, 67, dhcp({ ...common, op: 2, yiaddr: '10.20.0.77', siaddr: SERVER, sname: 'boot.corp.example', file: 'pxelinux.0', options: serverOpts(2) }), 30),
    frame(40, RELAY, 67, SERVER, 67, dhcp({ ...common, op: 1, secs: 3, options: [[53, [3]], [50, ipOpt('10.20.0.77')], [54, ipOpt(SERVER)], [12, 'laptop-7'], prl, [82, rai]] }), 30),
    frame(43, SERVER, 67, RELAY, 67, dhcp({ ...common, op: 2, yiaddr: '10.20.0.77', siaddr: SERVER, options: serverOpts(5) }), 30),
  ]);
}

/** what real software rarely sends, and damage */
function odd(): GenFrame[] {
  const pk: Pk[] = [];
  // plain BOOTP (RFC 951): no cookie, names in sname/file
  pk.push(frame(0, '0.0.0.0', 68, '255.255.255.255', 67, dhcp({ op: 1, xid: 0xb0070001, cookie: false, file: 'bootfile' })));
  pk.push(frame(1, '10.0.0.1', 67, '255.255.255.255', 68, dhcp({ op: 2, xid: 0xb0070001, cookie: false, yiaddr: '10.0.0.42', siaddr: '10.0.0.1', sname: 'bootsrv', file: '/tftpboot/kernel' })));
  // option overload (52 = 3: options go on in `file`, then `sname`) and a hostname in two parts (RFC 3396)
  const fileOpts = Buffer.concat([Buffer.from([12, 5]), Buffer.from('split'), Buffer.from([12, 5]), Buffer.from('-name'), Buffer.from([255])]);
  const snameOpts = Buffer.concat([Buffer.from([60, 7]), Buffer.from('vendor1'), Buffer.from([255])]);
  pk.push(frame(10, '0.0.0.0', 68, '255.255.255.255', 67, dhcp({ op: 1, xid: 0x0e0e0001, broadcast: true, file: fileOpts, sname: snameOpts, options: [[53, [1]], [52, [3]], [57, [0x05, 0xdc]]] })));
  // the OFFER: time offset (negative), time servers, vendor-identifying options (RFC 3925), a boot file option
  const vivc = Buffer.concat([u32(4491), Buffer.from([3]), Buffer.from([0xaa, 0xbb, 0xcc])]);
  pk.push(frame(12, '10.0.0.1', 67, '255.255.255.255', 68, dhcp({ op: 2, xid: 0x0e0e0001, broadcast: true, yiaddr: '10.0.0.43', options: [[53, [2]], [54, ipOpt('10.0.0.1')], [2, u32(-18000)], [4, ipOpt('10.0.0.5')], [124, vivc], [67, 'grub.efi'], [58, u32(300)], [59, u32(500)], [51, u32(600)]] })));
  // a DISCOVER nobody answers (it times out: the next message comes 30 s later)
  pk.push(frame(20, '0.0.0.0', 68, '255.255.255.255', 67, dhcp({ op: 1, xid: 0x10570001, mac: '02:00:00:00:00:09', options: [[53, [1]], [12, 'lonely']] })));
  // an OFFER whose DISCOVER the capture missed
  pk.push(frame(30_000, '10.0.0.1', 67, '10.0.0.44', 68, dhcp({ op: 2, xid: 0x0ff30001, yiaddr: '10.0.0.44', options: [[53, [2]], [54, ipOpt('10.0.0.1')]] })));
  // FORCERENEW (server-initiated) and DECLINE (no reply expected)
  pk.push(frame(30_010, '10.0.0.1', 67, '10.0.0.45', 68, dhcp({ op: 2, xid: 0xf0ce0001, ciaddr: '10.0.0.45', options: [[53, [9]], [54, ipOpt('10.0.0.1')]] })));
  pk.push(frame(30_020, '0.0.0.0', 68, '255.255.255.255', 67, dhcp({ op: 1, xid: 0xdec10001, options: [[53, [4]], [50, ipOpt('10.0.0.46')], [54, ipOpt('10.0.0.1')], [56, 'address in use']] })));
  // damage: shorter than the header, an op code that is neither, an option running past the end,
  // a router option of 5 bytes, no End option
  pk.push(frame(30_030, '0.0.0.0', 68, '255.255.255.255', 67, dhcp({ op: 1, xid: 0xbad00001 }).subarray(0, 120)));
  pk.push(frame(30_031, '0.0.0.0', 68, '255.255.255.255', 67, dhcp({ op: 7, xid: 0xbad00002, options: [[53, [1]]] })));
  const cut = dhcp({ op: 1, xid: 0xbad00003, options: [[53, [1]], [12, 'truncated-hostname']], end: false });
  pk.push(frame(30_032, '0.0.0.0', 68, '255.255.255.255', 67, cut.subarray(0, cut.length - 6)));
  pk.push(frame(30_033, '10.0.0.1', 67, '255.255.255.255', 68, dhcp({ op: 2, xid: 0xbad00003, yiaddr: '10.0.0.47', options: [[53, [2]], [3, [10, 0, 0, 1, 9]]], end: false })));
  // DHCP on ports that are not its own: the probe finds it (the magic cookie)
  pk.push(frame(30_040, '10.0.0.2', 1068, '10.0.0.1', 1067, dhcp({ op: 1, xid: 0x9090001, ciaddr: '10.0.0.2', options: [[53, [8]], [55, [1, 6]]] })));
  pk.push(frame(30_041, '10.0.0.1', 1067, '10.0.0.2', 1068, dhcp({ op: 2, xid: 0x9090001, ciaddr: '10.0.0.2', options: [[53, [5]], [54, ipOpt('10.0.0.1')], [1, ipOpt('255.255.255.0')], [56, 'inform answered']] })));
  return frames(pk);
}

export function dhcpv4EdgeCases(): Record<string, Buffer> {
  return {
    'edge-relay.pcap': writePcap(relay(), { nano: true }),
    'edge-odd.pcap': writePcap(odd(), { nano: true }),
  };
}

if (require.main === module) {
  const dir = path.join(__dirname, '..', '..', 'fixtures', 'dhcpv4');
  mkdirSync(dir, { recursive: true });
  for (const [name, data] of Object.entries(dhcpv4EdgeCases())) writeFileSync(path.join(dir, name), data);
}
