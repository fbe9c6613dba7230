/** Byte-level damage for property tests (test/fuzz.test.ts and the protocols' own). */
import fc from 'fast-check';

/** byte-level damage to a valid frame: flips, truncation, insertions */
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
