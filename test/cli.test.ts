import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { cli, fixture, ndjson, ROOT } from './helpers';
import { httpLoad, writePcap, writePcapng } from './gen/packets';
import { captureFile } from '../src/sources/file';
import { protocols } from '../src/protocols/registry';
import type { Frame } from '../src/core/frame';

const tmp = mkdtempSync(path.join(tmpdir(), 'pktflow-cli-'));

describe('pktflow CLI', { timeout: 600_000 }, () => {
  /** the commands the main help lists */
  async function commands(): Promise<string[]> {
    const help = (await cli(['--help'])).stdout;
    return /\nCommands:\n((?:  .*\n)+)/.exec(help)![1].split('\n').filter((l) => l).map((l) => l.trim().split(' ')[0]);
  }

  it('has --help on every command and subcommand, and help for each', async () => {
    const all = await commands();
    assert.deepEqual(all, ['read', 'capture', 'replay', 'topics', 'devices', 'run', 'help']);
    const subcommands = ['topics create', 'topics list', 'topics describe'];
    for (const c of [...all, ...subcommands]) {
      for (const args of [[...c.split(' '), '--help'], [...c.split(' '), '-h'], ['help', ...c.split(' ')]]) {
        const r = await cli(args);
        assert.equal(r.code, 0, args.join(' '));
        assert.match(r.stdout, new RegExp(`^Usage: pktflow ${c} `), args.join(' '));
        assert.equal(r.stderr, '');
      }
    }
    for (const args of [['--help'], ['-h'], ['help'], []]) assert.match((await cli(args)).stdout, /^pktflow [\d.]+: .*\n\nUsage: pktflow <command>/);
  });

  it("--version is package.json's, from the bin's short way and from the CLI's", async () => {
    const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const args of [['--version'], ['-v']]) assert.deepEqual(await cli(args), { code: 0, stdout: `${version}\n`, stderr: '' });
    // the bin answers these without the bundle; the CLI itself gives the same
    const { main } = await import('../src/cli/main');
    let out = '';
    const write = process.stdout.write;
    process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
    try {
      assert.equal(await main(['--version']), 0);
    } finally {
      process.stdout.write = write;
    }
    assert.equal(out, `${version}\n`);
  });

  it('names every command when it does not know one, and help of an unknown command is an error', async () => {
    const r = await cli(['bogus']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `pktflow: unknown command "bogus" (commands: ${(await commands()).join(', ')})\nTry 'pktflow --help'.\n`);
    const h = await cli(['help', 'bogus']);
    assert.equal(h.code, 2);
    assert.match(h.stderr, /^pktflow: unknown command "bogus" \(commands: read, capture, replay, topics,/);
    assert.equal(h.stdout, '');
    const sub = await cli(['topics', 'bogus']);
    assert.equal(sub.code, 2);
    assert.equal(sub.stderr, `pktflow: unknown command "topics bogus" (topics commands: create, list, describe)\nTry 'pktflow topics --help'.\n`);
    for (const args of [['topics'], ['help', 'topics', 'bogus'], ['help', 'read', 'bogus']]) assert.equal((await cli(args)).code, 2, args.join(' '));
  });

  it('lists the registered protocols and their default ports in the help', async () => {
    const r = await cli(['help', 'read']);
    assert.match(r.stdout, new RegExp(`--protocols <list> +analyzers to run \\(default: all, ${protocols.map((p) => p.name).join(',')}\\)`));
    for (const p of protocols) assert.match(r.stdout, new RegExp(`^  ${p.name} +.*\\S`, 'm'));
    assert.match(r.stdout, /^  http +tcp 80,8080/m);
  });

  it("the README's protocol table lists every registered protocol with its default ports", () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const rows = new Map<string, string>();
    for (const m of readme.matchAll(/^\| [^|]+ \| `(\w+)` \| ([^|]+) \|/gm)) rows.set(m[1], m[2].trim());
    for (const p of protocols) {
      const ports = [...new Set([...p.tcpPorts, ...p.udpPorts])].join(', ');
      assert.equal(rows.get(p.name), ports === '' ? '—' : ports, p.name);
    }
  });

  it('rejects a bad flag or command in one line with exit status 2', async () => {
    for (const [args, msg] of [
      [['read', 'x.pcap', '--bogus'], /unknown option '--bogus'/],
      [['frobnicate'], /unknown command "frobnicate"/],
      [['read'], /read needs a capture file/],
      [['read', fixture('http-dns.pcap'), '--ports', 'http=99999'], /--ports: port 99999 in "http=99999" is outside 1-65535/],
      [['read', fixture('http-dns.pcap'), '--ports', 'http=80-90,abc'], /--ports: "abc" in "http=80-90,abc" is not a port number or range \(PORT or FROM-TO\)/],
      [['read', fixture('http-dns.pcap'), '--ports', 'http=90-80'], /--ports: range "90-80" in "http=90-80" ends before it starts/],
      [['read', fixture('http-dns.pcap'), '--ports', 'http=0-80'], /--ports: port 0 in "http=0-80" is outside 1-65535/],
      [['read', fixture('http-dns.pcap'), '--ports', 'foo=80'], /--ports: unknown protocol "foo" \(known: http, dns, icmp/],
      [['capture', '--ports', 'foo=80'], /--ports: unknown protocol "foo"/],
      [['replay', '--topic', 't', '--ports', 'foo=80'], /--ports: unknown protocol "foo"/],
      [['read', fixture('http-dns.pcap'), '--protocols', 'gopher'], /--protocols: unknown protocol "gopher" \(known: http, dns, icmp/],
      [['read', fixture('http-dns.pcap'), '--kafka-topic', 't', '--protocols', 'ftp'], /--protocols: unknown protocol "ftp"/],
      [['read', '-', '-'], /standard input \(-\) can be read only once/],
      [['read', fixture('http-dns.pcap'), '-f', 'tcp port'], /^pktflow: bad filter "tcp port": /],
      [['topics', 'create', 'a b'], /"a b" is not a Kafka topic name/],
      [['topics', 'create'], /topics create needs a topic name/],
      [['topics', 'create', 't', '--partitions', '0'], /--partitions takes a positive whole number/],
      [['read', fixture('http-dns.pcap'), '--stats', 'soon'], /--stats takes a number of seconds/],
      [['read', fixture('http-dns.pcap'), '--flow-period', '5'], /--flow-period and --flow-timeout go with --flows/],
      [['read', fixture('http-dns.pcap'), '--rotate-mb', '5'], /--rotate-mb goes with --write/],
      [['capture', '-c', 'x'], /--count takes a positive whole number/],
    ] as [string[], RegExp][]) {
      const r = await cli(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr.split('\n')[0], msg);
      assert.match(r.stderr, /^[^\n]*\nTry 'pktflow [a-z ]*--help'\.\n$/, 'the error, then where to look');
      assert.equal(r.stdout, '');
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

  it('takes packetbeat\'s HTTP and DNS options as flags', async () => {
    const r = await cli(['read', fixture('http/keepalive-nginx.pcap'), '-q', '--http-hide-keywords', 'pass', '--http-redact-headers', 'user-agent', '--http-headers', 'user-agent']);
    assert.equal(r.code, 0, r.stderr);
    const form = (ndjson(r.stdout) as any[]).find((e) => e.url.path === '/form');
    assert.equal(form.url.query, 'lang=en&pass=xxxxx&pass=xxxxx&user=alice');
    assert.equal(form.http.request.headers['user-agent'], 'REDACTED');
    const raw = ndjson((await cli(['read', fixture('http/keepalive-nginx.pcap'), '-q', '--http-send-request', '--http-max-message-size', '60'])).stdout) as any[];
    assert.deepEqual(raw.map((e) => e.request.length), raw.map(() => 60));
    assert.ok(raw[0].request.startsWith('GET / HTTP/1.1\r\n'));
    const dns = ndjson((await cli(['read', fixture('edge/dns-dnssec.pcap'), '-q', '--dns-include-authorities'])).stdout) as any[];
    assert.ok(dns.some((e) => e.dns.authorities !== undefined));
    const bad = await cli(['read', fixture('http-dns.pcap'), '--http-max-message-size', 'lots']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--http-max-message-size takes a positive whole number/);
  });

  it('takes port ranges in --ports', async () => {
    const http = async (ports: string) => ndjson((await cli(['read', fixture('http-dns.pcap'), '-q', '--protocols', 'http', '--no-probe', '--ports', ports])).stdout).length;
    assert.equal(await http('http=8000-8100'), 10, 'the fixture serves HTTP on 8080');
    assert.equal(await http('http=80,8081-9000'), 0);
    assert.equal(await http('http=8080-8080'), 10);
  });

  it('processes the frames before damage, then fails in one line naming file and offset', async () => {
    const r = await cli(['read', fixture('edge/truncated.pcap'), '-q']);
    assert.equal(r.code, 1);
    assert.equal(ndjson(r.stdout).length, 1);
    assert.equal(r.stderr, `pktflow: ${fixture('edge/truncated.pcap')}: offset 749: file ends inside a packet record (62 bytes captured, 10 present)\n`);
  });

  it('says only what is wrong with a missing or unreadable file: one line, no counters', async () => {
    for (const [file, reason] of [
      [path.join(tmp, 'nope.pcap'), 'cannot open: ENOENT'],
      [tmp, 'cannot open: is a directory'],
    ]) {
      const r = await cli(['read', file]);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr, `pktflow: ${file}: offset 0: ${reason}\n`);
    }
  });

  it('prints no counter line for a stage that has nothing to report', async () => {
    const r = await cli(['read', fixture('http-dns.pcap')]);
    assert.equal(r.code, 0);
    assert.doesNotMatch(r.stderr, /: -$/m);
    assert.doesNotMatch(r.stderr, /^pktflow: frames:/m, 'no filter and no dump: the frames stage has no counters');
    assert.match(r.stderr, /^pktflow: source: bytes_read=16075 frames=102 /m);
  });

  describe('several files', () => {
    /** http-dns.pcap cut in two at frame 50, inside TCP connections: a pcap, then a pcapng */
    async function rotated(): Promise<string[]> {
      const whole: Frame[] = [];
      for await (const b of captureFile({ path: fixture('http-dns.pcap') }).batches()) whole.push(...b);
      const gen = (fs: Frame[]) => fs.map((f) => ({ sec: f.tsSec, nsec: f.tsNsec, data: f.data, origLen: f.origLen }));
      const a = path.join(tmp, 'rotated.pcap');
      const b = path.join(tmp, 'rotated.1.pcapng');
      writeFileSync(a, writePcap(gen(whole.slice(0, 50))));
      writeFileSync(b, writePcapng([{ linkType: 1 }], gen(whole.slice(50))));
      return [a, b];
    }

    it('reads them in order as one capture: the same events as the whole file', async () => {
      const whole = await cli(['read', fixture('http-dns.pcap'), '--flows']);
      const parts = await cli(['read', ...(await rotated()), '--flows']);
      assert.equal(parts.code, 0, parts.stderr);
      assert.equal(ndjson(parts.stdout).length, 21 + ndjson(whole.stdout).filter((e) => e.type === 'flow').length);
      assert.equal(parts.stdout, whole.stdout);
      assert.match(parts.stderr, /^pktflow: source: bytes_read=\d+ frames=102 frame_bytes=14419\n/m);
    });

    it('names the file at fault: a missing one before anything is read, a damaged one after the frames before the damage', async () => {
      const [a] = await rotated();
      const missing = path.join(tmp, 'rotated.2.pcap');
      const m = await cli(['read', a, missing, '-q']);
      assert.equal(m.code, 1);
      assert.equal(m.stdout, '');
      assert.equal(m.stderr, `pktflow: ${missing}: offset 0: cannot open: ENOENT\n`);
      const d = await cli(['read', fixture('http-dns.pcap'), fixture('edge/truncated.pcap'), '-q']);
      assert.equal(d.code, 1);
      assert.equal(ndjson(d.stdout).length, 21 + 1);
      assert.equal(d.stderr, `pktflow: ${fixture('edge/truncated.pcap')}: offset 749: file ends inside a packet record (62 bytes captured, 10 present)\n`);
    });
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
  });

  it('refuses a bad filter as a bad command line (exit status 2), for files and live capture', { skip: process.getuid?.() !== 0 ? 'capture needs root' : false }, async () => {
    for (const args of [['read', fixture('http-dns.pcap'), '-f', 'tcp port'], ['capture', '-i', 'lo', '-f', 'tcp port']]) {
      const r = await cli(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.equal(r.stdout, '');
      assert.match(r.stderr, new RegExp(`^pktflow: bad filter "tcp port": [^\\n]+\\nTry 'pktflow ${args[0]} --help'\\.\\n$`));
    }
  });

  it('is a command on the PATH after set-up; SIGINT to a capture flushes it and exits 0', { skip: process.getuid?.() !== 0 ? 'capture needs root' : false }, async () => {
    const bin = path.join(tmp, 'bin');
    execFileSync('bash', [path.join(ROOT, 'scripts/install-command.sh'), bin], { stdio: 'ignore' });
    // a server that takes a request and never answers: the request is pending at the signal
    const server = createServer(() => {});
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
    const pf = spawn('pktflow', ['capture', '-i', 'lo', '-f', `tcp port ${port}`, '--ports', `http=${port}`, '--stats', '0.2'], { env, cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    pf.stdout.on('data', (d) => (stdout += d));
    pf.stderr.on('data', (d) => (stderr += d));
    const code = new Promise<number | null>((r) => pf.on('close', (c) => r(c)));
    try {
      while (!/capturing on lo/.test(stderr)) await new Promise((r) => setTimeout(r, 50));
      const client = connect(port, '127.0.0.1', () => client.write('GET /waiting HTTP/1.1\r\nHost: x\r\n\r\n'));
      // SYN, SYN-ACK, ACK and the request: once pktflow has captured four frames it holds the request
      const frames = () => Number(/\[progress\] source: (?:.* )?frames=(\d+)/.exec(stderr.split('\n').filter((l) => l.includes('[progress] source:')).pop() ?? '')?.[1] ?? 0);
      while (frames() < 4) await new Promise((r) => setTimeout(r, 50));
      // the signal goes to the process the command started: pktflow itself, not a wrapper
      pf.kill('SIGINT');
      assert.equal(await code, 0, stderr);
      client.destroy();
    } finally {
      pf.kill('SIGKILL');
      server.close();
    }
    const pending = ndjson(stdout).find((e: any) => e.type === 'http' && e.url?.path === '/waiting') as any;
    assert.ok(pending, `the pending request was flushed: ${stdout}`);
    assert.equal(pending.status, 'Error');
    assert.match(stderr, /^pktflow: source: frames=\d+/m);
  });
});
