/**
 * What property tests share (test/fuzz.test.ts and each protocol's own): byte-level
 * damage (flips, an insertion, a truncation), and fast-check's parameters, a fixed
 * count of cases for CI or a share of `npm run fuzz`'s time budget
 * (PKTFLOW_FUZZ_SECONDS), replayable with PKTFLOW_FUZZ_SEED and PKTFLOW_FUZZ_PATH.
 */
import fc from 'fast-check';

export const FUZZ_SECONDS = Number(process.env.PKTFLOW_FUZZ_SECONDS ?? 0);

/** fast-check parameters for one of `properties` properties sharing the time budget */
export function fuzzParams(numRuns: number, properties: number): fc.Parameters<unknown> {
  const replay = process.env.PKTFLOW_FUZZ_SEED !== undefined ? { seed: Number(process.env.PKTFLOW_FUZZ_SEED), path: process.env.PKTFLOW_FUZZ_PATH } : {};
  if (FUZZ_SECONDS > 0) return { numRuns: 2 ** 31 - 1, interruptAfterTimeLimit: (FUZZ_SECONDS * 1000) / properties, markInterruptAsFailure: false, ...replay };
  return { numRuns, ...replay };
}

/** byte-level damage to a valid frame or stream: flips, truncation, insertions */
export const mutation = fc.record({
  flips: fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 6 }),
  cut: fc.option(fc.nat()),
  insert: fc.option(fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 16 }))),
});

export function mutate(data: Buffer, m: { flips: [number, number][]; cut: number | null; insert: [number, Uint8Array] | null }): Buffer {
  let b = Buffer.from(data);
  for (const [i, v] of m.flips) if (b.length > 0) b[i % b.length] = v;
  if (m.insert !== null) {
    const at = m.insert[0] % (b.length + 1);
    b = Buffer.concat([b.subarray(0, at), Buffer.from(m.insert[1]), b.subarray(at)]);
  }
  if (m.cut !== null) b = b.subarray(0, m.cut % (b.length + 1));
  return b;
}
