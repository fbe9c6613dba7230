/**
 * Adversarial captures (test/gen/adversarial.ts) with the default limits: each runs
 * to the end in a process of its own, with peak RSS under 512 MiB, and the counter
 * of the bound it pushes against shows that bound acting. CI runs them scaled down
 * (still past every bound); `npm run fuzz` at full size (PKTFLOW_ADVERSARIAL_SCALE=full).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { scenarios, type Scale } from './gen/adversarial';
import { assertAccounting, ROOT } from './helpers';

const SCALE = (process.env.PKTFLOW_ADVERSARIAL_SCALE ?? 'ci') as Scale;
const RSS_BOUND_MIB = 512;
const run = promisify(execFile);

const at = (o: any, dotted: string): number => dotted.split('.').reduce((x, k) => x?.[k], o) ?? 0;

describe(`adversarial traffic (${SCALE} scale, default limits, peak RSS under ${RSS_BOUND_MIB} MiB)`, { timeout: SCALE === 'ci' ? 600_000 : Infinity }, () => {
  for (const [name, s] of Object.entries(scenarios)) {
    it(`${name}: ${s.about}`, async () => {
      const { stdout } = await run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/gen/adversarial-run.ts'), name, SCALE], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024, timeout: 3_600_000 });
      const r = JSON.parse(stdout);
      assert.equal(r.error, null);
      assert.equal(at(r.stats, 'source.frames'), s.frames[SCALE], 'ran to the end');
      assertAccounting(r.stats, name);
      assert.ok(at(r.stats, s.counter) > 0, `${s.counter} shows the bound acting: ${JSON.stringify(r.stats)}`);
      const mib = r.maxRssKiB / 1024;
      assert.ok(mib < RSS_BOUND_MIB, `peak RSS ${mib.toFixed(0)} MiB`);
      console.log(`# ${name}: ${s.frames[SCALE]} frames, ${r.seconds} s, peak RSS ${mib.toFixed(0)} MiB, ${s.counter} = ${at(r.stats, s.counter)}`);
    });
  }
});
