/**
 * npx tsx bench/amqp.ts [--runs 5] [--messages 100000]: pktflow against tshark's AMQP
 * dissector on RabbitMQ load captured once: amqplib, 4 connections, each publishing
 * its share of 256-byte messages to a queue of its own (batches of 500, then a turn of
 * the event loop) while a consumer on the same connection acks each delivery: three
 * transactions per message (basic.publish, basic.deliver, basic.ack). Against a
 * private RabbitMQ node on a free loopback port (scripts/fixtures/amqp.ts), into
 * bench/out/amqp.pcap (root needed to capture). pktflow finds the broker by content
 * (no --ports); tshark is told the port. Results: stdout (markdown) and
 * bench/out/amqp.json.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as amqplib from 'amqplib';
import { startRabbit } from '../scripts/fixtures/amqp';
import { recordLoopback } from '../test/capture';
import { freePort } from '../test/net';
import { flag, machine, ROOT, VERSUS_HEADER, versusTshark } from './common';

const runs = Number(flag('--runs', '5'));
const messages = Number(flag('--messages', '100000'));
const dir = path.join(ROOT, 'bench/out');
const file = path.join(dir, 'amqp.pcap');

async function load(port: number): Promise<void> {
  const body = Buffer.from('x'.repeat(240) + '0123456789abcdef');
  await Promise.all(
    Array.from({ length: 4 }, async (_, k) => {
      const c = await amqplib.connect(`amqp://guest:guest@127.0.0.1:${port}`);
      const ch = await c.createChannel();
      const q = `bench-${k}`;
      await ch.assertQueue(q, { durable: false, autoDelete: true });
      const share = Math.ceil(messages / 4);
      let got = 0;
      const done = new Promise<void>((resolve) => {
        void ch.consume(q, (m) => {
          if (m === null) return;
          ch.ack(m);
          if (++got === share) resolve();
        });
      });
      for (let i = 0; i < share; i++) {
        ch.sendToQueue(q, body, { contentType: 'text/plain', messageId: String(i) });
        if (i % 500 === 499) await new Promise((r) => setImmediate(r));
      }
      await done;
      await ch.close();
      await c.close();
    }),
  );
}

async function main(): Promise<void> {
  mkdirSync(dir, { recursive: true });
  if (!existsSync(file) || !existsSync(`${file}.port`)) {
    const port = await freePort();
    process.stderr.write(`bench: capturing ${messages} messages through RabbitMQ into ${file}\n`);
    const server = await startRabbit(port);
    try {
      await recordLoopback({ filter: `tcp port ${port}`, file, bufferKiB: 1 << 20 }, () => load(port));
    } finally {
      await server.stop();
    }
    writeFileSync(`${file}.port`, String(port));
  }
  const port = Number(readFileSync(`${file}.port`, 'utf8'));
  const version = execFileSync('dpkg-query', ['-W', '-f=${Version}', 'rabbitmq-server'], { encoding: 'utf8' }).trim();
  console.log(`${machine()}, ${execFileSync('tshark', ['--version'], { encoding: 'utf8' }).split('\n')[0]}, RabbitMQ ${version}\nmedian of ${runs} runs (wall time includes start-up)\n`);
  console.log(VERSUS_HEADER);
  const rows = versusTshark('amqplib publish/consume', file, `${process.execPath} bin/pktflow.js read -q ${file}`, `tshark -r ${file} -d tcp.port==${port},amqp -Y amqp -T fields -e amqp.method.method`, runs);
  writeFileSync(path.join(dir, 'amqp.json'), JSON.stringify({ date: new Date().toISOString(), runs, messages, rows }, null, 2) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
