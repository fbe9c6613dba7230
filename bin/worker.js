'use strict';
// A worker thread of `pktflow ... --workers N` (src/pipeline/worker.ts): it runs the same
// compiled bundle as the command (with its code cache), or the TypeScript sources when
// the command itself runs from them (tests, PKTFLOW_FROM_SOURCE).
const { workerData } = require('node:worker_threads');
if (workerData.fromSource) {
  require('tsx/cjs');
  process.setSourceMapsEnabled(false);
  require('../src/pipeline/worker.ts').workerMain();
} else {
  require('../scripts/build.js').load(false).cli.workerMain();
}
