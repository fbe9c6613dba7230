/**
 * npx tsx bench/http2.ts [--runs 5] [--requests 100000]: pktflow against tshark's HTTP/2
 * dissector on h2c load captured once from h2load (nghttp2-client: 16 connections, 10
 * streams at once on each, 400 requests a second each: unthrottled it outruns tcpdump;
 * GETs of a small page and of a missing one (404), HPACK's dynamic table at work) against a private nginx (`listen PORT http2`) on a free port, into
 * bench/out/http2.pcap (root needed to capture). pktflow finds the connections by their
 * preface (no --ports); tshark is told the port. Results: stdout (markdown) and
 * bench/out/http2.json.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { startNginxH2c } from '../scripts/fixtures/http2';
import { recordLoopback } from '../test/capture';
import { freePort } from '../test/net';
import { flag, machine, ROOT, VERSUS_HEADER, versusTshark } from './common';

const runs = Number(flag('--runs', '5'));
const requests = flag('--requests', '100000');
const dir = path.join(ROOT, 'bench/out');
const file = path.join(dir, 'http2.pcap');

async function main(): Promise<void> {
  mkdirSync(dir, { recursive: true });
  if (!existsSync(file) || !existsSync(`${file}.port`)) {
    const port = await freePort();
    process.stderr.write(`bench: capturing h2load (${requests} requests) into ${file}\n`);
    const server = await startNginxH2c(port);
    try {
      await recordLoopback({ filter: `tcp port ${port}`, file, bufferKiB: 1 << 20 }, async () => {
        const n = String(Math.round(Number(requests) / 2));
        // two runs: a page (200) and a missing one (404)
        await promisify(execFile)('h2load', ['-n', n, '-c', '16', '-m', '10', '--rps', '400', `http://127.0.0.1:${port}/index.html`]);
        await promisify(execFile)('h2load', ['-n', n, '-c', '16', '-m', '10', '--rps', '400', `http://127.0.0.1:${port}/missing`]);
      });
    } finally {
      await server.stop();
    }
    writeFileSync(`${file}.port`, String(port));
  }
  const port = Number(readFileSync(`${file}.port`, 'utf8'));
  const version = spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr.trim().replace('nginx version: ', '');
  console.log(`${machine()}, ${execFileSync('tshark', ['--version'], { encoding: 'utf8' }).split('\n')[0]}, ${version}\nmedian of ${runs} runs (wall time includes start-up)\n`);
  console.log(VERSUS_HEADER);
  const rows = versusTshark('h2load', file, `${process.execPath} bin/pktflow.js read -q ${file}`, `tshark -r ${file} -d tcp.port==${port},http2 -Y http2.type==1 -T fields -e http2.streamid -e http2.headers.method -e http2.headers.path -e http2.headers.status`, runs);
  writeFileSync(path.join(dir, 'http2.json'), JSON.stringify({ date: new Date().toISOString(), runs, rows }, null, 2) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
