'use strict';
/**
 * pktflow's commands run compiled JavaScript: src/ bundled by esbuild (which tsx
 * already brings) into dist/pktflow.js, so a start loads one file instead of
 * compiling TypeScript. `npm run build` and scripts/setup.sh build it; bin/pktflow.js
 * calls ensure(), which rebuilds first whenever a source (or the installed packages)
 * is newer than the bundle, so a stale build never runs.
 *
 * Left out of the bundle, loaded from node_modules when used: cap (a native addon),
 * kafkajs (only Kafka commands load it), typescript and tsx (only `pktflow run`).
 *   node scripts/build.js          build now
 */
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const OUT = path.join(ROOT, 'dist', 'pktflow.js');
const ENTRY = path.join(ROOT, 'src', 'cli', 'main.ts');
const EXTERNAL = ['cap', 'kafkajs', 'typescript', 'tsx', 'tsx/*', 'esbuild'];

function options() {
  return {
    entryPoints: [ENTRY],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: EXTERNAL,
    // stage and error classes keep their names (messages and `name` fields use them)
    keepNames: true,
    // rxjs's ECMAScript-module build, whose unused operators esbuild leaves out (its
    // CommonJS build, which Node's resolution picks, is bundled whole: 370 KB against 17)
    alias: { rxjs: path.join(ROOT, 'node_modules', 'rxjs', 'dist', 'esm', 'index.js') },
    legalComments: 'none',
    logLevel: 'silent',
  };
}

/** the bundle's text, built now (for the build and for the test that compares it with dist/) */
function bundle() {
  const r = require('esbuild').buildSync({ ...options(), write: false });
  return r.outputFiles[0].text;
}

/** write the bundle: to a file of its own first, so a concurrent start never reads half of one */
function build() {
  const text = bundle();
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  const tmp = `${OUT}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, OUT);
  return OUT;
}

/** the newest modification time (ms) of what the bundle is made from */
function newestSource() {
  let newest = 0;
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') || e.name.endsWith('.json')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
    }
  };
  walk(path.join(ROOT, 'src'));
  for (const f of ['package-lock.json', 'scripts/build.js']) {
    try {
      newest = Math.max(newest, fs.statSync(path.join(ROOT, f)).mtimeMs);
    } catch {
      // not there: nothing to compare
    }
  }
  return newest;
}

/** the bundle's path, built first when it is missing or older than a source */
function ensure() {
  let built = -1;
  try {
    built = fs.statSync(OUT).mtimeMs;
  } catch {
    // no bundle yet
  }
  if (built < newestSource()) build();
  return OUT;
}

module.exports = { build, bundle, ensure, newestSource, OUT };

if (require.main === module) {
  build();
  process.stderr.write(`build: ${path.relative(process.cwd(), OUT)}\n`);
}
