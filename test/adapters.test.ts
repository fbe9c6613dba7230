import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { from, lastValueFrom, toArray } from 'rxjs';
import type { Frame } from '../src/core/frame';
import { FLUSH_BATCH, flushThrough, pushThrough, toOperator, toTransform, type Stage } from '../src/core/stage';
import { eventStages } from '../src/pipeline/presets';
import { captureFile } from '../src/sources/file';
import { fixture, summary } from './helpers';

async function batches(): Promise<Frame[][]> {
  const out: Frame[][] = [];
  for await (const b of captureFile({ path: fixture('http-dns.pcap'), chunkBytes: 2048 }).batches()) out.push(b);
  return out;
}

describe('stage adapters', { timeout: 600_000 }, () => {
  it('an RxJS operator chain and a Node Transform chain give what direct calls give', async () => {
    const input = await batches();
    const direct = eventStages();
    const expected = [...input.flatMap((b) => pushThrough(direct, b)), ...flushThrough(direct)].map(summary);
    assert.equal(expected.length, 21);

    const [d, t, a] = eventStages();
    const viaRx = await lastValueFrom(from(input).pipe(toOperator(d), toOperator(t), toOperator(a), toArray()));
    assert.deepEqual(viaRx.flat().map(summary), expected);

    const got: unknown[] = [];
    const stages = eventStages();
    await pipeline(
      Readable.from(input, { objectMode: true }),
      toTransform(stages[0]),
      toTransform(stages[1]),
      toTransform(stages[2]),
      new Writable({
        objectMode: true,
        write(batch: unknown[], _e, cb) {
          got.push(...batch);
          cb();
        },
      }),
    );
    assert.deepEqual(got.map((e) => summary(e as any)), expected);
  });

  it("a flush's output goes on in batches of FLUSH_BATCH items, in order, by both adapters", async () => {
    // a stage holding 3,000 items until the end, as the reorderer holds connections
    const holder = (): Stage<number, number> => {
      const held: number[] = [];
      return { name: 'holder', push: (b) => (held.push(...b), []), flush: () => held.splice(0), stats: () => ({}) };
    };
    const input = [Array.from({ length: 3000 }, (_, i) => i)];
    const viaRx = await lastValueFrom(from(input).pipe(toOperator(holder()), toArray()));
    assert.deepEqual(viaRx.map((b) => b.length), [FLUSH_BATCH, FLUSH_BATCH, 3000 - 2 * FLUSH_BATCH]);
    assert.deepEqual(viaRx.flat(), input[0]);
    const viaNode: number[][] = [];
    await pipeline(Readable.from(input, { objectMode: true }), toTransform(holder()), new Writable({ objectMode: true, write: (b: number[], _e, cb) => (viaNode.push(b), cb()) }));
    assert.deepEqual(viaNode.map((b) => b.length), [FLUSH_BATCH, FLUSH_BATCH, 3000 - 2 * FLUSH_BATCH]);
    assert.deepEqual(viaNode.flat(), input[0]);
  });
});
