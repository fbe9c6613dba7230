/**
 * npx tsx bench/tls-keylog.ts [--runs 5] [--sessions 40] [--requests 200]: pktflow
 * decrypting HTTPS with a key log against tshark with the same key log
 * (`-o tls.keylog_file:`), on HTTPS captured once from curl writing SSLKEYLOGFILE
 * against a private nginx on a free port (scripts/fixtures/tls-keylog.ts's set-up):
 * `sessions` keep-alive connections, half TLS 1.3 (AES-128-GCM), half TLS 1.2
 * (ECDHE-RSA-AES128-GCM-SHA256 and CHACHA20-POLY1305 by turns), each with `requests`
 * requests, a tenth of them for the 40 KB /big, into bench/out/tls-keylog.pcap and its
 * .keylog (root needed to capture). Both are asked for the decrypted HTTP requests and
 * responses. Results: stdout (markdown) and bench/out/tls-keylog.json.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { HOST, makePki, SNI, startNginx } from '../scripts/fixtures/tls-keylog';
import { recordLoopback } from '../test/capture';
import { freePort } from '../test/net';
import { flag, machine, ROOT, VERSUS_HEADER, versusTshark } from './common';

const runs = Number(flag('--runs', '5'));
const sessions = Number(flag('--sessions', '40'));
const requests = Number(flag('--requests', '200'));
const dir = path.join(ROOT, 'bench/out');
const file = path.join(dir, 'tls-keylog.pcap');
const keylog = `${file}.keylog`;

async function main(): Promise<void> {
  mkdirSync(dir, { recursive: true });
  if (!existsSync(file) || !existsSync(keylog) || !existsSync(`${file}.port`)) {
    const tmp = mkdtempSync(path.join(tmpdir(), 'keylog-bench-'));
    const port = await freePort();
    process.stderr.write(`bench: capturing ${sessions} HTTPS sessions of ${requests} requests into ${file}\n`);
    const pki = makePki(tmp);
    const nginx = await startNginx(pki, port);
    rmSync(keylog, { force: true });
    try {
      const base = `https://${SNI}:${port}`;
      const urls = Array.from({ length: requests }, (_, i) => (i % 10 === 9 ? `${base}/big` : `${base}/item/${i}?q=${i}`));
      await recordLoopback({ filter: `tcp port ${port}`, file, bufferKiB: 1 << 20 }, async () => {
        let next = 0;
        const worker = async () => {
          while (next < sessions) {
            const i = next++;
            const tls = i % 2 === 0 ? ['--tlsv1.3', '--tls13-ciphers', 'TLS_AES_128_GCM_SHA256'] : ['--tlsv1.2', '--tls-max', '1.2', '--ciphers', i % 4 === 1 ? 'ECDHE-RSA-AES128-GCM-SHA256' : 'ECDHE-RSA-CHACHA20-POLY1305'];
            await promisify(execFile)('curl', ['-sS', '-o', '/dev/null', '--http1.1', '--resolve', `${SNI}:${port}:${HOST}`, '--cacert', pki.root, ...tls, ...urls], { env: { ...process.env, SSLKEYLOGFILE: keylog }, maxBuffer: 1 << 26 });
          }
        };
        await Promise.all(Array.from({ length: 4 }, worker));
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
  const rows = versusTshark(
    `HTTPS decrypted with a key log (curl against nginx, ${sessions} sessions of ${requests} requests)`,
    file,
    `${process.execPath} bin/pktflow.js read -q ${file} --tls-keylog ${keylog}`,
    `tshark -r ${file} -d tcp.port==${port},tls -o tls.keylog_file:${keylog} -Y http -T fields -e http.request.method -e http.request.uri -e http.response.code`,
    runs,
  );
  writeFileSync(path.join(dir, 'tls-keylog.json'), JSON.stringify({ date: new Date().toISOString(), runs, rows }, null, 2) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
