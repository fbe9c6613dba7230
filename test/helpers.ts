import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Stats } from '../src/core/stage';
import type { Frame } from '../src/core/frame';
import { definePipeline } from '../src/pipeline/define';
import { eventStages, type EventStagesOptions } from '../src/pipeline/presets';
import { runPipeline } from '../src/pipeline/runner';
import { collect, CollectSink } from '../src/sinks/collect';
import { captureFile } from '../src/sources/file';
import { PcapReader } from '../src/sources/pcap';
import type { Source } from '../src/sources/source';
import type { Event } from '../src/events/types';
import { makeEndpoints } from '../src/events/endpoints';
import type { Protocol } from '../src/protocols/analyzer';
import { Connection } from '../src/tcp/connection';

export const ROOT = path.join(__dirname, '..');
export const fixture = (name: string) => path.join(ROOT, 'fixtures', name);

export interface Run {
  events: Event[];
  stats: Record<string, Stats>;
  error: Error | null;
}

/** the default stages over a source, into memory */
export async function runStages(source: Source, options: EventStagesOptions = {}): Promise<Run> {
  const sink = collect<Event>();
  const p = definePipeline({ source, stages: [...eventStages(options)], sink, options: { printStats: false } });
  const r = await runPipeline(p).done;
  return { events: sink.items, stats: r.stats, error: r.error };
}

export function readFile(file: string, options: EventStagesOptions = {}): Promise<Run> {
  return runStages(captureFile({ path: file }), options);
}

/** a source over frames already in memory, one batch per `batchSize` */
export function memorySource(frames: Frame[], batchSize = 64): Source {
  return {
    name: 'memory',
    async *batches() {
      for (let i = 0; i < frames.length; i += batchSize) yield frames.slice(i, i + batchSize);
    },
    stats: () => ({ frames: frames.length }),
    close() {},
  };
}

export interface Cli {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** run the pktflow CLI as a user would */
export function cli(args: string[], opts: { stdin?: Buffer; cwd?: string; env?: Record<string, string> } = {}): Promise<Cli> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'pktflow.js'), ...args], { cwd: opts.cwd ?? ROOT, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.stdin ?? undefined);
  });
}

export function ndjson(text: string): Event[] {
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
}

/** a compact view of a transaction, for comparing runs */
export function summary(e: Event): string {
  const x = e as any;
  return [x.type, x.status, x['@timestamp'], x.client?.port, x.url?.full, x.http?.response?.status_code, x.http?.response?.body?.bytes, x.dns?.question?.name, x.dns?.response_code, (x.notes ?? []).join(';')].join('|');
}

const sum = (o: unknown): number => (typeof o === 'number' ? o : o && typeof o === 'object' ? Object.values(o).reduce<number>((n, v) => n + sum(v), 0) : 0);

/**
 * The exact accounting every run must satisfy (docs/limits.md): every frame is
 * decoded or dropped under one reason, and every transaction an analyzer started is
 * emitted, dropped under a reason, or still waiting.
 */
export function assertAccounting(stats: Record<string, Stats>, label = ''): void {
  const d = stats.decode as any;
  if (d !== undefined) assert.equal(d.frames, d.decoded + sum(d.dropped), `${label}: frames = decoded + dropped ${JSON.stringify(d.dropped)}`);
  const protocols = ((stats.analyze as any)?.protocols ?? {}) as Record<string, any>;
  for (const [name, p] of Object.entries(protocols)) {
    assert.equal(p.transactions_started, p.transactions + sum(p.transactions_dropped) + (p.pending ?? 0), `${label}: ${name} transactions started = emitted + dropped + pending ${JSON.stringify(p)}`);
  }
}

/**
 * The default stages over frames held in memory, synchronously, as the runner drives
 * them: each batch through every stage, then each stage's flush through the rest.
 */
export function pushThroughStages(frames: Frame[], options: EventStagesOptions = {}, batchSize = 16): { events: Event[]; stats: Record<string, Stats> } {
  const stages = eventStages(options) as readonly { name: string; push(b: unknown[]): unknown[]; flush(): unknown[]; stats(): Stats }[];
  const events: Event[] = [];
  const from = (i: number, batch: unknown[]) => {
    for (let j = i; j < stages.length && batch.length > 0; j++) batch = stages[j].push(batch);
    events.push(...(batch as Event[]));
  };
  for (let i = 0; i < frames.length; i += batchSize) from(0, frames.slice(i, i + batchSize));
  stages.forEach((s, i) => from(i + 1, s.flush()));
  const stats: Record<string, Stats> = {};
  for (const s of stages) stats[s.name] = s.stats();
  return { events, stats };
}

/**
 * every capture under fixtures/ and its folders (a protocol's own, edge/), as paths
 * relative to the repository, sorted; fixtures/fuzz (the fuzzers' regression cases,
 * damaged on purpose) is left out
 */
export function fixtureFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(path.join(ROOT, dir), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.isDirectory()) {
        if (`${dir}/${e.name}` !== 'fixtures/fuzz') walk(`${dir}/${e.name}`);
      } else if (/\.pcap(ng)?$/.test(e.name)) out.push(`${dir}/${e.name}`);
    }
  };
  walk('fixtures');
  return out;
}

let allFixtureFrames: Frame[] | null = null;

/** every frame of every pcap under fixtures/, in order (read once) */
export function fixtureFrames(): Frame[] {
  if (allFixtureFrames !== null) return allFixtureFrames;
  const out: Frame[] = [];
  for (const f of fixtureFiles().filter((n) => n.endsWith('.pcap'))) {
    const r = new PcapReader(f);
    out.push(...r.push(readFileSync(path.join(ROOT, f))));
  }
  return (allFixtureFrames = out);
}

/** a sink that takes `ms` over every batch: a slow consumer of the events */
export class SlowCollect extends CollectSink<Event> {
  constructor(private readonly ms: number) {
    super();
  }
  override drained(): Promise<void> {
    return new Promise((r) => setTimeout(r, this.ms));
  }
}

/** mulberry32: a small seeded generator, so every variant can be made again */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * One analyzer of `protocol` (with `options`) on one connection, 10.0.0.1:ports[0] →
 * 10.0.0.2:ports[1], driven directly: `send(side, bytes, at?)` hands it bytes a
 * microsecond of packet time after the last (or at second `at`); `done()` closes the
 * connection, checks the accounting and that nothing waits. `clock` is the packet time.
 */
export function analyzerOn(protocol: Protocol, options: object, ports: [number, number], midStream = false) {
  const events: any[] = [];
  const out = { emit: (e: any) => void events.push(e) };
  const inst = protocol.create(options, out);
  const c = new Connection(1, 0, 4, 0, 0, 0, 0x0a000001, 0, 0, 0, 0x0a000002, ports[0], ports[1], -1, -1, 'syn', 1000, 0);
  const a = inst.tcp!({ conn: c, endpoints: makeEndpoints(c, 6), out, midStream });
  const clock = { sec: 1000, nsec: 0 };
  const send = (side: number, b: Buffer, at?: number) => {
    if (at !== undefined) [clock.sec, clock.nsec] = [at, 0];
    else clock.nsec += 1000;
    a.data(side, b, 0, b.length, clock.sec, clock.nsec);
  };
  const stats = () => inst.stats() as any;
  const done = () => {
    a.close(clock.sec, clock.nsec);
    assertAccounting({ analyze: { protocols: { [protocol.name]: inst.stats() } } } as Record<string, Stats>, protocol.name);
    assert.equal(stats().pending, 0);
  };
  return { events, a, send, stats, done, inst, clock };
}
