/**
 * SIP: the message parser, the analyzer driven directly (UDP datagrams and TCP
 * streams), the content probe, the SIPp fixtures and the generated edge cases,
 * property tests (random splits of the TCP streams, damaged conversations and
 * datagrams), a live SIPp UAC/UAS and registrar on free ports recognised by content,
 * and tshark's dissector on the same captures.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LinkType, makeFrame, type Frame } from '../src/core/frame';
import { makeEndpoints } from '../src/events/endpoints';
import type { Event } from '../src/events/types';
import type { TcpAnalyzer } from '../src/protocols/analyzer';
import { http } from '../src/protocols/http';
import { memcache } from '../src/protocols/memcache';
import { redis } from '../src/protocols/redis';
import { looksLikeSip, sip, type SipOptions } from '../src/protocols/sip';
import { isStartLine, parseAuth, parseHead, parseNameAddr, parseSdp, parseUri, SipParseError } from '../src/protocols/sip/message';
import { Connection } from '../src/tcp/connection';
import { haveSipp, scenarios, sippCalls } from '../scripts/fixtures/sip';
import { recordLoopback } from './capture';
import { ipv4, udp } from './gen/packets';
import { SDP, sipMessage } from './gen/sip';
import { conversations, mutate, mutation, rebuild } from './fuzz-helpers';
import { assertAccounting, fixture, pushThroughStages, readFile } from './helpers';
import { freePort } from './net';

const x = (e: unknown) => e as any;
const b = (s: string) => Buffer.from(s, 'latin1');
const head = (s: string) => {
  const buf = b(s);
  return parseHead(buf, 0, buf.length);
};

describe('SIP message parser', { timeout: 60_000 }, () => {
  it('reads requests and responses, compact forms, folded lines, lists', () => {
    const m = head('INVITE sip:bob@example.test;transport=udp SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-1 , SIP/2.0/UDP 10.0.0.7;branch=z9hG4bK-2\r\nVia: SIP/2.0/TCP 10.0.0.8\r\nf: "A, the first" <sip:a@x>;tag=1\r\nt: <sip:b@x>\r\ni: abc@h\r\nCSeq: 12 invite\r\nMax-Forwards: 69\r\nSubject: one\r\n two\r\nAllow: INVITE, ack,BYE\r\nk: timer, 100rel\r\nl: 0\r\n\r\n');
    assert.deepEqual([m.isRequest, m.method, m.uri, m.version, m.callId, m.cseqNum, m.cseqMethod, m.branch, m.maxForwards, m.contentLength], [true, 'INVITE', 'sip:bob@example.test;transport=udp', '2.0', 'abc@h', 12, 'INVITE', 'z9hG4bK-1', 69, 0]);
    assert.deepEqual(m.via, ['SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-1', 'SIP/2.0/UDP 10.0.0.7;branch=z9hG4bK-2', 'SIP/2.0/TCP 10.0.0.8']);
    assert.deepEqual([m.allow, m.supported], [['INVITE', 'ACK', 'BYE'], ['timer', '100rel']]);
    assert.equal(m.from, '"A, the first" <sip:a@x>;tag=1');
    const utf8 = Buffer.from('INVITE sip:z@x SIP/2.0\r\nFrom: "Zo\u00eb" <sip:z@x>\r\nCall-ID: 1\r\nCSeq: 1 INVITE\r\n\r\n', 'utf8');
    assert.equal(parseHead(utf8, 0, utf8.length).from, '"Zo\u00eb" <sip:z@x>', 'UTF-8 display names');
    const r = head('SIP/2.0 486 Busy Here\r\nCall-ID: abc@h\r\nCSeq: 12 INVITE\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-1\r\nWWW-Authenticate: Digest realm="r"\r\n\r\n');
    assert.deepEqual([r.isRequest, r.code, r.phrase, r.branch, r.challenge, r.contentLength], [false, 486, 'Busy Here', 'z9hG4bK-1', 'Digest realm="r"', -1]);
  });

  it('says what is wrong with what does not parse', () => {
    const bad = (s: string) => {
      try {
        head(s);
        return 'parsed';
      } catch (err) {
        assert.ok(err instanceof SipParseError);
        return err.reason;
      }
    };
    assert.equal(bad('HELLO\r\n\r\n'), 'bad_request_line');
    assert.equal(bad('SIP/2.0 99 x\r\n\r\n'), 'bad_status_code');
    assert.equal(bad('OPTIONS sip:a SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r\n'), 'no_call_id');
    assert.equal(bad('OPTIONS sip:a SIP/2.0\r\nCall-ID: 1\r\n\r\n'), 'no_cseq');
    assert.equal(bad('OPTIONS sip:a SIP/2.0\r\nCall-ID: 1\r\nCSeq: x OPTIONS\r\n\r\n'), 'bad_cseq');
    assert.equal(bad('OPTIONS sip:a SIP/2.0\r\nno colon here\r\n\r\n'), 'header_without_colon');
    assert.equal(bad('OPTIONS sip:a SIP/2.0\r\nCall-ID: 1\r\nCSeq: 1 OPTIONS\r\nContent-Length: -3\r\n\r\n'), 'bad_content_length');
  });

  it('splits URIs, name-addrs, credentials and SDP as packetbeat names them', () => {
    assert.deepEqual(parseUri('sip:alice:secret@[2001:db8::1]:5070;transport=tcp?subject=x'), { original: 'sip:alice:secret@[2001:db8::1]:5070;transport=tcp?subject=x', scheme: 'sip', username: 'alice', host: '2001:db8::1', port: 5070, params: { transport: 'tcp' } });
    assert.deepEqual(parseUri('tel:+15551234;phone-context=example.test'), { original: 'tel:+15551234;phone-context=example.test', scheme: 'tel', username: '', host: '+15551234', port: -1, params: { 'phone-context': 'example.test' } });
    const a = parseNameAddr('"Bob \\"B\\"" <sip:bob@b.test:5062;line=7>;tag=xyz;expires=60');
    assert.deepEqual([a.display, a.uri.username, a.uri.port, a.uri.params, a.params], ['Bob "B"', 'bob', 5062, { line: '7' }, { tag: 'xyz', expires: '60' }]);
    const bare = parseNameAddr('sip:carol@c.test;tag=9');
    assert.deepEqual([bare.display, bare.uri.original, bare.params.tag], ['', 'sip:carol@c.test', '9']);
    assert.deepEqual(parseAuth('Digest username="alice", realm="r.test", nonce="n,1", uri="sip:r.test", response="ff"'), { scheme: 'Digest', params: { username: 'alice', realm: 'r.test', nonce: 'n,1', uri: 'sip:r.test', response: 'ff' } });
    const s = parseSdp(SDP);
    assert.deepEqual(s, { version: '0', ownerUsername: 'alice', ownerSessionId: '2890844526', ownerVersion: '2890844526', ownerIp: '10.20.0.1', sessionName: 'Talk', connectionInfo: 'IN IP4 10.20.0.1', connectionAddress: '10.20.0.1' });
  });

  it('knows a start line', () => {
    for (const s of ['INVITE sip:bob@x SIP/2.0\r\n', 'REGISTER sips:r.test SIP/2.0\r\n', 'SIP/2.0 200 OK\r\n', 'SIP/2.0 100 Trying\r\n', 'MESSAGE tel:+1 SIP/2.0\n']) assert.ok(isStartLine(b(s), 0, s.length), s);
    for (const s of ['GET / HTTP/1.1\r\n', 'OPTIONS * RTSP/1.0\r\n', 'HTTP/1.1 200 OK\r\n', 'RTSP/1.0 200 OK\r\n', 'SIP/2.0 200 OK', 'invite sip:a SIP/2.0\r\n', 'INVITE bob SIP/2.0\r\n']) assert.ok(!isStartLine(b(s), 0, s.length), s);
  });
});

/** one SIP TCP connection, driven directly */
function conn(options: Partial<SipOptions> = {}, midStream = false) {
  const events: Event[] = [];
  const out = { emit: (e: Event) => events.push(e) };
  const inst = sip.create(options, out);
  const c = new Connection(1, 0, 4, 0, 0, 0, 0x0a000001, 0, 0, 0, 0x0a000002, 40000, 5060, -1, -1, 'syn', 1000, 0);
  const a: TcpAnalyzer = inst.tcp!({ conn: c, endpoints: makeEndpoints(c, 6), out, midStream });
  let t = 0;
  const send = (side: number, s: string | Buffer) => {
    const buf = typeof s === 'string' ? b(s) : s;
    a.data(side, buf, 0, buf.length, 1000, ++t * 1000);
  };
  // transactions wait in the protocol's shared table: its expiry is the datagram analyzer's
  const expire = (sec: number) => inst.datagrams!.expire(sec, 0);
  return { events, a, send, expire, stats: () => inst.stats() as any, ev: () => events.map(x) };
}

const accounting = (s: any) => assertAccounting({ analyze: { protocols: { sip: s } } } as any);

const INV = sipMessage({ start: 'INVITE sip:bob@example.test', callId: 'c1', cseq: '1 INVITE', branch: 'z9hG4bK-1', headers: ['Contact: "Alice" <sip:alice@10.20.0.1:5062;transport=TCP;line=3>;expires=30;q=0.5', 'User-Agent: test-ua', 'Content-Type: application/sdp', 'P-Associated-URI: <sip:alice@assoc.test>'], body: SDP });
const TRYING = sipMessage({ start: '100 Trying', callId: 'c1', cseq: '1 INVITE', branch: 'z9hG4bK-1' });
const OK = sipMessage({ start: '200 OK', callId: 'c1', cseq: '1 INVITE', branch: 'z9hG4bK-1' });
const ACK = sipMessage({ start: 'ACK sip:bob@10.20.0.2', callId: 'c1', cseq: '1 ACK', branch: 'z9hG4bK-2' });

describe('SIP transactions over TCP', { timeout: 60_000 }, () => {
  it('folds provisional responses into the transaction; the final one ends it; ACK is alone', () => {
    const h = conn();
    h.send(0, INV);
    h.send(1, TRYING + OK);
    h.send(0, ACK);
    const [inv, ack] = h.ev();
    assert.equal(h.events.length, 2);
    assert.deepEqual([inv.status, inv.method, inv.sip.code, inv.sip.status, inv.event.action, inv.event.outcome, inv.event.reason, inv.event.sequence], ['OK', 'INVITE', 200, 'OK', 'sip-invite', 'success', 'OK', 1]);
    assert.equal(inv.source.bytes, INV.length);
    assert.equal(inv.destination.bytes, TRYING.length + OK.length);
    assert.deepEqual(inv.sip.contact, { display_info: 'Alice', uri: { original: 'sip:alice@10.20.0.1:5062;transport=TCP;line=3', scheme: 'sip', username: 'alice', host: '10.20.0.1', port: 5062 }, transport: 'tcp', line: '3', expires: 30, q: 0.5 });
    assert.deepEqual(inv.sip.to, { uri: { original: 'sip:bob@example.test', scheme: 'sip', username: 'bob', host: 'example.test' }, tag: 'b2' });
    assert.deepEqual(inv.sip.private.uri.host, 'assoc.test');
    assert.deepEqual(inv.sip.user_agent, { original: 'test-ua' });
    assert.deepEqual(inv.sip.sdp.owner, { username: 'alice', session_id: '2890844526', version: '2890844526', ip: '10.20.0.1' });
    assert.deepEqual(inv.sip.sdp.connection, { info: 'IN IP4 10.20.0.1', address: '10.20.0.1' }, 'the session-level c= line, not the media one');
    assert.equal(inv.event.original, INV);
    assert.deepEqual([ack.status, ack.method, ack.sip.code, ack.error], ['OK', 'ACK', undefined, undefined]);
    const s = h.stats();
    assert.deepEqual([s.requests, s.responses, s.provisional_responses, s.transactions], [2, 2, 1, 2]);
    accounting(s);
  });

  it('the same events whatever the segmentation: every split point', () => {
    const convo: [number, string][] = [[0, INV], [1, TRYING + OK], [0, '\r\n\r\n' + ACK]];
    const essence = (e: any) => JSON.stringify([e.status, e.sip, e.source.bytes, e.destination.bytes, e.notes]);
    const ref = conn();
    for (const [side, s] of convo) ref.send(side, s);
    const want = ref.events.map(essence);
    for (let i = 1; i < INV.length; i += 7) {
      const h = conn();
      h.send(0, INV.slice(0, i));
      h.send(0, INV.slice(i));
      const r = TRYING + OK;
      const j = i % r.length;
      h.send(1, r.slice(0, j));
      h.send(1, r.slice(j));
      h.send(0, '\r\n\r\n' + ACK);
      assert.deepEqual(h.events.map(essence), want, `split at ${i}`);
    }
  });

  it('a request from the server side has the server as client', () => {
    const h = conn();
    h.send(1, sipMessage({ start: 'BYE sip:alice@10.20.0.1', callId: 'c1', cseq: '2 BYE', branch: 'z9hG4bK-9' }));
    h.send(0, sipMessage({ start: '200 OK', callId: 'c1', cseq: '2 BYE', branch: 'z9hG4bK-9' }));
    const [bye] = h.ev();
    assert.deepEqual([bye.status, bye.source.ip, bye.source.port, bye.destination.port], ['OK', '10.0.0.2', 5060, 40000]);
  });

  it('unanswered at close, after the timeout (packet time, from the last response), at the pending limit', () => {
    const h = conn({ transactionTimeoutSec: 32, maxPending: 2 });
    h.send(0, INV);
    h.send(1, TRYING);
    h.expire(1031);
    assert.equal(h.events.length, 0);
    h.expire(1033);
    assert.deepEqual(h.ev().map((e) => [e.notes, e.error.message]), [[['no final response within the transaction timeout (after 1 provisional)'], 'Unmatched request']]);
    h.send(0, sipMessage({ start: 'OPTIONS sip:a', callId: 'o', cseq: '1 OPTIONS', branch: 'b1' }) + sipMessage({ start: 'OPTIONS sip:a', callId: 'o', cseq: '2 OPTIONS', branch: 'b2' }) + sipMessage({ start: 'OPTIONS sip:a', callId: 'o', cseq: '3 OPTIONS', branch: 'b3' }));
    assert.deepEqual(x(h.events[1]).notes, ['too many transactions waiting for responses']);
    h.a.close(1040, 0);
    assert.deepEqual(h.ev().slice(2).map((e) => e.notes[0]), ['no final response before the connection closed', 'no final response before the connection closed']);
    const s = h.stats();
    assert.deepEqual(s.unmatched, { no_response: 2, pending_limit: 1, timeout: 1 });
    assert.equal(s.pending, 0);
    accounting(s);
  });

  it('bounds the bytes waiting requests hold; a long Call-ID is remembered by its hash', () => {
    const h = conn({ maxPendingBytes: INV.length * 2 });
    const inv = (n: number) => INV.replace(/c1/g, `c${n}`);
    h.send(0, inv(1) + inv(2) + inv(3));
    assert.deepEqual(h.ev().map((e) => [e.sip.call_id, e.notes]), [['c1', ['too many bytes of transactions waiting for responses']]]);
    assert.equal(h.stats().unmatched.pending_bytes_limit, 1);
    const long = 'L'.repeat(2000);
    h.send(0, sipMessage({ start: 'OPTIONS sip:a', callId: long, cseq: '1 OPTIONS', branch: 'z' }));
    h.send(1, sipMessage({ start: '200 OK', callId: long, cseq: '1 OPTIONS', branch: 'z' }));
    assert.equal(x(h.events[h.events.length - 1]).sip.call_id, long);
    h.a.close(1001, 0);
    const s = h.stats();
    assert.deepEqual([s.pending, s.pending_bytes], [0, 0]);
    accounting(s);
  });

  it('a gap inside a body costs the body; one across messages resynchronises at the next start line', () => {
    const h = conn();
    const cut = INV.length - 40;
    h.send(0, INV.slice(0, cut));
    h.a.gap(0, 10, 1000, 0);
    h.send(0, INV.slice(cut + 10));
    h.send(1, OK);
    h.send(0, 'OPTIONS sip:a SIP/2.0\r\nCall-ID: q\r\n');
    h.a.gap(0, 50, 1000, 0);
    h.send(0, 'ssing\r\nContent-Length: 0\r\n\r\n' + sipMessage({ start: 'OPTIONS sip:a', callId: 'q', cseq: '2 OPTIONS', branch: 'b2' }));
    h.send(1, sipMessage({ start: '200 OK', callId: 'q', cseq: '2 OPTIONS', branch: 'b2' }));
    const [inv, opt] = h.ev();
    assert.deepEqual([inv.status, inv.notes, inv.sip.sdp, inv.source.bytes], ['OK', ['packet loss: 10 bytes missing'], undefined, INV.length]);
    assert.deepEqual([opt.status, opt.sip.cseq.code], ['OK', 2]);
    assert.equal(h.stats().lost.gap, 1);
  });

  it('a capture begun inside a message finds the next start line', () => {
    const h = conn({}, true);
    h.send(0, INV.slice(100));
    h.send(0, ACK);
    h.send(1, 'Length: 0\r\n\r\n' + TRYING);
    assert.deepEqual(h.ev().map((e) => [e.method, e.sip.code, e.error?.message]), [['ACK', undefined, undefined], [undefined, 100, 'Unmatched response']]);
  });

  it('bounds: a header section too large, a body too large, no Content-Length', () => {
    const h = conn({ maxHeaderBytes: 512, maxBodyBytes: 16 });
    h.send(0, 'OPTIONS sip:a SIP/2.0\r\n' + 'X-Filler: y\r\n'.repeat(40));
    h.send(0, '\r\n' + INV);
    h.send(1, OK);
    h.send(0, sipMessage({ start: 'OPTIONS sip:a', callId: 'n', cseq: '1 OPTIONS', branch: 'n1', noLength: true }));
    h.send(1, sipMessage({ start: '200 OK', callId: 'n', cseq: '1 OPTIONS', branch: 'n1' }));
    const [inv, opt] = h.ev();
    assert.deepEqual(inv.notes, [`body of ${SDP.length} bytes not decoded: longer than 16`]);
    assert.equal(opt.status, 'OK');
    const s = h.stats();
    assert.deepEqual([s.violations.header_too_large, s.violations.no_content_length, s.bodies.too_large], [1, 1, 1]);
  });

  it('options: parseAuthorization, parseBody, keepOriginal off; sendRequest, sendResponse on', () => {
    const auth = sipMessage({ start: 'REGISTER sip:r.test', callId: 'r', cseq: '2 REGISTER', branch: 'r2', headers: ['Authorization: Digest username="alice", realm="r.test", nonce="n", uri="sip:r.test:5060", response="00"'] });
    const h = conn({ parseAuthorization: false, parseBody: false, keepOriginal: false, sendRequest: true, sendResponse: true });
    h.send(0, INV + auth);
    h.send(1, OK + sipMessage({ start: '200 OK', callId: 'r', cseq: '2 REGISTER', branch: 'r2' }));
    const [inv, reg] = h.ev();
    assert.deepEqual([inv.sip.sdp, inv.event.original, inv.request, inv.response], [undefined, undefined, INV, OK]);
    assert.deepEqual([reg.sip.auth, reg.user], [undefined, undefined]);
    const d = conn();
    d.send(0, auth);
    d.send(1, sipMessage({ start: '200 OK', callId: 'r', cseq: '2 REGISTER', branch: 'r2' }));
    const [r] = d.ev();
    assert.deepEqual(r.sip.auth, { scheme: 'Digest', realm: 'r.test', uri: { original: 'sip:r.test:5060', scheme: 'sip', host: 'r.test', port: 5060 } });
    assert.deepEqual([r.user, r.event.category], [{ name: 'alice' }, ['network', 'authentication']]);
    assert.ok(!JSON.stringify(r.sip).includes('nonce'));
  });
});

const udpFrame = (toServer: boolean, s: string | Buffer, i: number, port = 5060): Frame => {
  const p = typeof s === 'string' ? b(s) : s;
  const d = toServer ? ipv4('10.9.0.1', '10.9.0.2', 17, udp(5062, port, p)) : ipv4('10.9.0.2', '10.9.0.1', 17, udp(port, 5062, p));
  return makeFrame(1_700_000_000 + Math.floor(i / 1000), (i % 1000) * 1_000_000, LinkType.RAW, d.length, 0, d);
};

describe('SIP over UDP', { timeout: 60_000 }, () => {
  it('pairs datagrams; retransmitted requests and final responses are counted, not reported', () => {
    const frames = [udpFrame(true, INV, 0), udpFrame(true, INV, 1), udpFrame(false, TRYING, 2), udpFrame(false, OK, 3), udpFrame(false, OK, 4), udpFrame(true, ACK, 5), udpFrame(false, TRYING, 6), udpFrame(true, ACK, 7)];
    const { events, stats } = pushThroughStages(frames);
    assertAccounting(stats, 'udp');
    const e = events.map(x);
    assert.deepEqual(e.map((v) => [v.method, v.sip.code, v.status, v.network.transport, v.source.port]), [['INVITE', 200, 'OK', 'udp', 5062], ['ACK', undefined, 'OK', 'udp', 5062]]);
    const s = (stats.analyze as any).protocols.sip;
    assert.deepEqual([s.requests, s.responses, s.retransmissions], [4, 4, { requests: 2, responses: 2 }]);
  });

  it('the transaction timeout on packet time; unmatched responses', () => {
    const frames = [udpFrame(true, INV, 0), udpFrame(false, TRYING, 1000), udpFrame(false, sipMessage({ start: '404 Not Found', callId: 'zz', cseq: '1 INVITE', branch: 'q' }), 2000), udpFrame(true, ACK, 40_000)];
    const { events, stats } = pushThroughStages(frames);
    assertAccounting(stats, 'udp timeout');
    assert.deepEqual(events.map(x).map((v) => [v.method ?? v.sip.code, v.error?.message, v.notes?.[0]]), [
      [404, 'Unmatched response', 'response without a request'],
      ['INVITE', 'Unmatched request', 'no final response within the transaction timeout (after 1 provisional)'],
      ['ACK', undefined, undefined],
    ]);
  });
});

describe('SIP content probe', { timeout: 60_000 }, () => {
  const p = (s: string) => looksLikeSip(b(s), 0, s.length);

  it('recognises requests and responses, after keep-alive CRLFs', () => {
    for (const s of [INV, OK, TRYING, '\r\n\r\n' + ACK, 'REGISTER sip:r.test SIP/2.0\r\nVia: x\r\n']) assert.ok(p(s), s.slice(0, 30));
  });

  it('says no to HTTP, RTSP, Redis, Memcache, DNS; and their probes say no to SIP', () => {
    for (const s of ['GET / HTTP/1.1\r\nHost: a\r\n\r\n', 'HTTP/1.1 200 OK\r\n\r\n', 'OPTIONS rtsp://a/b RTSP/1.0\r\nCSeq: 1\r\n\r\n', '*1\r\n$4\r\nPING\r\n', 'get a\r\n', 'VALUE a 0 1\r\n']) assert.ok(!p(s), s);
    const dns = Buffer.from('001d12340100000100000000000003777777076578616d706c6503636f6d0000010001', 'hex');
    assert.ok(!looksLikeSip(dns, 0, dns.length));
    const opt = sipMessage({ start: 'OPTIONS sip:bob@example.test', callId: 'o', cseq: '1 OPTIONS', branch: 'b' });
    for (const s of [INV, OK, opt, ACK]) {
      for (const proto of [http, redis, memcache]) for (const side of [0, 1]) assert.ok(!proto.probe!(b(s), 0, s.length, side), `${proto.name} takes ${s.slice(0, 20)}`);
    }
  });

  it('finds SIP on other ports by content, TCP and UDP', async () => {
    const t = await readFile(fixture('sip/uac-uas-tcp.pcap'), { ports: { sip: [1] } });
    assert.deepEqual((t.stats.analyze as any).connections, { sip_by_probe: 1 });
    assert.equal(t.events.filter((e) => e.type === 'sip').length, 30);
    const u = await readFile(fixture('sip/uac-uas-udp.pcap'), { ports: { sip: [1] } });
    assert.equal((u.stats.analyze as any).datagrams.sip_by_probe, 60);
    assert.equal(u.events.filter((e) => e.type === 'sip').length, 30);
  });
});

describe('SIP fixtures from SIPp', { timeout: 120_000 }, () => {
  const calls = (events: Event[]) => events.map(x).filter((e) => e.type === 'sip');

  for (const [name, transport] of [['uac-uas-udp', 'udp'], ['uac-uas-tcp', 'tcp']] as const) {
    it(`${name}: 10 calls of INVITE (180, 200, SDP offer), ACK, BYE`, async () => {
      const { events, stats } = await readFile(fixture(`sip/${name}.pcap`));
      assertAccounting(stats, name);
      const e = calls(events);
      assert.deepEqual(counts(e.map((v) => v.method)), { INVITE: 10, ACK: 10, BYE: 10 });
      assert.ok(e.every((v) => v.status === 'OK' && v.error === undefined && v.network.transport === transport));
      const inv = e.filter((v) => v.method === 'INVITE');
      assert.ok(inv.every((v) => v.sip.code === 200 && v.sip.sdp.owner.username === 'user1' && v.sip.to.tag !== undefined && v.destination.bytes > 0));
      assert.equal(new Set(e.map((v) => v.sip.call_id)).size, 10);
      const s = (stats.analyze as any).protocols.sip;
      assert.deepEqual([s.requests, s.responses, s.provisional_responses, s.pending], [30, 30, 10, 0]);
    });
  }

  it('register-auth: 401 with a Digest challenge, then credentials and 200; OPTIONS; INVITE rejected 486 and its ACK', async () => {
    const { events, stats } = await readFile(fixture('sip/register-auth.pcap'));
    assertAccounting(stats, 'register-auth');
    const e = calls(events);
    assert.deepEqual(e.slice(0, 5).map((v) => [v.method, v.sip.code ?? null, v.status]), [['REGISTER', 401, 'Error'], ['REGISTER', 200, 'OK'], ['OPTIONS', 200, 'OK'], ['INVITE', 486, 'Error'], ['ACK', null, 'OK']]);
    const [challenged, registered, options, invite] = e;
    assert.deepEqual(challenged.sip.auth, { scheme: 'Digest', realm: 'pktflow.test' });
    assert.equal(challenged.user, undefined);
    assert.deepEqual([registered.sip.auth.scheme, registered.sip.auth.realm, registered.user.name, registered.event.category], ['Digest', 'pktflow.test', 'alice', ['network', 'authentication']]);
    assert.equal(registered.sip.private.uri.original, 'sip:alice@pktflow.test');
    assert.equal(registered.sip.user_agent.original, 'pktflow-fixture SIPp');
    assert.deepEqual(options.sip.allow, ['INVITE', 'ACK', 'CANCEL', 'OPTIONS', 'BYE', 'REGISTER', 'MESSAGE']);
    assert.deepEqual([options.sip.accept, options.sip.supported], ['application/sdp', ['replaces', 'timer']]);
    assert.deepEqual([invite.event.outcome, invite.event.reason, invite.sip.sdp.session.name], ['failure', 'Busy Here', 'pktflow call']);
    // the digest's nonce and response are in event.original only (the request as sent, as packetbeat keeps it)
    assert.ok(!JSON.stringify(e.map((v) => [v.sip, v.user, v.related])).includes('response='));
  });

  it('edge-udp: retransmissions, compact forms, CANCEL, 407, keep-alives, an orphan, an unanswered MESSAGE, not SIP', async () => {
    const { events, stats } = await readFile(fixture('sip/edge-udp.pcap'));
    assertAccounting(stats, 'edge-udp');
    const e = calls(events);
    assert.deepEqual(e.map((v) => `${v.method ?? '-'} ${v.sip.code ?? '-'}`), ['INVITE 200', 'ACK -', 'OPTIONS 200', 'CANCEL 200', 'INVITE 487', 'ACK -', 'INVITE 407', 'INVITE 603', '- 200', 'INFO 200', 'MESSAGE -']);
    const opt = e[2];
    assert.deepEqual([opt.sip.call_id, opt.sip.via.original.length, opt.sip.supported, opt.sip.to.tag], ['c1@10.20.0.1', 2, ['timer'], 'b9']);
    assert.deepEqual(e[6].sip.auth, { scheme: 'Digest', realm: 'proxy.example.test' });
    assert.equal(e[7].user.name, 'alice');
    const s = (stats.analyze as any).protocols.sip;
    assert.deepEqual([s.retransmissions, s.keepalives, s.violations], [{ requests: 1, responses: 1 }, 2, { bad_request_line: 1, body_truncated: 1 }]);
  });

  it('edge-tcp and edge-gaps: the stream keeps its place', async () => {
    const t = await readFile(fixture('sip/edge-tcp.pcap'));
    assertAccounting(t.stats, 'edge-tcp');
    assert.ok(calls(t.events).every((v) => v.error === undefined));
    const g = await readFile(fixture('sip/edge-gaps.pcap'));
    assertAccounting(g.stats, 'edge-gaps');
    assert.deepEqual(calls(g.events).map((v) => [v.method ?? null, v.status]), [['INVITE', 'OK'], ['OPTIONS', 'OK'], ['OPTIONS', 'Error'], ['OPTIONS', 'Error'], [null, 'Error'], ['BYE', 'OK']]);
  });
});


describe('SIP properties', { timeout: 600_000 }, () => {
  const convs = ['uac-uas-tcp.pcap', 'edge-tcp.pcap'].map((f) => conversations(fixture(`sip/${f}`), 5060));
  const essence = (e: any) => JSON.stringify([e.status, e.sip, e.notes, e.error, e.source.bytes, e.destination.bytes]);

  it("random splits of the fixtures' streams give the same events", () => {
    const want = convs.map((c) => pushThroughStages(rebuild(c, [], 5060)).events.map(essence));
    assert.deepEqual(want.map((w) => w.length), [30, 7]);
    fc.assert(
      fc.property(fc.nat(convs.length - 1), fc.array(fc.integer({ min: 1, max: 2000 }), { minLength: 1, maxLength: 12 }), (which, cuts) => {
        const { events, stats } = pushThroughStages(rebuild(convs[which], cuts, 5060));
        assertAccounting(stats, 'split');
        assert.deepEqual(events.map(essence), want[which]);
      }),
      { numRuns: 25 },
    );
  });

  it('damaged conversations never throw out of a stage and keep the accounting', () => {
    const turns = convs.flat();
    fc.assert(
      fc.property(fc.nat(turns.length - 1), fc.array(fc.tuple(fc.nat(), mutation), { maxLength: 6 }), fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 6 }), (which, muts, cuts) => {
        const conv = turns[which].map(([side, data]) => [side, data] as [number, Buffer]);
        for (const [i, m] of muts) {
          const t = conv[i % conv.length];
          t[1] = mutate(t[1], m);
        }
        assertAccounting(pushThroughStages(rebuild([conv], cuts, 5060)).stats, 'damaged sip');
      }),
      { numRuns: 150 },
    );
  });

  it('damaged and random datagrams never throw and keep the accounting', () => {
    const real = [INV, TRYING, OK, ACK].map(b);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.oneof(fc.tuple(fc.nat(3), mutation).map(([i, m]) => mutate(real[i], m)), fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.from(u)))), { minLength: 1, maxLength: 30 }), (dgrams) => {
        const frames = dgrams.map(([toServer, bytes], i) => udpFrame(toServer, bytes, i * 500));
        assertAccounting(pushThroughStages(frames).stats, 'udp');
      }),
      { numRuns: 200 },
    );
  });
});

const haveTshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;

/** tshark's SIP messages: requests by method, responses by status code, Call-IDs (a TCP segment may hold several) */
function tsharkSip(file: string, port = 5060): { requests: string[]; responses: number[]; callIds: Set<string> } {
  const out = execFileSync('tshark', ['-r', file, '-d', `udp.port==${port},sip`, '-d', `tcp.port==${port},sip`, '-Y', 'sip', '-T', 'fields', '-E', 'occurrence=a', '-e', 'sip.Method', '-e', 'sip.Status-Code', '-e', 'sip.Call-ID'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 << 20 });
  const r = { requests: [] as string[], responses: [] as number[], callIds: new Set<string>() };
  for (const line of out.split('\n').filter((l) => l !== '')) {
    const [m, c, id] = line.split('\t');
    if (m) r.requests.push(...m.split(','));
    if (c) r.responses.push(...c.split(',').map(Number));
    for (const i of (id ?? '').split(',')) if (i) r.callIds.add(i);
  }
  return r;
}

const counts = (values: (string | number)[]) => {
  const c: Record<string, number> = {};
  for (const v of values) c[v] = (c[v] ?? 0) + 1;
  return c;
};

/** pktflow's view of the same: every message counted in the stats, the transactions' methods and final codes from the events */
function compareWithTshark(file: string, events: Event[], stats: any, port = 5060): void {
  const t = tsharkSip(file, port);
  const e = events.map(x).filter((v) => v.type === 'sip');
  const s = stats.analyze.protocols.sip;
  assert.ok(t.requests.length > 0);
  assert.equal(s.requests, t.requests.length, 'requests');
  assert.equal(s.responses, t.responses.length, 'responses');
  assert.deepEqual(counts(e.map((v) => v.method)), counts(t.requests), 'methods');
  assert.deepEqual(counts(e.filter((v) => v.sip.code !== undefined).map((v) => v.sip.code)), counts(t.responses.filter((c) => c >= 200)), 'final status codes');
  assert.equal(s.provisional_responses, t.responses.filter((c) => c < 200).length, 'provisional responses');
  assert.deepEqual(new Set(e.map((v) => v.sip.call_id)), t.callIds, 'Call-IDs');
}

describe('SIP agrees with tshark', { skip: haveTshark ? false : 'tshark not installed', timeout: 120_000 }, () => {
  for (const name of ['uac-uas-udp', 'uac-uas-tcp', 'register-auth']) {
    it(`${name}.pcap: requests by method, final responses by code, provisional responses, Call-IDs`, async () => {
      const f = fixture(`sip/${name}.pcap`);
      const { events, stats } = await readFile(f);
      compareWithTshark(f, events, stats);
    });
  }
});

const root = process.getuid?.() === 0;
const haveTcpdump = spawnSync('tcpdump', ['--version'], { stdio: 'ignore' }).status === 0;

describe('live SIPp on free ports, recognised by content', { skip: !root ? 'needs root (tcpdump on lo)' : !haveTcpdump ? 'tcpdump not installed' : !haveSipp ? 'sip-tester (sipp) not installed' : false, timeout: 600_000 }, () => {
  for (const [name, transport, filter] of [['uac-uas over UDP', 'u1', 'udp'], ['uac-uas over TCP, a connection per call (-t tn)', 'tn', 'tcp']] as const) {
    it(name, async () => {
      const port = await freePort();
      const dir = mkdtempSync(path.join(tmpdir(), 'pktflow-sip-live-'));
      try {
        const file = path.join(dir, 'live.pcap');
        await recordLoopback({ filter: `${filter} port ${port}`, file }, () => sippCalls({ port, transport, calls: 5, uas: 'uas', uac: 'uac' }));
        // no --ports: the probe must find SIP on this port
        const { events, stats } = await readFile(file);
        assertAccounting(stats, name);
        const a = stats.analyze as any;
        if (filter === 'tcp') assert.deepEqual(a.connections, { sip_by_probe: 5 });
        else assert.equal(a.datagrams.sip_by_probe, 30);
        const e = events.map(x).filter((v) => v.type === 'sip');
        assert.deepEqual(counts(e.map((v) => `${v.method} ${v.sip.code ?? '-'}`)), { 'INVITE 200': 5, 'ACK -': 5, 'BYE 200': 5 });
        assert.ok(e.every((v) => v.status === 'OK' && v.network.transport === filter));
        compareWithTshark(file, events, stats, port);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('the registrar with digest authentication', async () => {
    const port = await freePort();
    const dir = mkdtempSync(path.join(tmpdir(), 'pktflow-sip-live-'));
    try {
      const file = path.join(dir, 'live.pcap');
      await recordLoopback({ filter: scenarios['register-auth'].filter(port), file }, () => sippCalls({ port, transport: 'u1', calls: 2, uas: 'registrar-uas.xml', uac: 'registrar-uac.xml', rate: 10, limit: 1 }));
      const { events, stats } = await readFile(file, { ports: { sip: [port] } });
      assertAccounting(stats, 'registrar');
      const e = events.map(x).filter((v) => v.type === 'sip');
      assert.deepEqual(e.filter((v) => v.method === 'REGISTER').map((v) => [v.sip.code, v.user?.name ?? null]), [[401, null], [200, 'alice'], [401, null], [200, 'alice']]);
      compareWithTshark(file, events, stats, port);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
