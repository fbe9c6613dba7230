/**
 * One adversarial scenario through the default stages (flows and anomalies as the
 * scenario asks) into NDJSON written to /dev/null, as `pktflow read ... > /dev/null`
 * runs it (with the CLI's V8 setting), in a process of its own so its peak RSS is its
 * own. Prints one JSON line: the scenario, frames, seconds, CPU seconds, peak RSS (KiB) and the
 * final stats.
 *   node --import tsx test/gen/adversarial-run.ts SCENARIO [ci|full]
 */
import { openSync, writeSync } from 'node:fs';
import { Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { definePipeline } from '../../src/pipeline/define';
import { eventStages } from '../../src/pipeline/presets';
import { runPipeline } from '../../src/pipeline/runner';
import { NdjsonSink } from '../../src/sinks/ndjson';
import type { Event } from '../../src/events/types';
import { adversarialSource, baselines, scenarios, type Scale } from './adversarial';

const name = process.argv[2];
const scale = (process.argv[3] ?? 'ci') as Scale;
const scenario = scenarios[name] ?? baselines[name];
// PKTFLOW_ADVERSARIAL_MONITOR=1: every scenario as a monitoring user runs it, flows and anomalies on
const s = scenario !== undefined && process.env.PKTFLOW_ADVERSARIAL_MONITOR === '1' ? { ...scenario, stages: { ...scenario.stages, tcp: { flows: {} }, anomalies: true } } : scenario;
if (s === undefined) {
  process.stderr.write(`unknown scenario ${name} (known: ${[...Object.keys(scenarios), ...Object.keys(baselines)].join(', ')})\n`);
  process.exit(2);
}
// as bin/pktflow.js sets it
setFlagsFromString('--heap-growing-percent=100');
const started = Date.now();
// written synchronously, as the CLI's stdout is when it is a file or /dev/null
const devNull = openSync('/dev/null', 'w');
const sink = new NdjsonSink<Event>({ stream: new Writable({ write: (chunk, _enc, cb) => (writeSync(devNull, chunk), cb()) }) });
runPipeline(definePipeline({ source: adversarialSource(s, scale), stages: [...eventStages(s.stages ?? {})], sink, options: { printStats: false } })).done.then(
  (r) => {
    const u = process.resourceUsage();
    const out = { scenario: name, scale, frames: s.frames[scale], seconds: (Date.now() - started) / 1000, cpuSeconds: (u.userCPUTime + u.systemCPUTime) / 1e6, maxRssKiB: u.maxRSS, error: r.error?.message ?? null, stats: r.stats };
    process.stdout.write(JSON.stringify(out) + '\n');
  },
  (err: Error) => {
    process.stderr.write(`${name}: ${err.stack}\n`);
    process.exit(1);
  },
);
