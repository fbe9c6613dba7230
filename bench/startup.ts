/**
 * npx tsx bench/startup.ts [--runs 31]: start-up of the compiled commands against Node's
 * own (`node -e 0`), runs interleaved so that a noisy machine weighs on all alike;
 * medians of wall time. Issue 10's target: each at most 1.5x `node -e 0` plus its work.
 */
import { spawnSync } from 'node:child_process';
import { flag, machine, median, ROOT, target } from './common';

const runs = Number(flag('--runs', '31'));
const node = process.execPath;
const commands: [string, string[]][] = [
  ['node -e 0', ['-e', '0']],
  ['pktflow --version', ['bin/pktflow.js', '--version']],
  ['pktflow read fixtures/http-dns.pcap -q', ['bin/pktflow.js', 'read', 'fixtures/http-dns.pcap', '-q']],
  // a TypeScript pipeline file (compiled by tsx) on the bundle's API
  ['pktflow run pipelines/pcap-to-stdout.ts --no-typecheck --input fixtures/http-dns.pcap -q', ['bin/pktflow.js', 'run', 'pipelines/pcap-to-stdout.ts', '--no-typecheck', '--input', 'fixtures/http-dns.pcap', '-q']],
];
// one untimed run each: the bundle built and its code cache written
for (const [, args] of commands) spawnSync(node, args, { cwd: ROOT, stdio: 'ignore' });
const ms: number[][] = commands.map(() => []);
for (let i = 0; i < runs; i++) {
  commands.forEach(([name, args], k) => {
    const t = process.hrtime.bigint();
    const r = spawnSync(node, args, { cwd: ROOT, stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`${name}: exit ${r.status}`);
    ms[k].push(Number(process.hrtime.bigint() - t) / 1e6);
  });
}
const base = median(ms[0]);
console.log(`${machine()}; median of ${runs} interleaved runs\n`);
console.log('| command | ms (median) | vs node -e 0 |');
console.log('|---|---|---|');
commands.forEach(([name], k) => console.log(`| \`${name}\` | ${median(ms[k]).toFixed(0)} | ${(median(ms[k]) / base).toFixed(2)}x |`));
// issue 10's targets
console.log('');
target('pktflow --version', median(ms[1]), 80, ' ms', true);
target('pktflow --version against node -e 0', median(ms[1]) / base, 1.5, 'x', true);
target('pktflow read fixtures/http-dns.pcap -q', median(ms[2]), 200, ' ms', true);
