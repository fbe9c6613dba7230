/**
 * Golden outputs: every fixture through the default pipeline must give exactly the
 * NDJSON in test/golden/. After an intended change, regenerate with
 * UPDATE_GOLDEN=1 npm test, and read the diff.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { definePipeline } from '../src/pipeline/define';
import { eventStages } from '../src/pipeline/presets';
import { runPipeline } from '../src/pipeline/runner';
import { NdjsonSink } from '../src/sinks/ndjson';
import { captureFile } from '../src/sources/file';
import { assertAccounting, fixtureFiles, ROOT } from './helpers';

const files = fixtureFiles();

async function render(file: string): Promise<string> {
  // every fixture also passes the accounting check
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d) => (text += d));
  const p = definePipeline({ source: captureFile({ path: path.join(ROOT, file) }), stages: [...eventStages()], sink: new NdjsonSink({ stream }), options: { printStats: false } });
  const r = await runPipeline(p).done;
  assertAccounting(r.stats, file);
  if (r.error !== null) text += `# error: ${r.error.message.replace(ROOT + '/', '')}\n`;
  return text;
}

describe('golden outputs', { timeout: 600_000 }, () => {
  for (const file of files) {
    it(file, async () => {
      const golden = path.join(ROOT, 'test', 'golden', file.replace(/\//g, '__') + '.ndjson');
      const got = await render(file);
      if (process.env.UPDATE_GOLDEN === '1' || !existsSync(golden)) {
        writeFileSync(golden, got);
        if (process.env.UPDATE_GOLDEN !== '1') assert.fail(`no golden output for ${file}: written to ${golden}, check it and commit it`);
        return;
      }
      assert.equal(got, readFileSync(golden, 'utf8'));
      assert.equal(await render(file), got, 'the same input gives byte-identical output');
    });
  }
});
