/**
 * The commands run dist/pktflow.js, compiled from src/ (scripts/build.js): it must
 * never be stale. bin/pktflow.js rebuilds it whenever a source is newer.
 */
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { existsSync, readFileSync, statSync, utimesSync } from 'node:fs';
import { describe, it } from 'node:test';
import { cli } from './helpers';

const build = require('../scripts/build.js') as { ensure(): string; bundle(): string; newestSource(): number; OUT: string; CACHE: string };

describe('the compiled commands', { timeout: 600_000 }, () => {
  it('are what the sources compile to now', () => {
    const out = build.ensure();
    assert.equal(readFileSync(out, 'utf8'), build.bundle(), 'dist/pktflow.js is the bundle of the sources as they are');
  });

  it('are rebuilt by the next command when a source is newer than them', async () => {
    build.ensure();
    // the bundle made older than every source, as after an edit
    utimesSync(build.OUT, new Date(1000), new Date(1000));
    assert.ok(statSync(build.OUT).mtimeMs < build.newestSource());
    // (--help: --version is answered by the bin without the bundle), from another
    // directory: the rebuilt bundle is the same wherever the command ran
    const r = await cli(['--help'], { cwd: tmpdir() });
    assert.equal(r.code, 0);
    assert.ok(statSync(build.OUT).mtimeMs >= build.newestSource(), 'rebuilt before it ran');
    assert.equal(readFileSync(build.OUT, 'utf8'), build.bundle());
    // the rebuild dropped the old bundle's code cache; the run that followed wrote the new one's
    assert.ok(existsSync(build.CACHE), 'the code cache written by the first run after the build');
    assert.ok(statSync(build.CACHE).mtimeMs >= statSync(build.OUT).mtimeMs);
    const again = await cli(['--help']);
    assert.equal(again.stdout, r.stdout);
  });

  it('print nothing of their own on stderr (a dependency bundled into dist/ would have Node warn of its deprecated calls)', async () => {
    // a file of many chunks whose records cross chunk ends (pcap-parser, which reads the file
    // header, calls new Buffer() when fed more than once: it must stay outside the bundle)
    const r = await cli(['read', 'fixtures/mysql/blob-16mib.pcap', '-q']);
    assert.equal(r.code, 0);
    assert.equal(r.stderr, '');
  });

  it('give the same events as the TypeScript sources', async () => {
    const compiled = await cli(['read', 'fixtures/http-dns.pcap', '-q', '--flows', '--anomalies']);
    const source = await cli(['read', 'fixtures/http-dns.pcap', '-q', '--flows', '--anomalies'], { env: { PKTFLOW_FROM_SOURCE: '1' } });
    assert.equal(compiled.code, 0);
    assert.equal(compiled.stdout, source.stdout);
  });
});
