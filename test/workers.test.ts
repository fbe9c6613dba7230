import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import type { Stats } from '../src/core/stage';
import { sequence } from '../src/core/stage';
import { runPipeline } from '../src/pipeline/runner';
import { WINDOW, workerPipeline } from '../src/pipeline/workers';
import { captureFile } from '../src/sources/file';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { cli, ROOT } from './helpers';
import { freePort } from './net';
import { httpLoad, writePcap } from './gen/packets';

const tmp = mkdtempSync(path.join(tmpdir(), 'i10-workers-test-'));

/** every capture under fixtures/, the damaged ones of fixtures/fuzz included */
function allFixtures(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(path.join(ROOT, dir), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const rel = path.join(dir, e.name);
      if (e.isDirectory()) walk(rel);
      else if (/\.pcap(ng)?$/.test(e.name)) out.push(rel);
    }
  };
  walk('fixtures');
  return out;
}

/** the output's lines, sorted: the set (with repeats) of events */
const sorted = (out: string) => out.split('\n').filter((l) => l !== '').sort();

/** `pktflow: name: a.b=1 c=2` lines into { name: { 'a.b': 1, c: 2 } } (the final counters) */
function statLines(stderr: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const line of stderr.split('\n')) {
    const m = /^pktflow: (\w+): (.*)$/.exec(line);
    if (m === null || !m[2].includes('=')) continue;
    out[m[1]] = Object.fromEntries(m[2].split(' ').map((kv) => kv.split('=') as [string, string]));
  }
  return out;
}

/** HTTP over 4 connections for 60 s of packet time: flow reports (every 10 s) fall inside the file's read chunks */
function longCapture(): string {
  const file = path.join(tmp, 'long.pcap');
  const frames = httpLoad(20_000).map((f, i) => ({ ...f, sec: 1_700_000_000 + Math.floor(i / 1000), nsec: (i % 1000) * 1_000_000 }));
  writeFileSync(file, writePcap(frames));
  return file;
}

describe('--workers N', { timeout: 900_000 }, () => {
  const long = longCapture();

  it('gives the same bytes for the same input and N, run twice', async () => {
    for (const n of ['2', '3']) {
      for (const args of [['fixtures/redis/pipeline.pcap'], ['--flows', '--flow-period', '5', long]]) {
        const a = await cli(['read', '-q', '--workers', n, ...args]);
        const b = await cli(['read', '-q', '--workers', n, ...args]);
        assert.equal(a.code, 0, a.stderr);
        assert.ok(a.stdout.length > 0);
        assert.equal(a.stdout, b.stdout, `${args.join(' ')} --workers ${n}`);
      }
    }
  });

  it('gives the same set of events as one thread on every fixture, with flows and anomalies', async () => {
    const files = allFixtures();
    assert.ok(files.length > 50);
    // flows and anomalies add events and change no other: with them on, every event kind is compared
    const extra = ['--flows', '--anomalies'];
    for (const f of files) {
      {
        const one = await cli(['read', '-q', ...extra, f]);
        for (const n of ['2', '3']) {
          const many = await cli(['read', '-q', '--workers', n, ...extra, f]);
          assert.equal(many.code, one.code, `${f} ${extra.join(' ')} --workers ${n}: ${many.stderr}`);
          assert.equal(many.stderr, one.stderr, `${f}: the same error line`);
          assert.deepEqual(sorted(many.stdout), sorted(one.stdout), `${f} ${extra.join(' ')} --workers ${n}`);
        }
      }
    }
  });

  it('keeps whole flows: periodic and final reports equal one thread, over a minute of packet time', async () => {
    const one = await cli(['read', '-q', '--flows', long]);
    const two = await cli(['read', '-q', '--flows', '--workers', '2', long]);
    const flows = sorted(one.stdout).filter((l) => l.includes('"type":"flow"'));
    assert.ok(flows.length >= 4 * 6, `${flows.length} flow reports`);
    assert.deepEqual(sorted(two.stdout), sorted(one.stdout));
  });

  it('sums the workers counters into the ones a user sees, and into the stats event', async () => {
    const args = ['read', '--flows', '--anomalies', '--stats-event', 'fixtures/http-dns.pcap'];
    const one = await cli(args);
    const three = await cli([...args, '--workers', '3']);
    assert.equal(three.code, 0, three.stderr);
    assert.deepEqual(statLines(three.stderr), statLines(one.stderr));
    assert.ok(statLines(three.stderr).decode.frames !== undefined);
    const last = (out: string) => JSON.parse(out.trim().split('\n').pop()!) as { type: string; stats: Record<string, Stats> };
    assert.equal(last(three.stdout).type, 'stats');
    assert.deepEqual(last(three.stdout).stats, last(one.stdout).stats);
  });

  it('counts damaged timestamps as one thread does (the main thread knows the frame before)', async () => {
    const f = 'fixtures/fuzz/pcapng-timestamp-out-of-range.pcapng';
    const one = await cli(['read', '--anomalies', f]);
    const two = await cli(['read', '--anomalies', '--workers', '2', f]);
    assert.match(one.stderr, /bad_timestamps=\d+/);
    assert.deepEqual(statLines(two.stderr), statLines(one.stderr));
    assert.deepEqual(sorted(two.stdout), sorted(one.stdout));
  });

  it('refuses what it does not go with, as a bad command line', async () => {
    for (const [args, msg] of [
      [['read', '--workers', '0', 'fixtures/http-dns.pcap'], /--workers takes a positive whole number/],
      [['read', '--workers', '2', '--kafka-topic', 't', 'fixtures/http-dns.pcap'], /--workers goes with analysis/],
      [['read', '--workers', '2', '--protocols', 'nosuch', 'fixtures/http-dns.pcap'], /nosuch/],
    ] as const) {
      const r = await cli([...args]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, msg);
    }
  });

  it('reports an error in a worker as one line and exits 1', async () => {
    // nothing from outside makes a stage throw on sound input: a test-only switch (PKTFLOW_TEST_WORKER_FAULT) makes worker 1 fail
    for (const [fault, msg] of [
      ['throw', /^pktflow: stage "decode": test fault\n/m],
      ['exit', /^pktflow: worker \d exited \(3\)\n/m],
    ] as const) {
      const r = await cli(['read', '-q', '--workers', '2', long], { env: { PKTFLOW_TEST_WORKER_FAULT: fault } });
      assert.equal(r.code, 1, `${fault}: ${r.stderr}`);
      assert.match(r.stderr, msg);
      assert.equal(r.stderr.split('\n').filter((l) => l !== '').length, 1, r.stderr);
    }
  });

  it('carries batches and outputs too large for the shared slots in buffers of their own, with the same events', async () => {
    const run = async (chunkBytes: number) => {
      let text = '';
      const out = new Writable({
        write(c: Buffer, _e, cb) {
          text += c.toString();
          cb();
        },
      });
      const p = workerPipeline({ source: captureFile({ path: long, chunkBytes }), frames: sequence('frames', []), stages: {}, options: { printStats: false } }, { workers: 2, stream: out });
      const r = await runPipeline(p).done;
      assert.equal(r.error, null);
      return { lines: sorted(text), sink: r.stats.sink as Record<string, number> };
    };
    // 256 KiB reads fit the slots; 8 MiB reads give a worker more frames and bytes than a slot holds, and more NDJSON
    const small = await run(256 * 1024);
    const big = await run(8 * 1024 * 1024);
    assert.equal(small.sink.inputs_outside_slots, undefined);
    assert.equal(small.sink.outputs_outside_slots, undefined);
    assert.ok(big.sink.inputs_outside_slots > 0, JSON.stringify(big.sink));
    assert.ok(big.sink.outputs_outside_slots > 0, JSON.stringify(big.sink));
    assert.equal(big.lines.length, 20_000);
    assert.deepEqual(big.lines, small.lines);
    assert.deepEqual(big.lines, sorted((await cli(['read', long])).stdout));
  });

  it('stops reading while the reader of the output does not read (memory bounded), and finishes when it does', async () => {
    const size = statSync(long).size;
    const chunk = 16 * 1024;
    const source = captureFile({ path: long, chunkBytes: chunk });
    let held: (() => void)[] = [];
    let blocked = true;
    let bytes = 0;
    const out = new Writable({
      highWaterMark: 16 * 1024,
      write(c: Buffer, _e, cb) {
        bytes += c.length;
        if (blocked) held.push(cb);
        else cb();
      },
    });
    const p = workerPipeline({ source, frames: sequence('frames', []), stages: {}, options: { printStats: false } }, { workers: 2, stream: out });
    const handle = runPipeline(p);
    // poll until the reading stops moving
    let last = -1;
    let still = 0;
    while (still < 20) {
      await new Promise((r) => setTimeout(r, 25));
      const read = source.stats().bytes_read as number;
      still = read === last ? still + 1 : 0;
      last = read;
    }
    assert.ok(last < size / 2, `read ${last} of ${size} bytes while nothing was taken`);
    // the window's rounds, the ones the runner and the stream hold, and the read ahead of the file stream
    assert.ok(last <= (WINDOW + 4) * chunk, `read ${last} bytes: more than the window allows`);
    blocked = false;
    const h = held;
    held = [];
    for (const cb of h) cb();
    const r = await handle.done;
    assert.equal(r.error, null);
    assert.equal(source.stats().bytes_read, size);
    assert.equal((r.stats.sink as { events: number }).events, 20_000);
    assert.ok(bytes > 0);
  });

  it('captures live with --workers 2: every request to a real server becomes one event, and SIGINT flushes and exits 0', { skip: process.getuid?.() !== 0 ? 'needs root to capture' : false }, async () => {
    const port = await freePort();
    const server = createServer((_req, res) => res.end('hello from the workers test'));
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/pktflow.js'), 'capture', '-i', 'lo', '-f', `tcp port ${port}`, '--ports', `http=${port}`, '--workers', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.on('close', r));
    while (!stderr.includes('capturing on')) await new Promise((r) => setTimeout(r, 20));
    const n = 40;
    for (let i = 0; i < n; i++) await (await fetch(`http://127.0.0.1:${port}/item/${i}`, { headers: { connection: 'close' } })).text();
    // the last request's packets are through the capture once the source has counted them all: a last one closes the set
    const urls = () => new Set(stdout.split('\n').filter((l) => l.includes('"type":"http"')).map((l) => JSON.parse(l).url.path as string));
    while (!urls().has(`/item/${n - 1}`) && !stderr.includes('error')) {
      await (await fetch(`http://127.0.0.1:${port}/probe`, { headers: { connection: 'close' } })).text();
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGINT');
    assert.equal(await exited, 0, stderr);
    server.close();
    const seen = urls();
    for (let i = 0; i < n; i++) assert.ok(seen.has(`/item/${i}`), `/item/${i} in ${[...seen].join(' ')}`);
    assert.match(stderr, /^pktflow: analyze: .*protocols\.http\.transactions=\d+/m);
  });
});
