'use strict';
/**
 * A test process whose event loop stays blocked (a synchronous loop that never ends: a
 * decoder meeting the input that hangs it) says where, and dies, after
 * PKTFLOW_TEST_WATCHDOG_SEC seconds (default 900), instead of waiting out the runner's
 * 20-minute file timeout with nothing to show. scripts/test.sh loads it into every
 * test file's process (`--require`). The runner goes from one synchronous test to the
 * next without turning the event loop, so the limit is well above what a file's
 * synchronous tests take in a row (fuzz.sh, whose properties run for minutes each, sets
 * it from their time). A worker thread watches a heartbeat the main thread
 * beats every second; when it stops, the worker pauses the main thread through the
 * inspector, writes its stack to stderr (fd 2 directly: the worker's own stderr goes
 * through the blocked thread) and kills the process.
 */
const { Worker, isMainThread, workerData } = require('node:worker_threads');

if (isMainThread && process.env.PKTFLOW_TEST_WATCHDOG_SEC !== '0') {
  const limitSec = Number(process.env.PKTFLOW_TEST_WATCHDOG_SEC ?? 900);
  const beat = new Int32Array(new SharedArrayBuffer(4));
  setInterval(() => Atomics.add(beat, 0, 1), 1000).unref();
  // the worker runs this file again, in its other branch (not preloaded there: no execArgv),
  // and keeps nothing alive
  new Worker(__filename, { workerData: { watchdog: true, beat, limitSec, file: process.argv[1] ?? 'a test process' }, execArgv: [] }).unref();
} else if (workerData?.watchdog === true) {
  // (other threads, a test's own workers or a module loader's, load this file too: nothing to do there)
  const { writeSync } = require('node:fs');
  const inspector = require('node:inspector');
  const { beat, limitSec, file } = workerData;
  let last = -1;
  let still = 0;
  let fired = false;
  // (the interval goes on after firing: it keeps this thread alive until the inspector answers)
  setInterval(() => {
    if (fired) return;
    const b = Atomics.load(beat, 0);
    if (b !== last) {
      last = b;
      still = 0;
      return;
    }
    if (++still < limitSec) return;
    fired = true;
    const s = new inspector.Session();
    s.connectToMainThread();
    const urls = new Map();
    s.on('Debugger.scriptParsed', (m) => urls.set(m.params.scriptId, m.params.url));
    s.on('Debugger.paused', (m) => {
      const at = m.params.callFrames.slice(0, 15).map((f) => `    at ${f.functionName || '<anonymous>'} (${urls.get(f.location.scriptId) ?? '?'}:${f.location.lineNumber + 1})`);
      writeSync(2, `watchdog: ${file}: the event loop has been blocked for ${limitSec} s, in:\n${at.join('\n')}\n`);
      process.kill(process.pid, 'SIGKILL');
    });
    s.post('Debugger.enable', () => s.post('Debugger.pause'));
  }, 1000);
}
