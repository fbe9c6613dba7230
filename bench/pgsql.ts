/**
 * npx tsx bench/pgsql.ts [--runs 5] [--transactions 5000]: pktflow against tshark on
 * PostgreSQL traffic that pgbench makes against a real server on 127.0.0.1:5432
 * (a private cluster, test/pgserver.ts), captured once into bench/out/ (root
 * needed): select-only (-S) and TPC-B-like, four clients each, simple protocol for
 * the first, prepared statements for the second, at a rate tcpdump keeps up with. For each capture: the full
 * pipeline (`pktflow read -q`) and
 *   tshark -r FILE -Y pgsql -T fields -e pgsql.type
 * (tshark dissects every message; pktflow pairs them into transactions), medians of
 * --runs, and the ratio. Not part of the test suite.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { recordLoopback } from '../test/capture';
import { pgbench, pgbenchInit } from '../test/pgclients';
import { pgUnavailable, startPg } from '../test/pgserver';
import { flag, machine as host, measure, median, range, ROOT } from './common';

const runs = Number(flag('--runs', '5'));
const transactions = flag('--transactions', '5000');
const out = path.join(ROOT, 'bench/out');
const loads = [
  // rate-limited (-R): unthrottled on a busy machine, tcpdump drops packets on lo
  { name: 'pgbench select-only (-S -M simple)', file: path.join(out, 'pgsql-select-only.pcap'), args: ['-S', '-M', 'simple', '-c', '4', '-j', '2', '-R', '2000', '-t', transactions] },
  { name: 'pgbench TPC-B-like (-M prepared)', file: path.join(out, 'pgsql-tpcb.pcap'), args: ['-M', 'prepared', '-c', '4', '-j', '2', '-R', '400', '-t', String(Math.round(Number(transactions) / 5))] },
];

async function capture(): Promise<void> {
  const missing = loads.filter((l) => !existsSync(l.file));
  if (missing.length === 0) return;
  const why = pgUnavailable();
  if (why !== null) throw new Error(`cannot capture: ${why}`);
  mkdirSync(out, { recursive: true });
  const pg = await startPg(5432);
  const work = mkdtempSync(path.join(tmpdir(), 'pktflow-bench-pg-'));
  try {
    pgbenchInit(pg, 10);
    for (const l of missing) {
      process.stderr.write(`bench: capturing ${l.name} into ${l.file}\n`);
      await recordLoopback({ filter: 'tcp port 5432', file: l.file }, async () => pgbench(pg, l.args, work));
    }
  } finally {
    pg.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  await capture();
  const node = process.execPath;
  const results = [];
  for (const l of loads) {
    const info = execFileSync('capinfos', ['-c', '-M', l.file], { encoding: 'utf8' });
    const frames = Number(/(\d+)/.exec(info.split('\n').find((x) => x.includes('Number of packets'))!)![1]);
    const bytes = statSync(l.file).size;
    const events = execFileSync(node, ['bin/pktflow.js', 'read', '-q', '--protocols', 'pgsql', l.file], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 30 }).split('\n').filter((x) => x !== '').length;
    const ours = measure('pktflow read (full pipeline) → /dev/null', `${node} bin/pktflow.js read -q ${l.file}`, { runs });
    const theirs = measure('tshark -Y pgsql -T fields -e pgsql.type', `tshark -r ${l.file} -Y pgsql -T fields -e pgsql.type`, { runs });
    const t = median(theirs.seconds);
    for (const m of [ours, theirs]) {
      const s = median(m.seconds);
      results.push({ load: l.name, run: m.name, frames, bytes, events, seconds: s, spread: range(m.seconds), packetsPerSec: Math.round(frames / s), peakRssMiB: Math.round(median(m.rssKiB) / 1024), vsTshark: +(t / s).toFixed(2) });
    }
  }
  const machine = `${host()}, ${execFileSync('tshark', ['--version'], { encoding: 'utf8' }).split('\n')[0]}`;
  writeFileSync(path.join(out, 'pgsql.json'), JSON.stringify({ date: new Date().toISOString(), machine, runs, results }, null, 2) + '\n');
  console.log(`${machine}\nmedian of ${runs} runs (wall time includes start-up)\n`);
  console.log('| capture | run | packets | transactions | seconds (range) | packets/s | peak RSS MiB | speed vs tshark |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of results) console.log(`| ${r.load} | ${r.run} | ${r.frames.toLocaleString('en')} | ${r.events.toLocaleString('en')} | ${r.seconds.toFixed(2)} (${r.spread}) | ${r.packetsPerSec.toLocaleString('en')} | ${r.peakRssMiB} | ${r.vsTshark}x |`);
}

main().catch((e) => {
  console.error(`bench/pgsql: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
});
