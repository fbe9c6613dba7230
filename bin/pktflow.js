#!/usr/bin/env node
'use strict';
// Old-generation garbage (state evicted under a flood: connections, flows) is collected
// once the heap has doubled since the last full collection, not V8's default of up to
// four times: peak memory under adversarial traffic stays within docs/limits.md's bound
// (docs/performance.md has the cost).
require('node:v8').setFlagsFromString('--heap-growing-percent=100');
// pktflow is TypeScript end to end, pipelines included: tsx compiles on load (cached).
require('tsx/cjs');
// tsx turns source maps on; Node then indexes every loaded file's lines at start-up
// (about 0.1 s). pktflow's errors are one line, so it does without them, unless
// PKTFLOW_DEBUG asks for stacks (which then point into the TypeScript).
if (!process.env.PKTFLOW_SOURCE_MAPS && !process.env.PKTFLOW_DEBUG) process.setSourceMapsEnabled(false);
require('../src/cli/main.ts')
  .main(process.argv.slice(2))
  .then((code) => {
    // cap crashes if a handle whose capture failed is ever collected, and after a failure a
    // client library may go on retrying in the background (kafkajs): leave at once then.
    // What was written to stdout is out already (pipes and files are written synchronously).
    if (code !== 0 || require('../src/sources/live.ts').captureFailed()) process.exit(code);
    process.exitCode = code;
  });
