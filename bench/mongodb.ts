/**
 * npx tsx bench/mongodb.ts: pktflow against tshark on a capture of MongoDB traffic:
 * the official driver in a loop (4 clients, each inserting, finding by id, updating
 * and reading a page of 20 documents) against FerretDB (scripts/ferretdb.sh) on
 * loopback, recorded by tcpdump once into bench/out/mongodb-load.pcap (root needed;
 * --ops N operations in all, default 8000: FerretDB on SQLite serves a few hundred a second; --file another capture). MongoDB has no
 * load tool of its own that speaks to FerretDB, so the driver is the load.
 * Reports packets/s, MB/s and peak RSS (median of --runs), and the ratio to
 *   tshark -r FILE -d tcp.port==27017,mongo -Y mongo -T fields -e mongo.opcode
 * (tshark 4.0 takes 27017 for TLS without -d). Results go to stdout (markdown) and
 * bench/out/mongodb.json.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { MongoClient } from 'mongodb';
import { recordLoopback } from '../test/capture';
import { flag, machine as host, ROOT, VERSUS_HEADER, versusTshark } from './common';
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
    const ops = Number(flag('--ops', '8000'));
    process.stderr.write(`bench: recording ${ops} driver operations against FerretDB into ${file}\n`);
    await capture(file, ops);
  }
  const machine = `${host()}, ${execFileSync('tshark', ['--version'], { encoding: 'utf8' }).split('\n')[0]}`;
  console.log(`${machine}\nmedian of ${runs} runs (wall time includes start-up)\n`);
  console.log(VERSUS_HEADER);
  const rows = versusTshark('driver load on FerretDB', file, `${process.execPath} bin/pktflow.js read -q ${file}`, `tshark -r ${file} -d tcp.port==${PORT},mongo -Y mongo -T fields -e mongo.opcode`, runs);
  writeFileSync(path.join(ROOT, 'bench/out/mongodb.json'), JSON.stringify({ date: new Date().toISOString(), machine, runs, rows }, null, 2) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
