import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LinkType, makeFrame, type Frame } from '../src/core/frame';
import { DecodeStage } from '../src/decode/stage';
import type { Packet } from '../src/decode/packet';
import { ipString } from '../src/events/ip';
import { ether, F, ipv4, ipv6, ipv6FragBody, nullLink, sll, sll2, tcp, udp } from './gen/packets';

const frame = (data: Buffer, linkType: number = LinkType.ETHERNET, sec = 1000): Frame => makeFrame(sec, 0, linkType, data.length, 0, data);
const tcpv4 = (payload = Buffer.from('hi')) => ipv4('10.0.0.1', '10.0.0.2', 6, tcp(1234, 80, 1, 0, F.ACK | F.PSH, payload, Buffer.from([2, 4, 5, 0xb4, 1, 1, 1, 0])));

function decode(frames: Frame[], d = new DecodeStage()): { packets: Packet[]; d: DecodeStage } {
  return { packets: d.push(frames), d };
}

/** frames = decoded + every drop reason, whatever happened */
function assertAccounting(d: DecodeStage): void {
  const s = d.stats() as any;
  const dropped = Object.values(s.dropped as Record<string, number>).reduce((a, b) => a + b, 0);
  assert.equal(s.frames, s.decoded + dropped, JSON.stringify(s));
}

describe('link layers', { timeout: 600_000 }, () => {
  const cases: [string, Buffer, number][] = [
    ['Ethernet II', ether(0x0800, tcpv4()), LinkType.ETHERNET],
    ['802.1Q', ether(0x0800, tcpv4(), [{ id: 42 }]), LinkType.ETHERNET],
    ['802.1ad QinQ', ether(0x0800, tcpv4(), [{ id: 10 }, { id: 20 }]), LinkType.ETHERNET],
    ['Linux SLL', sll(0x0800, tcpv4()), LinkType.LINUX_SLL],
    ['Linux SLL2', sll2(0x0800, tcpv4()), LinkType.LINUX_SLL2],
    ['BSD NULL, little-endian family', nullLink(2, tcpv4()), LinkType.NULL],
    ['BSD NULL, big-endian family', nullLink(2, tcpv4(), true), LinkType.NULL],
    ['OpenBSD LOOP', nullLink(2, tcpv4(), true), LinkType.LOOP],
    ['raw IP', tcpv4(), LinkType.RAW],
    ['raw IPv4', tcpv4(), LinkType.IPV4],
  ];
  for (const [name, data, lt] of cases) {
    it(`decodes TCP over ${name}`, () => {
      const { packets, d } = decode([frame(data, lt)]);
      assert.equal(packets.length, 1);
      const p = packets[0];
      assert.equal(ipString(4, 0, 0, 0, p.src3), '10.0.0.1');
      assert.equal(p.srcPort, 1234);
      assert.equal(p.dstPort, 80);
      assert.equal(p.mss, 0, 'MSS is read from SYNs only');
      assert.equal(p.data.toString('latin1', p.payloadOff, p.payloadOff + p.payloadLen), 'hi');
      if (name === '802.1Q') assert.equal(p.vlan, 42);
      if (name === '802.1ad QinQ') assert.deepEqual([p.vlan, p.vlanInner], [10, 20]);
      assertAccounting(d);
    });
  }

  it('reads the MSS and window scale of a SYN', () => {
    const syn = ipv4('10.0.0.1', '10.0.0.2', 6, tcp(1, 2, 0, 0, F.SYN, Buffer.alloc(0), Buffer.from([2, 4, 5, 0xb4, 1, 3, 3, 7])));
    const [p] = decode([frame(syn, LinkType.RAW)]).packets;
    assert.deepEqual([p.mss, p.wscale], [1460, 7]);
  });

  it('trims Ethernet padding to the IP length', () => {
    const padded = Buffer.concat([ether(0x0800, tcpv4(Buffer.alloc(0))), Buffer.alloc(6)]);
    const [p] = decode([frame(padded)]).packets;
    assert.equal(p.payloadLen, 0);
  });

  it('passes non-IP frames on and counts them', () => {
    const { packets, d } = decode([frame(ether(0x0806, Buffer.alloc(28)))]);
    assert.equal(packets.length, 1);
    assert.equal((d.stats() as any).protocols.arp, 1);
  });
});

describe('IPv4 and IPv6', { timeout: 600_000 }, () => {
  it('skips IPv4 options by the header length', () => {
    const opt = Buffer.from([1, 1, 1, 0]); // NOP NOP NOP EOL
    const pkt = ipv4('1.2.3.4', '5.6.7.8', 17, udp(5, 53, Buffer.from('x')), { options: opt });
    const [p] = decode([frame(pkt, LinkType.RAW)]).packets;
    assert.equal(p.l4Off, 24);
    assert.equal(p.payloadLen, 1);
  });

  it('walks the IPv6 extension-header chain', () => {
    const pad = Buffer.from([0, 1, 4, 0, 0, 0, 0]);
    const pkt = ipv6('2001:db8::1', 'fe80::2', 17, udp(5, 53, Buffer.from('abc')), [{ type: 0, body: pad }, { type: 60, body: pad }]);
    const [p] = decode([frame(pkt, LinkType.RAW)]).packets;
    assert.equal(p.proto, 17);
    assert.equal(ipString(6, p.src0, p.src1, p.src2, p.src3), '2001:db8::1');
    assert.equal(ipString(6, p.dst0, p.dst1, p.dst2, p.dst3), 'fe80::2');
    assert.equal(p.data.toString('latin1', p.payloadOff, p.payloadOff + p.payloadLen), 'abc');
  });

  it('reassembles IPv4 fragments in any order, first copy of a byte winning', () => {
    const payload = udp(7, 9, Buffer.from('0123456789abcdefghijklmnopqrstuv'));
    const frag = (from: number, to: number, mf: boolean, fill?: string) =>
      frame(ipv4('1.1.1.1', '2.2.2.2', 17, fill ? Buffer.alloc(to - from, fill) : payload.subarray(from, to), { id: 9, fragOffset: from, mf }), LinkType.RAW);
    const d = new DecodeStage();
    const out = d.push([frag(16, 40, false), frag(8, 24, true, 'Z'), frag(0, 16, true)]);
    assert.equal(out.length, 1);
    const p = out[0];
    assert.ok(p.reassembled);
    // bytes 16..24 came first from the last fragment; the 'Z' overlap only filled 8..16
    assert.equal(p.data.toString('latin1', 0, 8), payload.toString('latin1', 0, 8));
    assert.equal(p.data.toString('latin1', 8 + 0, 16), 'ZZZZZZZZ');
    assert.equal(p.data.toString('latin1', 16, 40), payload.toString('latin1', 16, 40));
    const s = d.stats() as any;
    assert.equal(s.dropped.ip_fragment_held, 2);
    assert.ok(s.defrag.overlaps >= 1);
    assertAccounting(d);
  });

  it('reassembles IPv6 fragments', () => {
    const payload = udp(7, 9, Buffer.alloc(40, 'q'));
    const f = (from: number, to: number, more: boolean) =>
      frame(ipv6('2001:db8::1', '2001:db8::2', 17, payload.subarray(from, to), [{ type: 44, body: ipv6FragBody(from, more, 77) }]), LinkType.RAW);
    const out = new DecodeStage().push([f(24, 48, false), f(0, 24, true)]);
    assert.equal(out.length, 1);
    assert.equal(out[0].payloadLen, 40);
  });

  it('forgets fragments after the timeout and bounds the trackers', () => {
    const d = new DecodeStage({ defrag: { timeoutSec: 30, maxTrackers: 2 } });
    const frag = (id: number, sec: number) => frame(ipv4('1.1.1.1', '2.2.2.2', 17, Buffer.alloc(16), { id, mf: true }), LinkType.RAW, sec);
    d.push([frag(1, 1000), frag(2, 1000), frag(3, 1000)]);
    d.push([frag(4, 1100)]);
    const s = d.stats() as any;
    assert.equal(s.defrag.discarded.tracker_limit, 1);
    assert.equal(s.defrag.discarded.timeout, 2);
    assertAccounting(d);
  });
});

describe('malformed input is a counted anomaly, never an exception', { timeout: 600_000 }, () => {
  const bad: [string, Buffer, number, string][] = [
    ['short Ethernet', Buffer.alloc(10), LinkType.ETHERNET, 'truncated_link_header'],
    ['cut VLAN tag', Buffer.concat([ether(0x8100, Buffer.alloc(0)).subarray(0, 14)]), LinkType.ETHERNET, 'truncated_vlan_tag'],
    ['short IPv4', ether(0x0800, Buffer.alloc(10)), LinkType.ETHERNET, 'truncated_ipv4_header'],
    ['IHL below 5', ether(0x0800, Buffer.from([0x44, ...Buffer.alloc(19)])), LinkType.ETHERNET, 'bad_ipv4_header'],
    ['short IPv6', ether(0x86dd, Buffer.alloc(20)), LinkType.ETHERNET, 'truncated_ipv6_header'],
    ['short TCP', ipv4('1.1.1.1', '2.2.2.2', 6, Buffer.alloc(10)), LinkType.RAW, 'truncated_tcp_header'],
    ['TCP data offset too small', ipv4('1.1.1.1', '2.2.2.2', 6, Buffer.alloc(20)), LinkType.RAW, 'bad_tcp_header'],
    ['short UDP', ipv4('1.1.1.1', '2.2.2.2', 17, Buffer.alloc(4)), LinkType.RAW, 'truncated_udp_header'],
    ['unknown link type', Buffer.alloc(40), 9999, 'unsupported_link_type'],
    ['raw link, not IP', Buffer.from([0x10, 0, 0]), LinkType.RAW, 'bad_ip_version'],
  ];
  for (const [name, data, lt, reason] of bad) {
    it(name, () => {
      const { packets, d } = decode([frame(data, lt)]);
      assert.equal(packets.length, 0);
      assert.equal((d.stats() as any).dropped[reason], 1);
      assertAccounting(d);
    });
  }

  it('survives every truncation of a valid frame', () => {
    const whole = ether(0x0800, tcpv4(Buffer.from('payload')), [{ id: 5 }]);
    const d = new DecodeStage();
    for (let n = 0; n <= whole.length; n++) d.push([frame(whole.subarray(0, n))]);
    assertAccounting(d);
    assert.equal((d.stats() as any).frames, whole.length + 1);
  });
});
