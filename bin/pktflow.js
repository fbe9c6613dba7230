#!/usr/bin/env node
'use strict';
// Old-generation garbage (state evicted under a flood: connections, flows) is collected
// once the heap has doubled since the last full collection, not V8's default of up to
// four times: peak memory under adversarial traffic stays within docs/limits.md's bound
// (docs/performance.md has the cost).
require('node:v8').setFlagsFromString('--heap-growing-percent=100');

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-v')) {
  // the version needs none of the analyzers: the bundle is not loaded for it
  process.stdout.write(`${require('../package.json').version}\n`);
  return;
}
let cli;
let saveCache = () => {};
if (process.env.PKTFLOW_FROM_SOURCE) {
  // the TypeScript sources, compiled on load by tsx (tests compare this with the bundle)
  require('tsx/cjs');
  noSourceMaps();
  cli = require('../src/cli/main.ts');
} else {
  // the compiled bundle, rebuilt first if a source is newer
  const build = require('../scripts/build.js');
  ({ cli, saveCache } = build.load());
  if (args[0] === 'run') {
    // A pipeline file is TypeScript, compiled on load by tsx; its import of pktflow's index is
    // the bundle's exports, so the pipeline and the runner share every module.
    require('tsx/cjs');
    noSourceMaps();
    build.provideIndex(cli.api());
  }
}

// tsx turns source maps on; Node then indexes every loaded file's lines at start-up (about
// 0.1 s). pktflow's errors are one line, so it does without them, unless PKTFLOW_DEBUG asks
// for stacks (which then point into the TypeScript).
function noSourceMaps() {
  if (!process.env.PKTFLOW_SOURCE_MAPS && !process.env.PKTFLOW_DEBUG) process.setSourceMapsEnabled(false);
}

cli.main(args).then((code) => {
  saveCache();
  // cap crashes if a handle whose capture failed is ever collected, and after a failure a
  // client library may go on retrying in the background (kafkajs): leave at once then.
  // What was written to stdout is out already (pipes and files are written synchronously).
  if (code !== 0 || cli.captureFailed()) process.exit(code);
  process.exitCode = code;
});
