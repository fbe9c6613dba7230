/**
 * test/watchdog.cjs, which scripts/test.sh preloads into every test file's process: a
 * blocked event loop is reported with its stack and the process killed; a process that
 * only waits is left alone and exits by itself.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { describe, it } from 'node:test';

const WATCHDOG = path.join(__dirname, 'watchdog.cjs');

function run(code: string): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--require', WATCHDOG, '-e', code], { env: { ...process.env, PKTFLOW_TEST_WATCHDOG_SEC: '2' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (c, signal) => resolve({ code: c, signal, stderr }));
  });
}

describe('the test watchdog', { timeout: 120_000 }, () => {
  it('kills a process whose event loop stays blocked, saying where', async () => {
    const r = await run('function spinForever() { for (;;) {} } spinForever()');
    assert.equal(r.signal, 'SIGKILL');
    assert.match(r.stderr, /^watchdog: .*: the event loop has been blocked for 2 s, in:\n {4}at spinForever \(\[eval\]:1\)\n/);
  });

  it('leaves a process that waits (timers, I/O) alone: it exits by itself', async () => {
    const r = await run('setTimeout(() => process.stdout.write("done"), 4000)');
    assert.equal(r.code, 0);
    assert.equal(r.stderr, '');
  });
});
