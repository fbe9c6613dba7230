import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LinkType, makeFrame } from '../src/core/frame';
import { DecodeStage } from '../src/decode/stage';
import { FlowTable } from '../src/flows/table';
import { execFileSync, spawnSync } from 'node:child_process';
import { ether, F, icmpEcho, ipv4, ipv6, tcp, udp } from './gen/packets';
import { fixture, readFile } from './helpers';

const x = (e: unknown) => e as any;

function packets(spec: [number, string, string, number, number][]) {
  const d = new DecodeStage();
  return d.push(spec.map(([sec, src, dst, sp, dp]) => {
    const b = ether(0x0800, ipv4(src, dst, 17, udp(sp, dp, Buffer.from('x'))));
    return makeFrame(sec, 0, LinkType.ETHERNET, b.length, 0, b);
  }));
}

describe('flows', { timeout: 600_000 }, () => {
  it('reports active flows every period and a final report after the idle timeout', () => {
    const t = new FlowTable({ periodSec: 10, timeoutSec: 30 });
    const ps = packets([
      [1000, '10.0.0.1', '10.0.0.2', 1111, 53],
      [1001, '10.0.0.2', '10.0.0.1', 53, 1111],
      [1005, '10.0.0.3', '10.0.0.2', 2222, 53],
      [1011, '10.0.0.1', '10.0.0.2', 1111, 53], // period: both flows reported
      [1050, '10.0.0.9', '10.0.0.2', 3333, 53], // both old flows idle past 30 s: final
    ]);
    const events: any[] = [];
    for (const p of ps) {
      t.packet(p);
      events.push(...t.take());
    }
    t.flush();
    events.push(...t.take());
    const view = events.map((e) => [e.source.port, e.flow.final, e.source.packets, e.destination.packets]);
    assert.deepEqual(view, [
      [1111, false, 1, 1],
      [2222, false, 1, 0],
      [2222, true, 1, 0],
      [1111, true, 2, 1],
      [3333, true, 1, 0],
    ]);
    // the source is the side of the first packet; the id does not depend on direction or run
    const again = new FlowTable();
    for (const p of packets([[1, '10.0.0.2', '10.0.0.1', 53, 1111], [2, '10.0.0.1', '10.0.0.2', 1111, 53]])) again.packet(p);
    again.flush();
    const [other] = again.take();
    assert.equal(x(other).flow.id, events.find((e) => e.source.port === 1111).flow.id);
    assert.equal(x(other).source.port, 53);
    assert.equal(x(other).source.mac, '02-00-00-00-00-01');
    assert.equal(x(other).network.community_id, events[0].network.community_id);
  });

  it('reports non-IP traffic by MAC address, and bounds the table', () => {
    const d = new DecodeStage();
    const arp = ether(0x0806, Buffer.alloc(28));
    const t = new FlowTable({ maxFlows: 1 });
    for (const p of d.push([makeFrame(1, 0, LinkType.ETHERNET, arp.length, 0, arp)])) t.packet(p);
    for (const p of packets([[2, '10.0.0.1', '10.0.0.2', 1, 2]])) t.packet(p);
    t.flush();
    const [first, second] = t.take().map(x);
    assert.equal(first.network.type, 'arp');
    assert.equal(first.source.mac, '02-00-00-00-00-01');
    assert.equal(first.flow.final, true);
    assert.equal(second.network.transport, 'udp');
    assert.equal(t.stats().evicted, 1);
  });
});

describe('flow fields', { timeout: 600_000 }, () => {
  /** every flow report of `frames`, at the end of input */
  const flowsOf = (frames: Buffer[]) => {
    const d = new DecodeStage();
    const t = new FlowTable();
    for (const p of d.push(frames.map((b, i) => makeFrame(1000 + i, 0, LinkType.ETHERNET, b.length, 0, b)))) t.packet(p);
    t.flush();
    return t.take().map(x);
  };

  it('Community ID of every kind of flow is the specification\'s (its test vectors)', () => {
    const [tcpFlow] = flowsOf([ether(0x0800, ipv4('1.2.3.4', '5.6.7.8', 6, tcp(1122, 3344, 1, 0, F.SYN))), ether(0x0800, ipv4('5.6.7.8', '1.2.3.4', 6, tcp(3344, 1122, 1, 2, F.SYN | F.ACK)))]);
    assert.equal(tcpFlow.network.community_id, '1:wCb3OG7yAFWelaUydu0D+125CLM=');
    assert.equal(tcpFlow.network.packets, 2, 'both directions in one flow');
    const [udpFlow] = flowsOf([ether(0x0800, ipv4('5.6.7.8', '1.2.3.4', 17, udp(3344, 1122, Buffer.from('x'))))]);
    assert.equal(udpFlow.network.community_id, '1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=');
    // an echo and its reply: one flow, the two-way ICMP id
    const icmp = flowsOf([ether(0x0800, ipv4('1.2.3.4', '5.6.7.8', 1, icmpEcho(8, 1, 1))), ether(0x0800, ipv4('5.6.7.8', '1.2.3.4', 1, icmpEcho(0, 1, 1)))]);
    assert.equal(icmp.length, 1);
    assert.equal(icmp[0].network.community_id, '1:crodRHL2FEsHjbv3UkRrfbs4bZ0=');
    // the reply alone (first seen) gives the same id
    assert.equal(flowsOf([ether(0x0800, ipv4('5.6.7.8', '1.2.3.4', 1, icmpEcho(0, 1, 1)))])[0].network.community_id, '1:crodRHL2FEsHjbv3UkRrfbs4bZ0=');
    const v6 = flowsOf([ether(0x86dd, ipv6('fe80:1:203:405:607:809:a0b:c0d', 'fe80:1011:1213:1415:1617:1819:1a1b:1c1d', 58, icmpEcho(128, 1, 1)))]);
    assert.equal(v6[0].network.community_id, '1:0bf7hyMJUwt3fMED7z8LIfRpBeo=');
    // a protocol without ports (RSVP, 46): addresses only
    assert.equal(flowsOf([ether(0x0800, ipv4('1.2.3.4', '5.6.7.8', 46, Buffer.alloc(8)))])[0].network.community_id, '1:ikv3kmf89luf73WPz1jOs49S768=');
  });

  it('packetbeat\'s flow.vlan and event.type end on the final report', () => {
    const d = new DecodeStage();
    const t = new FlowTable({ periodSec: 10 });
    const tagged = (sec: number) => {
      const b = ether(0x0800, ipv4('10.0.0.1', '10.0.0.2', 17, udp(1111, 53, Buffer.from('x'))), [{ id: 100 }, { id: 200 }]);
      return makeFrame(sec, 0, LinkType.ETHERNET, b.length, 0, b);
    };
    for (const p of d.push([tagged(1000), tagged(1011)])) t.packet(p);
    t.flush();
    const [period, final] = t.take().map(x);
    assert.deepEqual([period.flow.final, period.event.type], [false, ['connection']]);
    assert.deepEqual([final.flow.final, final.event.type], [true, ['connection', 'end']]);
    assert.deepEqual(final.flow.vlan, [100, 200]);
    assert.deepEqual(final.network.vlan, { id: '100', inner: { id: '200' } });
  });

  it('IP fragments are in their datagram\'s flow: real 3,000-byte pings, every frame and byte as tshark counts them', async () => {
    const file = fixture('icmp/ping-fragments.pcap');
    const r = await readFile(file, { tcp: { flows: {} } });
    const flows = r.events.filter((e) => e.type === 'flow').map(x);
    const frames = (r.stats.decode as any).frames;
    assert.equal(flows.reduce((n, f) => n + f.network.packets, 0), frames, 'every frame in exactly one flow');
    if (spawnSync('bash', ['-c', 'command -v tshark']).status === 0) {
      const lens = execFileSync('tshark', ['-r', file, '-T', 'fields', '-e', 'frame.len'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n').map(Number);
      assert.equal(frames, lens.length);
      assert.equal(flows.reduce((n, f) => n + f.network.bytes, 0), lens.reduce((a, b) => a + b, 0), 'every wire byte');
    }
    const v4 = flows.find((f) => f.network.transport === 'icmp' && f.source.ip === '10.201.0.1');
    // 10 pings of 3,000 bytes (3 fragments each way), 2 small ones (one frame each way), and the
    // port unreachable the namespace answered the recording's closing datagram with
    assert.equal(v4.network.packets, 10 * 6 + 2 * 2 + 1);
    assert.equal((r.stats.decode as any).defrag.reassembled, 10 * 2 + 5 * 2);
    // the ICMP events of the reassembled pings count their data as packetbeat does: all 3,000 bytes, not the first fragment's
    const pings = r.events.filter((e) => e.type === 'icmp' && e.source.ip === '10.201.0.1').map(x);
    assert.deepEqual(
      pings.map((e) => [e.source.bytes, e.destination.bytes]).filter(([s]) => s > 100),
      Array.from({ length: 10 }, () => [3000, 3000]),
    );
    if (spawnSync('bash', ['-c', 'command -v tshark']).status === 0) {
      const data = execFileSync('tshark', ['-r', file, '-Y', 'icmp.type == 8 && ip.src == 10.201.0.1', '-T', 'fields', '-e', 'data.len'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n').map(Number);
      // tshark reads the first 8 bytes of ping's data as its timestamp, and counts the rest as data
      assert.deepEqual(pings.map((e) => e.source.bytes).sort(), data.map((n) => n + 8).sort(), "tshark's data length of each echo request");
    }
  });
});
