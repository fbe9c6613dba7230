import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Event } from '../src/events/types';
import { makeEndpoints } from '../src/events/endpoints';
import { http, type HttpOptions } from '../src/protocols/http';
import { Connection } from '../src/tcp/connection';
import type { TcpAnalyzer } from '../src/protocols/analyzer';

/** one HTTP connection analyzer, driven directly */
function conn(options: Partial<HttpOptions> = {}, midStream = false, serverPort = 80) {
  const events: Event[] = [];
  const out = { emit: (e: Event) => events.push(e) };
  const inst = http.create(options, out);
  const c = new Connection(1, 0, 4, 0, 0, 0, 0x0a000001, 0, 0, 0, 0x0a000002, 40000, serverPort, -1, -1, 'syn', 1000, 0);
  const a: TcpAnalyzer = inst.tcp!({ conn: c, endpoints: makeEndpoints(c, 6), out, midStream });
  let t = 0;
  const send = (side: number, s: string | Buffer) => {
    const buf = typeof s === 'string' ? Buffer.from(s, 'latin1') : s;
    a.data(side, buf, 0, buf.length, 1000, ++t * 1000);
  };
  return { events, a, send, stats: () => inst.stats() as any };
}

const x = (e: Event) => e as any;
const GET = (p: string, extra = '') => `GET ${p} HTTP/1.1\r\nHost: example.test:8080\r\nUser-Agent: t/1\r\n${extra}\r\n`;
const OK = (body: string, extra = '') => `HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`;

describe('HTTP analyzer', { timeout: 600_000 }, () => {
  it('pairs keep-alive requests and responses, with ECS fields', () => {
    const h = conn();
    h.send(0, GET('/a?q=1'));
    h.send(1, OK('alpha'));
    h.send(0, GET('/b'));
    h.send(1, 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
    assert.equal(h.events.length, 2);
    const [a, b] = h.events.map(x);
    assert.equal(a.status, 'OK');
    assert.equal(a.method, 'GET');
    assert.equal(a.query, 'GET /a');
    assert.deepEqual(a.url, { scheme: 'http', domain: 'example.test', port: 8080, path: '/a', full: 'http://example.test:8080/a?q=1', query: 'q=1' });
    assert.equal(a.http.response.status_code, 200);
    assert.equal(a.http.response.status_phrase, 'ok');
    assert.equal(a.http.response.body.bytes, 5);
    assert.equal(a.http.response.mime_type, 'text/html');
    assert.equal(a.user_agent.original, 't/1');
    assert.equal(a.event.duration, 1000);
    assert.equal(b.status, 'Error');
    assert.equal(b.http.response.status_code, 404);
    assert.equal(a.source.bytes, GET('/a?q=1').length);
    assert.equal(a.destination.bytes, OK('alpha').length);
  });

  it('pairs pipelined requests in order, HEAD without a body', () => {
    const h = conn();
    h.send(0, GET('/1') + 'HEAD /2 HTTP/1.1\r\nHost: h\r\n\r\n' + GET('/3'));
    h.send(1, OK('one') + 'HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n' + OK('three'));
    assert.deepEqual(h.events.map((e) => [x(e).url.path, x(e).http.response.body.bytes]), [['/1', 3], ['/2', 0], ['/3', 5]]);
  });

  it('decodes chunked bodies with extensions and trailers', () => {
    const h = conn({ includeBodyFor: ['text/plain'] });
    h.send(0, GET('/c'));
    h.send(1, 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n4;name=v\r\nWiki\r\n5\r\npedia\r\n0\r\nExpires: never\r\n\r\n');
    const e = x(h.events[0]);
    assert.equal(e.http.response.body.bytes, 9);
    assert.equal(e.http.response.body.content, 'Wikipedia');
  });

  it('ends a body without length at close; 204 and 304 carry none', () => {
    const h = conn();
    h.send(0, GET('/204') + GET('/304') + GET('/close'));
    h.send(1, 'HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\nHTTP/1.0 200 OK\r\n\r\nuntil the end');
    assert.equal(h.events.length, 2);
    h.a.close(1001, 0);
    assert.deepEqual(h.events.map((e) => x(e).http.response.status_code), [204, 304, 200]);
    assert.equal(x(h.events[2]).http.response.body.bytes, 'until the end'.length);
  });

  it('skips 100 Continue and pairs the final response', () => {
    const h = conn();
    h.send(0, 'PUT /up HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n');
    h.send(1, 'HTTP/1.1 100 Continue\r\n\r\n');
    h.send(0, 'data');
    h.send(1, 'HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n');
    assert.equal(h.events.length, 1);
    assert.equal(x(h.events[0]).http.response.status_code, 201);
    assert.equal(x(h.events[0]).http.request.body.bytes, 4);
    assert.equal(h.stats().interim_responses, 1);
  });

  it('captures only the headers asked for, and bodies only up to the limit', () => {
    const h = conn({ sendHeaders: ['content-type', 'x-multi'], includeBodyFor: ['text/html'], maxBodyBytes: 4 });
    h.send(0, GET('/h', 'X-Multi: a\r\nX-Multi: b\r\n'));
    h.send(1, OK('0123456789'));
    const e = x(h.events[0]);
    assert.deepEqual(e.http.request.headers, { 'content-length': 0, 'x-multi': 'a, b' });
    assert.deepEqual(e.http.response.headers, { 'content-length': 10, 'content-type': 'text/html; charset=utf-8' });
    assert.equal(e.http.response.body.content, '0123');
    assert.equal(e.http.response.body.truncated, true);
    assert.equal(e.http.response.body.bytes, 10);
  });

  it('marks a transaction partial when a gap hits its body, and stays in step', () => {
    const h = conn();
    h.send(0, GET('/lossy'));
    h.send(1, 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n' + 'a'.repeat(40));
    h.a.gap(1, 30, 1000, 0);
    h.send(1, 'b'.repeat(30));
    h.send(0, GET('/next'));
    h.send(1, OK('fine'));
    assert.equal(h.events.length, 2);
    assert.deepEqual(x(h.events[0]).notes, ['packet loss: 30 response bytes missing']);
    assert.equal(x(h.events[1]).url.path, '/next');
  });

  it('keeps pairing in step when a request is lost to a gap', () => {
    const h = conn();
    h.send(0, 'GET /half');
    h.a.gap(0, 50, 1000, 0);
    h.send(0, GET('/second'));
    h.send(1, OK('first'));
    h.send(1, OK('second'));
    assert.equal(h.events.length, 2);
    assert.equal(x(h.events[0]).http.request, undefined);
    assert.deepEqual(x(h.events[0]).notes, ['request lost to packet loss']);
    assert.equal(x(h.events[1]).url.path, '/second');
  });

  it('bounds the header section and resynchronises on the next message', () => {
    const h = conn({ maxHeaderBytes: 256 });
    h.send(0, 'GET /big HTTP/1.1\r\n' + 'X-Fill: y\r\n'.repeat(100));
    h.send(0, '\r\n');
    h.send(0, GET('/ok'));
    h.send(1, OK('ok'));
    assert.equal(h.stats().violations.request_header_too_large, 1);
    assert.equal(x(h.events[0]).url.path, '/ok');
  });

  it('emits an unanswered request after the timeout, with status Error', () => {
    const h = conn({ transactionTimeoutSec: 10 });
    h.send(0, GET('/slow'));
    h.a.expire(1005, 0);
    assert.equal(h.events.length, 0);
    h.a.expire(1011, 0);
    assert.equal(h.events.length, 1);
    assert.equal(x(h.events[0]).status, 'Error');
    assert.deepEqual(x(h.events[0]).notes, ['no response within the transaction timeout']);
    assert.equal(x(h.events[0]).error.message, 'Unmatched request');
    assert.equal(x(h.events[0]).http.response, undefined);
  });

  it('emits a response without a request as an unmatched response, and counts it as started and emitted', () => {
    const h = conn({}, true);
    h.send(1, 'HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope');
    h.send(0, GET('/next'));
    h.send(1, OK('fine'));
    assert.equal(h.events.length, 2);
    const [u, ok] = h.events.map(x);
    assert.equal(u.status, 'Error');
    assert.equal(u.error.message, 'Unmatched response');
    assert.deepEqual(u.notes, ['response without a request']);
    assert.equal(u.http.response.status_code, 404);
    assert.equal(u.http.request, undefined);
    assert.equal(u.url, undefined);
    assert.equal(u.source.bytes, 0);
    assert.equal(u.destination.bytes, 'HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope'.length);
    assert.equal(u['@timestamp'], u.event.start);
    assert.equal(ok.status, 'OK');
    assert.equal(ok.error, undefined);
    const s = h.stats();
    assert.equal(s.transactions_started, 2);
    assert.equal(s.transactions, 2);
    assert.deepEqual(s.transactions_dropped, {});
    assert.equal(s.unmatched.response_without_request, 1);
  });

  it('sends Content-Length and Content-Type by default, as packetbeat', () => {
    const h = conn();
    h.send(0, 'POST /form HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\na=1');
    h.send(1, 'HTTP/1.1 200 OK\r\nContent-Type: Text/Plain; Charset=UTF-8\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n0\r\n\r\n');
    h.send(0, GET('/none'));
    h.send(1, 'HTTP/1.1 204 No Content\r\n\r\n');
    const [post, none] = h.events.map(x);
    assert.deepEqual(post.http.request.headers, { 'content-length': 3, 'content-type': 'application/x-www-form-urlencoded' });
    // chunked: the body's size after decoding; the type as sent, the mime type normalised
    assert.deepEqual(post.http.response.headers, { 'content-length': 4, 'content-type': 'Text/Plain; Charset=UTF-8' });
    assert.equal(post.http.response.mime_type, 'text/plain');
    assert.deepEqual(none.http.request.headers, { 'content-length': 0 });
    assert.deepEqual(none.http.response.headers, { 'content-length': 0 });
  });

  it('keeps Content-Length a number when all headers are asked for', () => {
    const h = conn({ sendHeaders: 'all' });
    h.send(0, GET('/all'));
    h.send(1, OK('abc'));
    assert.deepEqual(x(h.events[0]).http.response.headers, { 'content-length': 3, 'content-type': 'text/html; charset=utf-8' });
    assert.deepEqual(Object.keys(x(h.events[0]).http.request.headers), ['content-length', 'host', 'user-agent']);
  });

  it('names the server from the Host header: destination.domain, server.domain, related.hosts', () => {
    const h = conn();
    h.send(0, GET('/by-name'));
    h.send(1, OK('a'));
    h.send(0, 'GET /by-address HTTP/1.1\r\nHost: 10.0.0.2:80\r\n\r\n');
    h.send(1, OK('b'));
    h.send(0, 'GET /v6 HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\n\r\n');
    h.send(1, OK('c'));
    h.send(0, 'GET /no-host HTTP/1.0\r\n\r\n');
    h.send(1, OK('d'));
    const [byName, byAddress, v6, noHost] = h.events.map(x);
    assert.deepEqual(byName.destination, { ip: '10.0.0.2', port: 80, bytes: byName.destination.bytes, domain: 'example.test' });
    assert.equal(byName.server.domain, 'example.test');
    assert.deepEqual(byName.related, { ip: ['10.0.0.1', '10.0.0.2'], hosts: ['example.test'] });
    for (const e of [byAddress, v6, noHost]) {
      assert.equal(e.destination.domain, undefined, e.url.path);
      assert.equal(e.server.domain, undefined);
      assert.equal(e.related.hosts, undefined);
    }
    assert.equal(v6.url.domain, '2001:db8::1');
  });

  it('takes url.extension from the last path segment only', () => {
    const h = conn();
    for (const p of ['/a/b.tar.gz?x=1', '/v1.2/users', '/file.', '/plain', '/.hidden']) {
      h.send(0, GET(p));
      h.send(1, OK('x'));
    }
    assert.deepEqual(h.events.map((e) => x(e).url.extension), ['gz', undefined, undefined, undefined, 'hidden']);
  });

  it('reports the request line\'s HTTP version, as packetbeat (a 1.0 request answered as 1.1 is 1.0)', () => {
    const h = conn();
    h.send(0, 'GET /old HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n');
    h.send(1, OK('x'));
    h.send(0, GET('/new'));
    h.send(1, 'HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\ny');
    assert.deepEqual(h.events.map((e) => x(e).http.version), ['1.0', '1.1']);
  });

  it('ends the transaction at the response\'s first packet (event.end, as packetbeat); http.response.end is its last', () => {
    const h = conn();
    h.send(0, GET('/slow')); // t = 1000 s + 1 µs
    h.send(1, 'HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nab'); // 2 µs
    h.send(1, 'cd'); // 3 µs
    h.send(1, 'ef'); // 4 µs
    const e = x(h.events[0]);
    assert.equal(e.event.start, '1970-01-01T00:16:40.000001000Z');
    assert.equal(e.event.end, '1970-01-01T00:16:40.000002000Z');
    assert.equal(e.event.duration, 1000);
    assert.equal(e.http.response.end, '1970-01-01T00:16:40.000004000Z');
  });

  it('counts an interim 100 Continue in destination.bytes, not in http.response.bytes (issue 14)', () => {
    const h = conn();
    h.send(0, 'PUT /up HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n');
    h.send(1, 'HTTP/1.1 100 Continue\r\n\r\n');
    h.send(0, 'data');
    h.send(1, 'HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n');
    const e = x(h.events[0]);
    const final = 'HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n'.length;
    assert.equal(e.http.response.bytes, final);
    assert.equal(e.destination.bytes, final + 25);
    assert.equal(e.network.bytes, e.source.bytes + final + 25);
  });

  it('renders url.query as packetbeat: sorted, escaped, form parameters folded in, hidden keywords masked', () => {
    const h = conn({ hideKeywords: ['Pass'] });
    h.send(0, 'GET /s?q=a+b&z=1&a=%2F&bad=%zz&k HTTP/1.1\r\nHost: h\r\n\r\n');
    h.send(1, OK('x'));
    const form = 'user=alice&pass=secret&pass=again';
    h.send(0, `POST /login?lang=en&user=bob HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}\r\n\r\n${form}`);
    h.send(1, OK('y'));
    const [get, post] = h.events.map(x);
    assert.equal(get.url.query, 'a=%2F&k=&q=a+b&z=1');
    assert.equal(get.url.full, 'http://h:80/s?a=%2F&k=&q=a+b&z=1'.replace(':80', ''));
    assert.equal(post.url.query, 'lang=en&pass=xxxxx&pass=xxxxx&user=alice');
    assert.equal(post.query, 'POST /login');
    assert.equal(post.http.request.body.content, undefined, 'a form is kept for its parameters, not sent');
  });

  it('reads a form body for its parameters no further than maxHeaderBytes, and counts the cut', () => {
    const h = conn({ maxHeaderBytes: 256 });
    const form = 'a=1&' + 'b='.padEnd(400, 'x') + '&c=3';
    h.send(0, `POST /f HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}\r\n\r\n${form}`);
    h.send(1, OK('k'));
    const e = x(h.events[0]);
    assert.ok(e.url.query.startsWith('a=1&b=xxx'));
    assert.ok(!e.url.query.includes('c=3'));
    assert.equal(e.http.request.body.bytes, form.length);
    assert.equal(h.stats().truncated_messages, 1);
  });

  it('puts the server port in url.full when the Host header names none, as packetbeat', () => {
    const h = conn();
    h.send(0, 'GET /p HTTP/1.1\r\nHost: example.test\r\n\r\n');
    h.send(1, OK('x'));
    // the connection's server port is 80 in this helper: no port
    assert.equal(x(h.events[0]).url.full, 'http://example.test/p');
    const c8080 = conn({}, false, 8080);
    c8080.send(0, 'GET /q HTTP/1.1\r\nHost: example.test\r\n\r\n');
    c8080.send(1, OK('x'));
    assert.equal(x(c8080.events[0]).url.full, 'http://example.test:8080/q');
  });

  it('sends the raw request and response, bodies when included, cut at maxMessageSize and counted', () => {
    const h = conn({ sendRequest: true, sendResponse: true, includeBodyFor: ['html'], maxMessageSize: 120 });
    h.send(0, GET('/raw'));
    h.send(1, OK('<p>hello</p>'));
    h.send(0, GET('/big'));
    h.send(1, OK('z'.repeat(500)));
    const [small, big] = h.events.map(x);
    assert.equal(small.request, GET('/raw'));
    assert.equal(small.response, OK('<p>hello</p>'));
    assert.equal(big.response.length, 120);
    assert.equal(big.http.response.body.truncated, true);
    assert.equal(h.stats().truncated_messages, 1);
    const plain = conn({ sendResponse: true });
    plain.send(0, GET('/h'));
    plain.send(1, OK('body not included'));
    assert.equal(x(plain.events[0]).response, OK('body not included').replace('body not included', ''), 'only the header section without include_body_for');
  });

  it('takes the client behind a proxy from the real-IP header into network.forwarded_ip and related.ip', () => {
    const h = conn({ realIpHeader: 'X-Forwarded-For' });
    h.send(0, GET('/fw', 'X-Forwarded-For: 203.0.113.7, 10.1.1.1\r\n'));
    h.send(1, OK('x'));
    const e = x(h.events[0]);
    assert.equal(e.network.forwarded_ip, '203.0.113.7');
    assert.deepEqual(e.related.ip, ['10.0.0.1', '10.0.0.2', '203.0.113.7']);
    assert.equal(e.source.ip, '10.0.0.1', 'the connection\'s address stays the source');
  });

  it('keeps the basic-auth user unless redact_authorization, which stars the values', () => {
    const auth = 'Authorization: Basic ' + Buffer.from('alice:s3cret').toString('base64') + '\r\n';
    const plain = conn({ sendHeaders: ['authorization'] });
    plain.send(0, GET('/a', auth));
    plain.send(1, OK('x'));
    const p = x(plain.events[0]);
    assert.deepEqual(p.user, { name: 'alice' });
    assert.deepEqual(p.related.user, ['alice']);
    const red = conn({ sendHeaders: ['authorization', 'proxy-authorization'], redactAuthorization: true, sendRequest: true });
    red.send(0, GET('/a', auth + 'Proxy-Authorization: Bearer t\r\n'));
    red.send(1, OK('x'));
    const r = x(red.events[0]);
    assert.equal(r.user, undefined);
    assert.equal(r.http.request.headers.authorization, '*');
    assert.equal(r.http.request.headers['proxy-authorization'], '*');
    assert.ok(!r.request.includes('YWxpY2U'), 'the raw request has no credentials');
    assert.match(r.request, /\r\nAuthorization:\*+\r\nProxy-Authorization:\*+\r\n/);
  });

  it('redacts the headers asked for and splits cookies into maps', () => {
    const h = conn({ sendHeaders: ['cookie', 'set-cookie', 'x-api-key'], redactHeaders: ['X-Api-Key'], splitCookie: true });
    h.send(0, GET('/c', 'Cookie: SID=31d4; Lang="en-US"\r\nX-Api-Key: k\r\n'));
    h.send(1, OK('x', 'Set-Cookie: id=a3fWa; Max-Age=2592000; Path=/\r\n'));
    const e = x(h.events[0]);
    assert.deepEqual(e.http.request.headers.cookie, { sid: '31d4', lang: 'en-US' });
    assert.equal(e.http.request.headers['x-api-key'], 'REDACTED');
    assert.deepEqual(e.http.response.headers['set-cookie'], { id: 'a3fWa', 'max-age': '2592000', path: '/' });
  });

  it('matches include_body_for anywhere in the content type, as packetbeat (json, x-www-form-urlencoded)', () => {
    const h = conn({ includeBodyFor: ['json', 'x-www-form-urlencoded'] });
    h.send(0, 'POST /f HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\na=1');
    h.send(1, 'HTTP/1.1 200 OK\r\nContent-Type: application/vnd.api+json\r\nContent-Length: 2\r\n\r\n{}');
    const e = x(h.events[0]);
    assert.equal(e.http.request.body.content, 'a=1');
    assert.equal(e.http.response.body.content, '{}');
  });

  it('detects mime_type from the body bytes when asked (libbeat\'s detect_mime_type)', () => {
    const h = conn({ detectMimeType: true });
    h.send(0, GET('/j'));
    h.send(1, 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\n{"a": [1]}'.replace('9', '10'));
    h.send(0, GET('/png'));
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
    h.send(1, Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${png.length}\r\n\r\n`), png]));
    h.send(0, GET('/html'));
    h.send(1, OK('<html><body>x</body></html>'));
    assert.deepEqual(h.events.map((e) => x(e).http.response.mime_type), ['application/json', 'image/png', 'text/html; charset=utf-8']);
  });

  it('counts violations without throwing on garbage', () => {
    const h = conn();
    h.send(0, 'NOT HTTP AT ALL\r\n\r\n');
    h.send(1, 'HTTP/1.1 abc nope\r\n\r\n');
    h.send(0, 'GET / HTTP/1.1\r\nContent-Length: -5\r\n\r\n');
    assert.equal(h.events.length, 0);
    const v = h.stats().violations;
    assert.equal(v.request_bad_start_line, 1);
    assert.equal(v.response_bad_status_code, 1);
    assert.equal(v.request_bad_content_length, 1);
  });

  it('gives the same transactions however the streams are split (property)', () => {
    const reqs = GET('/1') + 'POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\n\r\npayload' + GET('/3');
    const resps =
      OK('first body') +
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n' +
      'HTTP/1.1 500 Oops\r\nContent-Length: 3\r\n\r\nbad';
    const reference = (() => {
      const h = conn();
      h.send(0, reqs);
      h.send(1, resps);
      return h.events.map((e) => JSON.stringify([x(e).url.path, x(e).status, x(e).http.request.bytes, { ...x(e).http.response, end: undefined }]));
    })();
    assert.equal(reference.length, 3);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: reqs.length - 1 })), fc.array(fc.integer({ min: 1, max: resps.length - 1 })), fc.boolean(), (rc, pc, interleave) => {
        const pieces = (s: string, cuts: number[]) => {
          const pts = [...new Set([0, ...cuts.filter((c) => c < s.length), s.length])].sort((a, b) => a - b);
          return pts.slice(0, -1).map((p, i) => s.slice(p, pts[i + 1]));
        };
        const h = conn();
        const rq = pieces(reqs, rc);
        const rp = pieces(resps, pc);
        if (interleave) {
          // all requests first is not required: responses may trail each request piece
          while (rq.length > 0 || rp.length > 0) {
            if (rq.length > 0) h.send(0, rq.shift()!);
            if (rp.length > 0 && rq.length === 0) h.send(1, rp.shift()!);
          }
        } else {
          for (const p of rq) h.send(0, p);
          for (const p of rp) h.send(1, p);
        }
        const got = h.events.map((e) => JSON.stringify([x(e).url.path, x(e).status, x(e).http.request.bytes, { ...x(e).http.response, end: undefined }]));
        assert.deepEqual(got, reference);
      }),
      { numRuns: 300 },
    );
  });
});
