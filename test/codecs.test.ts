/**
 * The decompressors of what pktflow reads (Cassandra's and MongoDB's compressed
 * bodies). Snappy (pktflow's own, src/protocols/snappy.ts): every tag form against a
 * block written by hand, snappyjs's compressor's output decoded back, and damaged
 * blocks (snappyjs's own decoder hangs on one: a literal length with its top bit set)
 * giving null or exactly the declared size. Zstandard (zstd's C decoder in WebAssembly,
 * src/protocols/zstd.ts): the `zstd` command's frames decoded back, and damaged ones
 * (fzstd hung on one) giving at most the size asked for. Never an exception, never a hang.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import snappy from 'snappyjs';
import { snappyLength, snappyUncompress } from '../src/protocols/snappy';
import { zstdDecompress } from '../src/protocols/zstd';

const un = (b: Buffer | number[], max = 1 << 20) => {
  const buf = Buffer.from(b);
  return snappyUncompress(buf, 0, buf.length, max);
};

describe('snappy', { timeout: 120_000 }, () => {
  it('decodes every tag form: literals of 1-60 and of 1-4 length bytes, copies with 1, 2 and 4 offset bytes, overlapping runs', () => {
    const block = [
      27, // the size: 27 bytes
      (2 << 2) | 0, ...Buffer.from('abc'), // literal, its length - 1 in the tag: abc
      (60 << 2) | 0, 1, ...Buffer.from('de'), // literal, 1 length byte: de
      (61 << 2) | 0, 0, 0, ...Buffer.from('f'), // literal, 2 length bytes: f
      ((5 - 4) << 2) | 1, 6, // copy 5 from 6 back, 1 offset byte: abcde
      ((3 - 1) << 2) | 2, 1, 0, // copy 3 from 1 back, 2 offset bytes: a run, eee
      ((4 - 1) << 2) | 3, 8, 0, 0, 0, // copy 4 from 8 back, 4 offset bytes: abcd
      ((8 - 4) << 2) | 1, 2, // copy 8 from 2 back: a run of two bytes, cdcdcdcd
      (62 << 2) | 0, 0, 0, 0, ...Buffer.from('z'), // literal, 3 length bytes: z
    ];
    assert.equal(un(block)?.toString(), 'abcdef' + 'abcde' + 'eee' + 'abcd' + 'cdcdcdcd' + 'z');
    // snappyjs's decoder, sound on sound input, reads the same
    assert.equal(Buffer.from(snappy.uncompress(Buffer.from(block))).toString(), un(block)?.toString());
    // the same block declaring one byte more or less is not a block
    assert.equal(un([28, ...block.slice(1)]), null);
    assert.equal(un([26, ...block.slice(1)]), null);
  });

  it('decodes what snappyjs compresses, texts that repeat and bytes that do not', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 70_000 }), fc.nat(4), (raw, alphabet) => {
        const src = alphabet === 0 ? Buffer.from(raw) : Buffer.from(raw.map((b) => 97 + (b % alphabet)));
        const z = Buffer.from(snappy.compress(src));
        assert.deepEqual(un(z), src);
        assert.deepEqual(snappyLength(z, 0, z.length)?.[0], src.length);
      }),
      { numRuns: 200 },
    );
  });

  it('damaged blocks give null or a buffer of the declared size, and stop (snappyjs 0.7 loops forever on the first)', () => {
    // a literal with 4 length bytes whose top bit is set: snappyjs steps back to the tag and reads it again
    assert.equal(un([0x10, 0xfc, 0xfa, 0xff, 0xff, 0xff]), null);
    assert.equal(un([0x10, 0xfc, 0xff, 0xff, 0xff, 0xff]), null);
    // a copy before anything was written, from 0 back, past what was written, past the declared size
    assert.equal(un([4, 0x01, 0x01]), null);
    assert.equal(un([4, 0x00, 0x61, 0x01, 0x00]), null);
    assert.equal(un([4, 0x00, 0x61, 0x05, 0x02]), null);
    assert.equal(un([2, 0x00, 0x61, 0x05, 0x01]), null);
    // less than declared, more than declared, cut inside a tag's bytes, a size over max, a varint too long
    assert.equal(un([4, 0x00, 0x61]), null);
    assert.equal(un([1, 0x04, 0x61, 0x62]), null);
    assert.equal(un([4, 0xf0, 0x03]), null);
    assert.equal(un([0x80, 0x80, 0x04], 1 << 10), null);
    assert.equal(un([0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), null);
    assert.equal(un([0])?.length, 0);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.nat(3), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 6 }), fc.nat(), (raw, alphabet, flips, cut) => {
        const src = alphabet === 0 ? Buffer.from(raw) : Buffer.from(raw.map((b) => 97 + (b % alphabet)));
        const z = Buffer.from(snappy.compress(src));
        for (const [i, v] of flips) z[i % z.length] = v;
        for (const b of [z, z.subarray(0, cut % (z.length + 1))]) {
          const out = snappyUncompress(b, 0, b.length, 1 << 16);
          if (out !== null) assert.equal(out.length, snappyLength(b, 0, b.length)?.[0]);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('zstd', { timeout: 120_000 }, () => {
  const zstd = (b: Buffer, level = 3) => execFileSync('zstd', [`-${level}`, '-c', '-q', '--no-check'], { input: b });
  const frames = [0, 1, 100, 5000, 100_000].flatMap((n, i) => {
    const text = Buffer.from(Array.from({ length: n }, (_, j) => 97 + ((j * 7 + i) % 5)));
    const bytes = Buffer.from(Array.from({ length: n }, (_, j) => (j * 2654435761) >>> 24));
    return [text, bytes].map((src) => ({ src, z: zstd(src, 1 + (n % 19)) }));
  });

  it('decodes the zstd command\'s frames; asked for fewer bytes than a frame holds, gives null', () => {
    for (const { src, z } of frames) {
      assert.deepEqual(zstdDecompress(z, src.length), src);
      if (src.length > 0) assert.equal(zstdDecompress(z, src.length - 1), null);
    }
    // two frames one after the other: both
    const two = Buffer.concat([frames[4].z, frames[5].z]);
    assert.deepEqual(zstdDecompress(two, frames[4].src.length + frames[5].src.length), Buffer.concat([frames[4].src, frames[5].src]));
  });

  it('damaged frames give null or at most the size asked for, and stop (fzstd 0.1.1 loops forever on the first)', () => {
    // a mutated frame whose Huffman weights consume no bits: fzstd's weight loop never ends
    const hung = Buffer.from('28b52ffd205845010082450705f00f69b00ecc1733d065edba57041caaf995dc577e1622ff028386f14201020089ca880e4e0b', 'hex');
    assert.equal(zstdDecompress(hung, 100), null);
    fc.assert(
      fc.property(fc.nat(frames.length - 1), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 6 }), fc.nat(), (which, flips, cut) => {
        const { src, z } = frames[which];
        const d = Buffer.from(z);
        for (const [i, v] of flips) d[i % d.length] = v;
        for (const b of [d, d.subarray(0, cut % (d.length + 1))]) assert.ok((zstdDecompress(b, src.length)?.length ?? 0) <= src.length);
      }),
      { numRuns: 2000 },
    );
  });
});
