/**
 * npx tsx bench/dhcpv4.ts [--runs 5] [--leases 50] [--copies 800]: pktflow against
 * tshark's DHCP dissector on the same capture. DHCP has no load tool, and a real
 * client takes a lease in tens of milliseconds: `--leases` real exchanges (udhcpc
 * against dnsmasq in two network namespaces, as scripts/fixtures/dhcpv4.ts: DISCOVER,
 * OFFER, REQUEST, ACK each) are captured once, then the capture is laid end
 * to end `--copies` times, each copy with its own transaction ids and its packets one
 * second after the previous copy's, into bench/out/dhcpv4.pcap (root needed to
 * capture). Results: stdout (markdown) and bench/out/dhcpv4.json.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { DhcpLab } from '../scripts/fixtures/dhcpv4';
import { flag, machine, ROOT, VERSUS_HEADER, versusTshark } from './common';

const runs = Number(flag('--runs', '5'));
const leases = Number(flag('--leases', '50'));
const copies = Number(flag('--copies', '800'));
const dir = path.join(ROOT, 'bench/out');
const file = path.join(dir, 'dhcpv4.pcap');
const seed = path.join(dir, 'dhcpv4-real.pcap');

/** pcap records of a nanosecond little-endian file (tcpdump's on this machine): [header, data] */
function records(buf: Buffer): { head: Buffer; recs: { sec: number; nsec: number; data: Buffer }[] } {
  if (buf.readUInt32LE(0) !== 0xa1b23c4d) throw new Error('expected a little-endian nanosecond pcap');
  const recs: { sec: number; nsec: number; data: Buffer }[] = [];
  for (let o = 24; o + 16 <= buf.length; ) {
    const len = buf.readUInt32LE(o + 8);
    recs.push({ sec: buf.readUInt32LE(o), nsec: buf.readUInt32LE(o + 4), data: buf.subarray(o + 16, o + 16 + len) });
    o += 16 + len;
  }
  return { head: buf.subarray(0, 24), recs };
}

async function capture(): Promise<void> {
  process.stderr.write(`bench: capturing ${leases} leases (udhcpc against dnsmasq in network namespaces) into ${seed}\n`);
  const lab = DhcpLab.create();
  try {
    await lab.startServer(['--no-ping']);
    await lab.record(seed, async () => {
      for (let i = 0; i < leases; i++) await lab.run(['udhcpc', '-f', '-q', '-n', '-i', lab.cliIf, '-s', lab.script, '-t', '5', '-T', '1', '-x', `hostname:bench-${i}`]);
    });
  } finally {
    await lab.stop();
  }
}

/** the real capture `copies` times over: DHCP frames only, each copy's transaction ids its own, one second apart */
function tile(): void {
  const { head, recs } = records(readFileSync(seed));
  // Ethernet + IPv4 without options + UDP: the DHCP payload starts at 42, its xid at 46
  const dhcp = recs.filter((r) => r.data.length > 46 + 4 && r.data[23] === 17 && r.data[14] === 0x45 && [67, 68].includes(r.data.readUInt16BE(36)));
  const span = dhcp[dhcp.length - 1].sec - dhcp[0].sec + 1;
  const parts: Buffer[] = [head];
  for (let c = 0; c < copies; c++) {
    for (const r of dhcp) {
      const h = Buffer.alloc(16);
      h.writeUInt32LE(r.sec + c * span, 0);
      h.writeUInt32LE(r.nsec, 4);
      h.writeUInt32LE(r.data.length, 8);
      h.writeUInt32LE(r.data.length, 12);
      const d = Buffer.from(r.data);
      d.writeUInt32BE((d.readUInt32BE(46) ^ Math.imul(c, 0x9e3779b1)) >>> 0, 46);
      parts.push(h, d);
    }
  }
  writeFileSync(file, Buffer.concat(parts));
}

async function main(): Promise<void> {
  mkdirSync(dir, { recursive: true });
  if (!existsSync(seed)) await capture();
  if (!existsSync(file)) tile();
  const version = execFileSync('dnsmasq', ['--version'], { encoding: 'utf8' }).split('\n')[0];
  console.log(`${machine()}, ${execFileSync('tshark', ['--version'], { encoding: 'utf8' }).split('\n')[0]}, ${version}, busybox udhcpc\nmedian of ${runs} runs (wall time includes start-up)\n`);
  console.log(VERSUS_HEADER);
  const rows = versusTshark(`${leases} real leases x ${copies}`, file, `${process.execPath} bin/pktflow.js read -q ${file}`, `tshark -r ${file} -Y dhcp -T fields -e dhcp.option.dhcp`, runs);
  writeFileSync(path.join(dir, 'dhcpv4.json'), JSON.stringify({ date: new Date().toISOString(), runs, leases, copies, rows }, null, 2) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});


