/**
 * npx tsx bench/tls.ts [--runs 5] [--handshakes 3000]: pktflow against tshark's TLS
 * dissector on handshakes captured once from Node's tls client (half TLS 1.3, half
 * TLS 1.2 with the certificate chain in clear; 8 at a time, each with a short request)
 * against a private nginx on a free port (scripts/fixtures/tls.ts's certificates),
 * into bench/out/tls.pcap (root needed to capture). pktflow finds TLS by content (no
 * --ports); tshark is told the port and asked for what pktflow reports of every
 * handshake (JA3, SNI, the chosen suite, certificates). Results: stdout (markdown)
 * and bench/out/tls.json.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { connect } from 'node:tls';
import { HOST, makePki, SNI, startNginx } from '../scripts/fixtures/tls';
import { recordLoopback } from '../test/capture';
import { freePort } from '../test/net';
import { flag, machine, ROOT, VERSUS_HEADER, versusTshark } from './common';

const runs = Number(flag('--runs', '5'));
const handshakes = Number(flag('--handshakes', '3000'));
const dir = path.join(ROOT, 'bench/out');
const file = path.join(dir, 'tls.pcap');

function one(port: number, ca: Buffer, maxVersion: 'TLSv1.2' | 'TLSv1.3'): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: HOST, port, servername: SNI, ca, ALPNProtocols: ['http/1.1'], maxVersion }, () => s.end(`GET / HTTP/1.1\r\nHost: ${SNI}\r\nConnection: close\r\n\r\n`));
    s.on('data', () => {});
    s.on('error', reject);
    s.on('close', () => resolve());
  });
}

async function main(): Promise<void> {
  mkdirSync(dir, { recursive: true });
  if (!existsSync(file) || !existsSync(`${file}.port`)) {
    const tmp = mkdtempSync(path.join(tmpdir(), 'pktflow-bench-tls-'));
    const port = await freePort();
    process.stderr.write(`bench: capturing ${handshakes} TLS handshakes into ${file}\n`);
    const pki = makePki(tmp);
    const nginx = await startNginx(pki, port);
    try {
      const ca = readFileSync(pki.root);
      await recordLoopback({ filter: `tcp port ${port}`, file, bufferKiB: 1 << 20 }, async () => {
        let next = 0;
        const worker = async () => {
          while (next < handshakes) {
            const i = next++;
            await one(port, ca, i % 2 === 0 ? 'TLSv1.3' : 'TLSv1.2');
          }
        };
        await Promise.all(Array.from({ length: 8 }, worker));
      });
    } finally {
      nginx.stop();
      rmSync(tmp, { recursive: true, force: true });
    }
    writeFileSync(`${file}.port`, String(port));
  }
  const port = Number(readFileSync(`${file}.port`, 'utf8'));
  const version = execFileSync('nginx', ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim() || 'nginx';
  console.log(`${machine()}, ${execFileSync('tshark', ['--version'], { encoding: 'utf8' }).split('\n')[0]}, ${version}\nmedian of ${runs} runs (wall time includes start-up)\n`);
  console.log(VERSUS_HEADER);
  const rows = versusTshark('TLS handshakes (Node tls against nginx)', file, `${process.execPath} bin/pktflow.js read -q ${file}`, `tshark -r ${file} -d tcp.port==${port},tls -Y tls.handshake -T fields -e tls.handshake.ja3 -e tls.handshake.ja3s -e tls.handshake.extensions_server_name -e tls.handshake.ciphersuite -e x509sat.uTF8String`, runs);
  writeFileSync(path.join(dir, 'tls.json'), JSON.stringify({ date: new Date().toISOString(), runs, rows }, null, 2) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
