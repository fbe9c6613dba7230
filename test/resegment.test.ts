/**
 * The whole pipeline, not one stage: an HTTP conversation cut into random segment
 * sizes, shuffled and partly resent, gives the same transactions as the
 * conversation sent whole.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LinkType, makeFrame } from '../src/core/frame';
import * as path from 'node:path';
import { captureFile } from '../src/sources/file';
import { fixtureFiles, memorySource, pushThroughStages, ROOT, runStages, summary } from './helpers';
import { dnsMessage, F, ipv4, TcpConv, udp } from './gen/packets';

const b = (s: string) => Buffer.from(s, 'latin1');
const turns: [number, string][] = [
  [0, 'GET /one HTTP/1.1\r\nHost: r.test\r\n\r\nGET /two HTTP/1.1\r\nHost: r.test\r\n\r\n'],
  [1, 'HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello worldHTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nnope\r\n0\r\n\r\n'],
  [0, 'POST /three HTTP/1.1\r\nHost: r.test\r\nContent-Length: 5\r\n\r\nabcde'],
  [1, 'HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n'],
];

/** the conversation as raw IPv4 packets; each turn cut at `cuts`, shuffled by `order`, with `dups` resent */
function conversation(cuts: number[][], order: number[], dups: number[]): Buffer[] {
  const c = new TcpConv([{ ip: '10.7.0.1', port: 50000 }, { ip: '10.7.0.2', port: 80 }], [0xffffff00, 123]);
  const pkts = c.handshake();
  turns.forEach(([side, text], t) => {
    const data = b(text);
    const base = c.seq[side];
    const points = [...new Set([0, ...(cuts[t] ?? []).map((x) => x % data.length), data.length])].sort((x, y) => x - y);
    const segs = points.slice(0, -1).map((from, i) => c.at(side, base + from, F.ACK, data.subarray(from, points[i + 1])));
    for (let i = segs.length - 1; i > 0; i--) {
      const j = (order[(t * 7 + i) % Math.max(order.length, 1)] ?? 0) % (i + 1);
      [segs[i], segs[j]] = [segs[j], segs[i]];
    }
    for (const d of dups) segs.push(segs[d % segs.length]);
    c.seq[side] = (base + data.length) >>> 0;
    pkts.push(...segs);
  });
  pkts.push(...c.close());
  return pkts;
}

async function transactions(pkts: Buffer[]): Promise<string[]> {
  const frames = pkts.map((p, i) => makeFrame(1_700_000_000, i * 1000, LinkType.RAW, p.length, 0, p));
  const { events } = await runStages(memorySource(frames, 5));
  // times depend on which packet completed a message (http.response.end); everything else must not
  return events.map((e: any) => JSON.stringify([e.url.full, e.status, e.source.bytes, e.destination.bytes, e.http.request, { ...e.http.response, end: undefined }, e.notes]));
}

describe('random segmentation through the whole pipeline', { timeout: 600_000 }, () => {
  it('gives the same transactions as the unsplit conversation', async () => {
    const reference = await transactions(conversation([], [], []));
    assert.equal(reference.length, 3);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(fc.integer({ min: 1, max: 400 }), { maxLength: 10 }), { minLength: 4, maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        fc.array(fc.nat(), { maxLength: 4 }),
        async (cuts, order, dups) => {
          assert.deepEqual(await transactions(conversation(cuts, order, dups)), reference);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('batch boundaries change nothing', { timeout: 600_000 }, () => {
  it('every fixture read in chunks of 600 bytes gives the events of the default 256 KiB chunks', async () => {
    for (const file of fixtureFiles()) {
      const whole = await runStages(captureFile({ path: path.join(ROOT, file) }), { tcp: { flows: {} } });
      const small = await runStages(captureFile({ path: path.join(ROOT, file), chunkBytes: 600 }), { tcp: { flows: {} } });
      assert.deepEqual(small.events, whole.events, file);
    }
  });

  it('a response past the transaction timeout is unmatched whether or not it comes in the same batch', () => {
    const q = ipv4('10.0.0.1', '10.0.0.53', 17, udp(40000, 53, dnsMessage(7, 'late.test', 1, false)));
    const r = ipv4('10.0.0.53', '10.0.0.1', 17, udp(53, 40000, dnsMessage(7, 'late.test', 1, true, ['10.0.0.9'])));
    const frames = [makeFrame(1000, 0, LinkType.RAW, q.length, 0, q), makeFrame(1012, 0, LinkType.RAW, r.length, 0, r)];
    const one = pushThroughStages(frames, {}, 16).events.map(summary);
    const two = pushThroughStages(frames, {}, 1).events.map(summary);
    assert.deepEqual(one, two);
    assert.equal(one.length, 2, 'the query timed out and the response came alone');
  });
});
