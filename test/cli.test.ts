import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { cli, fixture, ndjson, ROOT } from './helpers';
import { httpLoad, writePcap } from './gen/packets';

const tmp = mkdtempSync(path.join(tmpdir(), 'pktflow-cli-'));

describe('pktflow CLI', () => {
  it('has --help on every command', async () => {
    for (const args of [['--help'], ['help'], ['read', '--help'], ['run', '--help'], ['help', 'read'], ['capture', '--help'], ['devices', '--help']]) {
      const r = await cli(args);
      assert.equal(r.code, 0, args.join(' '));
      assert.match(r.stdout, /Usage: pktflow/);
    }
  });

  it('rejects a bad flag or command in one line with exit status 2', async () => {
    for (const [args, msg] of [
      [['read', 'x.pcap', '--bogus'], /unknown option '--bogus'/],
      [['frobnicate'], /unknown command "frobnicate"/],
      [['read'], /read needs a capture file/],
      [['read', fixture('http-dns.pcap'), '--ports', 'http=99999'], /port outside 1-65535/],
      [['read', fixture('http-dns.pcap'), '--protocols', 'gopher'], /unknown protocol "gopher"/],
      [['read', fixture('http-dns.pcap'), '--stats', 'soon'], /--stats takes a number of seconds/],
      [['read', fixture('http-dns.pcap'), '--flow-period', '5'], /--flow-period and --flow-timeout go with --flows/],
      [['read', fixture('http-dns.pcap'), '--rotate-mb', '5'], /--rotate-mb goes with --write/],
      [['capture', '-c', 'x'], /--count takes a positive whole number/],
    ] as [string[], RegExp][]) {
      const r = await cli(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr.split('\n')[0], msg);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
  });

  it('reads a capture and prints events; stats go to stderr, and to a stats event when asked', async () => {
    const r = await cli(['read', fixture('http-dns.pcap'), '--stats-event']);
    assert.equal(r.code, 0);
    const events = ndjson(r.stdout);
    assert.equal(events.filter((e) => e.type === 'http').length, 10);
    assert.equal(events.filter((e) => e.type === 'dns').length, 11);
    const stats = events[events.length - 1] as any;
    assert.equal(stats.type, 'stats');
    assert.equal(stats.stats.decode.frames, 102);
    assert.match(r.stderr, /^pktflow: decode: frames=102 /m);
    assert.match(r.stderr, /^pktflow: tcp: /m);
  });

  it('reads from stdin with -', async () => {
    const r = await cli(['read', '-', '-q'], { stdin: readFileSync(fixture('http-dns.pcapng')) });
    const f = await cli(['read', fixture('http-dns.pcapng'), '-q']);
    assert.equal(r.code, 0);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, f.stdout);
  });

  it('honours --ports and --no-probe', async () => {
    const plain = ndjson((await cli(['read', fixture('http-dns.pcap'), '-q', '--protocols', 'http', '--ports', 'http=9999', '--no-probe'])).stdout);
    assert.equal(plain.length, 0);
    const probed = ndjson((await cli(['read', fixture('http-dns.pcap'), '-q', '--protocols', 'http', '--ports', 'http=9999'])).stdout);
    assert.equal(probed.length, 10, 'the content probe still finds HTTP on 8080');
  });

  it('processes the frames before damage, then fails in one line naming file and offset', async () => {
    const r = await cli(['read', fixture('edge/truncated.pcap'), '-q']);
    assert.equal(r.code, 1);
    assert.equal(ndjson(r.stdout).length, 1);
    assert.equal(r.stderr, `pktflow: ${fixture('edge/truncated.pcap')}: offset 749: file ends inside a packet record (62 bytes captured, 10 present)\n`);
    const missing = await cli(['read', path.join(tmp, 'nope.pcap')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nope\.pcap: offset 0: cannot open: ENOENT/);
  });

  it('exits cleanly when the reader goes away (| head)', () => {
    const big = path.join(tmp, 'big.pcap');
    writeFileSync(big, writePcap(httpLoad(20000)));
    const r = spawnSync('bash', ['-c', `set -o pipefail; node ${ROOT}/bin/pktflow.js read ${big} | head -n 2`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.split('\n').filter((l) => l).length, 2);
    assert.doesNotMatch(r.stderr, /EPIPE|Error|\bat /);
  });

  it('runs a pipeline file, with --input replacing its source', async () => {
    const r = await cli(['run', 'pipelines/pcap-to-stdout.ts', '-q']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(ndjson(r.stdout).length, 21);
    const other = await cli(['run', 'pipelines/pcap-to-stdout.ts', '-q', '--no-typecheck', '--input', fixture('edge/dns-tcp.pcap')]);
    assert.equal(ndjson(other.stdout).length, 2);
  });

  it('refuses a pipeline file that does not type-check, naming the line', async () => {
    const bad = path.join(ROOT, 'pipelines', '.bad-test-pipeline.ts');
    writeFileSync(
      bad,
      `import { captureFile, decode, definePipeline, stdoutNdjson } from '../src';\n` +
        `export default definePipeline({ source: captureFile({ path: 'x' }), stages: [decode()], sink: stdoutNdjson() });\n`,
    );
    try {
      const r = await cli(['run', bad]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /does not type-check/);
      assert.match(r.stderr, /\.bad-test-pipeline\.ts:2:\d+: stage 1 \(decode\) outputs Packet, but the sink \(ndjson\) takes Event$/m);
    } finally {
      require('node:fs').rmSync(bad);
    }
  });

  it('refuses a pipeline file that exports no pipeline, or does not exist', async () => {
    const none = path.join(tmp, 'none.ts');
    writeFileSync(none, 'export const x = 1;\n');
    const r = await cli(['run', none, '--no-typecheck']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /does not export a pipeline/);
    const missing = await cli(['run', path.join(tmp, 'missing.ts')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /does not exist/);
  });

  it('lists capture devices with their link types', async () => {
    const r = await cli(['devices']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^lo\tEN10MB \(Ethernet\)\t127\.0\.0\.1/m);
  });

  it('refuses a missing device and a bad filter in one line', async () => {
    const dev = await cli(['capture', '-i', 'nope0']);
    assert.equal(dev.code, 1);
    assert.match(dev.stderr, /^pktflow: no such device "nope0" \(devices: .*lo.*\)\n$/);
    const filter = await cli(['read', fixture('http-dns.pcap'), '-f', 'tcp port']);
    assert.equal(filter.code, 1);
    assert.match(filter.stderr, /^pktflow: bad filter "tcp port": .*\n$/);
  });
});
