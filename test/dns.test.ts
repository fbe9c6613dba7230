import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LinkType, makeFrame } from '../src/core/frame';
import { DnsParseError, parseDns, readName } from '../src/protocols/dns/message';
import { execFileSync, spawnSync } from 'node:child_process';
import { fixture, memorySource, pushThroughStages, readFile, runStages } from './helpers';
import { dnsMessage, dnsName, dnsRecord, dnsRecordsMessage, F, ipv4, TcpConv, udp } from './gen/packets';

const x = (e: unknown) => e as any;

describe('DNS message parsing', { timeout: 600_000 }, () => {
  it('follows compression pointers and refuses loops and forward pointers', () => {
    // 12-byte header then: "a" + pointer to itself (offset 12)
    const loop = Buffer.concat([Buffer.alloc(12), Buffer.from([1, 0x61, 0xc0, 12])]);
    assert.throws(() => readName(loop, 0, loop.length, 12), (e: DnsParseError) => e.reason === 'name_pointer_loop');
    const forward = Buffer.concat([Buffer.alloc(12), Buffer.from([0xc0, 14, 1, 0x62, 0])]);
    assert.throws(() => readName(forward, 0, forward.length, 12), (e: DnsParseError) => e.reason === 'name_pointer_loop');
    // a chain of backward pointers: each hop legal, the chain finite
    const chain = Buffer.concat([Buffer.alloc(12), Buffer.from([1, 0x78, 0]), Buffer.from([0xc0, 12]), Buffer.from([0xc0, 15]), Buffer.from([0xc0, 17])]);
    assert.deepEqual(readName(chain, 0, chain.length, 19), ['x', 21]);
  });

  it('refuses names longer than 255 bytes and cut records', () => {
    const long = Buffer.concat([Buffer.alloc(12), ...Array.from({ length: 5 }, () => Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x61)])), Buffer.from([0])]);
    assert.throws(() => readName(long, 0, long.length, 12), (e: DnsParseError) => e.reason === 'name_too_long');
    const msg = dnsMessage(1, 'a.example', 1, true, ['1.2.3.4']);
    assert.throws(() => parseDns(msg, 0, msg.length - 2), DnsParseError);
  });

  it('never throws anything but DnsParseError on random or mutated bytes (property)', () => {
    const valids = [dnsMessage(7, 'www.example.test', 1, true, ['10.0.0.1', '10.0.0.2']), signedAnswer([rrsig(), nsec3(Buffer.from('foobar'), Buffer.from([0, 1, 0x40])), nsec(Buffer.from([0, 1, 0x40, 1, 1, 0x40]))])];
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.tuple(fc.nat(1), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 8 })).map(([which, muts]) => {
        const valid = valids[which];
        const m = Buffer.from(valid);
        for (const [i, v] of muts) m[i % m.length] = v;
        return m;
      })), (bytes) => {
        const b = Buffer.from(bytes);
        try {
          parseDns(b, 0, b.length);
        } catch (err) {
          assert.ok(err instanceof DnsParseError, String(err));
        }
      }),
      { numRuns: 2000 },
    );
  });
});

/** a response to `example.test A` whose answers are the given records, all owned by example.test */
function signedAnswer(records: [number, Buffer][]): Buffer {
  return dnsRecordsMessage(1, 'example.test', 1, true, { answers: records.map(([type, rdata]) => dnsRecord('example.test', type, 300, rdata)) });
}
const u16 = (n: number) => Buffer.from([n >> 8, n & 255]);
const u32 = (n: number) => Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
/** RRSIG covering A, algorithm 15, 2 labels, TTL 300, 2106-02-07T06:28:15 .. 1970-01-01, key tag 4711 */
const rrsig = (signer = dnsName('example.test'), sig = Buffer.from([1, 2, 3])): [number, Buffer] => [46, Buffer.concat([u16(1), Buffer.from([15, 2]), u32(300), u32(0xffffffff), u32(0), u16(4711), signer, sig])];
const nsec = (bitmap: Buffer): [number, Buffer] => [47, Buffer.concat([dnsName('b.example.test'), bitmap])];
const nsec3 = (next: Buffer, bitmap: Buffer, salt = Buffer.alloc(0)): [number, Buffer] => [50, Buffer.concat([Buffer.from([1, 0]), u16(10), Buffer.from([salt.length]), salt, Buffer.from([next.length]), next, bitmap])];
const answers = (m: Buffer) => parseDns(m, 0, m.length).answers;
const reason = (m: Buffer) => {
  try {
    parseDns(m, 0, m.length);
  } catch (err) {
    return (err as DnsParseError).reason;
  }
  return 'parsed';
};

describe('DNSSEC records (RFC 4034, 5155)', { timeout: 600_000 }, () => {
  it('reads RRSIG: its times as YYYYMMDDHHmmSS to 2106, unknown algorithms as numbers', () => {
    const [r] = answers(signedAnswer([rrsig()]));
    assert.deepEqual(r, {
      name: 'example.test', type: 'RRSIG', class: 'IN', ttl: '300', data: 'AQID',
      type_covered: 'A', algorithm: 'ED25519', labels: 2, original_ttl: 300, expiration: '21060207062815', inception: '19700101000000', key_tag: 4711, signer_name: 'example.test',
    });
    const [k] = answers(signedAnswer([[48, Buffer.concat([u16(256), Buffer.from([3, 99]), Buffer.from([0xff])])]]));
    assert.deepEqual([k.flags, k.protocol, k.algorithm, k.data], [256, 3, '99', '/w==']);
    const [d] = answers(signedAnswer([[43, Buffer.concat([u16(60485), Buffer.from([5, 1]), Buffer.from('2bb183af5f22588179a53b0a98631fad1a292118', 'hex')])]]));
    assert.deepEqual([d.key_tag, d.algorithm, d.digest_type, d.data], [60485, 'RSASHA1', 'SHA1', '2BB183AF5F22588179A53B0A98631FAD1A292118']);
  });

  it('lists the types of a bit map across windows, and writes the NSEC3 hash in base32hex (RFC 4648 test vector)', () => {
    // window 0: A (1), MX (15), RRSIG (46); window 1: CAA (257); window 255: 65535
    const bitmap = Buffer.from([0, 6, 0x40, 0x01, 0, 0, 0, 0x02, 1, 1, 0x40, 255, 32, ...Array(31).fill(0), 0x01]);
    const [n] = answers(signedAnswer([nsec(bitmap)]));
    assert.deepEqual([n.data, n.type_bits], ['b.example.test', 'A MX RRSIG CAA TYPE65535']);
    const [h] = answers(signedAnswer([nsec3(Buffer.from('foobar'), Buffer.alloc(0), Buffer.from([0xab]))]));
    assert.deepEqual([h.data, h.hash, h.flags, h.iterations, h.salt, h.type_bits], ['CPNMUOJ1E8', 'SHA1', 0, 10, 'AB', '']);
    const [e] = answers(signedAnswer([nsec3(Buffer.from('f'), Buffer.alloc(0))]));
    assert.deepEqual([e.data, e.salt], ['CO', '-']);
    const [p] = answers(signedAnswer([[51, Buffer.from([1, 0, 0, 0, 0])]]));
    assert.deepEqual([p.data, p.hash, p.iterations], ['-', 'SHA1', 0]);
  });

  it('refuses DNSSEC records whose fields run past their RDATA', () => {
    // the signer's name runs on past the RDATA (into bytes that follow the record)
    const [, sig] = rrsig();
    const cut: [number, Buffer] = [46, sig.subarray(0, 21)];
    assert.equal(reason(Buffer.concat([signedAnswer([cut]), Buffer.alloc(20)])), 'bad_rrsig_record');
    assert.equal(reason(signedAnswer([[46, sig.subarray(0, 18)]])), 'bad_rrsig_record');
    assert.equal(reason(signedAnswer([[48, Buffer.from([1, 1, 3])]])), 'bad_dnskey_record');
    assert.equal(reason(signedAnswer([[43, Buffer.from([1, 1, 13])]])), 'bad_ds_record');
    assert.equal(reason(signedAnswer([nsec(Buffer.from([0, 0]))])), 'bad_type_bitmap'); // empty window
    assert.equal(reason(signedAnswer([nsec(Buffer.from([0, 33, ...Array(33).fill(1)]))])), 'bad_type_bitmap'); // window longer than 32
    assert.equal(reason(signedAnswer([nsec(Buffer.from([1, 1, 0x40, 0, 1, 0x40]))])), 'bad_type_bitmap'); // windows out of order
    assert.equal(reason(signedAnswer([nsec(Buffer.from([0, 4, 0x40]))])), 'bad_type_bitmap'); // window past the RDATA
    assert.equal(reason(signedAnswer([[50, Buffer.from([1, 0, 0, 0, 9, 1, 2])]])), 'bad_nsec3_record'); // salt past the RDATA
    assert.equal(reason(signedAnswer([[50, Buffer.from([1, 0, 0, 0, 0, 20, 1, 2])]])), 'bad_nsec3_record'); // hash past the RDATA
    assert.equal(reason(signedAnswer([[51, Buffer.from([1, 0, 0, 0, 1])]])), 'bad_nsec3param_record');
    assert.equal(reason(signedAnswer([[51, Buffer.from([1, 0, 0, 0, 0, 7])]])), 'bad_nsec3param_record'); // bytes after the salt
  });
});

describe('DNS analyzer', { timeout: 600_000 }, () => {
  it('reads every record type dnsmasq served, over UDP and TCP', async () => {
    const { events } = await readFile(fixture('http-dns.pcap'));
    const dns = events.filter((e) => e.type === 'dns').map(x);
    const byType = (t: string) => dns.find((e) => e.dns.question.type === t && e.network.transport === 'udp');
    assert.deepEqual(byType('A').dns.answers.map((a: any) => a.data), ['10.1.2.3']);
    assert.deepEqual(byType('A').dns.resolved_ip, ['10.1.2.3']);
    assert.deepEqual(byType('AAAA').dns.answers.map((a: any) => a.data), ['2001:db8::3']);
    assert.equal(byType('MX').dns.answers[0].preference, 10);
    assert.equal(byType('TXT').dns.answers[0].data, 'v=spf1 -all');
    assert.deepEqual([byType('SRV').dns.answers[0].port, byType('SRV').dns.answers[0].data], [8080, 'www.example.test']);
    assert.equal(byType('CAA').dns.answers[0].tag, 'issue');
    assert.equal(byType('PTR').dns.answers[0].data, 'www.example.test');
    assert.equal(dns.find((e) => e.dns.question.name === 'alias.example.test').dns.answers[0].type, 'CNAME');
    const nx = dns.find((e) => e.dns.response_code === 'NXDOMAIN');
    assert.equal(nx.status, 'Error');
    assert.equal(byType('A').dns.opt.udp_size, 1232);
    assert.equal(dns.filter((e) => e.network.transport === 'tcp').length, 2);
  });

  it('leaves authorities and additionals out unless asked, as packetbeat; counts additionals without the OPT record', async () => {
    const m = dnsRecordsMessage(9, 'example.test', 1, true, {
      answers: [dnsRecord('example.test', 1, 60, Buffer.from([10, 0, 0, 1]))],
      authorities: [dnsRecord('example.test', 2, 3600, dnsName('ns.example.test'))],
      additionals: [dnsRecord('ns.example.test', 1, 3600, Buffer.from([10, 0, 0, 53])), dnsRecord('', 41, 0, Buffer.alloc(0))],
    });
    const q = dnsMessage(9, 'example.test', 1, false);
    const frames = [ipv4('10.0.0.1', '10.0.0.53', 17, udp(5555, 53, q)), ipv4('10.0.0.53', '10.0.0.1', 17, udp(53, 5555, m))].map((b, i) => makeFrame(1000, i, LinkType.RAW, b.length, 0, b));
    const plain = x((await runStages(memorySource(frames))).events[0]).dns;
    assert.equal(plain.authorities, undefined);
    assert.equal(plain.additionals, undefined);
    assert.deepEqual([plain.answers_count, plain.authorities_count, plain.additionals_count], [1, 1, 1]);
    assert.deepEqual(plain.answers[0], { name: 'example.test', type: 'A', class: 'IN', ttl: '60', data: '10.0.0.1' });
    const all = x((await runStages(memorySource(frames), { options: { dns: { includeAuthorities: true, includeAdditionals: true } } })).events[0]).dns;
    assert.deepEqual(all.authorities.map((r: any) => [r.type, r.ttl, r.data]), [['NS', '3600', 'ns.example.test']]);
    assert.deepEqual(all.additionals.map((r: any) => r.data), ['10.0.0.53'], 'the OPT record is dns.opt, not an additional');
  });

  it('shows a record of a type it does not decode as packetbeat does: its RDATA bytes, escaped', () => {
    const rdata = Buffer.from([0, 1, 0x41, 0x22, 0x5c, 0x09, 0x0a, 0xff]);
    const m = dnsRecordsMessage(1, 'x.test', 65280, true, { answers: [dnsRecord('x.test', 65280, 5, rdata)] });
    const [r] = parseDns(m, 0, m.length).answers;
    assert.deepEqual([r.type, r.data], ['TYPE65280', String.raw`\000\001A\"\\\t\n\255`]);
  });

  it('frames several messages per TCP connection, split anywhere', async () => {
    const { events } = await readFile(fixture('edge/dns-tcp.pcap'));
    assert.deepEqual(events.map((e) => [x(e).dns.id, x(e).dns.response_code]), [[1, 'NOERROR'], [2, 'NXDOMAIN']]);
    // the 2-byte length prefix counts, as packetbeat counts it: the two queries are the 68 payload bytes tshark sees
    assert.deepEqual(events.map((e) => x(e).source.bytes), [34, 34]);
  });

  it('emits an unanswered query after the timeout with status Error, and a late query at the end', async () => {
    const q = (id: number, sec: number, port: number) => {
      const b = ipv4('10.0.0.1', '10.0.0.53', 17, udp(port, 53, dnsMessage(id, `q${id}.test`, 1, false)));
      return makeFrame(sec, 0, LinkType.RAW, b.length, 0, b);
    };
    const { events } = await runStages(memorySource([q(1, 1000, 1111), q(2, 1020, 2222)]));
    assert.equal(events.length, 2);
    const [a, b] = events.map(x);
    assert.equal(a.dns.id, 1);
    assert.equal(a.status, 'Error');
    assert.equal(a.error.message, 'Unmatched request');
    assert.deepEqual(a.notes, ['no response']);
    assert.equal(a.dns.type, 'query');
    assert.equal(b.dns.id, 2);
  });

  it('emits a response without a query as an unmatched response with status Error, its question split by the public suffix list', async () => {
    const r = ipv4('10.0.0.53', '10.0.0.1', 17, udp(53, 3333, dnsMessage(9, 'WWW.Shop.Example.CO.UK', 1, true, ['10.9.9.9'])));
    const { events, stats } = await runStages(memorySource([makeFrame(1000, 0, LinkType.RAW, r.length, 0, r)]));
    assert.equal(events.length, 1);
    const e = x(events[0]);
    // NOERROR, but without its query the transaction is not OK (as packetbeat)
    assert.equal(e.status, 'Error');
    assert.equal(e.error.message, 'Unmatched response');
    assert.deepEqual(e.notes, ['response without a query']);
    assert.deepEqual([e.source.ip, e.source.port, e.destination.port], ['10.0.0.1', 3333, 53]);
    assert.deepEqual(e.dns.question, {
      name: 'WWW.Shop.Example.CO.UK', type: 'A', class: 'IN',
      registered_domain: 'example.co.uk', etld_plus_one: 'example.co.uk', subdomain: 'www.shop', top_level_domain: 'co.uk',
    });
    const dns = (stats.analyze as any).protocols.dns;
    assert.deepEqual([dns.transactions_started, dns.transactions, dns.unmatched.response_without_query], [1, 1, 1]);
  });

  it('does not emit a response read again after a Kafka restart point as unmatched: its query was paired before', async () => {
    // a log whose earlier reader got up to seq 5: frames below it are read again
    const log = { hold: () => ({ release() {} }), readBefore: (seq: number) => seq < 5 };
    const resp = (id: number, seq: number) => {
      const b = ipv4('10.0.0.53', '10.0.0.1', 17, udp(53, 3000 + id, dnsMessage(id, `r${id}.test`, 1, true, ['10.0.0.9'])));
      return makeFrame(1000, seq, LinkType.RAW, b.length, 0, b, log, seq);
    };
    const { events, stats } = await runStages(memorySource([resp(1, 3), resp(2, 7)]));
    assert.deepEqual(events.map((e) => [x(e).dns.id, x(e).error.message]), [[2, 'Unmatched response']]);
    const dns = (stats.analyze as any).protocols.dns;
    assert.deepEqual([dns.transactions_started, dns.transactions, dns.transactions_dropped], [2, 1, { paired_before_restart: 1 }]);
  });

  it('leaves the public suffix fields out for names without a registrable domain', async () => {
    const q = (id: number, name: string) => {
      const b = ipv4('10.0.0.1', '10.0.0.53', 17, udp(4000 + id, 53, dnsMessage(id, name, 1, false)));
      return makeFrame(1000, id, LinkType.RAW, b.length, 0, b);
    };
    const { events } = await runStages(memorySource([q(1, 'co.uk'), q(2, 'localhost'), q(3, 'example.test'), q(4, '_http._tcp.example.com')]));
    assert.deepEqual(events.map((e) => x(e).dns.question), [
      { name: 'co.uk', type: 'A', class: 'IN' },
      { name: 'localhost', type: 'A', class: 'IN' },
      { name: 'example.test', type: 'A', class: 'IN', registered_domain: 'example.test', etld_plus_one: 'example.test', top_level_domain: 'test' },
      { name: '_http._tcp.example.com', type: 'A', class: 'IN', registered_domain: 'example.com', etld_plus_one: 'example.com', subdomain: '_http._tcp', top_level_domain: 'com' },
    ]);
  });

  it('emits a TCP query left unanswered when its connection closes, and only that one', async () => {
    const framed = (m: Buffer) => Buffer.concat([Buffer.from([m.length >> 8, m.length & 255]), m]);
    const c = new TcpConv([{ ip: '10.3.0.1', port: 45001 }, { ip: '10.3.0.53', port: 53 }]);
    const d = new TcpConv([{ ip: '10.3.0.2', port: 45002 }, { ip: '10.3.0.53', port: 53 }]);
    const pk = [...c.handshake(), ...d.handshake(), c.seg(0, F.PSH | F.ACK, framed(dnsMessage(5, 'lost.test', 1, false))), d.seg(0, F.PSH | F.ACK, framed(dnsMessage(6, 'kept.test', 1, false))), ...c.close()];
    const frames = pk.map((p, i) => makeFrame(1000, i, LinkType.RAW, p.length, 0, p));
    const { events } = await runStages(memorySource(frames));
    // c's query comes out when c closes; d's at the end of input
    assert.deepEqual(events.map((e) => [x(e).dns.question.name, x(e).status, x(e).error?.message]), [['lost.test', 'Error', 'Unmatched request'], ['kept.test', 'Error', 'Unmatched request']]);
  });
});

describe('DNS on ports DNS does not own (content probes)', { timeout: 600_000 }, () => {
  const raw = (data: Buffer, sec = 1_700_000_000) => makeFrame(sec, 0, LinkType.RAW, data.length, 0, data);

  it('finds dig against dnsmasq on port 59999 without --ports, over UDP and TCP, as tshark decodes it', async () => {
    const file = fixture('dns/dig-port-59999.pcap');
    const r = await readFile(file);
    const dns = r.events.filter((e) => e.type === 'dns').map(x);
    assert.deepEqual(
      dns.map((e) => [e.network.transport, e.dns.question.name, e.dns.question.type, e.dns.response_code]),
      [
        ['udp', 'www.port.test', 'A', 'NOERROR'],
        ['udp', 'www.port.test', 'AAAA', 'NOERROR'],
        ['udp', 'port.test', 'MX', 'NOERROR'],
        ['udp', 'nothing.port.test', 'A', 'NXDOMAIN'],
        ['tcp', 'www.port.test', 'A', 'NOERROR'],
      ],
    );
    const a = r.stats.analyze as any;
    assert.equal(a.datagrams.dns_by_probe, 8, 'four queries and their responses');
    assert.equal(a.connections.dns_by_probe, 1);
    // tshark, told that the port is DNS, sees the same questions and answers
    if (spawnSync('bash', ['-c', 'command -v tshark']).status === 0) {
      const t = execFileSync('tshark', ['-r', file, '-d', 'udp.port==59999,dns', '-d', 'tcp.port==59999,dns', '-Y', 'dns.flags.response==1', '-T', 'fields', '-e', 'dns.qry.name', '-e', 'dns.flags.rcode'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      assert.deepEqual(
        t.trim().split('\n').map((l) => l.split('\t')),
        dns.map((e) => [e.dns.question.name, e.dns.response_code === 'NOERROR' ? '0' : '3']),
      );
    }
    // by port only, nothing is found
    const off = await readFile(file, { probe: false });
    assert.equal(off.events.filter((e) => e.type === 'dns').length, 0);
  });

  it('leaves other datagrams on unclaimed ports alone', () => {
    const payloads = [
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      Buffer.alloc(64),
      Buffer.from('c000000001086162636465666768', 'hex'),
      ...fc.sample(fc.uint8Array({ minLength: 20, maxLength: 200 }), { numRuns: 200, seed: 7 }).map((a) => Buffer.from(a)),
    ];
    const frames = payloads.map((pl, i) => raw(ipv4('10.0.0.1', '10.0.0.2', 17, udp(40000 + i, 7000, pl))));
    const { events, stats } = pushThroughStages(frames);
    assert.deepEqual(events, []);
    assert.equal((stats.analyze as any).datagrams.unrecognised, payloads.length);
  });

  it('keeps at most 16,384 flows being probed, the least recently seen given up first', () => {
    const frames = Array.from({ length: 20_000 }, (_, i) => raw(ipv4('10.1.' + (i >> 8) + '.' + (i & 255), '10.0.0.2', 17, udp(40000, 7000, Buffer.alloc(32)))));
    const st = (pushThroughStages(frames).stats.analyze as any).udp_probe_flows;
    assert.equal(st.tracked, 16_384);
    assert.equal(st.evicted, 20_000 - 16_384);
  });
});
