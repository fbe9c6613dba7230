/**
 * `pktflow topics` against a real broker of this file's own (test/broker.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { captureFile } from '../src/sources/file';
import { testBroker, type TestBroker } from './broker';
import { cli, fixture } from './helpers';

let broker: TestBroker;
const RUN = `${Date.now().toString(36)}-${process.pid}`;
const topic = (name: string) => `pktflow-topics-test.${name}.${RUN}`;
const kafka = (...args: string[]) => cli([...args, '--brokers', broker.address]);

/** one line, nothing else, no stack trace */
function oneLine(stderr: string, pattern: RegExp): void {
  assert.match(stderr, /^pktflow: [^\n]*\n$/, stderr);
  assert.match(stderr, pattern);
}

/** the rows of `topics describe` below its header lines, as columns */
function partitions(stdout: string): string[][] {
  return stdout.trim().split('\n').slice(2).map((l) => l.trim().split(/\s+/));
}

describe('pktflow topics', { timeout: 900_000 }, () => {
  before(async () => {
    broker = await testBroker('topics');
  });
  after(async () => {
    await broker?.destroy();
  });

  it('creates a topic once; creating it again is a one-line error', async () => {
    const t = topic('create');
    const r = await kafka('topics', 'create', t, '--partitions', '3');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `created topic ${t} (3 partitions)\n`);
    const again = await kafka('topics', 'create', t, '--partitions', '3');
    assert.equal(again.code, 1);
    oneLine(again.stderr, new RegExp(`topic ${t.replace(/\./g, '\\.')} already exists`));
    const list = await kafka('topics', 'list');
    assert.equal(list.code, 0, list.stderr);
    assert.ok(list.stdout.split('\n').includes(`${t}\t3`), list.stdout);
    assert.doesNotMatch(list.stdout, /^__/m, 'no internal topics');
  });

  it('describes partitions, offsets and the capture times of the first and last frame', async () => {
    const t = topic('describe');
    assert.equal((await kafka('topics', 'create', t, '--partitions', '2')).code, 0);
    const empty = await kafka('topics', 'describe', t);
    assert.equal(empty.code, 0, empty.stderr);
    assert.match(empty.stdout, new RegExp(`^topic ${t.replace(/\./g, '\\.')}: 2 partitions, replication factor 1, 0 messages\n`));
    assert.deepEqual(partitions(empty.stdout).map((r) => [r[0], r[4], r[5], r[6], r[7]]), [['0', '0', '0', '-', '-'], ['1', '0', '0', '-', '-']]);

    const load = await kafka('read', fixture('http-dns.pcap'), '-q', '--kafka-topic', t);
    assert.equal(load.code, 0, load.stderr);
    const r = await kafka('topics', 'describe', t);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /, 102 messages\n/);
    const rows = partitions(r.stdout);
    assert.equal(rows.reduce((n, row) => n + Number(row[5]) - Number(row[4]), 0), 102);
    // the capture's first and last frame times are the earliest first and the latest last
    const times: number[] = [];
    for await (const b of captureFile({ path: fixture('http-dns.pcap') }).batches()) for (const f of b) times.push(f.tsSec * 1000 + Math.floor(f.tsNsec / 1e6));
    const iso = (ms: number) => new Date(ms).toISOString();
    const used = rows.filter((row) => row[5] !== '0');
    assert.ok(used.length > 0);
    for (const row of used) assert.ok(row[6] <= row[7], row.join(' '));
    assert.equal(used.map((row) => row[6]).sort()[0], iso(Math.min(...times)));
    assert.equal(used.map((row) => row[7]).sort().at(-1), iso(Math.max(...times)));
  });

  it('names the command that creates a missing topic', async () => {
    const t = topic('missing');
    const d = await kafka('topics', 'describe', t);
    assert.equal(d.code, 1);
    oneLine(d.stderr, new RegExp(`no such topic \\(create it first: pktflow topics create ${t.replace(/\./g, '\\.')} --partitions 8\\)`));
    const load = await kafka('read', fixture('http-dns.pcap'), '-q', '--kafka-topic', t);
    assert.equal(load.code, 1);
    assert.match(load.stderr, /pktflow topics create /);
  });

  it('refuses a replication factor the cluster cannot give, in one line', async () => {
    const r = await kafka('topics', 'create', topic('rf'), '--replication-factor', '99');
    assert.equal(r.code, 1);
    oneLine(r.stderr, /replication factor 99 needs 99 brokers; the cluster has \d+/);
  });

  it('fails in one line, without retrying, when no broker answers', async () => {
    const r = await cli(['topics', 'list', '--brokers', '127.0.0.1:1']);
    assert.equal(r.code, 1);
    oneLine(r.stderr, /^pktflow: kafka at 127\.0\.0\.1:1: .*ECONNREFUSED/);
    // kafkajs's own log shows each attempt to connect
    const logged = await cli(['topics', 'list', '--brokers', '127.0.0.1:1'], { env: { PKTFLOW_KAFKA_LOG: 'debug' } });
    const attempts = logged.stderr.split('\n').filter((l) => /Connecting/.test(l)).length;
    assert.ok(attempts >= 1 && attempts <= 3, `${attempts} attempts to connect:\n${logged.stderr}`);
    const c = await cli(['topics', 'create', 'x', '--brokers', '127.0.0.1:1']);
    assert.equal(c.code, 1);
    oneLine(c.stderr, /^pktflow: kafka at 127\.0\.0\.1:1: /);
  });
});
