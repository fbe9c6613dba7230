/**
 * Live capture on lo with real servers and clients: nginx + curl, dnsmasq + dig,
 * ping. pktflow and tcpdump capture the same traffic; pktflow stops on SIGINT.
 * Needs root (or CAP_NET_RAW) and the packages scripts/setup.sh installs; skipped,
 * saying why, where they are missing.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ndjson, readFile, ROOT, summary } from './helpers';
import { captureFile } from '../src/sources/file';

const have = (cmd: string) => spawnSync('bash', ['-c', `command -v ${cmd}`]).status === 0;
const missing = ['nginx', 'dnsmasq', 'dig', 'curl', 'ping', 'tcpdump'].filter((c) => !have(c));
const skip = process.getuid?.() !== 0 ? 'live capture needs root' : missing.length > 0 ? `missing: ${missing.join(', ')}` : false;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const work = mkdtempSync(path.join(tmpdir(), 'pktflow-live-'));
const base = 20000 + (process.pid % 10000);
const HTTP = base;
const DNS = base + 1;
const SILENT = base + 2; // accepts and never answers
let dnsmasq: ChildProcess | null = null;
let silent: Server | null = null;

/** until the child says `pattern` on stderr; its exit first is an error (the test's timeout bounds the wait) */
function waitFor(child: ChildProcess, pattern: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    let text = '';
    child.stderr!.on('data', (d) => {
      text += d;
      if (pattern.test(text)) resolve();
    });
    child.on('close', (code) => reject(new Error(`exited (${code}) before saying ${pattern}: ${text}`)));
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((r) => child.on('close', (code) => r(code)));
}

/** polls `cond` every 50 ms until it holds (the test's timeout bounds the wait) */
async function until(cond: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await cond())) await sleep(50);
}

/** the newest `[progress] STAGE: ... KEY=N` counter in a --stats stderr, 0 before the first */
function progress(stderr: string, stage: string, key: string): number {
  const lines = stderr.split('\n').filter((l) => l.startsWith(`pktflow: [progress] ${stage}: `));
  if (lines.length === 0) return 0;
  const m = new RegExp(`(?:^| )${key.replace(/\./g, '\\.')}=(\\d+)`).exec(lines[lines.length - 1].slice(`pktflow: [progress] ${stage}: `.length));
  return m === null ? 0 : Number(m[1]);
}

/** the frames tcpdump has written so far (a record still being written is not counted), and whether one holds `text` */
async function written(file: string, text: string): Promise<{ frames: number; found: boolean }> {
  let frames = 0;
  let found = false;
  try {
    for await (const b of captureFile({ path: file }).batches()) {
      frames += b.length;
      found ||= b.some((f) => f.data.includes(text));
    }
  } catch {
    // the last record is cut where tcpdump is still writing
  }
  return { frames, found };
}

/** dnsmasq answers (it binds its port some time after it starts) */
function answers(port: number): boolean {
  return spawnSync('dig', ['@127.0.0.1', '-p', String(port), '+tries=1', '+time=1', 'ready.live.test', 'A']).status === 0;
}

describe('live capture on lo', { skip, timeout: 600_000 }, () => {
  let events: any[] = [];
  let stderr = '';
  let code: number | null = null;
  const dump = path.join(work, 'pktflow.pcap');
  const reference = path.join(work, 'tcpdump.pcap');

  before(async () => {
    execFileSync('mkdir', ['-p', path.join(work, 'www')]);
    writeFileSync(path.join(work, 'www', 'index.html'), 'live\n');
    execFileSync('chmod', ['755', work]);
    execFileSync('bash', ['-c', `source ${ROOT}/scripts/nginx.sh; start_nginx ${work} 'keepalive_requests 100;' "listen 127.0.0.1:${HTTP}; root ${work}/www;"`]);
    dnsmasq = spawn('dnsmasq', ['-k', `--port=${DNS}`, '--listen-address=127.0.0.1', '--bind-interfaces', '--no-resolv', '--no-hosts', '--address=/live.test/10.9.9.9', '--local=/live.test/'], { stdio: 'ignore' });
    // accepts, reads, never answers; says when the request is in
    let requested = false;
    silent = createServer((socket) => socket.on('data', () => (requested = true))).listen(SILENT, '127.0.0.1');
    await until(() => answers(DNS));

    const filter = `port ${HTTP} or port ${DNS} or port ${SILENT} or icmp`;
    const td = spawn('tcpdump', ['-i', 'lo', '-U', '--immediate-mode', '-w', reference, filter], { stdio: ['ignore', 'ignore', 'pipe'] });
    const pf = spawn(process.execPath, [path.join(ROOT, 'bin/pktflow.js'), 'capture', '-i', 'lo', '-f', filter, '--ports', `http=${HTTP},${SILENT}`, '--flows', '-w', dump, '--stats', '0.2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    // listen for the exits now: one may come while the test awaits the other
    const pfExit = exited(pf);
    const tdExit = exited(td);
    let out = '';
    pf.stdout!.on('data', (d) => (out += d));
    pf.stderr!.on('data', (d) => (stderr += d));
    // both print their line once the capture is open
    await Promise.all([waitFor(td, /listening on lo/), waitFor(pf, /capturing on lo/)]);

    // traffic from real clients
    const u = `http://127.0.0.1:${HTTP}`;
    execFileSync('curl', ['-s', '-o', '/dev/null', '-o', '/dev/null', '-o', '/dev/null', `${u}/`, `${u}/index.html`, `${u}/missing`]);
    execFileSync('dig', ['@127.0.0.1', '-p', String(DNS), '+tries=1', '+time=2', 'www.live.test', 'A']);
    execFileSync('dig', ['@127.0.0.1', '-p', String(DNS), '+tries=1', '+time=2', 'nothing.example', 'A']);
    execFileSync('ping', ['-c', '2', '-i', '0.2', '127.0.0.1']);
    // a request that will never be answered: it must come out at shutdown
    const hanging = spawn('curl', ['-s', '--max-time', '600', `http://127.0.0.1:${SILENT}/pending`], { stdio: 'ignore' });
    await until(() => requested);
    // the same packets reach both captures in the same order: once pktflow has captured as
    // many frames as tcpdump wrote up to the pending request, it has that request too
    let target = 0;
    await until(async () => {
      const w = await written(reference, 'GET /pending');
      target = w.frames;
      return w.found;
    });
    await until(() => progress(stderr, 'source', 'frames') >= target);

    pf.kill('SIGINT');
    td.kill('SIGINT');
    code = await pfExit;
    await tdExit;
    hanging.kill();
    events = ndjson(out);
  });

  after(() => {
    dnsmasq?.kill();
    silent?.close();
    try {
      process.kill(Number(readFileSync(path.join(work, 'nginx.pid'), 'utf8')));
    } catch {
      // nginx already gone
    }
  });

  it('a second signal exits at once while the first one waits for a reader that never reads', async () => {
    const pf = spawn(process.execPath, [path.join(ROOT, 'bin/pktflow.js'), 'capture', '-i', 'lo', '-f', `tcp port ${HTTP}`, '--ports', `http=${HTTP}`, '-q', '--stats', '0.2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const pfExit = exited(pf);
    let err = '';
    pf.stderr!.on('data', (d) => (err += d));
    // nobody reads the events: once the pipe is full the pipeline waits for it
    pf.stdout!.pause();
    await waitFor(pf, /capturing on lo/);
    const urls = Array.from({ length: 500 }, (_, i) => [`-o`, '/dev/null', `http://127.0.0.1:${HTTP}/index.html?n=${i}`]).flat();
    // more bytes written than a pipe holds (64 KiB), and nobody reads: the sink waits for good
    await until(() => {
      if (progress(err, 'sink', 'bytes') > 70_000) return true;
      execFileSync('curl', ['-s', ...urls]);
      return false;
    });
    pf.kill('SIGINT');
    await sleep(1000);
    assert.equal(pf.exitCode, null, 'the first signal waits to flush what it holds');
    pf.kill('SIGINT');
    assert.equal(await pfExit, 130, 'the second signal exits at once');
    pf.stdout!.destroy();
  });

  it('exits 0 on SIGINT with the final counters', () => {
    assert.equal(code, 0, stderr);
    assert.match(stderr, /^pktflow: decode: frames=\d+/m);
    assert.match(stderr, /^pktflow: source: frames=\d+/m);
  });

  it('reports the HTTP, DNS and ICMP transactions of real clients', () => {
    const http = events.filter((e) => e.type === 'http' && e.destination.port === HTTP);
    assert.deepEqual(http.map((e) => [e.url.path, e.http.response.status_code]), [['/', 200], ['/index.html', 200], ['/missing', 404]]);
    const dns = events.filter((e) => e.type === 'dns');
    // dnsmasq answers its own zone, and refuses other names (it has no upstream)
    assert.deepEqual(dns.map((e) => [e.dns.question.name, e.dns.response_code]), [['www.live.test', 'NOERROR'], ['nothing.example', 'REFUSED']]);
    assert.equal(dns[0].dns.answers[0].data, '10.9.9.9');
    const icmp = events.filter((e) => e.type === 'icmp');
    assert.equal(icmp.length, 2);
    assert.ok(icmp.every((e) => e.status === 'OK' && e.icmp.response.type === 0 && e.event.duration > 0));
  });

  it('flushes a request still waiting for its response at shutdown', () => {
    const pending = events.find((e) => e.type === 'http' && e.destination.port === SILENT);
    assert.ok(pending, 'the pending request came out');
    assert.equal(pending.status, 'Error');
    assert.equal(pending.url.path, '/pending');
    assert.equal(pending.http.response, undefined);
  });

  it('reports final flows for TCP, UDP and ICMP', () => {
    const flows = events.filter((e) => e.type === 'flow');
    const transports = new Set(flows.map((e) => e.network.transport));
    for (const t of ['tcp', 'udp', 'icmp']) assert.ok(transports.has(t), `a ${t} flow`);
    assert.ok(flows.every((e) => typeof e.flow.id === 'string' && e.flow.final === true));
    const packets = flows.reduce((n, e) => n + e.network.packets, 0);
    const frames = Number(/^pktflow: decode: frames=(\d+)/m.exec(stderr)![1]);
    assert.equal(packets, frames, 'every frame is in exactly one flow');
  });

  it('dumps the same frames tcpdump captured, readable by pktflow and tshark', async () => {
    const count = async (f: string) => {
      let n = 0;
      for await (const b of captureFile({ path: f }).batches()) n += b.length;
      return n;
    };
    const ours = await count(dump);
    assert.equal(ours, await count(reference));
    if (have('tshark')) {
      const t = execFileSync('tshark', ['-r', dump, '-T', 'fields', '-e', 'frame.len'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n').length;
      assert.equal(t, ours);
    }
    // the dump gives the same transactions as the live run
    const again = (await readFile(dump, { protocols: ['http', 'dns', 'icmp'], ports: { http: [HTTP, SILENT], dns: [DNS] } })).events;
    const live = events.filter((e) => e.type !== 'flow' && !(e.type === 'http' && e.destination.port === SILENT));
    const replay = again.filter((e: any) => !(e.type === 'http' && e.destination.port === SILENT));
    assert.deepEqual(replay.map(summary), live.map(summary));
  });
});
