/**
 * npx tsx bench/thrift.ts [--runs 5] [--calls 100000]: pktflow against tshark's Thrift
 * dissector on Thrift load captured once: the `thrift` npm package's server and client
 * (code generated from fixtures/thrift/tutorial.thrift), four connections at once, one
 * per protocol and transport (binary and compact, buffered and framed), each making
 * calls 50 at a time (add, calculate with its struct, getStruct, a declared exception
 * one call in 50), into bench/out/thrift.pcap (root needed to capture). pktflow finds
 * the server by content (no --ports); tshark is told the port. Results: stdout
 * (markdown) and bench/out/thrift.json.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { generate, startServer, type ProtocolName, type TransportName } from '../scripts/fixtures/thrift';
import { recordLoopback } from '../test/capture';
import { freePort } from '../test/net';
import { flag, machine, ROOT, VERSUS_HEADER, versusTshark } from './common';

const runs = Number(flag('--runs', '5'));
const calls = Number(flag('--calls', '100000'));
const dir = path.join(ROOT, 'bench/out');
const file = path.join(dir, 'thrift.pcap');

/** `n` calls on one connection, 50 in flight */
async function load(gen: ReturnType<typeof generate>, port: number, protocol: ProtocolName, transport: TransportName, n: number): Promise<void> {
  const thrift = require('thrift');
  const t = gen.types;
  const conn = thrift.createConnection('127.0.0.1', port, {
    transport: transport === 'framed' ? thrift.TFramedTransport : thrift.TBufferedTransport,
    protocol: protocol === 'binary' ? thrift.TBinaryProtocol : thrift.TCompactProtocol,
    max_attempts: 1,
  });
  conn.on('error', () => {});
  await new Promise<void>((resolve, reject) => conn.once('connect', resolve).once('error', reject));
  const client = thrift.createClient(gen.Calculator, conn);
  for (let i = 0; i < n; i += 50) {
    const batch: Promise<unknown>[] = [];
    for (let k = i; k < Math.min(n, i + 50); k++) {
      if (k % 50 === 49) batch.push(client.calculate(k, new t.Work({ num1: k, num2: 0, op: t.Operation.DIVIDE })).catch(() => {}));
      else if (k % 3 === 0) batch.push(client.add(k, k));
      else if (k % 3 === 1) batch.push(client.calculate(k, new t.Work({ num1: k, num2: 7, op: t.Operation.MULTIPLY, comment: `work ${k}` })));
      else batch.push(client.getStruct(k));
    }
    await Promise.all(batch);
  }
  conn.end();
}

async function main(): Promise<void> {
  mkdirSync(dir, { recursive: true });
  if (!existsSync(file) || !existsSync(`${file}.port`)) {
    const gen = generate();
    const port = await freePort();
    process.stderr.write(`bench: capturing ${calls} Thrift calls into ${file}\n`);
    // one server per transport: the library's server speaks one protocol and transport
    const combos: [ProtocolName, TransportName][] = [
      ['binary', 'buffered'],
      ['binary', 'framed'],
      ['compact', 'buffered'],
      ['compact', 'framed'],
    ];
    const ports = [port, ...(await Promise.all([1, 2, 3].map(() => freePort())))];
    const servers = await Promise.all(combos.map(([p, tr], i) => startServer(gen, ports[i], p, tr)));
    try {
      await recordLoopback({ filter: ports.map((p) => `tcp port ${p}`).join(' or '), file, bufferKiB: 1 << 20 }, async () => {
        await Promise.all(combos.map(([p, tr], i) => load(gen, ports[i], p, tr, Math.round(calls / 4))));
      });
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
      gen.cleanup();
    }
    writeFileSync(`${file}.port`, ports.join(','));
  }
  const ports = readFileSync(`${file}.port`, 'utf8').trim().split(',');
  const lib = JSON.parse(readFileSync(path.join(ROOT, 'node_modules/thrift/package.json'), 'utf8')).version;
  console.log(`${machine()}, ${execFileSync('tshark', ['--version'], { encoding: 'utf8' }).split('\n')[0]}, thrift (npm) ${lib}\nmedian of ${runs} runs (wall time includes start-up)\n`);
  console.log(VERSUS_HEADER);
  const decodeAs = ports.map((p) => `-d tcp.port==${p},thrift`).join(' ');
  const rows = versusTshark('thrift npm client, 4 connections', file, `${process.execPath} bin/pktflow.js read -q ${file}`, `tshark -r ${file} ${decodeAs} -Y thrift -T fields -e thrift.method`, runs);
  writeFileSync(path.join(dir, 'thrift.json'), JSON.stringify({ date: new Date().toISOString(), runs, rows }, null, 2) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
