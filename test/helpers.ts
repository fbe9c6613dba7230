import { spawn } from 'node:child_process';
import * as path from 'node:path';
import type { Stats } from '../src/core/stage';
import type { Frame } from '../src/core/frame';
import { definePipeline } from '../src/pipeline/define';
import { eventStages, type EventStagesOptions } from '../src/pipeline/presets';
import { runPipeline } from '../src/pipeline/runner';
import { collect } from '../src/sinks/collect';
import { captureFile } from '../src/sources/file';
import type { Source } from '../src/sources/source';
import type { Event } from '../src/events/transaction';

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
export function cli(args: string[], opts: { stdin?: Buffer; cwd?: string } = {}): Promise<Cli> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'pktflow.js'), ...args], { cwd: opts.cwd ?? ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
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
