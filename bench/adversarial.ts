/**
 * What each adversarial scenario costs as a monitoring user runs it (flows and
 * anomalies on), beside ordinary traffic of the same shape (test/gen/adversarial.ts's
 * baselines): wall and CPU seconds, CPU microseconds per frame, peak RSS, each
 * scenario in a process of its own (test/gen/adversarial-run.ts, NDJSON to /dev/null).
 *   npx tsx bench/adversarial.ts [--scale full|ci] [--only NAME,NAME]
 * Prints a markdown table (docs/limits.md keeps the latest) and writes
 * bench/out/adversarial.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { baselines, scenarios, type Scenario } from '../test/gen/adversarial';
import { flag, machine, ROOT } from './common';

const scale = flag('--scale', 'full') as 'full' | 'ci';
const only = flag('--only', '').split(',').filter((x) => x !== '');

interface Row {
  name: string;
  mode: string;
  frames: number;
  seconds: number;
  cpuSeconds: number;
  usPerFrame: number;
  peakRssMiB: number;
  counter: string;
  value: unknown;
}

const at = (o: unknown, p: string): unknown => p.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], o);

function runOne(name: string, s: Scenario, monitor: boolean): Row {
  const out = execFileSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/gen/adversarial-run.ts'), name, scale], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    env: { ...process.env, PKTFLOW_ADVERSARIAL_MONITOR: monitor ? '1' : '0' },
  });
  const r = JSON.parse(out);
  if (r.error !== null) throw new Error(`${name}: ${r.error}`);
  const row: Row = {
    name,
    mode: monitor ? 'flows + anomalies' : 'as defined',
    frames: r.frames,
    seconds: r.seconds,
    cpuSeconds: +r.cpuSeconds.toFixed(2),
    usPerFrame: +((r.cpuSeconds * 1e6) / r.frames).toFixed(2),
    peakRssMiB: Math.round(r.maxRssKiB / 1024),
    counter: s.counter,
    value: at(r.stats, s.counter),
  };
  process.stderr.write(`bench: ${name} (${row.mode}) ${row.frames} frames, ${row.cpuSeconds} CPU s, ${row.peakRssMiB} MiB\n`);
  return row;
}

const rows: Row[] = [];
const wanted = (n: string) => only.length === 0 || only.includes(n);
for (const [name, s] of Object.entries(scenarios)) {
  // the *-flows scenarios are their base scenario as a monitoring user runs it: run once, in that mode
  if (wanted(name) && !(name.endsWith('-flows') && scenarios[name.slice(0, -'-flows'.length)] !== undefined)) rows.push(runOne(name, s, true));
}
// ordinary DNS against the pointer loops, both ways
for (const name of ['dns-pointer-loops', 'dns-ordinary']) {
  const s = scenarios[name] ?? baselines[name];
  if (!wanted(name)) continue;
  if (name === 'dns-ordinary') rows.push(runOne(name, s, true));
  rows.push(runOne(name, s, false));
}

console.log(`${machine()}; ${scale} scale; CPU time is user + system of the scenario's own process\n`);
console.log('| scenario | stages | frames | seconds | CPU seconds | CPU µs per frame | peak RSS MiB | bound acting |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.name} | ${r.mode} | ${r.frames.toLocaleString('en')} | ${r.seconds.toFixed(1)} | ${r.cpuSeconds} | ${r.usPerFrame} | ${r.peakRssMiB} | \`${r.counter}\` ${JSON.stringify(r.value)} |`);
mkdirSync(path.join(ROOT, 'bench/out'), { recursive: true });
writeFileSync(path.join(ROOT, 'bench/out/adversarial.json'), JSON.stringify({ date: new Date().toISOString(), scale, rows }, null, 2) + '\n');
