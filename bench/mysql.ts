/**
 * npx tsx bench/mysql.ts [--runs 5] [--queries 100000] [--file bench/out/mysql-slap.pcap]
 *
 * pktflow against tshark's mysql dissector on the same capture: mariadb-slap
 * (mysqlslap) load against a private MariaDB on loopback, recorded once with
 * tcpdump (root needed for that step). The server listens on a free port, so
 * pktflow finds it by the greeting and tshark is told the port (-d). Reports
 * packets/s, MB/s, peak RSS (median of --runs) and the ratio to
 *   tshark -r FILE -d tcp.port==N,mysql -Y mysql.command -T fields -e mysql.command -e mysql.query
 * Results to stdout (markdown) and bench/out/mysql-results.json.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { flag, machine as host, measure, median, range, ROOT } from './common';
import { recordLoopback } from '../test/capture';
import { MYSQL_PASSWORD, MYSQL_USER, startMariadb } from '../test/mysql-server';
import { freePort } from '../test/net';

const runs = Number(flag('--runs', '5'));
const queries = flag('--queries', '100000');
const file = path.resolve(flag('--file', path.join(ROOT, 'bench/out/mysql-slap.pcap')));
const portFile = `${file}.port`;

async function capture(): Promise<void> {
  mkdirSync(path.dirname(file), { recursive: true });
  const port = await freePort();
  const db = await startMariadb(port);
  try {
    process.stderr.write(`bench: mariadb-slap, ${queries} queries at concurrency 8, into ${file}\n`);
    await recordLoopback({ filter: `tcp port ${port}`, file, bufferKiB: 256 * 1024 }, async () => {
      execFileSync(
        'mariadb-slap',
        ['--no-defaults', '-h', '127.0.0.1', '-P', String(port), '-u', MYSQL_USER, `-p${MYSQL_PASSWORD}`, '--concurrency=8', '--iterations=1', `--number-of-queries=${queries}`,
          '--auto-generate-sql', '--auto-generate-sql-load-type=mixed', '--auto-generate-sql-add-autoincrement', '--auto-generate-sql-secondary-indexes=1', '--number-int-cols=3', '--number-char-cols=3'],
        { stdio: 'ignore' },
      );
    });
    writeFileSync(portFile, String(port));
  } finally {
    await db.stop();
  }
}

async function main(): Promise<void> {
  if (!existsSync(file) || !existsSync(portFile)) await capture();
  const port = readFileSync(portFile, 'utf8').trim();
  const info = execFileSync('capinfos', ['-c', '-M', file], { encoding: 'utf8' });
  const frames = Number(/(\d+)/.exec(info.split('\n').find((l) => l.includes('Number of packets'))!)![1]);
  const bytes = statSync(file).size;
  const node = process.execPath;
  // what each found, once: transactions against the commands tshark lists
  const ours = execFileSync(node, ['bin/pktflow.js', 'read', '-q', '--protocols', 'mysql', file], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 30 }).split('\n').filter((l) => l !== '').length;
  const theirs = execFileSync('tshark', ['-r', file, '-d', `tcp.port==${port},mysql`, '-Y', 'mysql.command', '-T', 'fields', '-e', 'mysql.command'], { encoding: 'utf8', maxBuffer: 1 << 30 }).split('\n').filter((l) => l !== '').length;
  const results = [
    measure('pktflow full pipeline, NDJSON → /dev/null', `${node} bin/pktflow.js read -q ${file}`, { runs }),
    measure(`tshark -Y mysql.command -T fields`, `tshark -r ${file} -d tcp.port==${port},mysql -Y mysql.command -T fields -e mysql.command -e mysql.query`, { runs }),
  ];
  const tshark = median(results[1].seconds);
  const rows = results.map((r) => {
    const s = median(r.seconds);
    return { name: r.name, seconds: s, spread: range(r.seconds), packetsPerSec: Math.round(frames / s), mbPerSec: +(bytes / s / 1e6).toFixed(1), peakRssMiB: +(median(r.rssKiB) / 1024).toFixed(0), vsTshark: +(tshark / s).toFixed(2) };
  });
  const machine = `${host()}, ${execFileSync('tshark', ['--version'], { encoding: 'utf8' }).split('\n')[0]}`;
  const out = { date: new Date().toISOString(), machine, file: path.relative(ROOT, file), frames, bytes, runs, pktflowTransactions: ours, tsharkCommands: theirs, rows };
  writeFileSync(path.join(ROOT, 'bench/out/mysql-results.json'), JSON.stringify(out, null, 2) + '\n');
  console.log(`${machine}\n${frames} packets, ${(bytes / 1e6).toFixed(1)} MB, median of ${runs} runs (wall time includes start-up)`);
  console.log(`pktflow: ${ours} mysql transactions (connections included); tshark: ${theirs} frames with a command\n`);
  console.log('| run | seconds (range) | packets/s | MB/s | peak RSS MiB | speed vs tshark |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.name} | ${r.seconds.toFixed(2)} (${r.spread}) | ${r.packetsPerSec.toLocaleString('en')} | ${r.mbPerSec} | ${r.peakRssMiB} | ${r.vsTshark}x |`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
