import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { from, lastValueFrom, toArray } from 'rxjs';
import type { Frame } from '../src/core/frame';
import { flushThrough, pushThrough, toOperator, toTransform } from '../src/core/stage';
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
});
