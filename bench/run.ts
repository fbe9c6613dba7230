/**
 * npm run bench: pktflow against tshark on the same captures of real HTTP/1.1
 * keep-alive traffic (wrk → nginx on loopback, captured by bench/capture.sh): the small
 * one (a 615-byte page, wrk's own request) and the browser one (a 2 KB page, a real
 * browser's request headers). Reports packets/s, MB/s, CPU seconds and peak RSS (median
 * of --runs), and the ratio to
 *   tshark -r FILE -Y http.response -T fields -e http.response.code
 * and pktflow's full pipeline again with --workers 2 (issue 10 §3: the speed-up over
 * one thread, and its CPU and memory).
 * Results go to stdout (markdown) and bench/out/results.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { benchCapture, flag, machine as host, measure, median, range, ROOT, target } from './common';

const runs = Number(flag('--runs', '5'));
const node = process.execPath;
const machine = `${host()}, ${execFileSync('tshark', ['--version'], { encoding: 'utf8' }).split('\n')[0]}`;
console.log(`${machine}\nmedian of ${runs} runs (wall time includes start-up)`);
const captures = (['small', 'browser'] as const).map((kind) => {
  const { file, frames, bytes } = benchCapture(kind);
  const results = [
    measure('pktflow decode only', `${node} bin/pktflow.js run bench/decode-only.ts --no-typecheck -q --input ${file}`, { runs }),
    measure('pktflow full pipeline → /dev/null', `${node} bin/pktflow.js read -q ${file}`, { runs }),
    measure('tshark -Y http.response -T fields', `tshark -r ${file} -Y http.response -T fields -e http.response.code`, { runs }),
    measure('pktflow full pipeline --workers 2 → /dev/null', `${node} bin/pktflow.js read -q --workers 2 ${file}`, { runs }),
  ];
  const tshark = median(results[2].seconds);
  const oneThread = median(results[1].seconds);
  const rows = results.map((r) => {
    const s = median(r.seconds);
    return {
      name: r.name,
      seconds: s,
      spread: range(r.seconds),
      packetsPerSec: Math.round(frames / s),
      mbPerSec: +(bytes / s / 1e6).toFixed(1),
      peakRssMiB: +(median(r.rssKiB) / 1024).toFixed(0),
      cpuSeconds: +median(r.cpu).toFixed(2),
      vsTshark: +(tshark / s).toFixed(2),
      vsOneThread: +(oneThread / s).toFixed(2),
    };
  });
  console.log(`\n${path.relative(ROOT, file)}: ${frames} packets, ${(bytes / 1e6).toFixed(1)} MB\n`);
  console.log('| run | seconds (range) | CPU seconds | packets/s | MB/s | peak RSS MiB | speed vs tshark | vs one thread |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.name} | ${r.seconds.toFixed(2)} (${r.spread}) | ${r.cpuSeconds} | ${r.packetsPerSec.toLocaleString('en')} | ${r.mbPerSec} | ${r.peakRssMiB} | ${r.vsTshark}x | ${r.vsOneThread}x |`);
  }
  // issue 10's targets, on this run's medians
  console.log('');
  target(`${kind}: full pipeline against tshark`, rows[1].vsTshark, 8, 'x');
  target(`${kind}: full pipeline`, rows[1].packetsPerSec, 300_000, ' packets/s');
  target(`${kind}: decode only`, rows[0].packetsPerSec, 1_000_000, ' packets/s');
  target(`${kind}: --workers 2 against one thread`, rows[3].vsOneThread, 1.7, 'x');
  target(`${kind}: peak RSS with --workers 2`, rows[3].peakRssMiB, 256, ' MiB', true);
  return { kind, file: path.relative(ROOT, file), frames, bytes, rows };
});
mkdirSync(path.join(ROOT, 'bench/out'), { recursive: true });
writeFileSync(path.join(ROOT, 'bench/out/results.json'), JSON.stringify({ date: new Date().toISOString(), machine, runs, captures }, null, 2) + '\n');
