/**
 * A real Apache Kafka broker of the test file's own (scripts/kafka.sh with a data
 * directory and ports of its own), so that tests never run against whatever answers
 * on 9092, a restart disturbs no other test, and two checkouts on one machine do not
 * collide. The jars are fetched once (npm test fetches them before the tests start).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { Admin } from 'kafkajs';
import { kafkaClient } from '../src/kafka/client';
import { ROOT } from './helpers';
import { freePort } from './net';

const sh = promisify(execFile);


export interface TestBroker {
  /** host:port, for `brokers` options and --brokers */
  readonly address: string;
  readonly brokers: string[];
  /** start it (again): returns once it answers a metadata request */
  start(): Promise<void>;
  /** stop it: returns once the process is gone */
  stop(): Promise<void>;
  /** stop it and delete its data */
  destroy(): Promise<void>;
  /** a new topic, named uniquely for this run */
  topic(name: string, partitions?: number): Promise<string>;
  /** an admin client, connected (disconnected by destroy) */
  admin(): Promise<Admin>;
}

export async function testBroker(label: string): Promise<TestBroker> {
  const dir = mkdtempSync(path.join(tmpdir(), `pktflow-kafka-${label}-`));
  const port = await freePort();
  let cport = await freePort();
  while (cport === port) cport = await freePort();
  const env = { ...process.env, KAFKA_DIR: dir, KAFKA_PORT: String(port), KAFKA_CONTROLLER_PORT: String(cport) };
  const script = path.join(ROOT, 'scripts/kafka.sh');
  // the script waits for the broker itself (up to its own limit), so no time is guessed here
  const run = (cmd: string) => sh('bash', [script, cmd], { env, timeout: 600_000 }).then(() => undefined);
  const address = `127.0.0.1:${port}`;
  let admin: Admin | null = null;
  const run_ = `${Date.now()}-${process.pid}`;
  const b: TestBroker = {
    address,
    brokers: [address],
    start: () => run('start'),
    stop: () => run('stop'),
    async destroy() {
      await admin?.disconnect().catch(() => {});
      await run('stop').catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
    async admin() {
      if (admin === null) {
        admin = kafkaClient({ brokers: [address] }).admin();
        await admin.connect();
      }
      return admin;
    },
    async topic(name, partitions = 4) {
      const t = `${name}-${run_}`;
      await (await b.admin()).createTopics({ topics: [{ topic: t, numPartitions: partitions }], waitForLeaders: true });
      return t;
    },
  };
  await b.start();
  return b;
}
