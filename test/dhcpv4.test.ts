/**
 * DHCPv4: the message parser (header, options, overload, long options, BOOTP), the
 * analyzer's pairing by transaction id and client MAC (retransmissions, NAK, messages
 * that expect no reply, timeouts, the pending bound), its probe, properties over the
 * fixtures (any batching gives the same events; damage never throws and the
 * accounting holds), agreement with tshark's DHCP dissector, and a live test: dnsmasq
 * and real clients (udhcpc, dhcping) in two network namespaces joined by a veth pair.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { makeFrame, LinkType, type Frame } from '../src/core/frame';
import { DecodeStage } from '../src/decode/stage';
import { dhcpv4 } from '../src/protocols/dhcpv4';
import { DhcpParseError, looksLikeDhcp, parseDhcp } from '../src/protocols/dhcpv4/message';
import { PcapReader } from '../src/sources/pcap';
import { CLIENT_MAC, NET, netnsAvailable, OTHER_MAC, RELAY_NET, recordScenario, scenarios } from '../scripts/fixtures/dhcpv4';
import { dhcp, ipOpt, u32 } from './gen/dhcpv4';
import { ether, ipv4, udp } from './gen/packets';
import { FUZZ_SECONDS, fuzzParams, mutate, mutation } from './fuzz-helpers';
import { assertAccounting, fixture, fixtureFrames, pushThroughStages, readFile } from './helpers';

const FIXTURES = ['dhcpv4/lease.pcap', 'dhcpv4/nak-inform.pcap', 'dhcpv4/relay.pcap', 'dhcpv4/retransmit.pcap', 'dhcpv4/edge-relay.pcap', 'dhcpv4/edge-odd.pcap'];
const REAL = ['dhcpv4/lease.pcap', 'dhcpv4/nak-inform.pcap', 'dhcpv4/relay.pcap', 'dhcpv4/retransmit.pcap', 'dhcpv4/edge-relay.pcap'];

const parse = (b: Buffer) => parseDhcp(b, 0, b.length);

describe('DHCPv4 parser', { timeout: (FUZZ_SECONDS + 60) * 1000 }, () => {
  it('reads the header and the options packetbeat shows, with its names', () => {
    const m = parse(dhcp({ op: 2, xid: 0x1234, mac: '02:00:00:00:00:0a', hops: 2, secs: 7, broadcast: true, yiaddr: '10.1.0.9', siaddr: '10.1.0.1', giaddr: '10.1.0.254', sname: 'srv', file: 'boot.img', options: [
      [53, [5]], [54, ipOpt('10.1.0.1')], [1, ipOpt('255.255.0.0')], [3, ipOpt('10.1.0.1', '10.1.0.2')], [6, ipOpt('9.9.9.9')], [42, ipOpt('10.1.0.3')], [4, ipOpt('10.1.0.4')],
      [15, 'example.test'], [28, ipOpt('10.1.255.255')], [51, u32(7200)], [58, u32(3600)], [59, u32(6300)], [2, u32(-3600)], [56, 'hello'], [67, 'opt-boot'],
    ] }));
    assert.equal(m.op, 2);
    assert.equal(m.xid, 0x1234);
    assert.equal(m.chaddr, '02:00:00:00:00:0a');
    assert.equal(m.hops, 2);
    assert.equal(m.secs, 7);
    assert.equal(m.flags, 0x8000);
    assert.deepEqual([m.ciaddr, m.yiaddr, m.siaddr, m.giaddr], ['', '10.1.0.9', '10.1.0.1', '10.1.0.254']);
    assert.deepEqual([m.sname, m.file], ['srv', 'boot.img']);
    assert.equal(m.type, 5);
    assert.deepEqual(m.option, {
      message_type: 'ack', server_identifier: '10.1.0.1', broadcast_address: '10.1.255.255', domain_name: 'example.test', dns_servers: ['9.9.9.9'], subnet_mask: '255.255.0.0',
      utc_time_offset_sec: -3600, router: ['10.1.0.1', '10.1.0.2'], time_servers: ['10.1.0.4'], ntp_servers: ['10.1.0.3'], ip_address_lease_time_sec: 7200, message: 'hello',
      renewal_time_sec: 3600, rebinding_time_sec: 6300, boot_file_name: 'opt-boot',
    });
    assert.deepEqual(m.violations, []);
  });

  it('client options: parameter request list by name, requested address, class, hostname, client id, relay agent information', () => {
    const m = parse(dhcp({ op: 1, xid: 1, options: [[53, [3]], [55, [1, 3, 6, 12, 200]], [50, ipOpt('10.0.0.5')], [57, [2, 64]], [60, 'MSFT 5.0'], [12, 'host\0'], [61, [1, 2, 0, 0, 0, 0, 1]],
      [82, Buffer.from([1, 2, 0xab, 0xcd, 2, 1, 0xef, 9, 1, 0])], [124, Buffer.concat([u32(311), Buffer.from([2, 1, 2])])]] }));
    assert.deepEqual(m.option, {
      message_type: 'request', parameter_request_list: ['Subnet Mask', 'Router', 'Domain Name Server', 'Host Name', 'unknown (200)'], requested_ip_address: '10.0.0.5',
      max_dhcp_message_size: 576, class_identifier: 'MSFT 5.0', vendor_identifying_options: [{ id: 311, data: '0102' }], hostname: 'host', client_identifier: '01:02:00:00:00:00:01',
      relay_agent_information: { circuit_id: 'ab:cd', remote_id: 'ef' },
    });
  });

  it('option overload: options go on in file and sname; a code in several parts is one option (RFC 3396)', () => {
    const file = Buffer.concat([Buffer.from([12, 3]), Buffer.from('abc'), Buffer.from([255])]);
    const sname = Buffer.concat([Buffer.from([12, 3]), Buffer.from('def'), Buffer.from([255])]);
    const m = parse(dhcp({ op: 1, xid: 2, file, sname, options: [[53, [1]], [52, [3]]] }));
    assert.equal(m.option.hostname, 'abcdef');
    assert.deepEqual([m.sname, m.file], ['', '']);
    const only = parse(dhcp({ op: 1, xid: 2, file, sname: 'named', options: [[53, [1]], [52, [1]]] }));
    assert.deepEqual([only.option.hostname, only.sname, only.file], ['abc', 'named', '']);
  });

  it('plain BOOTP (no magic cookie): header only, type 0', () => {
    const m = parse(dhcp({ op: 1, xid: 3, cookie: false, file: 'x' }));
    assert.equal(m.type, 0);
    assert.deepEqual(m.option, {});
    assert.equal(m.file, 'x');
  });

  it('damage: short or wrong op code is not a message; bad options are noted and skipped', () => {
    assert.throws(() => parse(Buffer.alloc(235, 1)), (e: unknown) => e instanceof DhcpParseError && e.reason === 'truncated_header');
    assert.throws(() => parse(dhcp({ op: 3, xid: 1 })), (e: unknown) => e instanceof DhcpParseError && e.reason === 'bad_op_code');
    const bad = parse(dhcp({ op: 2, xid: 1, hlen: 40, options: [[53, [2]], [1, [255, 255, 0]], [3, []], [51, [1]], [57, [1]]] }));
    assert.equal(bad.chaddr.split(':').length, 16);
    assert.deepEqual(bad.violations, ['bad_hardware_length', 'bad_option_length', 'bad_option_length', 'bad_option_length', 'bad_option_length']);
    assert.deepEqual(bad.option, { message_type: 'offer' });
    const cut = dhcp({ op: 1, xid: 1, options: [[53, [1]], [12, 'hostname']], end: false });
    assert.deepEqual(parse(cut.subarray(0, cut.length - 3)).violations, ['truncated_option']);
    assert.deepEqual(parse(dhcp({ op: 1, xid: 1, options: [[53, [1]]], end: false })).violations, ['no_end_option']);
  });

  it('never throws anything but DhcpParseError, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), fc.boolean(), (bytes, cookie) => {
        const b = Buffer.from(bytes);
        if (cookie && b.length >= 240) b.writeUInt32BE(0x63825363, 236);
        try {
          parse(b);
        } catch (e) {
          if (!(e instanceof DhcpParseError)) throw e;
        }
      }),
      fuzzParams(2000, 8),
    );
  });
});

// ---------------------------------------------------------------------------
// the analyzer, driven with frames

let t = 0;
function frameOf(payload: Buffer, from: 'client' | 'server', o: { src?: string; dst?: string; vlan?: number } = {}): Frame {
  const src = o.src ?? (from === 'client' ? '0.0.0.0' : '10.0.0.1');
  const dst = o.dst ?? '255.255.255.255';
  const data = ether(0x0800, ipv4(src, dst, 17, from === 'client' ? udp(68, 67, payload) : udp(67, 68, payload)), o.vlan !== undefined ? [{ id: o.vlan }] : []);
  t += 1;
  return makeFrame(1_700_000_000 + Math.floor(t / 1000), (t % 1000) * 1_000_000, LinkType.ETHERNET, data.length, 0, data);
}

const msg = (op: number, type: number, xid = 0xabc, mac = '02:00:00:00:00:01', extra: [number, Buffer | string | number[]][] = []) => dhcp({ op, xid, mac, options: [[53, [type]], ...extra] });

function run(frames: Frame[], options: Record<string, unknown> = {}) {
  const r = pushThroughStages(frames, { options: { dhcpv4: options } });
  assertAccounting(r.stats, 'dhcpv4');
  const tx = r.events.filter((e) => e.type === 'dhcpv4') as any[];
  return { tx, stats: (r.stats.analyze as any).protocols.dhcpv4, view: tx.map((e) => [e.status, e.method ?? null, e.dhcpv4.option?.message_type ?? null, e.error?.message ?? null]) };
}

describe('DHCPv4 analyzer', { timeout: 60_000 }, () => {
  it('pairs DISCOVER/OFFER and REQUEST/ACK under one transaction id; RELEASE alone', () => {
    const r = run([
      frameOf(msg(1, 1, 7, undefined, [[12, 'pc']]), 'client'),
      frameOf(dhcp({ op: 2, xid: 7, mac: '02:00:00:00:00:01', yiaddr: '10.0.0.9', options: [[53, [2]], [54, ipOpt('10.0.0.1')], [51, u32(60)]] }), 'server'),
      frameOf(msg(1, 3, 7, undefined, [[50, ipOpt('10.0.0.9')]]), 'client'),
      frameOf(dhcp({ op: 2, xid: 7, mac: '02:00:00:00:00:01', yiaddr: '10.0.0.9', options: [[53, [5]], [54, ipOpt('10.0.0.1')]] }), 'server'),
      frameOf(dhcp({ op: 1, xid: 8, ciaddr: '10.0.0.9', options: [[53, [7]]] }), 'client', { src: '10.0.0.9', dst: '10.0.0.1' }),
    ]);
    assert.deepEqual(r.view, [['OK', 'DISCOVER', 'offer', null], ['OK', 'REQUEST', 'ack', null], ['OK', 'RELEASE', 'release', null]]);
    const [offer, ack, release] = r.tx;
    assert.equal(offer.dhcpv4.transaction_id, '0x00000007');
    assert.equal(offer.dhcpv4.assigned_ip, '10.0.0.9');
    assert.equal(offer.dhcpv4.option.hostname, 'pc', 'the request\'s options are kept beside the reply\'s');
    assert.equal(offer.dhcpv4.option.ip_address_lease_time_sec, 60);
    assert.deepEqual([offer.client.ip, offer.client.port, offer.server.ip, offer.server.port], ['0.0.0.0', 68, '255.255.255.255', 67]);
    assert.ok(offer.related.ip.includes('10.0.0.9'));
    assert.equal(ack.dhcpv4.option.requested_ip_address, '10.0.0.9');
    assert.equal(release.dhcpv4.client_ip, '10.0.0.9');
    assert.equal(release.server.bytes, 0);
    assert.equal(r.stats.requests, 3);
    assert.equal(r.stats.responses, 2);
  });

  it('by transaction id and client MAC, not by addresses: two clients with one xid', () => {
    const r = run([
      frameOf(msg(1, 1, 5, '02:00:00:00:00:01'), 'client'),
      frameOf(msg(1, 1, 5, '02:00:00:00:00:02'), 'client'),
      frameOf(dhcp({ op: 2, xid: 5, mac: '02:00:00:00:00:02', yiaddr: '10.0.0.2', options: [[53, [2]]] }), 'server'),
      frameOf(dhcp({ op: 2, xid: 5, mac: '02:00:00:00:00:01', yiaddr: '10.0.0.1', options: [[53, [2]]] }), 'server'),
    ]);
    assert.deepEqual(r.tx.map((e) => [e.dhcpv4.client_mac, e.dhcpv4.assigned_ip]), [['02:00:00:00:00:02', '10.0.0.2'], ['02:00:00:00:00:01', '10.0.0.1']]);
  });

  it('retransmissions wait in order; a reply takes the oldest message of the kind it answers', () => {
    const r = run([frameOf(msg(1, 1), 'client'), frameOf(msg(1, 1), 'client'), frameOf(msg(2, 2), 'server'), frameOf(msg(1, 3), 'client'), frameOf(msg(2, 5), 'server'), frameOf(msg(2, 2), 'server')]);
    assert.deepEqual(r.view, [['OK', 'DISCOVER', 'offer', null], ['OK', 'REQUEST', 'ack', null], ['OK', 'DISCOVER', 'offer', null]]);
  });

  it('NAK is an error with its message; unanswered and unrequested are errors, packetbeat\'s words', () => {
    const r = run([
      frameOf(msg(1, 3), 'client'),
      frameOf(msg(2, 6, undefined, undefined, [[56, 'wrong network']]), 'server'),
      frameOf(msg(2, 5, 0x999), 'server'),
      frameOf(msg(1, 8, 0x777), 'client'),
    ]);
    assert.deepEqual(r.view, [['Error', 'REQUEST', 'nak', 'NAK: wrong network'], ['Error', null, 'ack', 'Unmatched response'], ['Error', 'INFORM', 'inform', 'Unmatched request']]);
    assert.deepEqual(r.tx[2].notes, ['no response']);
    assert.deepEqual(r.stats.unmatched, { no_response: 1, response_without_request: 1 });
  });

  it('FORCERENEW and DECLINE stand alone; BOOTP pairs without option 53', () => {
    const r = run([frameOf(msg(2, 9), 'server'), frameOf(msg(1, 4, 2), 'client'), frameOf(dhcp({ op: 1, xid: 3, cookie: false }), 'client'), frameOf(dhcp({ op: 2, xid: 3, cookie: false, yiaddr: '10.0.0.3' }), 'server')]);
    assert.deepEqual(r.view, [['OK', null, 'forcerenew', null], ['OK', 'DECLINE', 'decline', null], ['OK', 'BOOTREQUEST', null, null]]);
    assert.equal(r.tx[2].dhcpv4.assigned_ip, '10.0.0.3');
    assert.equal(r.stats.bootp, 2);
  });

  it('a VLAN keeps the same xid and MAC apart', () => {
    const r = run([frameOf(msg(1, 1), 'client', { vlan: 10 }), frameOf(msg(2, 2), 'server', { vlan: 20 })]);
    assert.deepEqual(r.view, [['Error', null, 'offer', 'Unmatched response'], ['Error', 'DISCOVER', 'discover', 'Unmatched request']]);
  });

  it('times out on packet time and bounds what waits (pending_limit)', () => {
    const frames = [frameOf(msg(1, 1, 1), 'client')];
    t += 11_000;
    frames.push(frameOf(msg(1, 1, 2), 'client'), frameOf(msg(1, 1, 3), 'client'), frameOf(msg(1, 1, 4), 'client'), frameOf(msg(2, 2, 4), 'server'));
    const r = run(frames, { maxPending: 2 });
    assert.deepEqual(r.tx.map((e) => [e.dhcpv4.transaction_id, e.status, e.notes?.[0] ?? null]), [
      ['0x00000001', 'Error', 'no response'],
      ['0x00000002', 'Error', 'too many client messages waiting for replies'],
      ['0x00000004', 'OK', null],
      ['0x00000003', 'Error', 'no response'],
    ]);
    assert.deepEqual(r.stats.unmatched, { no_response: 2, pending_limit: 1 });
    assert.equal(r.stats.pending, 0);
  });

  it('maxPending 0 still lets one message wait', () => {
    const r = run([frameOf(msg(1, 1, 1), 'client'), frameOf(msg(1, 1, 2), 'client'), frameOf(msg(2, 2, 2), 'server')], { maxPending: 0 });
    assert.deepEqual(r.view, [['Error', 'DISCOVER', 'discover', 'Unmatched request'], ['OK', 'DISCOVER', 'offer', null]]);
    assert.deepEqual(r.stats.message_types, { discover: 2, offer: 1 });
  });

  it('damaged datagrams are counted, never thrown', () => {
    const r = run([frameOf(Buffer.alloc(100), 'client'), frameOf(dhcp({ op: 9, xid: 1 }), 'client')]);
    assert.deepEqual(r.stats.malformed, { bad_op_code: 1, truncated_header: 1 });
    assert.equal(r.tx.length, 0);
  });
});

describe('DHCPv4 probe', { timeout: 120_000 }, () => {
  it('recognises DHCP by its magic cookie on other ports', async () => {
    assert.ok(looksLikeDhcp(msg(1, 1), 0, msg(1, 1).length));
    const run = await readFile(fixture('dhcpv4/edge-odd.pcap'));
    assert.equal((run.stats.analyze as any).datagrams.dhcpv4_by_probe, 2);
    assert.ok(run.events.some((e: any) => e.type === 'dhcpv4' && e.client?.port === 1068 && e.method === 'INFORM' && e.status === 'OK'));
  });

  it('takes no other protocol\'s datagrams: every UDP payload of the other fixtures', () => {
    const d = new DecodeStage();
    let udpSeen = 0;
    for (const p of d.push(fixtureFrames())) {
      if (p.proto !== 17 || p.srcPort === 67 || p.srcPort === 68 || p.dstPort === 67 || p.dstPort === 68 || p.srcPort === 1067 || p.dstPort === 1067) continue;
      udpSeen++;
      assert.equal(looksLikeDhcp(p.data, p.payloadOff, p.payloadLen), false, `${p.srcPort} → ${p.dstPort}`);
    }
    assert.ok(udpSeen > 100);
    for (const other of ['GET / HTTP/1.1\r\n\r\n'.padEnd(300, 'x'), Buffer.alloc(300)]) {
      const b = Buffer.isBuffer(other) ? other : Buffer.from(other);
      assert.equal(looksLikeDhcp(b, 0, b.length), false);
    }
  });
});

// ---------------------------------------------------------------------------
// properties over the fixtures

function framesOf(name: string): Frame[] {
  return new PcapReader(name).push(readFileSync(fixture(name)));
}

describe('DHCPv4 fuzzing', { timeout: (2 * FUZZ_SECONDS + 600) * 1000 }, () => {
  const all = FIXTURES.map(framesOf);
  it('any batching of the frames gives the same events', () => {
    const want = all.map((f) => JSON.stringify(pushThroughStages(f, {}, 16).events));
    fc.assert(
      fc.property(fc.nat(all.length - 1), fc.integer({ min: 1, max: 20 }), (i, size) => JSON.stringify(pushThroughStages(all[i], {}, size).events) === want[i]),
      fuzzParams(100, 8),
    );
  });

  it('damaged datagrams never throw, and the accounting holds', () => {
    fc.assert(
      fc.property(fc.nat(all.length - 1), fc.array(fc.tuple(fc.nat(), mutation), { minLength: 1, maxLength: 6 }), (i, damage) => {
        const frames = all[i].map((f) => f);
        for (const [at, m] of damage) {
          const k = at % frames.length;
          const f = frames[k];
          // the DHCP payload is damaged, the headers before it kept (Ethernet, IPv4, UDP: 42 bytes)
          const payload = mutate(f.data.subarray(42), m);
          const head = Buffer.from(f.data.subarray(0, 42));
          head.writeUInt16BE(28 + payload.length, 16);
          head.writeUInt16BE(8 + payload.length, 38);
          const data = Buffer.concat([head, payload]);
          frames[k] = makeFrame(f.tsSec, f.tsNsec, f.linkType, data.length, f.iface, data);
        }
        const r = pushThroughStages(frames);
        assertAccounting(r.stats, 'damaged dhcpv4');
        const s = (r.stats.analyze as any).protocols.dhcpv4;
        assert.equal(s.pending, 0);
      }),
      fuzzParams(300, 8),
    );
  });
});

// ---------------------------------------------------------------------------
// agreement with tshark's DHCP dissector

const haveTshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;

interface TsharkMessage {
  op: number;
  xid: number;
  type: number;
  mac: string;
  yiaddr: string;
}

/** every DHCP message tshark sees, in order */
function tsharkMessages(file: string): TsharkMessage[] {
  const out = execFileSync('tshark', ['-r', file, '-Y', 'dhcp', '-T', 'fields', '-E', 'separator=|', '-e', 'dhcp.type', '-e', 'dhcp.id', '-e', 'dhcp.option.dhcp', '-e', 'dhcp.hw.mac_addr', '-e', 'dhcp.ip.your'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return out.split('\n').filter((l) => l !== '').map((l) => {
    const [op, xid, type, mac, yiaddr] = l.split('|');
    return { op: +op, xid: parseInt(xid, 16), type: type === '' ? 0 : +type, mac: mac.split(',')[0], yiaddr: yiaddr === '0.0.0.0' ? '' : yiaddr };
  });
}

const TYPE_NUMBERS: Record<string, number> = { discover: 1, offer: 2, request: 3, decline: 4, ack: 5, nak: 6, release: 7, inform: 8, forcerenew: 9 };

/** the messages our events stand for: the request of each (client bytes > 0) and the reply (server bytes > 0) */
function ourMessages(events: any[]): { requests: string[]; replies: string[]; assigned: string[] } {
  const requests: string[] = [];
  const replies: string[] = [];
  const assigned: string[] = [];
  for (const e of events) {
    const d = e.dhcpv4;
    const xid = parseInt(d.transaction_id, 16);
    if (e.client.bytes > 0) requests.push(`${xid}|${e.method === 'BOOTREQUEST' ? 0 : TYPE_NUMBERS[e.method.toLowerCase()]}|${d.client_mac}`);
    if (e.server.bytes > 0) {
      replies.push(`${xid}|${TYPE_NUMBERS[d.option?.message_type] ?? 0}|${d.client_mac}`);
      assigned.push(`${xid}|${d.assigned_ip ?? ''}`);
    }
  }
  return { requests: requests.sort(), replies: replies.sort(), assigned: assigned.sort() };
}

function compareWithTshark(file: string, events: any[], stats: any): void {
  const theirs = tsharkMessages(file);
  const ours = ourMessages(events);
  const key = (m: TsharkMessage) => `${m.xid}|${m.type}|${m.mac}`;
  assert.equal(stats.requests, theirs.filter((m) => m.op === 1).length, 'requests');
  assert.equal(stats.responses, theirs.filter((m) => m.op === 2).length, 'responses');
  assert.deepEqual(ours.requests, theirs.filter((m) => m.op === 1).map(key).sort(), 'requests: transaction id, message type, client MAC');
  assert.deepEqual(ours.replies, theirs.filter((m) => m.op === 2).map(key).sort(), 'replies: transaction id, message type, client MAC');
  assert.deepEqual(ours.assigned, theirs.filter((m) => m.op === 2).map((m) => `${m.xid}|${m.yiaddr}`).sort(), 'assigned addresses');
}

describe('agreement with tshark (DHCP dissector)', { skip: haveTshark ? false : 'tshark not installed', timeout: 600_000 }, () => {
  for (const name of REAL) {
    it(`${name}: the same requests and replies (transaction id, message type, client MAC, assigned address)`, async () => {
      const r = await readFile(fixture(name));
      assertAccounting(r.stats, name);
      const events = r.events.filter((e) => e.type === 'dhcpv4');
      assert.ok(events.length > 0);
      compareWithTshark(fixture(name), events, (r.stats.analyze as any).protocols.dhcpv4);
    });
  }
});

// ---------------------------------------------------------------------------
// live: dnsmasq and real clients in two network namespaces

const isRoot = process.getuid?.() === 0;
const can = isRoot ? netnsAvailable() : { ok: false, why: 'needs root (network namespaces, tcpdump)' };
const liveSkip = can.ok ? false : `network namespaces cannot be made here: ${can.why}`;

describe('live: dnsmasq, udhcpc and dhcping on a veth pair between two network namespaces', { skip: liveSkip, timeout: 600_000 }, () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'i12-dhcp-live-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /**
   * The exchanges in order as one line. On a busy machine a client may send a message
   * again before its answer is read (udhcpc's own timer): the patterns below allow
   * repeats, and which exchange is which is taken from its place.
   */
  const exchanges = (tx: any[]) => tx.map((e) => `${e.method}/${e.dhcpv4.option.message_type}`).join(' ');
  /** the first DISCOVER's exchange, the first REQUEST's, the last REQUEST before the RELEASE, the RELEASE */
  const lease = (tx: any[]) => {
    const rel = tx.findIndex((e) => e.method === 'RELEASE');
    return [tx.find((e) => e.method === 'DISCOVER'), tx.find((e) => e.method === 'REQUEST'), tx[rel - 1], tx[rel]];
  };

  const checks: Record<string, (tx: any[]) => void> = {
    lease(tx) {
      assert.match(exchanges(tx), /^(DISCOVER\/offer )+REQUEST\/ack (REQUEST\/ack )+RELEASE\/release (DISCOVER\/offer )+REQUEST\/ack$/);
      const [offer, ack, renew, release] = lease(tx);
      assert.ok(tx.every((e) => e.dhcpv4.client_mac === CLIENT_MAC));
      const ipNum = (s: string) => s.split('.').reduce((n, x) => n * 256 + +x, 0);
      assert.ok(ipNum(offer.dhcpv4.assigned_ip) >= ipNum(NET.rangeFrom) && ipNum(offer.dhcpv4.assigned_ip) <= ipNum(NET.rangeTo), offer.dhcpv4.assigned_ip);
      assert.equal(ack.dhcpv4.assigned_ip, offer.dhcpv4.assigned_ip);
      assert.equal(offer.dhcpv4.transaction_id, ack.dhcpv4.transaction_id);
      const o = ack.dhcpv4.option;
      assert.equal(o.hostname, 'pf-client');
      assert.equal(o.class_identifier, 'pktflow-test');
      assert.equal(o.client_identifier, '01:02:70:66:00:00:01');
      assert.equal(o.server_identifier, NET.server);
      assert.deepEqual(o.router, [NET.server]);
      assert.deepEqual(o.dns_servers, [NET.server, '10.77.0.2']);
      assert.deepEqual(o.ntp_servers, ['10.77.0.3']);
      assert.equal(o.subnet_mask, '255.255.255.0');
      assert.equal(o.domain_name, 'pktflow.test');
      assert.equal(o.ip_address_lease_time_sec, 3600);
      assert.ok(o.parameter_request_list.includes('NTP Servers'));
      assert.equal(ack.client.ip, '0.0.0.0');
      assert.equal(renew.client.ip, offer.dhcpv4.assigned_ip, 'the renewal is unicast from the leased address');
      assert.equal(renew.dhcpv4.client_ip, offer.dhcpv4.assigned_ip);
      assert.equal(release.status, 'OK');
      assert.equal(tx[tx.indexOf(release) + 1].dhcpv4.option.requested_ip_address, NET.outside);
      assert.ok(tx.every((e) => e.status === 'OK'));
    },
    'nak-inform'(tx) {
      assert.deepEqual(tx.map((e) => [e.method, e.dhcpv4.option.message_type, e.status, e.error?.message ?? null]), [
        ['REQUEST', 'nak', 'Error', 'NAK: wrong network'],
        ['RELEASE', 'release', 'OK', null],
        ['REQUEST', 'nak', 'Error', 'NAK: address not available'],
        ['RELEASE', 'release', 'OK', null],
        ['INFORM', 'ack', 'OK', null],
      ]);
      assert.equal(tx[2].dhcpv4.client_mac, OTHER_MAC);
      assert.equal(tx[4].dhcpv4.client_ip, NET.staticClient);
      assert.equal(tx[4].client.ip, NET.staticClient);
      assert.equal(tx[4].dhcpv4.option.subnet_mask, '255.255.255.0');
    },
    relay(tx) {
      assert.match(exchanges(tx), /^(DISCOVER\/offer )+REQUEST\/ack (REQUEST\/ack )+RELEASE\/release$/);
      const [offer, ack, renew, release] = lease(tx);
      for (const e of [offer, ack]) {
        // relayed: the relay agent is the client end, port 67 both ways
        assert.deepEqual([e.client.ip, e.client.port, e.server.ip, e.server.port], [NET.server, 67, RELAY_NET.server, 67]);
        assert.equal(e.dhcpv4.relay_ip, NET.server);
        assert.equal(e.dhcpv4.hops, 1);
        assert.equal(e.dhcpv4.client_mac, CLIENT_MAC);
        assert.ok(e.related.ip.includes(e.dhcpv4.assigned_ip));
      }
      assert.equal(ack.dhcpv4.option.server_identifier, RELAY_NET.server);
      assert.equal(ack.dhcpv4.option.hostname, 'relayed-client');
      assert.equal(ack.dhcpv4.option.class_identifier, 'pktflow-relay');
      // the renewal goes straight to the server, routed through the relay (or, when udhcpc could not
      // send it so yet, broadcast and relayed); it names the address it renews
      assert.equal(renew.dhcpv4.client_ip, offer.dhcpv4.assigned_ip);
      const direct = [offer.dhcpv4.assigned_ip, 68, undefined];
      const relayed = [NET.server, 67, NET.server];
      const got = [renew.client.ip, renew.client.port, renew.dhcpv4.relay_ip];
      assert.ok(JSON.stringify(got) === JSON.stringify(direct) || JSON.stringify(got) === JSON.stringify(relayed), JSON.stringify(got));
      assert.equal(release.dhcpv4.client_ip, offer.dhcpv4.assigned_ip);
      assert.ok(tx.every((e) => e.status === 'OK'));
    },
    retransmit(tx) {
      const discovers = tx.filter((e) => e.method === 'DISCOVER');
      assert.ok(discovers.length >= 2, 'DISCOVER sent again before dnsmasq answered');
      assert.equal(new Set(discovers.map((e) => e.dhcpv4.transaction_id)).size, 1);
      assert.ok(tx.some((e) => e.method === 'REQUEST' && e.dhcpv4.option.message_type === 'ack' && e.status === 'OK'));
      assert.equal(tx.at(-1).dhcpv4.option.hostname, 'slow-client');
    },
  };

  for (const [name, s] of Object.entries(scenarios)) {
    it(`${name}: ${s.about}`, async () => {
      const file = path.join(dir, `${name}.pcap`);
      const lab = await recordScenario(s, file);
      const r = await readFile(file);
      assert.equal(r.error, null);
      assertAccounting(r.stats, name);
      const stats = (r.stats.analyze as any).protocols.dhcpv4;
      assert.equal(stats.pending, 0);
      assert.deepEqual(stats.malformed, {});
      assert.deepEqual(stats.violations, {});
      const tx = r.events.filter((e) => e.type === 'dhcpv4') as any[];
      checks[name](tx);
      if (haveTshark) compareWithTshark(file, tx, stats);
      // the namespaces are gone
      const left = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
      assert.ok(!left.includes(lab.srv) && !left.includes(lab.cli), left);
    });
  }
});

