/** What the benchmarks share: the capture they read, timing of whole commands, the machine. */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const ROOT = path.join(__dirname, '..');
const args = process.argv.slice(2);

export function flag(name: string, dflt: string): string {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
}

export interface Capture {
  file: string;
  frames: number;
  bytes: number;
}

/** the benchmark capture (--file), made by bench/capture.sh when it is missing */
/**
 * The benchmark captures of wrk → nginx traffic, made once: "small" (bench/out/http-keepalive.pcap,
 * a 615-byte page, wrk's own request) or "browser" (bench/out/http-browser.pcap, a 2 KB page and a
 * browser's request headers); --file names another capture instead of the small one.
 */
export function benchCapture(kind: 'small' | 'browser' = 'small'): Capture {
  const file = path.resolve(kind === 'small' ? flag('--file', path.join(ROOT, 'bench/out/http-keepalive.pcap')) : path.join(ROOT, 'bench/out/http-browser.pcap'));
  if (!existsSync(file)) {
    const packets = flag('--packets', '300000');
    mkdirSync(path.dirname(file), { recursive: true });
    process.stderr.write(`bench: capturing ${packets} packets of wrk → nginx traffic (${kind}) into ${file}\n`);
    execFileSync('bash', [path.join(ROOT, 'bench/capture.sh'), file, packets, kind], { stdio: 'inherit' });
  }
  const info = execFileSync('capinfos', ['-c', '-M', file], { encoding: 'utf8' });
  const frames = Number(/(\d+)/.exec(info.split('\n').find((l) => l.includes('Number of packets'))!)![1]);
  return { file, frames, bytes: statSync(file).size };
}

export interface Measure {
  name: string;
  command: string;
  seconds: number[];
  rssKiB: number[];
  /** CPU seconds (user + system): what a busy machine's queueing does not inflate */
  cpu: number[];
}

/**
 * Run a shell command `runs` times; GNU time gives the wall seconds and the peak RSS
 * of the command it wraps. `timed` is the part of the command to time (the rest of
 * a pipeline, e.g. a throttled reader, runs outside the measurement); `before` runs
 * ahead of each run, untimed.
 */
export function measure(name: string, timed: string, o: { runs: number; after?: string; before?: (i: number) => void }): Measure {
  const m: Measure = { name, command: timed + (o.after ?? ''), seconds: [], rssKiB: [], cpu: [] };
  const out = path.join(os.tmpdir(), `pktflow-bench-${process.pid}.time`);
  for (let i = 0; i < o.runs; i++) {
    o.before?.(i);
    const r = spawnSync('bash', ['-c', `set -o pipefail; /usr/bin/time -f '%e %M %U %S' -o ${out} ${timed}${o.after ?? ' > /dev/null'}`], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    const [sec, rss, user, sys] = readFileSync(out, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
    rmSync(out, { force: true });
    if (r.status !== 0 || !Number.isFinite(sec)) throw new Error(`${name} failed (${r.status}): ${r.stderr}`);
    m.seconds.push(sec);
    m.rssKiB.push(rss);
    m.cpu.push(user + sys);
  }
  return m;
}

/** one of issue 10's targets, judged on this run's figures: a line `target: ... met` or `NOT met` */
export function target(what: string, got: number, want: number, unit: string, atMost = false): void {
  const met = atMost ? got <= want : got >= want;
  console.log(`target: ${what} ${+got.toFixed(2)}${unit} (want ${atMost ? '<=' : '>='} ${want}${unit}): ${met ? 'met' : 'NOT met'}`);
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
export const range = (xs: number[]) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;

export function machine(): string {
  return `${os.cpus()[0].model}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.versions.node}`;
}

export interface VersusRow {
  capture: string;
  name: string;
  frames: number;
  bytes: number;
  seconds: number;
  spread: string;
  cpuSeconds: number;
  packetsPerSec: number;
  packetsPerCpuSec: number;
  peakRssMiB: number;
  vsTshark: number;
  vsTsharkCpu: number;
}

export const VERSUS_HEADER = '| capture | run | seconds (range) | CPU seconds | packets/s | packets per CPU second | peak RSS MiB | speed vs tshark (wall) | (CPU) |\n|---|---|---|---|---|---|---|---|---|';

/**
 * One capture read by pktflow's full pipeline and by tshark's dissector, `runs` times
 * each in the same stretch: the medians, and the ratios to tshark by wall and by CPU
 * time (CPU time is what a busy machine's queueing does not inflate). Prints the
 * markdown rows (header: VERSUS_HEADER).
 */
export function versusTshark(capture: string, file: string, pktflow: string, tshark: string, runs: number): VersusRow[] {
  const info = execFileSync('capinfos', ['-c', '-M', file], { encoding: 'utf8' });
  const frames = Number(/(\d+)/.exec(info.split('\n').find((l) => l.includes('Number of packets'))!)![1]);
  const bytes = statSync(file).size;
  const results = [measure('pktflow full pipeline → /dev/null', pktflow, { runs }), measure(`tshark ${tshark.split(' -Y ')[1]?.split(' ')[0] ?? ''}`.trim(), tshark, { runs })];
  const theirs = median(results[1].seconds);
  const theirsCpu = median(results[1].cpu);
  return results.map((r) => {
    const s = median(r.seconds);
    const cpu = median(r.cpu);
    const row: VersusRow = { capture, name: r.name, frames, bytes, seconds: s, spread: range(r.seconds), cpuSeconds: cpu, packetsPerSec: Math.round(frames / s), packetsPerCpuSec: Math.round(frames / cpu), peakRssMiB: +(median(r.rssKiB) / 1024).toFixed(0), vsTshark: +(theirs / s).toFixed(2), vsTsharkCpu: +(theirsCpu / cpu).toFixed(2) };
    console.log(`| ${capture}: ${frames.toLocaleString('en')} packets, ${(bytes / 1e6).toFixed(1)} MB | ${r.name} | ${s.toFixed(2)} (${row.spread}) | ${cpu.toFixed(2)} | ${row.packetsPerSec.toLocaleString('en')} | ${row.packetsPerCpuSec.toLocaleString('en')} | ${row.peakRssMiB} | ${row.vsTshark}x | ${row.vsTsharkCpu}x |`);
    return row;
  });
}
