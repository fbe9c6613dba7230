import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeFrame, type Frame } from '../src/core/frame';
import { dnsMessage, ether, F, ipv4, TcpConv, tcp, timed, udp } from './gen/packets';
import { cli, fixture, pushThroughStages } from './helpers';

const frames = (datas: Buffer[], stepNs = 1_000_000): Frame[] => timed(datas, 1_700_000_000, undefined, stepNs).map((g) => makeFrame(g.sec, g.nsec, 1, g.data.length, 0, g.data));

/** anomalies of each layer: a cut IPv4 header, a TCP hole (then a request cut by the end), an HTTP header section too large, a DNS message that does not parse */
function mixed(): Frame[] {
  const c = new TcpConv([{ ip: '10.6.0.1', port: 41000 }, { ip: '10.6.0.2', port: 80 }]);
  const big = Buffer.from(`GET / HTTP/1.1\r\nX: ${'a'.repeat(70 * 1024)}\r\n\r\n`);
  const http: Buffer[] = [...c.handshake()];
  for (let o = 0; o < big.length; o += 1400) http.push(c.seg(0, F.ACK, big.subarray(o, o + 1400)));
  const dns = dnsMessage(5, 'bad.example', 1, true, ['10.0.0.1']).subarray(0, 20);
  return frames([
    ether(0x0800, ipv4('10.6.0.1', '10.6.0.9', 6, Buffer.alloc(0)).subarray(0, 12)),
    ...http.map((p) => ether(0x0800, p)),
    ether(0x0800, ipv4('10.6.0.3', '10.6.0.4', 6, tcp(42000, 80, 1000, 0, F.SYN))),
    ether(0x0800, ipv4('10.6.0.3', '10.6.0.4', 6, tcp(42000, 80, 5001, 0, F.ACK, Buffer.from('later')))),
    ether(0x0800, ipv4('10.6.0.4', '10.6.0.3', 6, tcp(80, 42000, 7000, 9999, F.ACK))),
    ether(0x0800, ipv4('10.6.0.53', '10.6.0.5', 17, udp(53, 40000, dns))),
  ]);
}

describe('anomaly events', { timeout: 600_000 }, () => {
  it('are off by default', () => {
    const { events } = pushThroughStages(mixed());
    assert.equal(events.filter((e) => e.type === 'anomaly').length, 0);
  });

  it('report the layer, the reason and the tuple of decode, TCP, HTTP and DNS anomalies', () => {
    const { events, stats } = pushThroughStages(mixed(), { anomalies: true });
    const got = events.filter((e) => e.type === 'anomaly').map((e: any) => `${e.anomaly.layer}/${e.anomaly.reason} ${e.source?.ip ?? '-'}:${e.source?.port ?? '-'} > ${e.destination?.ip ?? '-'}:${e.destination?.port ?? '-'}`);
    assert.deepEqual(got.sort(), [
      'decode/truncated_ipv4_header -:- > -:-',
      'dns/name_out_of_bounds 10.6.0.53:53 > 10.6.0.5:40000',
      'http/request_closed_in_headers 10.6.0.3:42000 > 10.6.0.4:80',
      'http/request_header_too_large 10.6.0.1:41000 > 10.6.0.2:80',
      'tcp/gap_acked_unseen 10.6.0.3:42000 > 10.6.0.4:80',
    ].sort());
    assert.deepEqual((stats.analyze as any).anomaly_events, { emitted: 5, suppressed: 0 });
  });

  it('are rate limited per reason on packet time, and say how many were held back', () => {
    const bad = dnsMessage(9, 'x.example', 1, true).subarray(0, 14);
    // 1,000 malformed responses over one second of packet time
    const { events, stats } = pushThroughStages(frames(Array.from({ length: 1000 }, (_, i) => ether(0x0800, ipv4('10.7.0.53', '10.7.0.1', 17, udp(53, 30000 + i, bad)))), 1_000_000), { anomalies: true });
    const anomalies = events.filter((e) => e.type === 'anomaly') as any[];
    // a burst of 10, then 10 per second: 20 in the second
    assert.ok(anomalies.length >= 10 && anomalies.length <= 21, `${anomalies.length} events`);
    const a = (stats.analyze as any).anomaly_events;
    assert.equal(a.emitted + a.suppressed, 1000, 'every anomaly either emitted or counted as suppressed');
    assert.equal(a.emitted, anomalies.length);
    // what an event carries was suppressed before it; what follows the last event is only in the stats
    assert.ok(anomalies.reduce((n, e) => n + e.anomaly.suppressed, 0) <= a.suppressed);
    assert.ok(anomalies[anomalies.length - 1].anomaly.suppressed > 0, 'an event after a suppression counts what was held back');
  });

  it('pktflow read --anomalies', async () => {
    const on = await cli(['read', '--anomalies', '-q', fixture('edge/lost-segment.pcap')]);
    assert.equal(on.code, 0, on.stderr);
    const types = on.stdout.trim().split('\n').map((l) => JSON.parse(l).type);
    assert.ok(types.includes('anomaly'));
    const off = await cli(['read', '-q', fixture('edge/lost-segment.pcap')]);
    assert.ok(!off.stdout.includes('"anomaly"'));
  });
});
