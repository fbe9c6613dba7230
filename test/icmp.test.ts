import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LinkType, makeFrame } from '../src/core/frame';
import { icmpEcho, ipv4, ipv6, tcp, udp } from './gen/packets';
import { memorySource, runStages } from './helpers';

const frames = (pk: [number, Buffer][]) => pk.map(([ms, b], i) => makeFrame(1000 + Math.floor(ms / 1000), (ms % 1000) * 1e6 + i, LinkType.RAW, b.length, 0, b));
const x = (e: unknown) => e as any;

describe('ICMP analyzer', { timeout: 600_000 }, () => {
  it('pairs echo requests and replies (v4 and v6) with their round-trip time', async () => {
    const { events } = await runStages(
      memorySource(
        frames([
          [0, ipv4('10.0.0.1', '10.0.0.2', 1, icmpEcho(8, 7, 1))],
          [3, ipv4('10.0.0.2', '10.0.0.1', 1, icmpEcho(0, 7, 1))],
          [10, ipv6('2001:db8::1', '2001:db8::2', 58, icmpEcho(128, 9, 1))],
          [12, ipv6('2001:db8::2', '2001:db8::1', 58, icmpEcho(129, 9, 1))],
          [20, ipv4('10.0.0.1', '10.0.0.2', 1, icmpEcho(8, 7, 2))], // never answered
        ]),
      ),
    );
    const v = events.map(x).map((e) => [e.icmp.version, e.status, e.icmp.request?.type, e.icmp.response?.type, e.event.duration, e.network.transport]);
    assert.deepEqual(v, [
      [4, 'OK', 8, 0, 3_000_001, 'icmp'],
      [6, 'OK', 128, 129, 2_000_001, 'ipv6-icmp'],
      [4, 'Error', 8, undefined, 0, 'icmp'],
    ]);
    assert.equal(x(events[0]).source.port, undefined, 'ICMP has no ports');
    // as packetbeat: the data gopacket leaves after the header (8 bytes for ICMPv4, 4 for ICMPv6), the wording of gopacket's names, path, event.type
    const [v4, v6] = events.map(x);
    assert.deepEqual([v4.source.bytes, v4.destination.bytes, v6.source.bytes, v6.destination.bytes], [8, 8, 12, 12]);
    assert.deepEqual([v4.icmp.request.message, v4.icmp.response.message, v6.icmp.request.message], ['EchoRequest', 'EchoReply', 'EchoRequest']);
    assert.deepEqual([v4.path, v6.path], ['10.0.0.2', '2001:db8::2']);
    assert.deepEqual(v4.event.type, ['connection']);
    assert.deepEqual(x(events[2]).notes, ['no reply']);
    assert.equal(x(events[2]).error.message, 'Unmatched request');
    assert.equal(x(events[0]).error, undefined);
  });

  it('emits a reply without a request as an unmatched response, from the requester\'s side', async () => {
    const { events, stats } = await runStages(memorySource(frames([[0, ipv4('10.0.0.2', '10.0.0.1', 1, icmpEcho(0, 7, 1))]])));
    assert.equal(events.length, 1);
    const e = x(events[0]);
    assert.equal(e.status, 'Error');
    assert.equal(e.error.message, 'Unmatched response');
    assert.deepEqual(e.notes, ['reply without a request']);
    assert.equal(e.icmp.request, undefined);
    assert.deepEqual(e.icmp.response, { message: 'EchoReply', type: 0, code: 0 });
    assert.equal(e.path, '10.0.0.2', 'the address the request went to');
    assert.deepEqual([e.source.ip, e.destination.ip], ['10.0.0.1', '10.0.0.2']);
    const icmp = (stats.analyze as any).protocols.icmp;
    assert.deepEqual([icmp.transactions_started, icmp.transactions, icmp.unmatched.reply_without_request], [1, 1, 1]);
  });

  it('does not emit a reply read again after a Kafka restart point as unmatched', async () => {
    const log = { hold: () => ({ release() {} }), readBefore: (seq: number) => seq < 5 };
    const reply = (seq: number) => {
      const b = ipv4('10.0.0.2', '10.0.0.1', 1, icmpEcho(0, 7, seq));
      return makeFrame(1000, seq, LinkType.RAW, b.length, 0, b, log, seq);
    };
    const { events, stats } = await runStages(memorySource([reply(3), reply(7)]));
    assert.deepEqual(events.map((e) => x(e).error.message), ['Unmatched response']);
    const icmp = (stats.analyze as any).protocols.icmp;
    assert.deepEqual([icmp.transactions_started, icmp.transactions, icmp.transactions_dropped], [2, 1, { paired_before_restart: 1 }]);
  });

  it('reports an unreachable or time-exceeded message with the tuple it quotes', async () => {
    const original = ipv4('10.0.0.1', '192.0.2.9', 17, udp(40000, 33434, Buffer.alloc(8)));
    const unreach = Buffer.concat([Buffer.from([3, 3, 0, 0, 0, 0, 0, 0]), original.subarray(0, 28)]);
    const quoted6 = ipv6('2001:db8::1', '2001:db8::9', 6, tcp(5555, 443, 1, 0, 2));
    const exceeded = Buffer.concat([Buffer.from([3, 0, 0, 0, 0, 0, 0, 0]), quoted6.subarray(0, 48)]);
    const { events } = await runStages(memorySource(frames([[0, ipv4('192.0.2.254', '10.0.0.1', 1, unreach)], [1, ipv6('2001:db8::fe', '2001:db8::1', 58, exceeded)]])));
    const [a, b] = events.map(x);
    assert.equal(a.icmp.request.message, 'DestinationUnreachable(Port)');
    assert.equal(a.source.bytes, 28, 'the quoted datagram after the 8-byte header');
    assert.equal(a.status, 'Error');
    assert.deepEqual(a.icmp.original, { transport: 'udp', source: { ip: '10.0.0.1', port: 40000 }, destination: { ip: '192.0.2.9', port: 33434 } });
    assert.equal(b.icmp.request.message, 'TimeExceeded(HopLimitExceeded)');
    assert.deepEqual(b.icmp.original, { transport: 'tcp', source: { ip: '2001:db8::1', port: 5555 }, destination: { ip: '2001:db8::9', port: 443 } });
  });
});
