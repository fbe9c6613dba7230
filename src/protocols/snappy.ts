/**
 * Raw Snappy blocks (google/snappy format_description.txt): MongoDB's OP_COMPRESSED
 * (compressor 1) and Cassandra's snappy bodies. pktflow decodes them itself because
 * what it reads is hostile: snappyjs 0.7 (the newest) loops forever on a literal whose
 * 4-byte length has its top bit set (6 bytes do it: `10 fc fa ff ff ff`) and accepts
 * a block that fills less than it declares. Here every length is unsigned, every read
 * and copy stays inside its buffer, and a block is good only when it fills exactly
 * the size it declares, at most `max` bytes (allocated once, before any copy).
 */

/** the varint a block starts with: [uncompressed size, bytes it took], or null when malformed */
export function snappyLength(buf: Buffer, off: number, len: number): [number, number] | null {
  let size = 0;
  // at most 5 bytes: sizes are 32-bit
  for (let i = 0; i < 5 && i < len; i++) {
    const b = buf[off + i];
    size += (b & 0x7f) * 2 ** (7 * i);
    if (b < 0x80) return [size, i + 1];
  }
  return null;
}

/** the block in buf[off, off+len) decompressed, or null when it is not a block of at most `max` bytes */
export function snappyUncompress(buf: Buffer, off: number, len: number, max: number): Buffer | null {
  const head = snappyLength(buf, off, len);
  if (head === null || head[0] > max) return null;
  const size = head[0];
  const end = off + len;
  const out = Buffer.allocUnsafe(size);
  let p = off + head[1];
  let o = 0;
  while (p < end) {
    const tag = buf[p++];
    let n: number;
    let dist: number;
    switch (tag & 3) {
      case 0: {
        // a literal: its length - 1 in the tag, or in the 1-4 bytes after it (tag values 60-63)
        n = tag >>> 2;
        if (n >= 60) {
          const k = n - 59;
          if (p + k > end) return null;
          n = 0;
          for (let i = k - 1; i >= 0; i--) n = n * 256 + buf[p + i];
          p += k;
        }
        n += 1;
        if (n > end - p || n > size - o) return null;
        buf.copy(out, o, p, p + n);
        p += n;
        o += n;
        continue;
      }
      case 1:
        if (p >= end) return null;
        n = 4 + ((tag >>> 2) & 7);
        dist = ((tag >>> 5) << 8) | buf[p];
        p += 1;
        break;
      case 2:
        if (p + 2 > end) return null;
        n = (tag >>> 2) + 1;
        dist = buf[p] | (buf[p + 1] << 8);
        p += 2;
        break;
      default:
        if (p + 4 > end) return null;
        n = (tag >>> 2) + 1;
        dist = buf.readUInt32LE(p);
        p += 4;
    }
    // a copy of n bytes from dist back; it may overlap what it writes (a run)
    if (dist === 0 || dist > o || n > size - o) return null;
    if (dist >= n) out.copy(out, o, o - dist, o - dist + n);
    else for (let i = 0; i < n; i++) out[o + i] = out[o - dist + i];
    o += n;
  }
  return o === size ? out : null;
}
