/**
 * Property and fuzz tests over every decoder and analyzer, through the real stages:
 * random bytes, random truncation, mutated valid traffic, structured random TCP.
 * Whatever arrives, no exception leaves a stage, every frame is decoded or dropped
 * under a reason, and every transaction started is emitted, dropped or waiting.
 *
 * CI runs a fixed number of cases per property. `npm run fuzz [-- SECONDS]` runs
 * them for a time instead (PKTFLOW_FUZZ_SECONDS). A failure prints fast-check's
 * seed and path; replay it with PKTFLOW_FUZZ_SEED=... PKTFLOW_FUZZ_PATH=..., then
 * keep the case as a regression fixture (test/fuzz-regressions.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LinkType, makeFrame, type Frame } from '../src/core/frame';
import { dnsMessage, ether, F, icmpEcho, ipv4, ipv6, ipv6FragBody, tcp, TcpConv, timed, udp, type GenFrame } from './gen/packets';
import { assertAccounting, fixture, fixtureFrames, pushThroughStages } from './helpers';
import { readFileSync } from 'node:fs';
import { PcapReader } from '../src/sources/pcap';
import { PcapngReader } from '../src/sources/pcapng';
import { CaptureFileError } from '../src/sources/errors';
import { FUZZ_SECONDS as SECONDS, fuzzParams, mutate, mutation } from './fuzzing';

const PROPERTIES = 8;

/** fast-check parameters: a fixed count for CI, or a share of the time budget */
const params = (numRuns: number) => fuzzParams(numRuns, PROPERTIES);

const LINK_TYPES = [LinkType.ETHERNET, LinkType.LINUX_SLL, LinkType.LINUX_SLL2, LinkType.NULL, LinkType.LOOP, LinkType.RAW, LinkType.IPV4, LinkType.IPV6, 147];

const toFrames = (gen: GenFrame[]): Frame[] => gen.map((g) => makeFrame(g.sec, g.nsec, g.linkType ?? LinkType.ETHERNET, g.data.length, 0, g.data));

/** the stages over frames, to the end, with the accounting checked */
function survive(frames: Frame[], label: string): void {
  const { stats } = pushThroughStages(frames);
  assertAccounting(stats, label);
}

describe('fuzzing the stages', { timeout: (2 * SECONDS + 600) * 1000 }, () => {
  it('capture-file readers: mutated pcap and pcapng files fed in random chunk sizes', () => {
    const files = ['http-dns.pcap', 'http-dns-nsec.pcap', 'http-dns.pcapng', 'edge/multi-iface.pcapng', 'edge/big-endian.pcapng', 'edge/big-endian-nsec.pcap'].map((f) => readFileSync(fixture(f)));
    fc.assert(
      fc.property(fc.nat(files.length - 1), fc.array(mutation, { maxLength: 4 }), fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 8 }), (which, muts, sizes) => {
        let bytes: Buffer = files[which];
        for (const m of muts) bytes = mutate(bytes, m);
        if (bytes.length < 4) return;
        const pcapng = bytes.readUInt32BE(0) === 0x0a0d0d0a;
        const reader = pcapng ? new PcapngReader('fuzz') : new PcapReader('fuzz');
        const frames: Frame[] = [];
        try {
          for (let o = 0, i = 0; o < bytes.length; i++) {
            const n = sizes[i % sizes.length];
            // the first chunk holds the file header, as the file source guarantees
            const end = o === 0 ? Math.max(n, 64) : o + n;
            frames.push(...reader.push(Buffer.from(bytes.subarray(o, end))));
            o = end;
          }
          reader.end();
        } catch (err) {
          // a damaged file: one error naming an offset inside it, after the frames before the damage
          if (!(err instanceof CaptureFileError)) throw err;
          assert.ok(err.offset >= 0 && err.offset <= bytes.length, err.message);
        }
        survive(frames, 'frames of a damaged file');
      }),
      params(200),
    );
  });

  it('random bytes under every link type', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...LINK_TYPES), fc.uint8Array({ maxLength: 160 })), { minLength: 1, maxLength: 40 }), (raw) => {
        survive(
          raw.map(([lt, bytes], i) => makeFrame(1_700_000_000 + i, 0, lt, bytes.length, 0, Buffer.from(bytes))),
          'random bytes',
        );
      }),
      params(300),
    );
  });

  it('valid frames of every fixture, mutated', () => {
    const all = fixtureFrames();
    fc.assert(
      fc.property(fc.nat(all.length - 1), fc.integer({ min: 1, max: 60 }), fc.array(fc.tuple(fc.nat(), mutation), { maxLength: 12 }), (start, n, muts) => {
        const frames = all.slice(start, start + n).map((f) => makeFrame(f.tsSec, f.tsNsec, f.linkType, f.origLen, 0, f.data));
        for (const [i, m] of muts) {
          const f = frames[i % frames.length];
          f.data = mutate(f.data, m);
          f.capLen = f.data.length;
        }
        survive(frames, 'mutated fixture frames');
      }),
      params(300),
    );
  });

  it('structured random TCP: any flags, sequence numbers, overlaps and payloads on a few tuples', () => {
    const payload = fc.oneof(
      fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
      fc.constantFrom('GET / HTTP/1.1\r\nHost: a\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', '\x00\x1d\x12\x34\x01\x00\x00\x01').map((s) => Buffer.from(s, 'latin1')),
    );
    const segment = fc.record({ conn: fc.nat(3), dir: fc.boolean(), seqOff: fc.integer({ min: -3000, max: 3000 }), flags: fc.nat(31), payload, dt: fc.nat(20_000_000) });
    fc.assert(
      fc.property(fc.array(segment, { minLength: 1, maxLength: 80 }), fc.nat(0xffffffff), (segs, base) => {
        const ports = [80, 8080, 53, 4000];
        let t = 0;
        const gen: GenFrame[] = segs.map((s) => {
          t += s.dt;
          const cport = 40000 + s.conn;
          const seq = (base + s.seqOff + (s.dir ? 1_000_000 : 0)) >>> 0;
          const seg = s.dir ? tcp(ports[s.conn], cport, seq, base, s.flags, s.payload) : tcp(cport, ports[s.conn], seq, base, s.flags, s.payload);
          const ip = s.dir ? ipv4('10.0.0.2', '10.0.0.1', 6, seg) : ipv4('10.0.0.1', '10.0.0.2', 6, seg);
          return { sec: 1_700_000_000 + Math.floor(t / 1e9), nsec: t % 1e9, data: ether(0x0800, ip) };
        });
        const { stats } = pushThroughStages(toFrames(gen), { tcp: { maxBufferedPerDirection: 4096, maxBufferedTotal: 16_384 } });
        assertAccounting(stats, 'random tcp');
        assert.ok((stats.tcp as any).buffered_peak_bytes <= 16_384 + 4096, 'the byte caps hold');
      }),
      params(300),
    );
  });

  it('HTTP conversations with damaged bytes, cut at random points', () => {
    const requests = ['GET /a HTTP/1.1\r\nHost: x\r\n\r\n', 'POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd', 'HEAD /c HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n'];
    const responses = ['HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n', 'HTTP/1.1 304 Not Modified\r\n\r\n'];
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(requests.length - 1), fc.nat(responses.length - 1)), { minLength: 1, maxLength: 6 }), mutation, mutation, fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 10 }), (pairs, mq, mr, cuts) => {
        const req = mutate(Buffer.from(pairs.map(([q]) => requests[q]).join('')), mq);
        const resp = mutate(Buffer.from(pairs.map(([, r]) => responses[r]).join('')), mr);
        const c = new TcpConv([{ ip: '10.1.0.1', port: 50000 }, { ip: '10.1.0.2', port: 80 }]);
        const out: Buffer[] = [...c.handshake()];
        for (const [side, bytes] of [[0, req], [1, resp]] as const) {
          for (let o = 0, i = 0; o < bytes.length; i++) {
            const n = cuts[i % cuts.length];
            out.push(c.seg(side, F.PSH | F.ACK, bytes.subarray(o, o + n)));
            o += n;
          }
        }
        out.push(...c.close());
        survive(toFrames(timed(out.map((p) => ether(0x0800, p)))), 'damaged http');
      }),
      params(200),
    );
  });

  it('DNS over UDP and TCP with damaged messages', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(2), fc.boolean(), mutation, fc.nat(65535)), { minLength: 1, maxLength: 20 }), (msgs) => {
        const frames: Buffer[] = [];
        const c = new TcpConv([{ ip: '10.2.0.1', port: 51000 }, { ip: '10.2.0.2', port: 53 }]);
        frames.push(...c.handshake());
        for (const [kind, response, m, id] of msgs) {
          const msg = mutate(dnsMessage(id, `n${id}.example`, [1, 28, 15][kind], response, response ? ['10.9.9.9'] : []), m);
          frames.push(response ? ipv4('10.2.0.2', '10.2.0.1', 17, udp(53, 40000 + (id % 10), msg)) : ipv4('10.2.0.1', '10.2.0.2', 17, udp(40000 + (id % 10), 53, msg)));
          const len = Buffer.alloc(2);
          len.writeUInt16BE(msg.length);
          frames.push(c.seg(response ? 1 : 0, F.PSH | F.ACK, Buffer.concat([len, msg])));
        }
        frames.push(...c.close());
        survive(toFrames(timed(frames.map((p) => ether(0x0800, p)))), 'damaged dns');
      }),
      params(200),
    );
  });

  it('ICMP and ICMPv6 of any type, code and length', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.nat(255), fc.nat(255), fc.uint8Array({ maxLength: 80 })), { minLength: 1, maxLength: 30 }), (msgs) => {
        const frames = msgs.map(([v6, type, code, body]) => {
          const m = icmpEcho(type, 1, 1, Buffer.from(body));
          m[1] = code;
          return v6 ? ether(0x86dd, ipv6('2001:db8::1', '2001:db8::2', 58, m)) : ether(0x0800, ipv4('10.3.0.1', '10.3.0.2', 1, m));
        });
        survive(toFrames(timed(frames)), 'icmp');
      }),
      params(200),
    );
  });

  it('IP fragments: random offsets, overlaps, lengths and flags', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ id: fc.nat(3), off: fc.nat(400), more: fc.boolean(), len: fc.nat(120), v6: fc.boolean() }), { minLength: 1, maxLength: 60 }), (frags) => {
        const frames = frags.map((f) => {
          const payload = Buffer.alloc(f.len, f.id);
          if (f.v6) return ether(0x86dd, ipv6('2001:db8::1', '2001:db8::2', 17, payload, [{ type: 44, body: ipv6FragBody(f.off * 8, f.more, f.id) }]));
          return ether(0x0800, ipv4('10.4.0.1', '10.4.0.2', 17, payload, { id: f.id, fragOffset: f.off * 8, mf: f.more }));
        });
        survive(toFrames(timed(frames)), 'fragments');
      }),
      params(200),
    );
  });
});
