/**
 * npm run bench:json: pktflow's event writer (src/core/json.ts) against JSON.stringify
 * on the same events, as the analyzers build them (not parsed back from text), each
 * writing NDJSON bytes the way the sink does: JSON.stringify's text joined into ~64 KiB
 * strings and encoded to UTF-8 (what `stream.write(text)` does), against appendJson into
 * the output chunks. Interleaved rounds, the best of each; the output is compared byte
 * for byte first.
 *   npx tsx bench/json.ts [--runs N] [--max N] FILE...     (default: the benchmark captures)
 */
import { existsSync } from 'node:fs';
import { appendByte, appendJson, pendingBytes, takeOutput } from '../src/core/json';
import { captureFile, collect, definePipeline, eventStages, runPipeline, type Event } from '../src';
import { flag } from './common';

const runs = Number(flag('--runs', '9'));
const max = Number(flag('--max', '200000'));
const files = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
const defaults = ['bench/out/http-keepalive.pcap', 'bench/out/http-browser.pcap', 'bench/out/mysql-slap.pcap', 'bench/out/redis.pcap', 'bench/out/cassandra.pcap', 'bench/out/pgsql-tpcb.pcap'];

async function events(file: string): Promise<object[]> {
  const sink = collect<Event>();
  await runPipeline(definePipeline({ source: captureFile({ path: file }), stages: eventStages({}), sink }), { stderr: { write: () => true } as never }).done;
  return sink.items.slice(0, max) as object[];
}

function viaStringify(evs: object[]): number {
  let bytes = 0;
  let text = '';
  for (let i = 0; i < evs.length; i++) {
    text += JSON.stringify(evs[i]) + '\n';
    if (text.length >= 65_536) {
      bytes += Buffer.from(text).length;
      text = '';
    }
  }
  return bytes + Buffer.from(text).length;
}

function viaWriter(evs: object[]): number {
  let bytes = 0;
  for (let i = 0; i < evs.length; i++) {
    appendJson(evs[i]);
    appendByte(10);
    if (pendingBytes() >= 65_536) bytes += takeOutput().length;
  }
  return bytes + takeOutput().length;
}

function best(f: () => number): number {
  const t = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

async function main(): Promise<void> {
  console.log('| events of | events | MB | JSON.stringify + encode, ms | core/json, ms | speed vs JSON.stringify |');
  console.log('|---|---|---|---|---|---|');
  for (const file of files.length > 0 ? files : defaults.filter((f) => existsSync(f))) {
    const evs = await events(file);
    const want = evs.map((e) => JSON.stringify(e) + '\n').join('');
    const got = Buffer.concat(evs.map((e) => (appendJson(e), appendByte(10), takeOutput()))).toString('utf8');
    if (got !== want) throw new Error(`${file}: the writer's output differs from JSON.stringify's`);
    let a = Infinity;
    let b = Infinity;
    for (let r = 0; r < runs; r++) {
      a = Math.min(a, best(() => viaStringify(evs)));
      b = Math.min(b, best(() => viaWriter(evs)));
    }
    console.log(`| ${file} | ${evs.length} | ${(Buffer.byteLength(want) / 1e6).toFixed(1)} | ${a.toFixed(0)} | ${b.toFixed(0)} | ${(a / b).toFixed(2)}x |`);
  }
}

void main();
