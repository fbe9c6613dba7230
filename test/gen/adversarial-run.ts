/**
 * One adversarial scenario through the default stages (flows as the scenario asks) into
 * a discarding sink, in a process of its own so its peak RSS is its own. Prints one
 * JSON line: the scenario, frames, seconds, peak RSS (KiB) and the final stats.
 *   node --import tsx test/gen/adversarial-run.ts SCENARIO [ci|full]
 */
import { definePipeline } from '../../src/pipeline/define';
import { eventStages } from '../../src/pipeline/presets';
import { runPipeline } from '../../src/pipeline/runner';
import { discard } from '../../src/sinks/discard';
import type { Event } from '../../src/events/types';
import { adversarialSource, scenarios, type Scale } from './adversarial';

const name = process.argv[2];
const scale = (process.argv[3] ?? 'ci') as Scale;
const s = scenarios[name];
if (s === undefined) {
  process.stderr.write(`unknown scenario ${name} (known: ${Object.keys(scenarios).join(', ')})\n`);
  process.exit(2);
}
const started = Date.now();
runPipeline(definePipeline({ source: adversarialSource(s, scale), stages: [...eventStages(s.stages ?? {})], sink: discard<Event>(), options: { printStats: false } })).done.then(
  (r) => {
    const out = { scenario: name, scale, frames: s.frames[scale], seconds: (Date.now() - started) / 1000, maxRssKiB: process.resourceUsage().maxRSS, error: r.error?.message ?? null, stats: r.stats };
    process.stdout.write(JSON.stringify(out) + '\n');
  },
  (err: Error) => {
    process.stderr.write(`${name}: ${err.stack}\n`);
    process.exit(1);
  },
);
