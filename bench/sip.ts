/**
 * npx tsx bench/sip.ts [--runs 5] [--calls 5000] [--rate 300]: pktflow against
 * tshark's SIP dissector on SIP load captured once from SIPp: its built-in UAC
 * calling its built-in UAS over UDP (each call INVITE, 180, 200 with SDP, ACK, BYE,
 * 200), on free loopback ports, into bench/out/sip.pcap (root needed to capture).
 * On a busy machine some calls time out and UDP retransmissions appear: real load.
 * tshark's SIP dissector tracks every call and its response times: at 120,000
 * packets it needs minutes, hence 5,000 calls (30,000 packets) by default.
 * pktflow finds SIP by content (no --ports); tshark is told the port. Results:
 * stdout (markdown) and bench/out/sip.json.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { sippCalls } from '../scripts/fixtures/sip';
import { recordLoopback } from '../test/capture';
import { freePort } from '../test/net';
import { flag, machine, ROOT, VERSUS_HEADER, versusTshark } from './common';

const runs = Number(flag('--runs', '5'));
const calls = Number(flag('--calls', '5000'));
const rate = Number(flag('--rate', '300'));
const dir = path.join(ROOT, 'bench/out');
const file = path.join(dir, 'sip.pcap');

async function main(): Promise<void> {
  mkdirSync(dir, { recursive: true });
  if (!existsSync(file) || !existsSync(`${file}.port`)) {
    const port = await freePort();
    process.stderr.write(`bench: capturing ${calls} SIPp calls (${rate} a second) into ${file}\n`);
    await recordLoopback({ filter: `udp port ${port}`, file, bufferKiB: 1 << 18 }, () => sippCalls({ port, transport: 'u1', calls, uas: 'uas', uac: 'uac', rate, limit: 2000, failedCallsOk: true }));
    writeFileSync(`${file}.port`, String(port));
  }
  const port = Number(readFileSync(`${file}.port`, 'utf8'));
  // sipp -v exits 99 after printing its version
  const version = spawnSync('sipp', ['-v'], { encoding: 'utf8' }).stdout.trim().split('\n')[0].trim();
  console.log(`${machine()}, ${execFileSync('tshark', ['--version'], { encoding: 'utf8' }).split('\n')[0]}, ${version}\nmedian of ${runs} runs (wall time includes start-up)\n`);
  console.log(VERSUS_HEADER);
  const rows = versusTshark('SIPp uac → uas', file, `${process.execPath} bin/pktflow.js read -q ${file}`, `tshark -r ${file} -d udp.port==${port},sip -Y sip -T fields -e sip.Call-ID`, runs);
  writeFileSync(path.join(dir, 'sip.json'), JSON.stringify({ date: new Date().toISOString(), runs, calls, rate, rows }, null, 2) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
