/**
 * npx tsx bench/mongodb.ts: pktflow against tshark on a capture of MongoDB traffic:
 * the official driver in a loop (4 clients, each inserting, finding by id, updating
 * and reading a page of 20 documents) against FerretDB (scripts/ferretdb.sh) on
 * loopback, recorded by tcpdump once into bench/out/mongodb-load.pcap (root needed;
 * --ops N operations in all, default 40000; --file another capture). MongoDB has no
 * load tool of its own that speaks to FerretDB, so the driver is the load.
 * Reports packets/s, MB/s and peak RSS (median of --runs), and the ratio to
 *   tshark -r FILE -d tcp.port==27017,mongo -Y mongo -T fields -e mongo.opcode
 * (tshark 4.0 takes 27017 for TLS without -d). Results go to stdout (markdown) and
 * bench/out/mongodb.json.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { MongoClient } from 'mongodb';
import { recordLoopback } from '../test/capture';
import { flag, machine as host, measure, median, range, ROOT } from './common';
import { startFerretdb } from '../scripts/fixtures/mongodb';

const PORT = 27017;

async function capture(file: string, ops: number): Promise<void> {
  const server = startFerretdb(PORT);
  try {
    await recordLoopback({ filter: `tcp port ${PORT}`, file, bufferKiB: 65536 }, async () => {
      const clients = 4;
      const perClient = Math.ceil(ops / clients / 4);
      await Promise.all(
        Array.from({ length: clients }, async (_, c) => {
          const client = new MongoClient(`mongodb://127.0.0.1:${PORT}/?directConnection=true`, { maxPoolSize: 1, serverMonitoringMode: 'poll', heartbeatFrequencyMS: 60_000 });
          await client.connect();
          const items = client.db('bench').collection<{ _id: number; [k: string]: unknown }>(`items${c}`);
          for (let i = 0; i < perClient; i++) {
            const id = c * 1_000_000 + i;
            await items.insertOne({ _id: id, name: `item ${id}`, qty: i % 100, tags: ['a', 'b', 'c'], note: 'n'.repeat(100) });
            await items.findOne({ _id: id });
            await items.updateOne({ _id: id }, { $inc: { qty: 1 } } as object);
            await items.find({ qty: { $gte: i % 100 } }).limit(20).toArray();
          }
          await client.close();
        }),
      );
    });
  } finally {
    server.stop();
  }
}

async function main(): Promise<void> {
  const runs = Number(flag('--runs', '5'));
  const file = path.resolve(flag('--file', path.join(ROOT, 'bench/out/mongodb-load.pcap')));
  if (!existsSync(file)) {
    mkdirSync(path.dirname(file), { recursive: true });
    const ops = Number(flag('--ops', '40000'));
    process.stderr.write(`bench: recording ${ops} driver operations against FerretDB into ${file}\n`);
    await capture(file, ops);
  }
  const info = execFileSync('capinfos', ['-c', '-M', file], { encoding: 'utf8' });
  const frames = Number(/(\d+)/.exec(info.split('\n').find((l) => l.includes('Number of packets'))!)![1]);
  const bytes = statSync(file).size;
  const node = process.execPath;
  const results = [
    measure('pktflow read → /dev/null', `${node} bin/pktflow.js read -q ${file}`, { runs }),
    measure('tshark -Y mongo -T fields', `tshark -r ${file} -d tcp.port==${PORT},mongo -Y mongo -T fields -e mongo.opcode`, { runs }),
  ];
  const events = Number(execFileSync(node, ['bin/pktflow.js', 'read', '-q', file], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 30 }).split('\n').filter((l) => l.includes('"type":"mongodb"')).length);
  const tshark = median(results[1].seconds);
  const rows = results.map((r) => {
    const s = median(r.seconds);
    return {
      name: r.name,
      seconds: s,
      spread: range(r.seconds),
      packetsPerSec: Math.round(frames / s),
      mbPerSec: +(bytes / s / 1e6).toFixed(1),
      peakRssMiB: +(median(r.rssKiB) / 1024).toFixed(0),
      vsTshark: +(tshark / s).toFixed(2),
    };
  });
  const machine = `${host()}, ${execFileSync('tshark', ['--version'], { encoding: 'utf8' }).split('\n')[0]}`;
  const out = { date: new Date().toISOString(), machine, file: path.relative(ROOT, file), frames, bytes, events, runs, rows };
  writeFileSync(path.join(ROOT, 'bench/out/mongodb.json'), JSON.stringify(out, null, 2) + '\n');
  console.log(`${machine}\n${frames} packets, ${(bytes / 1e6).toFixed(1)} MB, ${events} MongoDB transactions, median of ${runs} runs (wall time includes start-up)\n`);
  console.log('| run | seconds (range) | packets/s | MB/s | peak RSS MiB | speed vs tshark |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.name} | ${r.seconds.toFixed(2)} (${r.spread}) | ${r.packetsPerSec.toLocaleString('en')} | ${r.mbPerSec} | ${r.peakRssMiB} | ${r.vsTshark}x |`);
}

void main();
