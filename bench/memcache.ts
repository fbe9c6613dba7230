/**
 * npx tsx bench/memcache.ts [--runs 5] [--ops 100000] [--tps 10k]: pktflow against tshark on
 * memcache load captured once from memcaslap (libmemcached's memaslap: 90% get, 10%
 * set, 16 connections, at --tps operations a second) against memcached on loopback, in the text and the binary
 * protocol (bench/out/memcache-{text,binary}.pcap; root needed to capture). The
 * server runs on a free port, so both tools are told the port: pktflow by
 * --ports, tshark by -d. Reports packets/s, MB/s, peak RSS (median of --runs) and
 * the ratios (wall and CPU seconds: the machine is shared, and CPU time is what its
 * queueing does not inflate) to
 *   tshark -r FILE -d tcp.port==N,memcache -Y memcache -T fields -e memcache.command -e memcache.response -e memcache.opcode -e memcache.status
 * Results go to stdout (markdown) and bench/out/memcache.json.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { recordLoopback } from '../test/capture';
import { startMemcached } from '../test/memcached';
import { freePort } from '../test/net';
import { flag, machine as host, ROOT, VERSUS_HEADER, versusTshark, type VersusRow } from './common';

const runs = Number(flag('--runs', '5'));
const ops = Number(flag('--ops', '100000'));
/** memcaslap's target rate: unthrottled, tcpdump drops packets on a busy machine and the capture has gaps */
const tps = flag('--tps', '10k');
const run = promisify(execFile);
const dir = path.join(ROOT, 'bench/out');

/** the captures, made once; the port is kept beside each */
async function captures(): Promise<{ name: string; file: string; port: number }[]> {
  mkdirSync(dir, { recursive: true });
  const out: { name: string; file: string; port: number }[] = [];
  for (const proto of ['text', 'binary']) {
    const file = path.join(dir, `memcache-${proto}.pcap`);
    const portFile = `${file}.port`;
    if (!existsSync(file) || !existsSync(portFile)) {
      const port = await freePort();
      process.stderr.write(`bench: capturing ${ops} memcaslap operations (${proto}) into ${file}\n`);
      const server = await startMemcached(port);
      try {
        await recordLoopback({ filter: `tcp port ${port}`, file, bufferKiB: 256 * 1024 }, async () => {
          await run('memcaslap', ['-s', `127.0.0.1:${port}`, '-T', '2', '-c', '16', '-x', String(ops), '-X', '100', '-P', tps, ...(proto === 'binary' ? ['-B'] : [])], { maxBuffer: 16 << 20 });
        });
      } finally {
        await server.stop();
      }
      writeFileSync(portFile, String(port));
    }
    out.push({ name: proto, file, port: Number(readFileSync(portFile, 'utf8')) });
  }
  return out;
}

async function main(): Promise<void> {
  const machine = `${host()}, ${execFileSync('tshark', ['--version'], { encoding: 'utf8' }).split('\n')[0]}, ${execFileSync('memcached', ['-V'], { encoding: 'utf8' }).trim()}`;
  console.log(`${machine}\nmedian of ${runs} runs (wall time includes start-up)\n`);
  console.log(VERSUS_HEADER);
  const rows: VersusRow[] = [];
  for (const c of await captures()) {
    rows.push(...versusTshark(c.name, c.file, `${process.execPath} bin/pktflow.js read -q --protocols memcache --ports memcache=${c.port} ${c.file}`, `tshark -r ${c.file} -d tcp.port==${c.port},memcache -Y memcache -T fields -e memcache.command -e memcache.response -e memcache.opcode -e memcache.status`, runs));
  }
  writeFileSync(path.join(dir, 'memcache.json'), JSON.stringify({ date: new Date().toISOString(), machine, runs, rows }, null, 2) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
