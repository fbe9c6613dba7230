/**
 * TLS: the hello parser and the X.509 fields (against openssl's own reading of a
 * certificate it made), the analyzer over the real fixtures (nginx with curl, openssl
 * s_client, Node's tls; scripts/fixtures/tls.ts), handshakes cut by gaps, alerts,
 * the bounds, the probe, properties over the fixtures' streams (any split gives the
 * same events; damage never throws), agreement with tshark's TLS dissector (SNI,
 * cipher suites, JA3, JA3S), and a live run against nginx.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { Stats } from '../src/core/stage';
import { makeEndpoints } from '../src/events/endpoints';
import { tls, type TlsOptions } from '../src/protocols/tls';
import { CIPHER_SUITES } from '../src/protocols/tls/ciphers';
import { parseHello } from '../src/protocols/tls/hello';
import { isGrease } from '../src/protocols/tls/names';
import { parseCertificate } from '../src/protocols/tls/x509';
import { ItemKind } from '../src/tcp/items';
import { makePki, scenarios, startNginx, type Nginx, type Pki } from '../scripts/fixtures/tls';
import { recordLoopback } from './capture';
import { serverPort, tlsEdgeCases } from './gen/tls';
import { analyzeChunks, type Chunk, chunkDamage, damageChunks, streamsOf } from './fuzz-helpers';
import { assertAccounting, fixture, readFile } from './helpers';
import { freePort } from './net';

const SECONDS = Number(process.env.PKTFLOW_FUZZ_SECONDS ?? 0);
const runs = (n: number): fc.Parameters<unknown> => (SECONDS > 0 ? { numRuns: Number.MAX_SAFE_INTEGER, interruptAfterTimeLimit: SECONDS * 1000 } : { numRuns: n });

const NAMES = ['tls13', 'tls12', 'client-cert', 'resumption', 'alert', 'hrr', 'node'];
const REAL = NAMES.map((n) => `tls/${n}.pcap`);

const events = (name: string, options: Partial<TlsOptions> = {}) => analyzeChunks(tls, streamsOf(fixture(`tls/${name}.pcap`), serverPort(fixture(`tls/${name}.pcap`))), () => [], 0, options);

/** the first handshake message of a given type in a stream's bytes from `side` (records taken apart) */
function handshakeBody(chunks: Chunk[], side: number, type: number): Buffer {
  const bytes = Buffer.concat(chunks.filter((c) => c.kind === ItemKind.data && c.side === side).map((c) => c.data!));
  let hs = Buffer.alloc(0);
  for (let i = 0; i + 5 <= bytes.length; ) {
    const len = bytes.readUInt16BE(i + 3);
    if (bytes[i] === 22) hs = Buffer.concat([hs, bytes.subarray(i + 5, i + 5 + len)]);
    i += 5 + len;
  }
  for (let i = 0; i + 4 <= hs.length; ) {
    const len = hs.readUIntBE(i + 1, 3);
    if (hs[i] === type) return hs.subarray(i + 4, i + 4 + len);
    i += 4 + len;
  }
  throw new Error(`no handshake message ${type}`);
}

/**
 * the chunks with each turn (a side's consecutive chunks on a connection) as one
 * chunk, its clear handshake records (those before the side's ChangeCipherSpec or
 * first encrypted record) joined and cut again into records of `size` bytes
 */
function reframe(chunks: Chunk[], size: number): Chunk[] {
  const out: Chunk[] = [];
  const clear = new Map<unknown, boolean[]>();
  let turn: Chunk | null = null;
  let parts: Buffer[] = [];
  const flushTurn = () => {
    if (turn === null) return;
    const b = Buffer.concat(parts);
    const state = clear.get(turn.conn) ?? [true, true];
    clear.set(turn.conn, state);
    const rebuilt: Buffer[] = [];
    let hs: Buffer[] = [];
    const flushHs = () => {
      const all = Buffer.concat(hs);
      hs = [];
      for (let i = 0; i < all.length; i += size) {
        const part = all.subarray(i, i + size);
        rebuilt.push(Buffer.from([22, 3, 3, part.length >> 8, part.length & 255]), part);
      }
    };
    let i = 0;
    for (; i + 5 <= b.length; ) {
      const len = b.readUInt16BE(i + 3);
      if (i + 5 + len > b.length) break;
      if (state[turn.side] && b[i] === 22) hs.push(b.subarray(i + 5, i + 5 + len));
      else {
        flushHs();
        if ((b[i] === 20 && !hrr(chunks)) || b[i] === 23) state[turn.side] = false;
        rebuilt.push(b.subarray(i, i + 5 + len));
      }
      i += 5 + len;
    }
    flushHs();
    rebuilt.push(b.subarray(i));
    const data = Buffer.concat(rebuilt);
    out.push({ ...turn, data, len: data.length });
    turn = null;
    parts = [];
  };
  for (const c of chunks) {
    if (c.kind !== ItemKind.data) {
      flushTurn();
      out.push(c);
      continue;
    }
    if (turn !== null && (turn.conn !== c.conn || turn.side !== c.side)) flushTurn();
    turn ??= c;
    parts.push(c.data!);
  }
  flushTurn();
  return out;
}

/** TLS 1.3 (a HelloRetryRequest's dummy ChangeCipherSpec keeps the hellos in clear): the fixture of that name */
const hrrChunks = new WeakSet<Chunk[]>();
const hrr = (chunks: Chunk[]) => hrrChunks.has(chunks);

describe('TLS hello parser and names', { timeout: 120_000 }, () => {
  const chunks = streamsOf(fixture('tls/tls13.pcap'), serverPort(fixture('tls/tls13.pcap')));

  it("reads curl's TLS 1.3 ClientHello and nginx's ServerHello", () => {
    const ch = parseHello(handshakeBody(chunks, 0, 1), true)!;
    assert.equal(ch.version, 0x0303);
    assert.deepEqual(ch.serverNames, ['tls.pktflow.test']);
    assert.deepEqual(ch.alpn, ['http/1.1']);
    assert.ok(ch.versions.includes(0x0304));
    assert.ok(ch.ciphers.includes(0x1301));
    assert.ok(ch.keyShareGroups.includes(29));
    const sh = parseHello(handshakeBody(chunks, 1, 2), false)!;
    assert.deepEqual(sh.versions, [0x0304]);
    assert.equal(sh.ciphers.length, 1);
    assert.deepEqual(sh.keyShareGroups, [29]);
  });

  it('a hello cut or damaged anywhere gives null or a hello, never a throw', () => {
    const body = handshakeBody(chunks, 0, 1);
    for (let n = 0; n < body.length; n++) parseHello(body.subarray(0, n), true);
    fc.assert(
      fc.property(fc.nat(body.length - 1), fc.integer({ min: 0, max: 255 }), fc.boolean(), (at, v, client) => {
        const b = Buffer.from(body);
        b[at] = v;
        parseHello(b, client);
      }),
      runs(500),
    );
  });

  it('GREASE values are recognised (RFC 8701)', () => {
    for (let i = 0; i < 16; i++) assert.ok(isGrease(0x0a0a + i * 0x1010));
    assert.ok(!isGrease(0x0a1a) && !isGrease(0x1301) && !isGrease(0x000a));
  });
});

describe('X.509 fields', { timeout: 120_000 }, () => {
  let dir = '';
  let pki: Pki;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'i11-tls-x509-'));
    pki = makePki(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('agree with openssl x509 on the leaf, the intermediate and the client certificate', () => {
    for (const [file, alg, key] of [
      [path.join(dir, 'leaf.pem'), 'ECDSA-SHA256', 'RSA'],
      [path.join(dir, 'int.pem'), 'SHA256-RSA', 'ECDSA'],
      [pki.clientCert, 'SHA384-RSA', 'ECDSA'],
    ]) {
      const der = execFileSync('openssl', ['x509', '-in', file, '-outform', 'DER']);
      const c = parseCertificate(der)!;
      const text = execFileSync('openssl', ['x509', '-in', file, '-noout', '-serial', '-subject', '-nameopt', 'RFC2253', '-issuer', '-enddate'], { encoding: 'utf8' });
      assert.equal(`serial=${c.fields.serial_number.padStart(4, '0')}`, text.match(/^serial=.*$/m)![0]);
      assert.equal(c.fields.subject.distinguished_name, text.match(/^subject=(.*)$/m)![1]);
      assert.equal(c.fields.issuer.distinguished_name, text.match(/^issuer=(.*)$/m)![1]);
      assert.equal(c.fields.not_after, new Date(text.match(/^notAfter=(.*)$/m)![1]).toISOString());
      assert.equal(c.fields.signature_algorithm, alg);
      assert.equal(c.fields.public_key_algorithm, key);
      assert.equal(c.fields.version_number, '3');
    }
    const leaf = parseCertificate(execFileSync('openssl', ['x509', '-in', path.join(dir, 'leaf.pem'), '-outform', 'DER']))!;
    assert.deepEqual(leaf.fields.alternative_names, ['tls.pktflow.test', 'localhost', '127.0.0.1']);
    assert.equal(leaf.fields.public_key_size, 2048);
    assert.equal(leaf.fields.public_key_exponent, 65537);
  });

  it('bytes that are not a certificate give null', () => {
    assert.equal(parseCertificate(Buffer.from('30030201ff', 'hex')), null);
    assert.equal(parseCertificate(Buffer.alloc(0)), null);
  });
});

describe('TLS analyzer over the fixtures', { timeout: 600_000 }, () => {
  it('TLS 1.3 (curl): version from supported_versions, established, SNI, no certificate (encrypted)', () => {
    const { events: [e], stats } = events('tls13');
    assert.equal(stats.transactions, 1);
    assert.equal(e.status, 'OK');
    assert.equal(e.tls.version, '1.3');
    assert.equal(e.tls.version_protocol, 'tls');
    assert.equal(e.tls.cipher, 'TLS_AES_256_GCM_SHA384');
    assert.equal(e.tls.curve, 'x25519');
    assert.equal(e.tls.established, true);
    assert.equal(e.tls.resumed, false);
    assert.equal(e.tls.client.server_name, 'tls.pktflow.test');
    assert.equal(e.server.domain, 'tls.pktflow.test');
    assert.match(e.tls.client.ja3, /^[0-9a-f]{32}$/);
    assert.match(e.tls.client.ja4, /^t13d\d{4}h1_[0-9a-f]{12}_[0-9a-f]{12}$/);
    assert.match(e.tls.server.ja4s, /^t130\dh1_1302_[0-9a-f]{12}$|^t130\d00_1302_[0-9a-f]{12}$/);
    assert.equal(e.tls.server.x509, undefined);
  });

  it('TLS 1.2 (curl, three cipher choices): the chain in clear, ECDHE curve, RSA key exchange without one', () => {
    const { events: es } = events('tls12');
    assert.deepEqual(es.map((e) => [e.tls.cipher, e.tls.curve ?? null, e.tls.established, e.tls.next_protocol]), [
      ['TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384', 'x25519', true, 'http/1.1'],
      ['TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384', 'x25519', true, 'http/1.1'],
      ['TLS_RSA_WITH_AES_128_GCM_SHA256', null, true, 'http/1.1'],
    ]);
    for (const e of es) {
      assert.equal(e.tls.server.subject, 'CN=tls.pktflow.test,O=pktflow test,L=Paris,C=FR');
      assert.equal(e.tls.server.issuer, 'CN=pktflow test intermediate,OU=fixtures,O=pktflow test,C=FR');
      assert.match(e.tls.server.hash.sha1, /^[0-9A-F]{40}$/);
      assert.deepEqual(e.tls.server.x509.alternative_names, ['tls.pktflow.test', 'localhost', '127.0.0.1']);
      assert.equal(e.tls.detailed.server_certificate_chain.length, 1);
      assert.equal(e.tls.detailed.server_certificate_chain[0].subject.common_name[0], 'pktflow test intermediate');
    }
    assert.deepEqual(es[1].tls.client.supported_ciphers, ['TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384', 'TLS_EMPTY_RENEGOTIATION_INFO_SCSV']);
  });

  it('a client certificate: requested, reported under tls.client', () => {
    const { events: [e] } = events('client-cert');
    assert.equal(e.tls.detailed.client_certificate_requested, true);
    assert.equal(e.tls.client.subject, 'CN=pktflow client,O=pktflow test');
    assert.equal(e.tls.client.x509.public_key_curve, 'secp384r1');
    assert.equal(e.tls.client.x509.public_key_size, 384);
  });

  it('resumption (openssl s_client -sess_out/-sess_in): by ticket, by session id, by PSK in TLS 1.3', () => {
    const { events: es, stats } = events('resumption');
    assert.deepEqual(es.map((e) => [e.tls.version, e.tls.resumed, e.tls.detailed.resumption_method ?? null, e.tls.established]), [
      ['1.2', false, null, true],
      ['1.2', true, 'ticket', true],
      ['1.2', false, null, true],
      ['1.2', true, 'id', true],
      ['1.3', false, null, true],
      ['1.3', true, 'psk', true],
    ]);
    assert.equal(stats.resumed, 3);
    assert.equal(es[1].tls.server.subject, undefined, 'no certificate in a resumed handshake');
  });

  it('alerts: the client rejecting the chain (unknown_ca), the server without a common cipher (handshake_failure)', () => {
    const { events: es, stats } = events('alert');
    assert.deepEqual(es.map((e) => [e.status, e.tls.established, e.tls.detailed.alert_types, e.tls.detailed.alerts[0].source, e.tls.detailed.alerts[0].severity, e.error.message]), [
      ['Error', false, ['unknown_ca'], 'client', 'fatal', 'TLS alert'],
      ['Error', false, ['handshake_failure'], 'server', 'fatal', 'TLS alert'],
    ]);
    assert.equal(stats.alerts, 2);
  });

  it("Node's tls client: ALPN h2 offered, http/1.1 chosen (TLS 1.2: in clear)", () => {
    const { events: es } = events('node');
    assert.deepEqual(es[0].tls.detailed.client_hello.extensions.application_layer_protocol_negotiation, ['h2', 'http/1.1']);
    assert.equal(es[1].tls.version, '1.2');
    assert.equal(es[1].tls.next_protocol, 'http/1.1');
  });

  it('through the whole pipeline (probe on a non-443 port): one event per handshake, accounting exact', async () => {
    let total = 0;
    for (const f of REAL) {
      const r = await readFile(fixture(f));
      assertAccounting(r.stats, f);
      total += r.events.filter((e) => e.type === 'tls').length;
    }
    assert.equal(total, 16);
  });

  it('HelloRetryRequest (s_client offering a P-384 share to a server of X25519 and P-256): the second ClientHello is read', () => {
    const { events: [e] } = events('hrr');
    assert.equal(e.status, 'OK');
    assert.equal(e.tls.version, '1.3');
    assert.equal(e.tls.curve, 'x25519');
    assert.equal(e.tls.detailed.hello_retry_request, true);
    assert.deepEqual(e.tls.detailed.client_hello.extensions.key_share, ['x25519']);
  });

  it('a capture that starts after the hellos reports nothing (no handshake to describe), and the accounting holds', () => {
    const f = fixture('tls/tls12.pcap');
    const chunks = streamsOf(f, serverPort(f));
    const seen = new Map<unknown, number>();
    const late = chunks.filter((c) => {
      if (c.kind !== ItemKind.data) return true;
      const n = (seen.get(c.conn) ?? 0) + 1;
      seen.set(c.conn, n);
      return n > 2; // the ClientHello and the server's first flight left out
    });
    const { events: es, stats } = analyzeChunks(tls, late);
    assert.equal(es.length, 0);
    assert.equal(stats.transactions_started, 0);
    assert.ok(stats.records > 0);
  });

  it('handshake messages split over many records give the same handshake (any record size)', () => {
    for (const name of ['tls12', 'client-cert', 'hrr']) {
      const f = fixture(`tls/${name}.pcap`);
      const chunks = streamsOf(f, serverPort(f));
      if (name === 'hrr') hrrChunks.add(chunks);
      const { events: wanted, stats: base } = analyzeChunks(tls, chunks);
      const want = wanted.map((e) => JSON.stringify(e.tls));
      assert.ok(want.length > 0);
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 3000 }), (size) => {
          const r = analyzeChunks(tls, reframe(chunks, size));
          assert.deepEqual(r.events.map((e) => JSON.stringify(e.tls)), want);
          if (size <= 50) assert.ok(r.stats.records > base.records, `${r.stats.records} records for ${base.records}`);
        }),
        { ...runs(30), examples: [[1], [15], [16]] },
      );
    }
  });

  it('generated edge cases (test/gen/tls.ts) are what the generator writes, and give their events', async () => {
    for (const [name, data] of Object.entries(tlsEdgeCases())) assert.ok(readFileSync(fixture(`tls/${name}`)).equals(data), `${name} is stale: npx tsx test/gen/tls.ts`);
    const gaps = (await readFile(fixture('tls/edge-gaps.pcap'))).events as any[];
    assert.deepEqual(gaps.map((e) => [e.status, e.tls.established, e.notes]), [
      ['Error', false, ['packet loss: 2040 server bytes missing, handshake cut']],
      ['Error', false, ['packet loss: 105 client bytes missing, handshake cut']],
    ]);
    assert.equal(gaps[1].tls.server.subject, 'CN=tls.pktflow.test,O=pktflow test,L=Paris,C=FR', 'what came before the loss is kept');
    const mid = (await readFile(fixture('tls/edge-midstream.pcap'))).events as any[];
    assert.deepEqual(mid.map((e) => [e.client.port, e.tls.version, e.status]), [[51012, '1.3', 'OK']]);
    const seg = await readFile(fixture('tls/edge-segments.pcap'));
    assertAccounting(seg.stats, 'edge-segments');
    assert.deepEqual((seg.events as any[]).map((e) => [e.server.port, e.tls.version, e.tls.established]), [
      [443, '1.3', true],
      [443, '1.2', true],
    ]);
  });

  it('a handshake that stops without a close is emitted at the transaction timeout, counted', () => {
    const f = fixture('tls/tls12.pcap');
    const chunks = streamsOf(f, serverPort(f));
    const conn = chunks[0].conn;
    // the first connection up to the server's first flight: no close, nothing after
    const mine = chunks.filter((c) => c.conn === conn && c.kind === ItemKind.data).slice(0, 2);
    const out: any[] = [];
    const inst = tls.create({}, { emit: (e) => out.push(e) });
    const a = inst.tcp!({ conn, endpoints: makeEndpoints(conn, 6), out: { emit: (e) => out.push(e) }, midStream: false });
    for (const c of mine) a.data(c.side, c.data!, 0, c.len, c.sec, c.nsec);
    const t = mine[1].sec;
    a.expire(t + 9, 0);
    assert.equal(out.length, 0);
    a.expire(t + 10, 0);
    assert.equal(out.length, 1);
    assert.deepEqual([out[0].status, out[0].tls.established, out[0].notes], ['Error', false, ['handshake not completed within the transaction timeout']]);
    const stats = inst.stats() as any;
    assert.deepEqual(stats.unmatched, { timeout: 1 });
    assertAccounting({ analyze: { protocols: { tls: stats } } } as Record<string, Stats>, 'timeout');
    a.close(t + 11, 0);
    assert.equal(out.length, 1, 'emitted once');
  });

  it('options: sendCertificates off, includeDetailedFields off, raw chains, every fingerprint', () => {
    const off = events('tls12', { sendCertificates: false, includeDetailedFields: false }).events[0];
    assert.equal(off.tls.server.subject, undefined);
    assert.equal(off.tls.detailed, undefined);
    const raw = events('tls12', { includeRawCertificates: true, fingerprints: ['sha1', 'sha256', 'md5'] }).events[0];
    assert.equal(raw.tls.server.certificate_chain.length, 2);
    assert.match(raw.tls.server.certificate_chain[0], /^-----BEGIN CERTIFICATE-----\n/);
    assert.deepEqual(Object.keys(raw.tls.server.hash), ['sha1', 'sha256', 'md5']);
    const der = Buffer.from(raw.tls.server.certificate_chain[0].replace(/-----[A-Z ]+-----|\n/g, ''), 'base64');
    assert.equal(raw.tls.server.hash.sha256, require('node:crypto').createHash('sha256').update(der).digest('hex').toUpperCase());
  });

  it('bounds: maxHandshakeBytes, maxChainLength, maxChainBytes are counted and said in notes', () => {
    const a = events('tls12', { maxHandshakeBytes: 1000 });
    assert.ok(a.stats.limits.handshake_too_long >= 1);
    assert.ok(a.events.every((e) => e.status === 'Error' && e.notes.some((n: string) => n.includes('maxHandshakeBytes'))));
    const b = events('tls12', { maxChainLength: 1 });
    assert.equal(b.stats.limits.chain_too_long, 3);
    assert.equal(b.events[0].tls.detailed.server_certificate_chain, undefined);
    assert.equal(b.events[0].tls.server.subject, 'CN=tls.pktflow.test,O=pktflow test,L=Paris,C=FR');
    const c = events('tls12', { maxChainBytes: 100 });
    assert.equal(c.stats.limits.chain_too_big, 3);
    assert.equal(c.events[0].tls.server.subject, undefined);
  });

  it('a handshake cut by a gap still gives an event that says so', () => {
    const f = fixture('tls/tls12.pcap');
    const chunks = streamsOf(f, serverPort(f));
    // the server's second flight (certificates) replaced by a gap
    const i = chunks.findIndex((c) => c.kind === ItemKind.data && c.side === 1);
    const cut = chunks.map((c, k) => (k === i ? { ...c, kind: ItemKind.gap, data: null } : c));
    const { events: es, stats } = analyzeChunks(tls, cut);
    assert.equal(es[0].status, 'Error');
    assert.equal(es[0].tls.established, false);
    assert.ok(es[0].notes.some((n: string) => n.startsWith('packet loss')));
    assert.equal(stats.partial, 1);
    assertAccounting({ analyze: { protocols: { tls: stats } } } as Record<string, Stats>, 'gap');
  });
});

describe('TLS probe', { timeout: 60_000 }, () => {
  const probe = (bytes: Buffer | string, side: number) => {
    const b = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
    return tls.probe!(b, 0, b.length, side);
  };
  it("takes the fixtures' first payloads", () => {
    for (const f of REAL) {
      const chunks = streamsOf(fixture(f), serverPort(fixture(f)));
      const first = chunks.find((c) => c.kind === ItemKind.data && c.side === 0)!;
      assert.ok(probe(first.data!, 0), f);
      const reply = chunks.find((c) => c.kind === ItemKind.data && c.side === 1)!;
      assert.ok(probe(reply.data!, 1), f);
    }
  });
  it("leaves other protocols' first bytes alone", () => {
    const others: [string, number][] = [
      ['GET / HTTP/1.1\r\n\r\n', 0],
      ['*1\r\n$4\r\nPING\r\n', 0],
      ['SSH-2.0-OpenSSH_9.2\r\n', 1],
      ['\x16\x03\x01\x00\x05\x02', 0], // a ServerHello from the client
      ['\x17\x03\x03\x00\x10abcdefgh', 0], // application data
      ['\x16\x02\x00\x00\x05\x01', 0],
      ['\x00\x00\x00\x08\x04\xd2\x16\x2f', 0], // PostgreSQL SSLRequest
    ];
    for (const [bytes, side] of others) assert.equal(probe(bytes, side), false, JSON.stringify(bytes));
  });
});

describe('TLS fuzzing', { timeout: (2 * SECONDS + 600) * 1000 }, () => {
  const streams = REAL.map((f) => streamsOf(fixture(f), serverPort(fixture(f))));
  const reference = streams.map((s) => JSON.stringify(analyzeChunks(tls, s).events));

  it("random splits of the fixtures' streams give the same events", () => {
    fc.assert(
      fc.property(fc.nat(streams.length - 1), fc.array(fc.tuple(fc.nat(), fc.array(fc.nat(), { minLength: 1, maxLength: 6 })), { maxLength: 40 }), fc.nat(), (which, splits, every) => {
        const cuts = new Map(splits.map(([i, c]) => [i % streams[which].length, c]));
        const dense = every % 5 === 0;
        const { events: es, stats } = analyzeChunks(tls, streams[which], (i, len) => (dense ? Array.from({ length: Math.min(len, 60) }, (_, k) => k) : (cuts.get(i) ?? [])));
        assert.equal(JSON.stringify(es), reference[which]);
        assertAccounting({ analyze: { protocols: { tls: stats } } } as Record<string, Stats>, REAL[which]);
      }),
      runs(100),
    );
  });

  it('damaged records, handshakes and certificates (flipped, inserted, cut bytes, gaps, lost closes) never throw, and the accounting holds', () => {
    const damage = chunkDamage([0x00, 0x01, 0x02, 0x03, 0x0b, 0x14, 0x15, 0x16, 0x17, 0x30, 0x80, 0x82, 0xff]);
    fc.assert(
      fc.property(fc.nat(streams.length - 1), fc.array(damage, { minLength: 1, maxLength: 20 }), fc.array(fc.nat(), { maxLength: 10 }), (which, damages, cuts) => {
        const chunks = damageChunks(streams[which], damages);
        const { stats } = analyzeChunks(tls, chunks, (i) => cuts.map((x) => x + i), 5);
        assertAccounting({ analyze: { protocols: { tls: stats } } } as Record<string, Stats>, 'damaged');
      }),
      runs(200),
    );
  });
});

// ---------------------------------------------------------------------------
// agreement with tshark's TLS dissector

const haveTshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;

describe('agreement with tshark (TLS dissector)', { skip: haveTshark ? false : 'tshark not installed', timeout: 600_000 }, () => {
  for (const name of NAMES) {
    it(`${name}: per connection, SNI, offered and chosen cipher suites, JA3, JA3S, certificates and alerts in clear`, () => {
      const f = fixture(`tls/${name}.pcap`);
      const port = serverPort(f);
      const out = execFileSync('tshark', ['-r', f, '-d', `tcp.port==${port},tls`, '-Y', 'tls.handshake.type==1 || tls.handshake.type==2', '-T', 'fields', '-E', 'separator=|', '-e', 'tcp.srcport', '-e', 'tcp.dstport', '-e', 'tls.handshake.type', '-e', 'tls.handshake.extensions_server_name', '-e', 'tls.handshake.ciphersuite', '-e', 'tls.handshake.ja3', '-e', 'tls.handshake.ja3s'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      const theirs = new Map<number, { sni: string; offered: number; chosen: string; ja3: string; ja3s: string }>();
      for (const line of out.trim().split('\n')) {
        const [src, dst, types, sni, suites, ja3, ja3s] = line.split('|');
        const client = Number(src) === port ? Number(dst) : Number(src);
        const t = theirs.get(client) ?? { sni: '', offered: 0, chosen: '', ja3: '', ja3s: '' };
        theirs.set(client, t);
        if (types.split(',').includes('1')) Object.assign(t, { sni, offered: suites.split(',').length, ja3 });
        if (types.split(',').includes('2')) Object.assign(t, { chosen: suites, ja3s });
      }
      const { events: es } = analyzeChunks(tls, streamsOf(f, port));
      assert.equal(es.length, theirs.size);
      for (const e of es) {
        const t = theirs.get(e.client.port)!;
        assert.ok(t !== undefined, `connection ${e.client.port}`);
        assert.equal(e.tls.client.server_name ?? '', t.sni);
        assert.equal(e.tls.client.supported_ciphers.length, t.offered);
        assert.equal(e.tls.client.ja3, t.ja3);
        if (t.chosen !== '') {
          assert.equal(e.tls.cipher, CIPHER_SUITES.get(Number(t.chosen)));
          assert.equal(e.tls.server.ja3s, t.ja3s);
        } else assert.equal(e.tls.server, undefined);
      }
      // certificates in clear (each with its length) and alerts in clear, per connection
      const more = execFileSync('tshark', ['-r', f, '-d', `tcp.port==${port},tls`, '-Y', 'tls.handshake.type==11 || tls.alert_message', '-T', 'fields', '-E', 'separator=|', '-e', 'tcp.srcport', '-e', 'tcp.dstport', '-e', 'tls.handshake.certificate_length', '-e', 'tls.alert_message.desc'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      const certs = new Map<number, number[]>();
      const alerts = new Map<number, number[]>();
      for (const line of more.trim().split('\n').filter((l) => l !== '')) {
        const [src, dst, lengths, desc] = line.split('|');
        const client = Number(src) === port ? Number(dst) : Number(src);
        if (lengths !== '') certs.set(client, [...(certs.get(client) ?? []), ...lengths.split(',').map(Number)]);
        if (desc !== '') alerts.set(client, [...(alerts.get(client) ?? []), ...desc.split(',').map(Number)]);
      }
      for (const e of es) {
        const ours = [e.tls.server, e.tls.client].filter((x) => x?.x509 !== undefined).length + (e.tls.detailed.server_certificate_chain?.length ?? 0) + (e.tls.detailed.client_certificate_chain?.length ?? 0);
        assert.equal(ours, certs.get(e.client.port)?.length ?? 0, `certificates of connection ${e.client.port}`);
        assert.deepEqual((e.tls.detailed.alerts ?? []).map((a: any) => a.code), alerts.get(e.client.port) ?? [], `alerts of connection ${e.client.port}`);
      }
    });
  }
});

// ---------------------------------------------------------------------------
// live: nginx and curl on a free port

describe('live: nginx with curl, captured', { timeout: 300_000 }, () => {
  let dir = '';
  let pki: Pki;
  let nginx: Nginx | null = null;
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'i11-tls-live-'));
    pki = makePki(dir);
    nginx = await startNginx(pki, await freePort());
  });
  after(() => {
    nginx?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('TLS 1.3 and 1.2 handshakes and an alert give their events', async () => {
    const file = path.join(dir, 'live.pcap');
    const port = nginx!.port;
    await recordLoopback({ filter: `tcp port ${port}`, file }, async () => {
      await scenarios.tls13.run(pki, port);
      await scenarios.tls12.run(pki, port);
      await scenarios.alert.run(pki, port);
    });
    const r = await readFile(file);
    assertAccounting(r.stats, 'live');
    const es = r.events.filter((e) => e.type === 'tls') as any[];
    assert.deepEqual(es.map((e) => [e.tls.version, e.status]), [
      ['1.3', 'OK'],
      ['1.2', 'OK'],
      ['1.2', 'OK'],
      ['1.2', 'OK'],
      ['1.2', 'Error'],
      ['1.2', 'Error'],
    ]);
  });
});
