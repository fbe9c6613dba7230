/**
 * npm run bench: pktflow against tshark on the same capture of real HTTP/1.1
 * keep-alive traffic (wrk → nginx on loopback, captured by bench/capture.sh).
 * Reports packets/s, MB/s and peak RSS (median of --runs), and the ratio to
 *   tshark -r FILE -Y http.response -T fields -e http.response.code
 * Results go to stdout (markdown) and bench/out/results.json.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..');
const args = process.argv.slice(2);
const flag = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const runs = Number(flag('--runs', '5'));
const file = path.resolve(flag('--file', path.join(ROOT, 'bench/out/http-keepalive.pcap')));
const packets = Number(flag('--packets', '300000'));

if (!existsSync(file)) {
  mkdirSync(path.dirname(file), { recursive: true });
  process.stderr.write(`bench: capturing ${packets} packets of wrk → nginx traffic into ${file}\n`);
  execFileSync('bash', [path.join(ROOT, 'bench/capture.sh'), file, String(packets)], { stdio: 'inherit' });
}

const frames = Number(/(\d+)/.exec(execFileSync('capinfos', ['-c', '-M', file], { encoding: 'utf8' }).split('\n').find((l) => l.includes('Number of packets'))!)![1]);
const bytes = statSync(file).size;

interface Measure {
  name: string;
  command: string;
  seconds: number[];
  rssKiB: number[];
}

function measure(name: string, cmd: string[]): Measure {
  const m: Measure = { name, command: cmd.join(' '), seconds: [], rssKiB: [] };
  for (let i = 0; i < runs; i++) {
    // GNU time: wall seconds and peak RSS of the whole command
    const r = spawnSync('/usr/bin/time', ['-f', '%e %M', ...cmd], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    const last = r.stderr.trim().split('\n').pop()!;
    const [sec, rss] = last.split(' ').map(Number);
    if (r.status !== 0 || !Number.isFinite(sec)) throw new Error(`${name} failed: ${r.stderr}`);
    m.seconds.push(sec);
    m.rssKiB.push(rss);
  }
  return m;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const node = process.execPath;
const results = [
  measure('pktflow decode only', [node, 'bin/pktflow.js', 'run', 'bench/decode-only.ts', '--no-typecheck', '-q', '--input', file]),
  measure('pktflow full pipeline → /dev/null', [node, 'bin/pktflow.js', 'read', '-q', file]),
  measure('tshark -Y http.response -T fields', ['tshark', '-r', file, '-Y', 'http.response', '-T', 'fields', '-e', 'http.response.code']),
];
const tshark = median(results[2].seconds);
const rows = results.map((r) => {
  const s = median(r.seconds);
  return {
    name: r.name,
    seconds: s,
    spread: `${Math.min(...r.seconds).toFixed(2)}–${Math.max(...r.seconds).toFixed(2)}`,
    packetsPerSec: Math.round(frames / s),
    mbPerSec: +(bytes / s / 1e6).toFixed(1),
    peakRssMiB: +(median(r.rssKiB) / 1024).toFixed(0),
    vsTshark: +(tshark / s).toFixed(2),
  };
});
const machine = `${os.cpus()[0].model}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.versions.node}, ${execFileSync('tshark', ['--version'], { encoding: 'utf8' }).split('\n')[0]}`;
const out = { date: new Date().toISOString(), machine, file: path.relative(ROOT, file), frames, bytes, runs, rows };
mkdirSync(path.join(ROOT, 'bench/out'), { recursive: true });
writeFileSync(path.join(ROOT, 'bench/out/results.json'), JSON.stringify(out, null, 2) + '\n');
console.log(`${machine}\n${frames} packets, ${(bytes / 1e6).toFixed(1)} MB, median of ${runs} runs (wall time includes start-up)\n`);
console.log('| run | seconds (range) | packets/s | MB/s | peak RSS MiB | speed vs tshark |');
console.log('|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.name} | ${r.seconds.toFixed(2)} (${r.spread}) | ${r.packetsPerSec.toLocaleString('en')} | ${r.mbPerSec} | ${r.peakRssMiB} | ${r.vsTshark}x |`);
