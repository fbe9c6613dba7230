import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LinkType, makeFrame } from '../src/core/frame';
import { DecodeStage } from '../src/decode/stage';
import { ItemKind, type StreamItem } from '../src/tcp/items';
import { TcpReorderer, type TcpOptions } from '../src/tcp/reorderer';
import { execFileSync, spawnSync } from 'node:child_process';
import { F, TcpConv } from './gen/packets';
import { cli, fixture, ndjson, readFile } from './helpers';

function run(pkts: Buffer[], opts: TcpOptions = {}, secs?: number[]): { items: StreamItem[]; r: TcpReorderer } {
  const d = new DecodeStage();
  const r = new TcpReorderer(opts);
  const frames = pkts.map((b, i) => makeFrame(secs?.[i] ?? 1000, i, LinkType.RAW, b.length, 0, b));
  const items = [...r.push(d.push(frames)), ...r.flush()];
  return { items, r };
}

/** what each side's analyzer would see: bytes, with [gap N] markers */
function streams(items: StreamItem[]): [string, string] {
  const s: [string, string] = ['', ''];
  for (const it of items) {
    if (it.kind === ItemKind.data) s[it.side] += it.buf!.toString('latin1', it.off, it.off + it.len);
    if (it.kind === ItemKind.gap) s[it.side] += `[gap ${it.len}]`;
  }
  return s;
}

const ends: [{ ip: string; port: number }, { ip: string; port: number }] = [{ ip: '10.0.0.1', port: 40000 }, { ip: '10.0.0.2', port: 80 }];
const b = (s: string) => Buffer.from(s, 'latin1');

describe('TCP reorderer', { timeout: 600_000 }, () => {
  it('delivers in-order data and closes on FIN from both sides', () => {
    const c = new TcpConv(ends);
    const { items, r } = run([...c.handshake(), c.seg(0, F.ACK, b('hello ')), c.seg(0, F.ACK, b('world')), c.seg(1, F.ACK, b('ok')), ...c.close()]);
    assert.deepEqual(streams(items), ['hello world', 'ok']);
    assert.equal(items[items.length - 1].kind, ItemKind.close);
    assert.equal(items[items.length - 1].reason, 'fin');
    assert.equal((r.stats() as any).connections.active, 0);
  });

  it('reorders, drops retransmissions, trims overlaps', () => {
    const c = new TcpConv(ends);
    const hs = c.handshake().slice(0, 2);
    const base = c.seq[0];
    const text = b('0123456789abcdefghij');
    const at = (from: number, to: number) => c.at(0, base + from, F.ACK, text.subarray(from, to));
    const { items, r } = run([...hs, at(10, 20), at(5, 12), at(0, 5), at(0, 5), at(15, 20)]);
    assert.deepEqual(streams(items), ['0123456789abcdefghij', '']);
    const s = r.stats() as any;
    assert.ok(s.reordered >= 1);
    assert.ok(s.retransmitted >= 2);
    assert.ok(s.overlaps >= 1);
  });

  it('handles sequence numbers that wrap past 2^32', () => {
    const c = new TcpConv(ends, [0xfffffff8, 0xfffffffe]);
    const { items } = run([...c.handshake(), c.seg(0, F.ACK, b('abcdefgh')), c.seg(0, F.ACK, b('ijklmnop')), c.seg(1, F.ACK, b('xyz')), ...c.close()]);
    assert.deepEqual(streams(items), ['abcdefghijklmnop', 'xyz']);
  });

  it('tells the server side by port when the handshake was missed', () => {
    const c = new TcpConv(ends);
    // the first packet seen goes server → client
    const { items } = run([c.seg(1, F.ACK, b('response')), c.seg(0, F.ACK, b('request'))], { isServerPort: (p) => p === 80 });
    const conn = items[0].conn!;
    assert.equal(conn.serverPort, 80);
    assert.equal(conn.directionFrom, 'port');
    assert.deepEqual(streams(items), ['request', 'response']);
  });

  it('turns a hole the peer acknowledged into a gap at once', () => {
    const c = new TcpConv(ends);
    const pk = [...c.handshake(), c.seg(0, F.ACK, b('aaaa'))];
    c.seg(0, F.ACK, b('LOST')); // never captured
    pk.push(c.seg(0, F.ACK, b('cccc')), c.seg(1, F.ACK, b('ack')));
    const { items, r } = run(pk);
    assert.deepEqual(streams(items), ['aaaa[gap 4]cccc', 'ack']);
    assert.equal((r.stats() as any).gap_causes.acked_unseen, 1);
    // the gap came before the connection closed
    assert.ok(items.findIndex((i) => i.kind === ItemKind.gap) < items.findIndex((i) => i.kind === ItemKind.close));
  });

  it('delivers the acknowledged hole, and what waited behind it, before the payload of the packet that acknowledged it', () => {
    // a reply acknowledges its request: an analyzer must see the request (or its loss) first
    const c = new TcpConv(ends);
    const pk = [...c.handshake(), c.seg(0, F.ACK, b('req1'))];
    c.seg(0, F.ACK, b('LOST'));
    pk.push(c.seg(0, F.ACK, b('req3')), c.seg(1, F.ACK, b('rep1rep2rep3')));
    const { items } = run(pk);
    const order = items.filter((i) => i.kind === ItemKind.data || i.kind === ItemKind.gap).map((i) => (i.kind === ItemKind.gap ? `${i.side}:gap` : `${i.side}:${i.buf!.toString('latin1', i.off, i.off + i.len)}`));
    assert.deepEqual(order, ['0:req1', '0:gap', '0:req3', '1:rep1rep2rep3']);
  });

  it('gives up on a hole past the per-direction byte cap, and counts it', () => {
    const c = new TcpConv(ends);
    const pk = [...c.handshake().slice(0, 1)];
    c.seg(0, F.ACK, b('X'.repeat(10))); // the hole
    for (let i = 0; i < 5; i++) pk.push(c.seg(0, F.ACK, b(String(i).repeat(100))));
    const { items, r } = run(pk, { maxBufferedPerDirection: 250 });
    const [client] = streams(items);
    assert.ok(client.startsWith('[gap 10]000'), client);
    assert.equal(client.replace(/\[gap \d+\]/g, '').length, 500);
    const s = r.stats() as any;
    assert.equal(s.gap_causes.connection_buffer_limit, 1);
    assert.ok(s.buffered_peak_bytes <= 300);
    assert.equal(s.buffered_bytes, 0);
  });

  it('gives up on a hole after the hole timeout (packet time)', () => {
    const c = new TcpConv(ends);
    const pk = [c.seg(0, F.SYN)];
    c.seg(0, F.ACK, b('miss'));
    // the server's segment carries no ACK: only the timeout can declare the hole
    pk.push(c.seg(0, F.ACK, b('late')), c.seg(1, F.PSH, b('x')));
    const { items, r } = run(pk, { holeTimeoutSec: 5 }, [1000, 1001, 1010]);
    assert.equal(streams(items)[0], '[gap 4]late');
    assert.equal((r.stats() as any).gap_causes.hole_timeout, 1);
  });

  it('closes on RST, on idle timeout, and evicts the least recently active past the connection cap', () => {
    const mk = (port: number) => new TcpConv([{ ip: '10.0.0.1', port }, { ip: '10.0.0.2', port: 80 }]);
    const a = mk(1);
    const rst = run([...a.handshake(), a.seg(0, F.RST)]);
    assert.equal(rst.items[rst.items.length - 1].reason, 'rst');
    const convs = [mk(2), mk(3), mk(4)];
    const capped = run(convs.map((c) => c.seg(0, F.SYN)), { maxConnections: 2 });
    assert.equal((capped.r.stats() as any).connections.closed.evicted, 1);
    const x = mk(5);
    const y = mk(6);
    const idle = run([x.seg(0, F.SYN), y.seg(0, F.SYN)], { idleTimeoutSec: 60 }, [1000, 1100]);
    assert.equal((idle.r.stats() as any).connections.closed.idle, 1);
  });

  it('a FIN beyond a hole that never fills leaves a gap at close', () => {
    const c = new TcpConv(ends);
    const pk = [...c.handshake()];
    c.seg(0, F.ACK, b('gone'));
    pk.push(c.seg(0, F.FIN | F.ACK));
    const { items } = run(pk);
    assert.equal(streams(items)[0], '[gap 4]');
  });

  it('gives the same streams for any order of the segments (property)', () => {
    const text = b('The quick brown fox jumps over the lazy dog. '.repeat(6));
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: text.length - 1 }), { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 5 }),
        (cuts, order, dups) => {
          const points = [...new Set([0, ...cuts, text.length])].sort((x, y) => x - y);
          const c = new TcpConv(ends, [4294967000, 1]);
          const hs = c.handshake();
          const base = c.seq[0];
          const segs = points.slice(0, -1).map((from, i) => c.at(0, base + from, F.ACK, text.subarray(from, points[i + 1])));
          // shuffle deterministically from `order`, then resend some
          for (let i = segs.length - 1; i > 0; i--) {
            const j = (order[i % Math.max(order.length, 1)] ?? 0) % (i + 1);
            [segs[i], segs[j]] = [segs[j], segs[i]];
          }
          for (const d of dups) segs.push(segs[d % segs.length]);
          const { items } = run([...hs, ...segs]);
          return streams(items)[0] === text.toString('latin1');
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('one capture on two interfaces (dumpcap -i lo -i any)', { timeout: 600_000 }, () => {
  const file = fixture('http/two-interfaces.pcapng');

  it('gives each transaction once, at the times tshark gives, the second copies being retransmissions', async () => {
    const r = await readFile(file, { tcp: { flows: {} } });
    const http = r.events.filter((e) => e.type === 'http') as any[];
    assert.deepEqual(http.map((e) => [e.url.path, e.http.response.status_code]), [['/', 200], ['/index.html', 200], ['/missing', 404]]);
    const tcp = r.stats.tcp as any;
    assert.ok(tcp.ignored.copy_of_closed_connection > 0 && tcp.retransmitted === tcp.ignored.copy_of_closed_connection);
    if (spawnSync('bash', ['-c', 'command -v tshark']).status === 0) {
      const t = execFileSync('tshark', ['-r', file, '-Y', 'http.request || http.response', '-T', 'fields', '-e', 'frame.time_epoch', '-e', 'http.request.uri'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .trim()
        .split('\n')
        .map((l) => l.split('\t'));
      // tshark: three requests, three responses; the events start at the requests' and end at the responses' frames
      assert.equal(t.length, 6);
      const ns = (epoch: string) => epoch.replace('.', '');
      const iso = (e: string) => BigInt(Date.parse(e.slice(0, 19) + 'Z')) * 1_000_000n + BigInt(e.slice(20, 29));
      assert.deepEqual(http.map((e) => [iso(e['@timestamp']).toString(), iso(e.event.end).toString()]), [0, 2, 4].map((i) => [ns(t[i][0]), ns(t[i + 1][0])]));
    }
    // flows count every frame, both copies (as tshark's conversations do)
    const flows = r.events.filter((e) => e.type === 'flow') as any[];
    assert.equal(flows.reduce((n, f) => n + f.network.packets, 0), (r.stats.decode as any).frames);
  });

  it('--interface-id keeps one interface\'s frames', async () => {
    for (const id of ['0', '1']) {
      const r = await cli(['read', file, '--interface-id', id, '--stats-event']);
      assert.equal(r.code, 0, r.stderr);
      const events = ndjson(r.stdout) as any[];
      assert.equal(events.filter((e) => e.type === 'http').length, 3);
      const stats = events[events.length - 1].stats;
      assert.equal(stats.frames.interface.accepted, 18);
      assert.equal(stats.frames.interface.rejected, 18);
      assert.equal(stats.tcp.retransmitted, 0, 'one interface: no copies');
    }
  });
});
