/**
 * TLS decryption with a key log (issue 11 §2): the NSS key log reader, the key
 * derivations against published vectors (RFC 8448's TLS 1.3 trace, the TLS 1.2 PRF
 * vector of the IETF TLS working group), every fixture of fixtures/tls-keylog (nginx
 * with curl and openssl s_client, each with the key log its client wrote; recorded by
 * scripts/fixtures/tls-keylog.ts) decrypted into the HTTP events tshark finds with the
 * same key log, the h2 handoff, missing keys, a damaged record, the pcapng Decryption
 * Secrets Block, split and damage properties over the decrypted connections, the CLI,
 * and a live run against nginx with curl writing its key log.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { Stats } from '../src/core/stage';
import type { Protocol } from '../src/protocols/analyzer';
import { AnalyzeStage } from '../src/protocols/analyze';
import { http } from '../src/protocols/http';
import { protocols } from '../src/protocols/registry';
import { DecodeStage } from '../src/decode/stage';
import { PcapReader } from '../src/sources/pcap';
import { TcpReorderer } from '../src/tcp/reorderer';
import { tls } from '../src/protocols/tls';
import { hkdfExpandLabel, prf12, RecordCipher, suiteOf } from '../src/protocols/tls/decrypt';
import { KeyLog, KeyLogError } from '../src/protocols/tls/keylog';
import { ItemKind } from '../src/tcp/items';
import { curlSession, makePki, startNginx, type Nginx, type Pki } from '../scripts/fixtures/tls-keylog';
import { recordLoopback } from './capture';
import { serverPort } from './gen/tls';
import { analyzeChunks, type Chunk, chunkDamage, damageChunks, FUZZ_SECONDS, fuzzParams, streamsOf } from './fuzz-helpers';
import { assertAccounting, cli, fixture, readFile, ROOT } from './helpers';
import { freePort } from './net';

const NAMES = ['tls10-cbc', 'tls11-cbc', 'tls12-aes128gcm', 'tls12-aes256gcm', 'tls12-chacha20', 'tls12-cbc', 'tls12-cbc-mte', 'tls13-aes128gcm', 'tls13-aes256gcm', 'tls13-chacha20', 'key-update', 'no-alpn'];
const pcap = (n: string) => fixture(`tls-keylog/${n}.pcap`);
const keylogOf = (n: string) => fixture(`tls-keylog/${n}.keylog`);
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// ---------------------------------------------------------------------------
// the key log

describe('NSS key log', { timeout: 60_000 }, () => {
  const cr = 'ab'.repeat(32);
  it('takes CLIENT_RANDOM and the TLS 1.3 traffic secrets by client random, ignores other labels and comments, counts bad lines', () => {
    const k = new KeyLog();
    const bad = k.addText(
      [
        '# a comment',
        `CLIENT_RANDOM ${cr.toUpperCase()} ${'11'.repeat(48)}`,
        `CLIENT_HANDSHAKE_TRAFFIC_SECRET ${'cd'.repeat(32)} ${'22'.repeat(32)}\r`,
        `SERVER_HANDSHAKE_TRAFFIC_SECRET ${'cd'.repeat(32)} ${'33'.repeat(32)}`,
        `CLIENT_TRAFFIC_SECRET_0 ${'cd'.repeat(32)} ${'44'.repeat(48)}`,
        `SERVER_TRAFFIC_SECRET_0 ${'cd'.repeat(32)} ${'55'.repeat(48)}`,
        `EXPORTER_SECRET ${'cd'.repeat(32)} ${'66'.repeat(32)}`,
        '',
        'CLIENT_RANDOM nothex 1234',
        `CLIENT_RANDOM ${'ab'.repeat(31)} ${'11'.repeat(48)}`,
        `CLIENT_RANDOM ${cr} ${'11'.repeat(47)}`,
        'garbage line',
      ].join('\n'),
    );
    assert.equal(bad, 9);
    assert.equal(k.size, 2);
    assert.deepEqual(k.get(cr)!.master, Buffer.alloc(48, 0x11));
    const s = k.get('cd'.repeat(32))!;
    assert.deepEqual([s.clientHandshake![0], s.serverHandshake![0], s.client0![0], s.server0![0], s.master], [0x22, 0x33, 0x44, 0x55, null]);
    assert.deepEqual([k.lines, k.badLines, k.ignoredLines], [10, 4, 1]);
  });

  it('a file without one valid line is an error naming the file and its first bad line; a missing file too', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'keylog-unit-'));
    try {
      const f = path.join(dir, 'not-a-keylog.txt');
      writeFileSync(f, '# comment\nhello world\nGET / HTTP/1.1\n');
      assert.throws(() => new KeyLog().load(f), (e: Error) => e instanceof KeyLogError && e.message === `${f}: line 2: not a key log line (LABEL <client_random hex> <secret hex>): no valid line in the file`);
      assert.throws(() => new KeyLog().load(path.join(dir, 'missing')), /missing: cannot open the key log: ENOENT/);
      // an empty file (a client that has not written yet) is no error
      writeFileSync(f, '');
      new KeyLog().load(f);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a file that grows is read again on a miss (a live client still writing), a half-written line waits', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'keylog-unit-'));
    try {
      const f = path.join(dir, 'k.log');
      writeFileSync(f, `CLIENT_RANDOM ${'01'.repeat(32)} ${'11'.repeat(48)}\n`);
      const k = new KeyLog();
      k.load(f);
      assert.equal(k.get('02'.repeat(32)), undefined);
      appendFileSync(f, `CLIENT_RANDOM ${'02'.repeat(32)} ${'22'.repeat(24)}`);
      assert.equal(k.get('02'.repeat(32)), undefined);
      appendFileSync(f, `${'22'.repeat(24)}\n`);
      assert.deepEqual(k.get('02'.repeat(32))!.master, Buffer.alloc(48, 0x22));
      assert.equal(k.badLines, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads a file larger than one read (4 MiB) a piece at a time: lines cut by a piece\'s end are whole, a bad line is numbered in the file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'keylog-unit-'));
    try {
      const f = path.join(dir, 'big.log');
      const n = 40_000; // 176 bytes a line: 7 MB, so two pieces cut inside a line
      const lines = Array.from({ length: n }, (_, i) => `CLIENT_RANDOM ${i.toString(16).padStart(64, '0')} ${'11'.repeat(48)}`);
      lines.splice(30_000, 0, 'not a key log line');
      writeFileSync(f, lines.join('\n')); // the last line without its newline
      const k = new KeyLog(n);
      k.load(f);
      assert.equal(k.size, n);
      assert.equal(k.badLines, 1);
      assert.ok(k.get((n - 1).toString(16).padStart(64, '0')));
      // every line whole, the ones around the piece boundaries included
      assert.equal(k.lines, n + 1);
      writeFileSync(f, [...Array.from({ length: 70_000 }, () => '# padding comment, long enough to pass the first piece of four mebibytes'), 'hello'].join('\n'));
      assert.throws(() => new KeyLog().load(f), /: line 70001: not a key log line/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('holds at most maxEntries client randoms, the oldest forgotten and counted', () => {
    const k = new KeyLog(3);
    for (let i = 0; i < 5; i++) k.addLine(`CLIENT_RANDOM ${i.toString(16).padStart(64, '0')} ${'11'.repeat(48)}`);
    assert.equal(k.size, 3);
    assert.equal(k.evicted, 2);
    assert.equal(k.get('0'.repeat(64)), undefined);
    assert.ok(k.get('4'.padStart(64, '0')));
  });
});

// ---------------------------------------------------------------------------
// key derivation and record protection against published vectors

describe('key derivation (published vectors)', { timeout: 60_000 }, () => {
  it('TLS 1.2 PRF (SHA-256): the IETF TLS working group vector', () => {
    const out = prf12('sha256', hex('9b be 43 6b a9 40 f0 17 b1 76 52 84 9a 71 db 35'), 'test label', hex('a0 ba 9f 93 6c da 31 18 27 a6 f7 96 ff d5 19 8c'), 100);
    assert.equal(
      out.toString('hex'),
      hex(`e3 f2 29 ba 72 7b e1 7b 8d 12 26 20 55 7c d4 53 c2 aa b2 1d 07 c3 d4 95 32 9b 52 d4 e6 1e db 5a
           6b 30 17 91 e9 0d 35 c9 c9 a4 6b 4e 14 ba f9 af 0f a0 22 f7 07 7d ef 17 ab fd 37 97 c0 56 4b ab
           4f bc 91 66 6e 9d ef 9b 97 fc e3 4f 79 67 89 ba a4 80 82 d1 22 ee 42 c5 a7 2e 5a 51 10 ff f7 01
           87 34 7b 66`).toString('hex'),
    );
  });

  // RFC 8448 §3, Simple 1-RTT Handshake (TLS_AES_128_GCM_SHA256)
  const sHs = hex('b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4 e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38');
  const cHs = hex('b3 ed db 12 6e 06 7f 35 a7 80 b3 ab f4 5e 2d 8f 3b 1a 95 07 38 f5 2e 96 00 74 6a 0e 27 a5 5a 21');
  const cAp = hex('9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce 65 52 87 5a fa 0b 06 df 00 87 f7 92 eb b7 c1 75 04 a5');
  const sAp = hex('a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32 82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43');

  it('TLS 1.3 HKDF-Expand-Label: RFC 8448 §3 handshake and application keys and IVs', () => {
    const k = (secret: Buffer, label: string, n: number) => hkdfExpandLabel('sha256', secret, label, Buffer.alloc(0), n).toString('hex');
    assert.equal(k(sHs, 'key', 16), '3fce516009c21727d0f2e4e86ee403bc');
    assert.equal(k(sHs, 'iv', 12), '5d313eb2671276ee13000b30');
    assert.equal(k(cHs, 'key', 16), 'dbfaa693d1762c5b666af5d950258d01');
    assert.equal(k(cHs, 'iv', 12), '5bd3c71b836e0b76bb73265f');
    assert.equal(k(cAp, 'key', 16), '17422dda596ed5d9acd890e3c63f5051');
    assert.equal(k(cAp, 'iv', 12), '5b78923dee08579033e523d9');
    assert.equal(k(sAp, 'key', 16), '9f02283b6c9c07efc26bb9f2ac92e356');
    assert.equal(k(sAp, 'iv', 12), 'cf782b88dd83549aadf1e984');
  });

  it("TLS 1.3 records: RFC 8448 §3's application data of each side decrypts to its 50 bytes 00..31", () => {
    const suite = suiteOf(0x1301)!;
    // the client's first record under its application keys (sequence 0); the server's second (its NewSessionTicket was the first)
    const records: [Buffer, number, string][] = [
      [cAp, 0, '17 03 03 00 43 a2 3f 70 54 b6 2c 94 d0 af fa fe 82 28 ba 55 cb ef ac ea 42 f9 14 aa 66 bc ab 3f 2b 98 19 a8 a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b 62 97 4e 1f 5a 62 92 a2 97 70 14 bd 1e 3d ea e6 3a ee bb 21 69 49 15 e4'],
      [sAp, 1, '17 03 03 00 43 2e 93 7e 11 ef 4a c7 40 e5 38 ad 36 00 5f c4 a4 69 32 fc 32 25 d0 5f 82 aa 1b 36 e3 0e fa f9 7d 90 e6 df fc 60 2d cb 50 1a 59 a8 fc c4 9c 4b f2 e5 f0 a2 1c 00 47 c2 ab f3 32 54 0d d0 32 e1 67 c2 95 5d'],
    ];
    for (const [secret, seq, rec] of records) {
      const b = hex(rec);
      const rc = RecordCipher.tls13(suite, secret);
      rc.seq = seq;
      const r = rc.open(23, b, 5, b.length);
      assert.ok(r !== null);
      assert.equal(r.type, 23);
      assert.deepEqual([...r.data], Array.from({ length: 50 }, (_, i) => i));
      // the same record with one bit flipped does not authenticate
      b[20] ^= 1;
      rc.seq = seq;
      assert.equal(rc.open(23, b, 5, b.length), null);
    }
  });

  it('the suites decrypted, from their IANA names', () => {
    assert.deepEqual(suiteOf(0xc02f), { name: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256', kind: 'gcm', keyLen: 16, ivLen: 4, mac: '', macLen: 0, hash: 'sha256' });
    assert.equal(suiteOf(0xc030)!.hash, 'sha384');
    assert.equal(suiteOf(0xcca8)!.kind, 'chacha');
    assert.deepEqual(suiteOf(0xc027), { name: 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256', kind: 'cbc', keyLen: 16, ivLen: 16, mac: 'sha256', macLen: 32, hash: 'sha256' });
    assert.equal(suiteOf(0xc014)!.mac, 'sha1');
    assert.equal(suiteOf(0x1302)!.keyLen, 32);
    assert.equal(suiteOf(0x000a), null); // 3DES
  });
});

// ---------------------------------------------------------------------------
// the fixtures

const haveTshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;

/** tshark's decryption: [method, uri] of the requests, the response codes */
function tsharkHttp(file: string, keylog: string): { requests: string[][]; codes: number[] } {
  const out = execFileSync('tshark', ['-r', file, '-o', `tls.keylog_file:${keylog}`, '-Y', 'http', '-T', 'fields', '-E', 'separator=|', '-e', 'http.request.method', '-e', 'http.request.uri', '-e', 'http.response.code'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const requests: string[][] = [];
  const codes: number[] = [];
  for (const line of out.split('\n').filter((l) => l !== '')) {
    const [m, uri, code] = line.split('|');
    if (m !== '') requests.push([m, uri.split('?')[0]]);
    if (code !== '') codes.push(Number(code));
  }
  return { requests, codes };
}

describe('decrypted fixtures agree with tshark -o tls.keylog_file', { skip: haveTshark ? false : 'tshark not installed', timeout: 600_000 }, () => {
  for (const name of NAMES) {
    it(`${name}: the same requests and status codes, marked as over TLS`, async () => {
      const r = await readFile(pcap(name), { options: { tls: { keylogFile: keylogOf(name) } } });
      assertAccounting(r.stats, name);
      const hs = r.events.filter((e) => e.type === 'http') as any[];
      const want = tsharkHttp(pcap(name), keylogOf(name));
      assert.ok(want.requests.length >= 2, `${name}: tshark decrypts`);
      assert.deepEqual(
        hs.map((e) => [e.method, e.url.path]),
        want.requests,
      );
      assert.deepEqual(
        hs.map((e) => e.http.response.status_code),
        want.codes,
      );
      const t = r.events.find((e) => e.type === 'tls') as any;
      for (const e of hs) {
        assert.equal(e.status, 'OK');
        assert.equal(e.url.scheme, 'https');
        assert.match(e.url.full, /^https:\/\/tls\.pktflow\.test:\d+\//);
        // no-alpn: curl --no-alpn, the inner protocol found by the HTTP probe
        assert.deepEqual(e.tls, { established: true, version: t.tls.version, version_protocol: 'tls', cipher: t.tls.cipher, ...(name === 'no-alpn' ? {} : { next_protocol: 'http/1.1' }) });
      }
      const stats = (r.stats.analyze as any).protocols.tls;
      assert.equal(stats.decryption.connections, 1);
      assert.deepEqual(stats.decryption.failed, {});
      assert.deepEqual(stats.decryption.inner, { http: 1 });
    });
  }

  it('the curl fixtures: GET /, /a?x=1, /big (several records), a POST with its form; s_client: MAC-then-encrypt CBC, a request on each side of the KeyUpdate', async () => {
    const r = await readFile(pcap('tls12-cbc'), { options: { tls: { keylogFile: keylogOf('tls12-cbc') } } });
    const hs = r.events.filter((e) => e.type === 'http') as any[];
    assert.deepEqual(
      hs.map((e) => e.url.full.replace(/:\d+/, '')),
      ['https://tls.pktflow.test/', 'https://tls.pktflow.test/a?x=1', 'https://tls.pktflow.test/big', 'https://tls.pktflow.test/form?body=over+tls&name=pktflow'],
    );
    assert.equal(hs[2].http.response.body.bytes, 'pktflow over tls '.length * 2400);
    // MAC-then-encrypt: s_client -no_etm, the server's hello without encrypt_then_mac
    const mte = await readFile(pcap('tls12-cbc-mte'), { options: { tls: { keylogFile: keylogOf('tls12-cbc-mte') } } });
    assert.equal((mte.events[0] as any).tls.cipher, 'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384');
    assert.ok(!JSON.stringify((mte.events[0] as any).tls.detailed.server_hello).includes('encrypt_then_mac'));
    assert.equal(mte.events.filter((e) => e.type === 'http').length, 2);
    const k = await readFile(pcap('key-update'), { options: { tls: { keylogFile: keylogOf('key-update') } } });
    assert.deepEqual(
      k.events.filter((e) => e.type === 'http').map((e: any) => e.url.path),
      ['/before-key-update', '/after-key-update'],
    );
    // tshark sees the KeyUpdate of each side
    const updates = execFileSync('tshark', ['-r', pcap('key-update'), '-o', `tls.keylog_file:${keylogOf('key-update')}`, '-Y', 'tls.handshake.type==24', '-T', 'fields', '-e', 'tcp.srcport'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    assert.equal(updates.trim().split('\n').length, 2);
  });

  it('TLS 1.3 decrypted: ALPN from the EncryptedExtensions and the server certificate chain in the tls event', async () => {
    const r = await readFile(pcap('tls13-aes128gcm'), { options: { tls: { keylogFile: keylogOf('tls13-aes128gcm') } } });
    const t = r.events.find((e) => e.type === 'tls') as any;
    assert.equal(t.tls.next_protocol, 'http/1.1');
    assert.match(t.tls.server.subject, /CN=tls\.pktflow\.test/);
    assert.equal(t.tls.detailed.server_certificate_chain.length, 1);
    const plain = await readFile(pcap('tls13-aes128gcm'));
    assert.equal((plain.events[0] as any).tls.server.subject, undefined);
  });

  it('h2: tshark decrypts the HTTP/2 streams; the plaintext, preface first, is what the http2 analyzer gets (a stand-in in a test registry records it; the real analyzer: the next test)', () => {
    const out = execFileSync('tshark', ['-r', pcap('h2'), '-o', `tls.keylog_file:${keylogOf('h2')}`, '-Y', 'http2.headers.method', '-T', 'fields', '-e', 'http2.headers.method', '-e', 'http2.headers.path'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    assert.deepEqual(out.trim().split('\n'), ['GET\t/', 'GET\t/a?x=1', 'GET\t/big', 'POST\t/form']);
    const got: Buffer[][] = [[], []];
    const standIn: Protocol = {
      name: 'http2',
      tcpPorts: [],
      udpPorts: [],
      create: () => ({
        tcp: () => ({ data: (side, b, off, len) => void got[side].push(Buffer.from(b.subarray(off, off + len))), gap() {}, close() {}, expire() {} }),
        stats: () => ({}),
      }),
    };
    // the analyzer stage over a test registry: the built-in protocols with the stand-in for http2
    const a = new AnalyzeStage({ options: { tls: { keylogFile: keylogOf('h2') } } }, [...protocols.filter((p) => p.name !== 'http2'), standIn]);
    const d = new DecodeStage();
    const r = new TcpReorderer({ isServerPort: a.isServerPort });
    const file = pcap('h2');
    const events = [...a.push(r.push(d.push(new PcapReader(file).push(readFileSync(file))))), ...a.push(r.flush()), ...a.flush()];
    assert.deepEqual(
      events.map((e) => e.type),
      ['tls'],
    );
    const c = Buffer.concat(got[0]).toString('latin1');
    assert.ok(c.startsWith('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), c.slice(0, 30));
    const srv = Buffer.concat(got[1]);
    assert.equal(srv[3], 4, 'the server begins with SETTINGS');
    const stats = a.stats() as any;
    assert.deepEqual(stats.protocols.tls.decryption.inner, { http2: 1 });
    assert.equal(stats.connections.http2_inside_tls, 1);
  });

  it('h2 in the default stages: the http2 analyzer gives the streams tshark decrypts, as http events marked https (without one: the TLS event, counted as inner_protocol_not_running)', async () => {
    const r = await readFile(pcap('h2'), { options: { tls: { keylogFile: keylogOf('h2') } } });
    const inner = (r.stats.analyze as any).protocols.tls.decryption.inner;
    if (!protocols.some((p) => p.name === 'http2')) {
      assert.deepEqual(
        r.events.map((e) => e.type),
        ['tls'],
      );
      assert.deepEqual(inner, { inner_protocol_not_running: 1 });
    } else {
      // the http2 analyzer merged: the four streams as http events over TLS
      assert.deepEqual(inner, { http2: 1 });
      const hs = r.events.filter((e) => e.type === 'http') as any[];
      const want = execFileSync('tshark', ['-r', pcap('h2'), '-o', `tls.keylog_file:${keylogOf('h2')}`, '-Y', 'http2.headers.method', '-T', 'fields', '-e', 'http2.headers.method', '-e', 'http2.headers.path'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      assert.deepEqual(
        hs.map((e) => `${e.method}\t${e.url.path}`),
        want
          .trim()
          .split('\n')
          .map((l) => l.split('?')[0]),
      );
      assert.ok(hs.every((e) => e.http.version === '2' && e.http.response.status_code === 200 && e.url.scheme === 'https' && e.tls.next_protocol === 'h2'));
    }
  });

  it('a connection whose keys are missing stays a TLS event, counted as no_keys', async () => {
    const r = await readFile(pcap('tls12-aes128gcm'), { options: { tls: { keylogFile: keylogOf('tls13-chacha20') } } });
    assert.deepEqual(
      r.events.map((e) => e.type),
      ['tls'],
    );
    const d = (r.stats.analyze as any).protocols.tls.decryption;
    assert.deepEqual(d.not_decrypted, { no_keys: 1 });
    assert.equal(d.keylog.entries, 1);
    assert.equal(d.connections, 0);
  });

  it('a key log file written while the capture is read (a live client): the records wait for their secrets (up to 16), then are decrypted', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'keylog-grow-'));
    try {
      for (const name of ['tls13-aes128gcm', 'tls12-aes128gcm', 'tls13-chacha20']) {
        const k = path.join(dir, `${name}.keylog`);
        writeFileSync(k, '');
        const chunks = streamsOf(pcap(name), serverPort(pcap(name)));
        // the secrets come once the server's flight after its hello (TLS 1.3) or its Finished (TLS 1.2) was read
        const server = chunks.map((c, i) => [c, i] as const).filter(([c]) => c.kind === ItemKind.data && c.side === 1);
        const at = server[name.startsWith('tls13') ? 0 : 1][1];
        const { events, stats } = analyzeDecrypted(chunks, { tls: { keylogFile: k } }, [http], () => [], (i) => {
          if (i === at) appendFileSync(k, readFileSync(keylogOf(name)));
        });
        assert.equal(events.filter((e) => e.type === 'http').length, 4, name);
        assert.equal(stats.tls.decryption.connections, 1, name);
        assert.deepEqual(stats.tls.decryption.not_decrypted, {}, name);
        accounting(stats, name);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a pcapng with a Decryption Secrets Block (editcap --inject-secrets) gives the events of the pcap with --tls-keylog', async () => {
    const dsb = await readFile(fixture('tls-keylog/dsb.pcapng'));
    const keyed = await readFile(pcap('tls13-aes128gcm'), { options: { tls: { keylogFile: keylogOf('tls13-aes128gcm') } } });
    assert.equal(dsb.events.filter((e) => e.type === 'http').length, 4);
    assert.equal(JSON.stringify(dsb.events), JSON.stringify(keyed.events));
    assert.equal((dsb.stats.analyze as any).protocols.tls.decryption.capture_secrets.entries, 1);
    // the next capture read is not decrypted with the last one's secrets
    const after = await readFile(pcap('tls13-aes128gcm'));
    assert.deepEqual(
      after.events.map((e) => e.type),
      ['tls'],
    );
  });
});

// ---------------------------------------------------------------------------
// streams through TLS and its inner analyzers

/**
 * the chunks through fresh analyzers of tls, with `ctx.open` giving analyzers of the
 * inner protocols (http, or others given) as the analyzer stage does
 */
function analyzeDecrypted(chunks: Chunk[], options: Record<string, object>, inner: Protocol[] = [http], pieces: (i: number, len: number) => number[] = () => [], after: (i: number) => void = () => {}): { events: any[]; stats: Record<string, any> } {
  const r = analyzeChunks(tls, chunks, pieces, 7, options.tls ?? {}, { inner, innerOptions: options, after });
  return { events: r.events, stats: r.byProtocol };
}

const accounting = (stats: Record<string, Stats>, label: string) => assertAccounting({ analyze: { protocols: stats } } as Record<string, Stats>, label);

describe('TLS decryption fuzzing: decrypted streams', { timeout: (FUZZ_SECONDS + 600) * 1000 }, () => {
  const streams = NAMES.map((n) => streamsOf(pcap(n), serverPort(pcap(n))));
  const opts = NAMES.map((n) => ({ tls: { keylogFile: keylogOf(n) } }));
  const reference = streams.map((s, i) => JSON.stringify(analyzeDecrypted(s, opts[i]).events));

  it('through the chunk helper as through the stages: the same HTTP events', async () => {
    for (let i = 0; i < NAMES.length; i++) {
      const r = await readFile(pcap(NAMES[i]), { options: opts[i] });
      assert.deepEqual(
        JSON.parse(reference[i]).map((e: any) => e.url?.full ?? e.type),
        r.events.map((e: any) => e.url?.full ?? e.type),
      );
    }
  });

  it('a damaged record (a byte flipped in the /big response) is counted as an auth failure; the records after it are still decrypted', () => {
    for (const name of ['tls12-aes128gcm', 'tls12-cbc', 'tls13-chacha20']) {
      const chunks = streamsOf(pcap(name), serverPort(pcap(name))).map((c) => ({ ...c }));
      // the server's records: find the start of its third application-data record's body
      let pos = 0;
      let next = 0;
      let seen = 0;
      let target = -1;
      for (const c of chunks) {
        if (c.kind !== ItemKind.data || c.side !== 1) continue;
        while (target < 0 && next + 5 <= pos + c.len) {
          const hdr = Buffer.concat(chunks.filter((x) => x.kind === ItemKind.data && x.side === 1).map((x) => x.data!)).subarray(next, next + 5);
          if (hdr[0] === 23 && hdr.readUInt16BE(3) > 4000 && ++seen === 2) target = next + 5 + 100;
          next += 5 + hdr.readUInt16BE(3);
        }
        if (target >= pos && target < pos + c.len) {
          c.data = Buffer.from(c.data!);
          c.data[target - pos] ^= 0x40;
        }
        pos += c.len;
      }
      assert.ok(target > 0, name);
      const { events, stats } = analyzeDecrypted(chunks, { tls: { keylogFile: keylogOf(name) } });
      assert.deepEqual(stats.tls.decryption.failed, { auth_failed: 1 }, name);
      const hs = events.filter((e) => e.type === 'http');
      assert.equal(hs.length, 4, name);
      assert.equal(hs[3].method, 'POST', name);
      assert.equal(hs[3].http.response.status_code, 200, name);
      accounting(stats, name);
    }
  });

  it('bytes lost in the /big response: the inner analyzer gets the gap, the next record is found again (its start and sequence number searched), the POST after it decrypted', () => {
    for (const name of ['tls12-aes128gcm', 'tls12-chacha20', 'tls12-cbc', 'tls13-aes256gcm']) {
      const chunks = streamsOf(pcap(name), serverPort(pcap(name)));
      // the server's biggest chunks carry /big: lose the third of them, or its first 1000 bytes (the rest starts inside a record)
      const big = chunks.map((c, i) => [c, i] as const).filter(([c]) => c.kind === ItemKind.data && c.side === 1 && c.len > 2000);
      const at = big[2][1];
      for (const part of [false, true]) {
        const lost = chunks.flatMap((c, i) => (i !== at ? [c] : part ? [{ ...c, kind: ItemKind.gap, data: null, len: 1000 }, { ...c, data: c.data!.subarray(1000), len: c.len - 1000 }] : [{ ...c, kind: ItemKind.gap, data: null }]));
        const label = `${name}${part ? ' (part of a segment)' : ''}`;
        const { events, stats } = analyzeDecrypted(lost, { tls: { keylogFile: keylogOf(name) } });
        const d = stats.tls.decryption;
        assert.equal(d.gaps, 1, label);
        assert.equal(d.resynchronised, 1, label);
        assert.equal(d.resync_skipped_bytes > 0, part, label);
        assert.deepEqual(d.failed, {}, label);
        const hs = events.filter((e) => e.type === 'http');
        assert.deepEqual(
          hs.map((e) => [e.method, e.url.path, e.http.response?.status_code]),
          [
            ['GET', '/', 200],
            ['GET', '/a', 200],
            ['GET', '/big', 200],
            ['POST', '/form', 200],
          ],
          label,
        );
        assert.match(hs[2].notes.join(), /response bytes missing/, label);
        accounting(stats, label);
      }
    }
  });

  it('after a gap, records that never authenticate (another key, too many lost): the search gives up after 16 of them, counted, the accounting holds', () => {
    const name = 'tls12-aes128gcm';
    const chunks = streamsOf(pcap(name), serverPort(pcap(name)));
    const first = chunks.findIndex((c) => c.kind === ItemKind.data && c.side === 1 && c.len > 2000);
    const c = chunks[first];
    const fake = Buffer.concat(Array.from({ length: 20 }, (_, i) => Buffer.concat([Buffer.from([23, 3, 3, 0, 64]), Buffer.alloc(64, i + 1)])));
    const damaged = [...chunks.slice(0, first), { ...c, kind: ItemKind.gap, data: null }, { ...c, data: fake, len: fake.length }, ...chunks.slice(first + 1).filter((x) => x.side !== 1 || x.kind !== ItemKind.data)];
    const { events, stats } = analyzeDecrypted(damaged, { tls: { keylogFile: keylogOf(name) } });
    assert.deepEqual(stats.tls.decryption.failed, { resync_gave_up: 1 });
    assert.equal(stats.tls.decryption.resynchronised, 0);
    assert.ok(events.filter((e) => e.type === 'http').length >= 1);
    accounting(stats, 'gave up');
  });

  it("random splits of the decrypted fixtures' streams give the same events", () => {
    fc.assert(
      fc.property(fc.nat(streams.length - 1), fc.array(fc.tuple(fc.nat(), fc.array(fc.nat(), { minLength: 1, maxLength: 6 })), { maxLength: 40 }), fc.nat(), (which, splits, every) => {
        const cuts = new Map(splits.map(([i, c]) => [i % streams[which].length, c]));
        const dense = every % 5 === 0;
        const { events, stats } = analyzeDecrypted(streams[which], opts[which], [http], (i, len) => (dense ? Array.from({ length: Math.min(len, 40) }, (_, k) => k * 7) : (cuts.get(i) ?? [])));
        assert.equal(JSON.stringify(events), reference[which]);
        accounting(stats, NAMES[which]);
      }),
      fuzzParams(60, 2),
    );
  });

  it('damaged decrypted streams (flipped, inserted, cut bytes, gaps, lost closes) never throw, and the accounting holds', () => {
    const damage = chunkDamage([0x00, 0x01, 0x03, 0x14, 0x16, 0x17, 0x80, 0xff]);
    fc.assert(
      fc.property(fc.nat(streams.length - 1), fc.array(damage, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { maxLength: 6 }), (which, damages, cuts) => {
        const chunks = damageChunks(streams[which], damages);
        const { stats } = analyzeDecrypted(chunks, opts[which], [http], (i) => cuts.map((x) => x + i));
        accounting(stats, 'damaged');
      }),
      fuzzParams(120, 2),
    );
  });
});

// ---------------------------------------------------------------------------
// the CLI and a live run

describe('--tls-keylog on the CLI', { timeout: 120_000 }, () => {
  it('read decrypts; a file that is not a key log is a one-line error naming it; --help says so', async () => {
    const r = await cli(['read', pcap('tls12-chacha20'), '--tls-keylog', keylogOf('tls12-chacha20')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.split('\n').filter((l) => l.includes('"type":"http"') && l.includes('"scheme":"https"')).length, 4);
    const bad = await cli(['read', pcap('tls12-chacha20'), '--tls-keylog', pcap('tls12-chacha20')]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /tls12-chacha20\.pcap: line 1: not a key log line/);
    assert.equal(bad.stderr.trim().split('\n').length <= 2, true, bad.stderr);
    for (const c of ['read', 'replay', 'capture']) assert.match((await cli([c, '--help'])).stdout, /--tls-keylog <file>/, c);
  });
});

const canCapture = process.getuid?.() === 0 && spawnSync('nginx', ['-v'], { stdio: 'ignore' }).status === 0 && spawnSync('curl', ['--version'], { stdio: 'ignore' }).status === 0;

describe('live: nginx and curl writing its key log, captured on loopback, decrypted', { skip: canCapture ? false : 'needs root, nginx and curl', timeout: 300_000 }, () => {
  let dir = '';
  let pki: Pki;
  let nginx: Nginx;
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'keylog-live-'));
    pki = makePki(dir);
    nginx = await startNginx(pki, await freePort());
  });
  after(() => {
    nginx?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('TLS 1.2 and 1.3 sessions: every request decrypted, as curl made it', async () => {
    const file = path.join(dir, 'live.pcap');
    const keylog = path.join(dir, 'live.keylog');
    await recordLoopback({ filter: `tcp port ${nginx.port}`, file }, async () => {
      await curlSession(pki, nginx.port, keylog, ['--tlsv1.2', '--tls-max', '1.2']);
      await curlSession(pki, nginx.port, keylog, ['--tlsv1.3']);
    });
    const r = await readFile(file, { options: { tls: { keylogFile: keylog } } });
    assertAccounting(r.stats, 'live');
    const hs = r.events.filter((e) => e.type === 'http') as any[];
    assert.deepEqual(
      hs.map((e) => `${e.tls.version} ${e.method} ${e.url.path} ${e.http.response.status_code}`),
      ['1.2 GET / 200', '1.2 GET /a 200', '1.2 GET /big 200', '1.2 POST /form 200', '1.3 GET / 200', '1.3 GET /a 200', '1.3 GET /big 200', '1.3 POST /form 200'],
    );
    assert.ok(hs.every((e) => e.url.scheme === 'https'));
  });

  it('pktflow capture --tls-keylog on lo while curl writes the key log: every request decrypted as it happens', async () => {
    const keylog = path.join(dir, 'capture.keylog');
    writeFileSync(keylog, '');
    const pf = spawn(process.execPath, [path.join(ROOT, 'bin/pktflow.js'), 'capture', '-i', 'lo', '-f', `tcp port ${nginx.port}`, '--tls-keylog', keylog], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    pf.stdout!.on('data', (d) => (out += d));
    pf.stderr!.on('data', (d) => (err += d));
    const closed = new Promise<number>((resolve) => pf.on('close', (code) => resolve(code ?? 1)));
    const https = () => out.split('\n').filter((l) => l.includes('"type":"http"'));
    // polled, not timed: the capture is ready when it says so, done when the events are out (or it gives up after a minute)
    for (let i = 0; i < 600 && !/capturing on lo/.test(err); i++) await new Promise((r) => setTimeout(r, 100));
    await curlSession(pki, nginx.port, keylog, ['--tlsv1.3']);
    await curlSession(pki, nginx.port, keylog, ['--tlsv1.2', '--tls-max', '1.2']);
    for (let i = 0; i < 600 && https().length < 8; i++) await new Promise((r) => setTimeout(r, 100));
    pf.kill('SIGINT');
    assert.equal(await closed, 0, err);
    const hs = https().map((l) => JSON.parse(l));
    assert.deepEqual(
      hs.map((e) => `${e.tls.version} ${e.method} ${e.url.path} ${e.http.response.status_code}`),
      ['1.3 GET / 200', '1.3 GET /a 200', '1.3 GET /big 200', '1.3 POST /form 200', '1.2 GET / 200', '1.2 GET /a 200', '1.2 GET /big 200', '1.2 POST /form 200'],
    );
  });
});
