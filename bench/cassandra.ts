/**
 * npx tsx bench/cassandra.ts [--runs 5] [--ops 40000]: pktflow against tshark's CQL
 * dissector on Cassandra load captured once from a driver loop (Cassandra has
 * cassandra-stress, but not in the jars scripts/cassandra.sh fetches): cassandra-driver
 * with 64 requests in flight on one connection (stream ids), prepared INSERTs and
 * SELECTs by key, into bench/out/cassandra.pcap (root and Java needed). Cassandra 4.1
 * runs on a free port from a temporary directory; pktflow finds it by content, tshark
 * is told the port. Results: stdout (markdown) and bench/out/cassandra.json.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { driverClient, startCassandra } from '../test/cassandra-env';
import { recordLoopback } from '../test/capture';
import { freePort } from '../test/net';
import { flag, machine, ROOT, VERSUS_HEADER, versusTshark } from './common';

const runs = Number(flag('--runs', '5'));
const ops = Number(flag('--ops', '40000'));
const dir = path.join(ROOT, 'bench/out');
const file = path.join(dir, 'cassandra.pcap');

async function capture(): Promise<number> {
  const port = await freePort();
  const data = mkdtempSync(path.join(tmpdir(), 'pktflow-cassandra-bench-'));
  process.stderr.write(`bench: starting Cassandra, then capturing ${ops} driver requests into ${file}\n`);
  const server = await startCassandra(data, port, await freePort());
  try {
    const c = driverClient(port);
    await c.connect();
    await c.execute("CREATE KEYSPACE IF NOT EXISTS bench WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
    await c.execute('CREATE TABLE IF NOT EXISTS bench.kv (k int PRIMARY KEY, v text, n bigint)');
    await recordLoopback({ filter: `tcp port ${port}`, file }, async () => {
      let next = 0;
      const worker = async () => {
        for (let i = next++; i < ops; i = next++) {
          const k = i >> 1;
          if (i % 2 === 0) await c.execute('INSERT INTO bench.kv (k, v, n) VALUES (?, ?, ?)', [k, `value ${k}`, k * 7], { prepare: true });
          else await c.execute('SELECT k, v, n FROM bench.kv WHERE k = ?', [k], { prepare: true });
        }
      };
      await Promise.all(Array.from({ length: 64 }, worker));
    });
    await c.shutdown();
  } finally {
    await server.stop();
    rmSync(data, { recursive: true, force: true });
  }
  return port;
}

async function main(): Promise<void> {
  mkdirSync(dir, { recursive: true });
  if (!existsSync(file) || !existsSync(`${file}.port`)) writeFileSync(`${file}.port`, String(await capture()));
  const port = Number(readFileSync(`${file}.port`, 'utf8'));
  console.log(`${machine()}, ${execFileSync('tshark', ['--version'], { encoding: 'utf8' }).split('\n')[0]}, Cassandra 4.1\nmedian of ${runs} runs (wall time includes start-up)\n`);
  console.log(VERSUS_HEADER);
  const rows = versusTshark('driver loop', file, `${process.execPath} bin/pktflow.js read -q ${file}`, `tshark -r ${file} -d tcp.port==${port},cql -Y cql -T fields -e cql.opcode`, runs);
  writeFileSync(path.join(dir, 'cassandra.json'), JSON.stringify({ date: new Date().toISOString(), runs, rows }, null, 2) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
