/**
 * pktflow run's type check keeps its result and returns it while nothing the
 * compiler read has changed: never a stale answer.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { typecheck } from '../src/cli/typecheck';
import { cli } from './helpers';

describe('type check cache', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pktflow-typecheck-'));
  const cache = path.join(dir, 'cache');
  after(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string) => {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  };
  /** when the cache entry was last written (a hit does not write it) */
  const written = () => {
    const entries = readdirSync(path.join(cache, 'typecheck')).filter((f) => f.endsWith('.json'));
    assert.equal(entries.length, 1);
    return statSync(path.join(cache, 'typecheck', entries[0])).mtimeMs;
  };
  /** the check's errors (file:line: code) and whether they came from the cache */
  const run = (): { errors: string[]; cached: boolean } => {
    const before = statSync(cache, { throwIfNoEntry: false }) === undefined ? -1 : written();
    const errors = typecheck(path.join(dir, 'pipeline.ts'), cache).map((e) => e.replace(/^.*?([\w-]+(\/index)?\.ts):(\d+):\d+: (TS\d+).*$/, '$1:$3: $4'));
    return { errors, cached: written() === before };
  };

  // a small project of its own: its tsconfig, a pipeline file, a module it imports
  write('tsconfig.json', JSON.stringify({ compilerOptions: { strict: true, types: [], lib: ['ES2022'], target: 'ES2022', module: 'commonjs' } }));
  write('pipeline.ts', `import { port } from './helper';\nexport const p: number = port;\n`);
  write('helper/index.ts', `export const port: number = 8080;\n`);

  it('a second check of unchanged files is answered from the cache, in well under a second', () => {
    assert.deepEqual(run(), { errors: [], cached: false });
    const t = process.hrtime.bigint();
    assert.deepEqual(run(), { errors: [], cached: true });
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    assert.ok(ms < 1000, `${ms} ms`);
  });

  it('sees a change in an imported file, and its undoing', () => {
    write('helper/index.ts', `export const port: string = 'http';\n`);
    assert.deepEqual(run(), { errors: ['pipeline.ts:2: TS2322'], cached: false });
    write('helper/index.ts', `export const port: number = 8080;\n`);
    assert.deepEqual(run(), { errors: [], cached: false });
    assert.deepEqual(run(), { errors: [], cached: true });
  });

  it('sees a change in the pipeline file', () => {
    write('pipeline.ts', `import { port } from './helper';\nexport const p: boolean = port;\n`);
    assert.deepEqual(run(), { errors: ['pipeline.ts:2: TS2322'], cached: false });
    write('pipeline.ts', `import { port } from './helper';\nexport const p: number = port;\n`);
    assert.deepEqual(run(), { errors: [], cached: false });
  });

  it('sees a new file that module resolution now finds first', () => {
    // './helper' was helper/index.ts; a helper.ts beside it comes first
    write('helper.ts', `export const port = 'http';\n`);
    assert.deepEqual(run(), { errors: ['pipeline.ts:2: TS2322'], cached: false });
    rmSync(path.join(dir, 'helper.ts'));
    assert.deepEqual(run(), { errors: [], cached: false });
  });

  it('sees a change in the compiler options', () => {
    write('pipeline.ts', `import { port } from './helper';\nexport const p: number = port;\nexport function f(x) { return x; }\n`);
    assert.deepEqual(run(), { errors: ['pipeline.ts:3: TS7006'], cached: false });
    write('tsconfig.json', JSON.stringify({ compilerOptions: { strict: true, noImplicitAny: false, types: [], lib: ['ES2022'] } }));
    assert.deepEqual(run(), { errors: [], cached: false });
    assert.deepEqual(run(), { errors: [], cached: true });
  });

  it('pktflow run uses it (PKTFLOW_CACHE_DIR)', async () => {
    const env = { PKTFLOW_CACHE_DIR: path.join(dir, 'cli-cache') };
    for (let i = 0; i < 2; i++) {
      const r = await cli(['run', 'pipelines/pcap-to-stdout.ts', '-q'], { env });
      assert.equal(r.code, 0, r.stderr);
    }
    assert.equal(readdirSync(path.join(dir, 'cli-cache', 'typecheck')).filter((f) => f.endsWith('.json')).length, 1);
  });
});
