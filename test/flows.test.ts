import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LinkType, makeFrame } from '../src/core/frame';
import { DecodeStage } from '../src/decode/stage';
import { FlowTable } from '../src/flows/table';
import { ether, ipv4, udp } from './gen/packets';

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
