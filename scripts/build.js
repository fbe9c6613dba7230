'use strict';
/**
 * pktflow's commands run compiled JavaScript: src/ bundled by esbuild (which tsx
 * already brings) into dist/pktflow.js, so a start loads one file instead of
 * compiling TypeScript. Its exports are the commands' and the public API's
 * (src/bundle.ts, the API on demand): provideIndex() hands the latter to pipeline files
 * (`pktflow run`). `npm run build` and scripts/setup.sh build it; bin/pktflow.js
 * calls ensure(), which rebuilds first whenever a source (or the installed packages)
 * is newer than the bundle, so a stale build never runs. load() runs it with V8's code
 * cache (dist/pktflow.cache, written by the first run after a build).
 *
 * Left out of the bundle, loaded from node_modules when used: cap (a native addon),
 * pcap-parser (it calls `new Buffer()`, which Node reports as deprecated from code outside
 * node_modules: every read of a file would print a warning),
 * kafkajs, its internals and @node-rs/crc32 (only Kafka commands load them), typescript
 * and tsx (only `pktflow run`).
 *   node scripts/build.js          build now
 */
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const OUT = path.join(ROOT, 'dist', 'pktflow.js');
const ENTRY = path.join(ROOT, 'src', 'bundle.ts');
const EXTERNAL = ['cap', 'pcap-parser', 'kafkajs', 'kafkajs/*', '@node-rs/crc32', 'typescript', 'tsx', 'tsx/*', 'esbuild'];

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
    // the paths in the bundle's comments are relative to this, not to where a command ran
    absWorkingDir: ROOT,
  };
}

/** the bundle's text, built now (for the build and for the test that compares it with dist/) */
function bundle() {
  const r = require('esbuild').buildSync({ ...options(), write: false });
  return r.outputFiles[0].text;
}

/** V8's code cache of the bundle: compiling 1 MB of JavaScript is a third of a short run's start */
const CACHE = path.join(ROOT, 'dist', 'pktflow.cache');

/** write a file through a file of its own first, so a concurrent start never reads half of one */
function writeAtomic(file, data) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

/** write the bundle (its code cache, made from the old one, goes) */
function build() {
  const text = bundle();
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.rmSync(CACHE, { force: true });
  writeAtomic(OUT, text);
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

/**
 * The bundle's exports, compiled with V8's code cache when there is one. `saveCache()`,
 * called once the command is done, writes the cache if there was none (or V8 turned it
 * down: another Node): it then holds the functions this run compiled. A cache that
 * cannot be written (a read-only install) is done without. `check` false: skip the
 * freshness check (a worker thread of a run whose main thread made it).
 */
function load(check = true) {
  const vm = require('node:vm');
  const Module = require('node:module');
  // a worker thread (--workers) loads the bundle its main thread has just checked
  const file = check ? ensure() : OUT;
  let cached;
  try {
    cached = fs.readFileSync(CACHE);
  } catch {
    // none yet
  }
  const script = new vm.Script(Module.wrap(fs.readFileSync(file, 'utf8')), { filename: file, cachedData: cached });
  const mod = { exports: {} };
  script.runInThisContext().call(mod.exports, mod.exports, Module.createRequire(file), mod, file, path.dirname(file));
  const saveCache = () => {
    if (cached !== undefined && !script.cachedDataRejected) return;
    try {
      writeAtomic(CACHE, script.createCachedData());
    } catch {
      // not writable: every start compiles
    }
  };
  return { cli: mod.exports, saveCache };
}

/**
 * `pktflow run`: the pipeline file's `import ... from '<pktflow>/src'` (resolved by tsx to
 * src/index.ts) is answered with the bundle's exports, put in Node's module cache under
 * that file's name, instead of src/ compiled again by tsx (a second copy of every module
 * and a third of a short run). A pipeline that imports a file under src/ other than the
 * index still gets it compiled, as a copy of its own.
 */
function provideIndex(exports) {
  const Module = require('node:module');
  const file = path.join(ROOT, 'src', 'index.ts');
  const m = new Module(file, null);
  m.filename = file;
  m.paths = Module._nodeModulePaths(path.dirname(file));
  m.exports = exports;
  m.loaded = true;
  Module._cache[file] = m;
}

module.exports = { build, bundle, ensure, load, newestSource, provideIndex, OUT, CACHE };

if (require.main === module) {
  build();
  process.stderr.write(`build: ${path.relative(process.cwd(), OUT)}\n`);
}
