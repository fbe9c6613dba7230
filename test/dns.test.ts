import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LinkType, makeFrame } from '../src/core/frame';
import { DnsParseError, parseDns, readName } from '../src/protocols/dns/message';
import { fixture, memorySource, readFile, runStages } from './helpers';
import { dnsMessage, F, ipv4, TcpConv, udp } from './gen/packets';

const x = (e: unknown) => e as any;

describe('DNS message parsing', () => {
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
    const valid = dnsMessage(7, 'www.example.test', 1, true, ['10.0.0.1', '10.0.0.2']);
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.array(fc.tuple(fc.nat(valid.length - 1), fc.nat(255)), { maxLength: 8 }).map((muts) => {
        const m = Buffer.from(valid);
        for (const [i, v] of muts) m[i] = v;
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

describe('DNS analyzer', () => {
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

  it('frames several messages per TCP connection, split anywhere', async () => {
    const { events } = await readFile(fixture('edge/dns-tcp.pcap'));
    assert.deepEqual(events.map((e) => [x(e).dns.id, x(e).dns.response_code]), [[1, 'NOERROR'], [2, 'NXDOMAIN']]);
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
