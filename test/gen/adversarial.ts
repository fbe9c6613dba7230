/**
 * Adversarial traffic, generated lazily (a frame source that builds its frames as the
 * pipeline asks for them, so even ten million packets cost no memory before the
 * stages). Each scenario names the bound it is meant to push against; docs/limits.md
 * lists the bounds and their defaults. Packet time advances 1 µs per frame, so the
 * size bounds act before any timeout would.
 */
import { makeFrame, type Frame } from '../../src/core/frame';
import type { Source } from '../../src/sources/source';
import { dnsMessage, ether, F, ipv4, ipv6, ipv6FragBody, tcp, udp } from './packets';

export type Scale = 'ci' | 'full';

export interface Scenario {
  /** what it sends */
  about: string;
  /** how many frames, by scale */
  frames: Record<Scale, number>;
  /** the i-th frame's IP packet (Ethernet is added) */
  packet(i: number, n: number): Buffer;
  /** the counter (path in the final stats) that shows the bound acting */
  counter: string;
  /** options for the default stages */
  stages?: Record<string, unknown>;
}

const ip = (n: number) => `10.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
const CHUNK = Buffer.from('400\r\n' + 'x'.repeat(1024) + '\r\n');
const HEADER_LINE = Buffer.from('X-Filler: ' + 'y'.repeat(1388) + '\r\n');

/** a DNS response whose answer name points at itself */
function loopingResponse(id: number): Buffer {
  const m = dnsMessage(id, 'loop.example', 1, true, ['10.0.0.1']);
  // the answer's name is a pointer (0xc00c) to the question: make it point at itself
  const at = m.indexOf(Buffer.from([0xc0, 0x0c]), 12);
  m.writeUInt16BE(0xc000 | at, at);
  return m;
}

/** a DNS response of 120 A records, each named by a pointer to the previous record's name: chains up to 120 hops */
function chainResponse(id: number): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(id, 0);
  head.writeUInt16BE(0x8180, 2);
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(120, 6);
  const parts: Buffer[] = [head, Buffer.from([1, 0x61, 0, 0, 1, 0, 1])];
  let prev = 12;
  for (let k = 0; k < 120; k++) {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc000 | prev, 0);
    rr.writeUInt16BE(1, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt16BE(4, 10);
    prev = 19 + 16 * k;
    parts.push(rr);
  }
  return Buffer.concat(parts);
}

export const scenarios: Record<string, Scenario> = {
  'syn-flood': {
    about: 'SYNs from distinct tuples, never answered',
    frames: { ci: 150_000, full: 1_000_000 },
    packet: (i) => ipv4(ip(i), '192.0.2.1', 6, tcp(1024 + (i % 60000), 80, i, 0, F.SYN)),
    counter: 'tcp.connections.closed.evicted',
  },
  'syn-flood-flows': {
    about: 'the SYN flood as a monitoring user reads it: flows and anomalies on',
    frames: { ci: 150_000, full: 1_000_000 },
    packet: (i) => ipv4(ip(i), '192.0.2.1', 6, tcp(1024 + (i % 60000), 80, i, 0, F.SYN)),
    counter: 'tcp.flows.evicted',
    stages: { tcp: { flows: {} }, anomalies: true },
  },
  'unfilled-hole': {
    about: 'one connection whose first data segment never comes, megabytes queued behind it',
    frames: { ci: 6_000, full: 50_000 },
    packet: (i) => {
      if (i === 0) return ipv4('10.0.0.1', '10.0.0.2', 6, tcp(40000, 80, 999, 0, F.SYN));
      // sequence 1000 + 1400 (the first segment) is skipped: every segment sits behind the hole
      return ipv4('10.0.0.1', '10.0.0.2', 6, tcp(40000, 80, 1000 + 1400 * i, 0, F.ACK, Buffer.alloc(1400, 0x61)));
    },
    counter: 'tcp.gap_causes.connection_buffer_limit',
  },
  'huge-header': {
    about: 'an HTTP request whose header section never ends (100 MB at full scale)',
    frames: { ci: 6_000, full: 72_000 },
    packet: (i) => {
      if (i === 0) return ipv4('10.0.0.1', '10.0.0.2', 6, tcp(40001, 80, 999, 0, F.SYN));
      const payload = i === 1 ? Buffer.concat([Buffer.from('GET / HTTP/1.1\r\n'), HEADER_LINE.subarray(16)]) : HEADER_LINE;
      return ipv4('10.0.0.1', '10.0.0.2', 6, tcp(40001, 80, 1000 + 1400 * (i - 1), 0, F.ACK, payload));
    },
    counter: 'analyze.protocols.http.violations.request_header_too_large',
  },
  'endless-chunked': {
    about: 'a chunked response that never sends its last chunk',
    frames: { ci: 8_000, full: 200_000 },
    packet: (i) => {
      const req = Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
      if (i === 0) return ipv4('10.0.0.1', '10.0.0.2', 6, tcp(40002, 80, 999, 0, F.SYN));
      if (i === 1) return ipv4('10.0.0.2', '10.0.0.1', 6, tcp(80, 40002, 4999, 1000, F.SYN | F.ACK));
      if (i === 2) return ipv4('10.0.0.1', '10.0.0.2', 6, tcp(40002, 80, 1000, 5000, F.ACK | F.PSH, req));
      if (i === 3) return ipv4('10.0.0.2', '10.0.0.1', 6, tcp(80, 40002, 5000, 1000 + req.length, F.ACK, Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')));
      const off = 5000 + 47 + (i - 4) * CHUNK.length;
      return ipv4('10.0.0.2', '10.0.0.1', 6, tcp(80, 40002, off, 1000 + req.length, F.ACK, CHUNK));
    },
    counter: 'analyze.protocols.http.requests',
  },
  'dns-pointer-loops': {
    about: 'DNS responses with compression loops and 120-hop pointer chains',
    frames: { ci: 20_000, full: 1_000_000 },
    packet: (i) => ipv4('10.0.0.53', ip(i), 17, udp(53, 1024 + (i % 60000), i % 2 === 0 ? loopingResponse(i & 0xffff) : chainResponse(i & 0xffff))),
    counter: 'analyze.protocols.dns.malformed.name_pointer_loop',
  },
  'dns-pointer-loops-flows': {
    about: 'the DNS pointer loops and chains with flows and anomalies on',
    frames: { ci: 20_000, full: 1_000_000 },
    packet: (i) => ipv4('10.0.0.53', ip(i), 17, udp(53, 1024 + (i % 60000), i % 2 === 0 ? loopingResponse(i & 0xffff) : chainResponse(i & 0xffff))),
    counter: 'analyze.anomaly_events.suppressed',
    stages: { tcp: { flows: {} }, anomalies: true },
  },
  'fragment-flood': {
    about: 'IPv4 and IPv6 datagrams that never complete, with overlapping fragments',
    frames: { ci: 40_000, full: 1_000_000 },
    packet: (i) => {
      const datagram = i >> 3;
      const k = i & 7;
      // fragments of each datagram overlapping by 8 bytes, none of them the last; every other datagram IPv6
      if (datagram % 2 === 1) return ipv6(`2001:db8::${(datagram >>> 16).toString(16)}:${(datagram & 0xffff).toString(16)}`, '2001:db8::2', 17, Buffer.alloc(1400, k), [{ type: 44, body: ipv6FragBody(k * 1392, true, datagram) }]);
      return ipv4(ip(datagram), '192.0.2.2', 17, Buffer.alloc(1400, k), { id: datagram & 0xffff, fragOffset: k * 1392, mf: true });
    },
    counter: 'decode.defrag.discarded.byte_limit',
  },
  'pipelined-no-responses': {
    about: 'many connections, each with more pipelined HTTP requests than may wait, never answered',
    frames: { ci: 200_000, full: 4_400_000 },
    packet: (i) => {
      // 68 packets per connection: a SYN, then 67 requests (64 may wait), round-robin over the connections in order
      const conn = Math.floor(i / 68);
      const k = i % 68;
      const cport = 1024 + (conn % 60000);
      const client = ip(conn);
      if (k === 0) return ipv4(client, '192.0.2.80', 6, tcp(cport, 80, 999, 0, F.SYN));
      const req = Buffer.from(`GET /r/${String(k).padStart(2, "0")} HTTP/1.1\r\nHost: a\r\n\r\n`);
      return ipv4(client, '192.0.2.80', 6, tcp(cport, 80, 1000 + (k - 1) * req.length, 0, F.ACK | F.PSH, req));
    },
    counter: 'analyze.protocols.http.unmatched.pending_limit_total',
  },
  'tiny-udp-flows': {
    about: 'one-packet UDP flows from distinct tuples, half of them unanswered DNS queries (flows on)',
    frames: { ci: 300_000, full: 10_000_000 },
    packet: (i) => (i % 2 === 0 ? ipv4(ip(i), '192.0.2.3', 17, udp(1024 + (i % 60000), 5000 + (i % 1000), Buffer.alloc(8))) : ipv4(ip(i), '192.0.2.53', 17, udp(1024 + (i % 60000), 53, dnsMessage(i & 0xffff, 'q.example', 1, false)))),
    counter: 'tcp.flows.evicted',
    stages: { tcp: { flows: {} } },
  },
};

/** a well-formed DNS response of the chain response's size: 120 A records, each named by one pointer to the question */
function ordinaryResponse(id: number): Buffer {
  const m = chainResponse(id);
  for (let k = 0; k < 120; k++) m.writeUInt16BE(0xc00c, 19 + 16 * k);
  return m;
}

/**
 * Ordinary traffic of an adversarial scenario's shape, for its cost per packet to be
 * compared (bench/adversarial.ts): not run by the adversarial suite, as no bound acts.
 */
export const baselines: Record<string, Scenario> = {
  'dns-ordinary': {
    about: 'the baseline of dns-pointer-loops: responses of the same sizes, well formed (a one-record answer, and 120 records named by a pointer to the question)',
    frames: { ci: 20_000, full: 1_000_000 },
    packet: (i) => ipv4('10.0.0.53', ip(i), 17, udp(53, 1024 + (i % 60000), i % 2 === 0 ? dnsMessage(i & 0xffff, 'loop.example', 1, true, ['10.0.0.1']) : ordinaryResponse(i & 0xffff))),
    counter: 'analyze.protocols.dns.responses',
  },
};

/** the scenario's frames, made batch by batch as the pipeline pulls */
export function adversarialSource(s: Scenario, scale: Scale): Source {
  const n = s.frames[scale];
  let made = 0;
  let closed = false;
  return {
    name: 'adversarial',
    async *batches() {
      for (let i = 0; i < n && !closed; ) {
        const batch: Frame[] = [];
        for (const end = Math.min(n, i + 1024); i < end; i++) {
          const pkt = s.packet(i, n);
          const data = ether(pkt[0] >> 4 === 6 ? 0x86dd : 0x0800, pkt);
          batch.push(makeFrame(1_700_000_000 + Math.floor(i / 1e6), (i % 1e6) * 1000, 1, data.length, 0, data));
        }
        made = i;
        yield batch;
      }
    },
    stats: () => ({ frames: made }),
    close() {
      closed = true;
    },
  };
}
