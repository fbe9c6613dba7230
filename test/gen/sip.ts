/**
 * Writes fixtures/sip/edge-*.pcap: SIP that two SIPp instances on loopback do not
 * produce on demand: UDP retransmissions of requests and final responses, compact
 * and folded headers, CANCEL, a proxy's 407 challenge, keep-alives, a response to no
 * request, a request never answered, a datagram that is not SIP; over TCP packet
 * loss inside a body and across messages, a capture begun inside a message, the
 * callee's BYE on the caller's connection, messages pipelined in one segment and
 * cut byte by byte, a message without Content-Length, a body over the bound.
 * Deterministic: `npx tsx test/gen/sip.ts` rewrites the files byte-identical.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { ether, F, ipv4, TcpConv, timed, udp, writePcap, type GenFrame } from './packets';

const b = (s: string) => Buffer.from(s, 'latin1');

export interface SipMsg {
  /** `INVITE sip:bob@example.test` or `200 OK` */
  start: string;
  callId: string;
  cseq: string;
  branch: string;
  headers?: string[];
  body?: string;
  /** leave Content-Length out */
  noLength?: boolean;
}

/** a SIP message as user agents write it (From, To, Call-ID, CSeq, Via; Content-Length unless asked not to) */
export function sipMessage(m: SipMsg): string {
  const response = /^\d{3} /.test(m.start);
  const lines = [response ? `SIP/2.0 ${m.start}` : `${m.start} SIP/2.0`, `Via: SIP/2.0/UDP 10.20.0.1:5060;branch=${m.branch}`, 'From: "Alice" <sip:alice@example.test>;tag=a1', `To: <sip:bob@example.test>${response ? ';tag=b2' : ''}`, `Call-ID: ${m.callId}`, `CSeq: ${m.cseq}`, ...(m.headers ?? [])];
  const body = m.body ?? '';
  if (!m.noLength) lines.push(`Content-Length: ${Buffer.byteLength(body, 'latin1')}`);
  return lines.join('\r\n') + '\r\n\r\n' + body;
}

export const SDP = 'v=0\r\no=alice 2890844526 2890844526 IN IP4 10.20.0.1\r\ns=Talk\r\nc=IN IP4 10.20.0.1\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\nc=IN IP4 10.20.0.9\r\na=rtpmap:0 PCMU/8000\r\n';

const C = '10.20.0.1';
const S = '10.20.0.2';
const dgram = (fromClient: boolean, s: string, cport = 5062) => ether(0x0800, fromClient ? ipv4(C, S, 17, udp(cport, 5060, b(s))) : ipv4(S, C, 17, udp(5060, cport, b(s))));

/** UDP: retransmissions, compact and folded headers, CANCEL, 407, keep-alives, an orphan response, an unanswered request, not SIP */
function udpCases(): GenFrame[] {
  const inv = sipMessage({ start: 'INVITE sip:bob@example.test', callId: 'u1@10.20.0.1', cseq: '1 INVITE', branch: 'z9hG4bK-u1', headers: ['Contact: <sip:alice@10.20.0.1:5062>', 'Content-Type: application/sdp'], body: SDP });
  const ok = sipMessage({ start: '200 OK', callId: 'u1@10.20.0.1', cseq: '1 INVITE', branch: 'z9hG4bK-u1', headers: ['Contact: <sip:bob@10.20.0.2>'] });
  // compact forms, a folded line, two Vias in one header
  const compact = [
    'OPTIONS sip:bob@example.test SIP/2.0',
    'v: SIP/2.0/UDP 10.20.0.1:5062;branch=z9hG4bK-c1, SIP/2.0/UDP 10.20.0.7;branch=z9hG4bK-proxy',
    'f: Alice <sip:alice@example.test>;tag=a9',
    't: <sip:bob@example.test>',
    'i: c1@10.20.0.1',
    'CSeq: 7 OPTIONS',
    'Subject: a header folded',
    '  over two lines',
    'k: timer',
    'l: 0',
    '',
    '',
  ].join('\r\n');
  const compactOk = 'SIP/2.0 200 OK\r\nv: SIP/2.0/UDP 10.20.0.1:5062;branch=z9hG4bK-c1\r\ni: c1@10.20.0.1\r\nCSeq: 7 OPTIONS\r\nf: <sip:alice@example.test>;tag=a9\r\nt: <sip:bob@example.test>;tag=b9\r\nl: 0\r\n\r\n';
  const cancelInv = sipMessage({ start: 'INVITE sip:carol@example.test', callId: 'x1@10.20.0.1', cseq: '1 INVITE', branch: 'z9hG4bK-x1' });
  const proxyAuth = sipMessage({ start: 'INVITE sip:dave@example.test', callId: 'p1@10.20.0.1', cseq: '1 INVITE', branch: 'z9hG4bK-p1' });
  return timed([
    dgram(true, inv),
    dgram(true, inv), // retransmitted before any answer
    dgram(false, sipMessage({ start: '100 Trying', callId: 'u1@10.20.0.1', cseq: '1 INVITE', branch: 'z9hG4bK-u1' })),
    dgram(false, sipMessage({ start: '180 Ringing', callId: 'u1@10.20.0.1', cseq: '1 INVITE', branch: 'z9hG4bK-u1' })),
    dgram(false, ok),
    dgram(false, ok), // the 2xx again, until the ACK comes
    dgram(true, sipMessage({ start: 'ACK sip:bob@10.20.0.2', callId: 'u1@10.20.0.1', cseq: '1 ACK', branch: 'z9hG4bK-u1ack' })),
    dgram(true, compact),
    dgram(false, compactOk),
    dgram(true, cancelInv),
    dgram(false, sipMessage({ start: '180 Ringing', callId: 'x1@10.20.0.1', cseq: '1 INVITE', branch: 'z9hG4bK-x1' })),
    dgram(true, sipMessage({ start: 'CANCEL sip:carol@example.test', callId: 'x1@10.20.0.1', cseq: '1 CANCEL', branch: 'z9hG4bK-x1' })),
    dgram(false, sipMessage({ start: '200 OK', callId: 'x1@10.20.0.1', cseq: '1 CANCEL', branch: 'z9hG4bK-x1' })),
    dgram(false, sipMessage({ start: '487 Request Terminated', callId: 'x1@10.20.0.1', cseq: '1 INVITE', branch: 'z9hG4bK-x1' })),
    dgram(true, sipMessage({ start: 'ACK sip:carol@example.test', callId: 'x1@10.20.0.1', cseq: '1 ACK', branch: 'z9hG4bK-x1' })),
    dgram(true, proxyAuth),
    dgram(false, sipMessage({ start: '407 Proxy Authentication Required', callId: 'p1@10.20.0.1', cseq: '1 INVITE', branch: 'z9hG4bK-p1', headers: ['Proxy-Authenticate: Digest realm="proxy.example.test", nonce="abc", qop="auth"'] })),
    dgram(true, sipMessage({ start: 'INVITE sip:dave@example.test', callId: 'p1@10.20.0.1', cseq: '2 INVITE', branch: 'z9hG4bK-p2', headers: ['Proxy-Authorization: Digest username="alice", realm="proxy.example.test", nonce="abc", uri="sip:dave@example.test", response="00112233445566778899aabbccddeeff"'] })),
    dgram(false, sipMessage({ start: '603 Decline', callId: 'p1@10.20.0.1', cseq: '2 INVITE', branch: 'z9hG4bK-p2' })),
    dgram(true, '\r\n\r\n'), // keep-alive ping
    dgram(false, '\r\n'), // and its pong
    dgram(false, sipMessage({ start: '200 OK', callId: 'orphan@10.20.0.1', cseq: '9 BYE', branch: 'z9hG4bK-gone' })),
    dgram(true, sipMessage({ start: 'MESSAGE sip:bob@example.test', callId: 'm1@10.20.0.1', cseq: '1 MESSAGE', branch: 'z9hG4bK-m1', headers: ['Content-Type: text/plain'], body: 'no one answers this' })),
    dgram(true, 'NOTSIP but on the SIP port\r\n\r\n'),
    dgram(true, sipMessage({ start: 'INFO sip:bob@example.test', callId: 'short@10.20.0.1', cseq: '1 INFO', branch: 'z9hG4bK-s1', headers: ['Content-Length: 500'], noLength: true }) + 'only these bytes'),
    dgram(false, sipMessage({ start: '200 OK', callId: 'short@10.20.0.1', cseq: '1 INFO', branch: 'z9hG4bK-s1' })),
  ].map((d) => d));
}

/** TCP on one connection: pipelining, the callee's BYE, keep-alives, segments of one byte, no Content-Length, a body over 64 KiB */
function tcpCases(): GenFrame[] {
  const c = new TcpConv([{ ip: C, port: 40000 }, { ip: S, port: 5060 }]);
  const pk: Buffer[] = [...c.handshake()];
  const send = (side: number, s: string) => pk.push(c.seg(side, F.PSH | F.ACK, b(s)));
  const inv = sipMessage({ start: 'INVITE sip:bob@example.test', callId: 't1@10.20.0.1', cseq: '1 INVITE', branch: 'z9hG4bK-t1', headers: ['Content-Type: application/sdp'], body: SDP });
  // the INVITE one byte a segment
  for (const ch of inv) send(0, ch);
  send(1, sipMessage({ start: '100 Trying', callId: 't1@10.20.0.1', cseq: '1 INVITE', branch: 'z9hG4bK-t1' }) + sipMessage({ start: '200 OK', callId: 't1@10.20.0.1', cseq: '1 INVITE', branch: 'z9hG4bK-t1', headers: ['Content-Type: application/sdp'], body: SDP }));
  send(0, '\r\n\r\n' + sipMessage({ start: 'ACK sip:bob@10.20.0.2', callId: 't1@10.20.0.1', cseq: '1 ACK', branch: 'z9hG4bK-t1a' }));
  send(1, '\r\n');
  // the callee hangs up over the caller's connection
  send(1, sipMessage({ start: 'BYE sip:alice@10.20.0.1', callId: 't1@10.20.0.1', cseq: '1 BYE', branch: 'z9hG4bK-callee' }));
  send(0, sipMessage({ start: '200 OK', callId: 't1@10.20.0.1', cseq: '1 BYE', branch: 'z9hG4bK-callee' }));
  // two requests in one segment, their answers in one
  send(0, sipMessage({ start: 'OPTIONS sip:bob@example.test', callId: 't2@10.20.0.1', cseq: '1 OPTIONS', branch: 'z9hG4bK-o1' }) + sipMessage({ start: 'OPTIONS sip:bob@example.test', callId: 't2@10.20.0.1', cseq: '2 OPTIONS', branch: 'z9hG4bK-o2' }));
  send(1, sipMessage({ start: '200 OK', callId: 't2@10.20.0.1', cseq: '2 OPTIONS', branch: 'z9hG4bK-o2' }) + sipMessage({ start: '404 Not Found', callId: 't2@10.20.0.1', cseq: '1 OPTIONS', branch: 'z9hG4bK-o1' }));
  // no Content-Length on a stream: taken as none, counted
  send(0, sipMessage({ start: 'OPTIONS sip:bob@example.test', callId: 't3@10.20.0.1', cseq: '1 OPTIONS', branch: 'z9hG4bK-n1', noLength: true }));
  send(1, sipMessage({ start: '200 OK', callId: 't3@10.20.0.1', cseq: '1 OPTIONS', branch: 'z9hG4bK-n1' }));
  // a body over the 64 KiB bound: skipped, the stream stays in step
  const big = sipMessage({ start: 'MESSAGE sip:bob@example.test', callId: 't4@10.20.0.1', cseq: '1 MESSAGE', branch: 'z9hG4bK-big', headers: ['Content-Type: text/plain'], body: 'x'.repeat(70_000) });
  for (let i = 0; i < big.length; i += 1400) send(0, big.slice(i, i + 1400));
  send(1, sipMessage({ start: '202 Accepted', callId: 't4@10.20.0.1', cseq: '1 MESSAGE', branch: 'z9hG4bK-big' }));
  pk.push(...c.close());
  return timed(pk.map((p) => ether(0x0800, p)));
}

/** TCP: a gap inside an SDP body, a gap across messages, and a capture begun inside a message */
function gapCases(): GenFrame[] {
  const pk: Buffer[] = [];
  const c = new TcpConv([{ ip: C, port: 40001 }, { ip: S, port: 5060 }]);
  pk.push(...c.handshake());
  const send = (side: number, s: string) => pk.push(c.seg(side, F.PSH | F.ACK, b(s)));
  const lose = (side: number, s: string) => c.seg(side, F.PSH | F.ACK, b(s));
  const inv = sipMessage({ start: 'INVITE sip:bob@example.test', callId: 'g1@10.20.0.1', cseq: '1 INVITE', branch: 'z9hG4bK-g1', headers: ['Content-Type: application/sdp'], body: SDP });
  const cut = inv.length - 60;
  send(0, inv.slice(0, cut));
  lose(0, inv.slice(cut, cut + 20));
  send(0, inv.slice(cut + 20));
  send(1, sipMessage({ start: '200 OK', callId: 'g1@10.20.0.1', cseq: '1 INVITE', branch: 'z9hG4bK-g1' }));
  // the responses to two requests lost with the end of the first and the start of the second
  send(0, sipMessage({ start: 'OPTIONS sip:bob@example.test', callId: 'g2@10.20.0.1', cseq: '1 OPTIONS', branch: 'z9hG4bK-g2' }) + sipMessage({ start: 'OPTIONS sip:bob@example.test', callId: 'g2@10.20.0.1', cseq: '2 OPTIONS', branch: 'z9hG4bK-g3' }) + sipMessage({ start: 'OPTIONS sip:bob@example.test', callId: 'g2@10.20.0.1', cseq: '3 OPTIONS', branch: 'z9hG4bK-g4' }));
  const r1 = sipMessage({ start: '200 OK', callId: 'g2@10.20.0.1', cseq: '1 OPTIONS', branch: 'z9hG4bK-g2' });
  const r2 = sipMessage({ start: '200 OK', callId: 'g2@10.20.0.1', cseq: '2 OPTIONS', branch: 'z9hG4bK-g3' });
  const r3 = sipMessage({ start: '200 OK', callId: 'g2@10.20.0.1', cseq: '3 OPTIONS', branch: 'z9hG4bK-g4' });
  send(1, r1.slice(0, 50));
  lose(1, r1.slice(50) + r2.slice(0, 30));
  send(1, r2.slice(30) + r3);
  pk.push(...c.close());
  // begun inside a message: no handshake, the first bytes the end of an INVITE
  const m = new TcpConv([{ ip: C, port: 40002 }, { ip: S, port: 5060 }], [77_000, 99_000]);
  const tail = sipMessage({ start: 'INVITE sip:bob@example.test', callId: 'mid0@10.20.0.1', cseq: '1 INVITE', branch: 'z9hG4bK-mid0', headers: ['Content-Type: application/sdp'], body: SDP });
  pk.push(m.seg(0, F.PSH | F.ACK, b(tail.slice(120))));
  pk.push(m.seg(1, F.PSH | F.ACK, b(sipMessage({ start: '200 OK', callId: 'mid0@10.20.0.1', cseq: '1 INVITE', branch: 'z9hG4bK-mid0' }))));
  pk.push(m.seg(0, F.PSH | F.ACK, b(sipMessage({ start: 'BYE sip:bob@10.20.0.2', callId: 'mid0@10.20.0.1', cseq: '2 BYE', branch: 'z9hG4bK-mid1' }))));
  pk.push(m.seg(1, F.PSH | F.ACK, b(sipMessage({ start: '200 OK', callId: 'mid0@10.20.0.1', cseq: '2 BYE', branch: 'z9hG4bK-mid1' }))));
  pk.push(...m.close());
  return timed(pk.map((p) => ether(0x0800, p)));
}

export function sipEdgeCases(): Record<string, Buffer> {
  return {
    'edge-udp.pcap': writePcap(udpCases()),
    'edge-tcp.pcap': writePcap(tcpCases()),
    'edge-gaps.pcap': writePcap(gapCases()),
  };
}

if (require.main === module) {
  const dir = path.join(__dirname, '..', '..', 'fixtures', 'sip');
  mkdirSync(dir, { recursive: true });
  const files = sipEdgeCases();
  for (const [name, data] of Object.entries(files)) writeFileSync(path.join(dir, name), data);
  console.log(`wrote ${Object.keys(files).join(', ')} to ${dir}`);
}
