/**
 * npx tsx bench/redis.ts [--runs 5] [--requests 200000]: pktflow against tshark's RESP
 * dissector on Redis load captured once from redis-benchmark (its default mix of
 * commands: PING, SET, GET, INCR, LPUSH, RPUSH, LPOP, RPOP, SADD, HSET, SPOP, ZADD,
 * ZPOPMIN, LRANGE, MSET; 16 clients) against a private redis-server on a free port,
 * into bench/out/redis.pcap (root needed to capture). pktflow finds the server by
 * content (no --ports); tshark is told the port. Results: stdout (markdown) and
 * bench/out/redis.json.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { startRedis } from '../scripts/fixtures/redis';
import { recordLoopback } from '../test/capture';
import { freePort } from '../test/net';
import { flag, machine, ROOT, VERSUS_HEADER, versusTshark } from './common';

const runs = Number(flag('--runs', '5'));
const requests = flag('--requests', '200000');
const dir = path.join(ROOT, 'bench/out');
const file = path.join(dir, 'redis.pcap');

async function main(): Promise<void> {
  mkdirSync(dir, { recursive: true });
  if (!existsSync(file) || !existsSync(`${file}.port`)) {
    const port = await freePort();
    process.stderr.write(`bench: capturing redis-benchmark (${requests} requests of each command) into ${file}\n`);
    const server = await startRedis(port);
    try {
      // each command's requests, not the LRANGE_* variants (replies of 100-600 elements): a mix of small commands
      // unthrottled redis-benchmark outruns tcpdump's default ring: 4,096 frame slots
      await recordLoopback({ filter: `tcp port ${port}`, file, bufferKiB: 1 << 20 }, async () => {
        await promisify(execFile)('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '-c', '16', '-n', String(Math.round(Number(requests) / 15)), '-q', '-t', 'ping,set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,mset']);
      });
    } finally {
      await server.stop();
    }
    writeFileSync(`${file}.port`, String(port));
  }
  const port = Number(readFileSync(`${file}.port`, 'utf8'));
  const version = execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).trim().split(' ').slice(0, 3).join(' ');
  console.log(`${machine()}, ${execFileSync('tshark', ['--version'], { encoding: 'utf8' }).split('\n')[0]}, ${version}\nmedian of ${runs} runs (wall time includes start-up)\n`);
  console.log(VERSUS_HEADER);
  const rows = versusTshark('redis-benchmark', file, `${process.execPath} bin/pktflow.js read -q ${file}`, `tshark -r ${file} -d tcp.port==${port},resp -Y resp -T fields -e resp.bulk_string.value`, runs);
  writeFileSync(path.join(dir, 'redis.json'), JSON.stringify({ date: new Date().toISOString(), runs, rows }, null, 2) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
