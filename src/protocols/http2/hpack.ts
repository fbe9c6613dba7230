/**
 * HPACK (RFC 7541) decoding: integers, string literals (plain and Huffman coded), the
 * static table and a bounded dynamic table. One decoder per direction of a connection:
 * the header blocks one endpoint sends share its encoder's dynamic table.
 *
 * pktflow's own rather than a package: the one npm package that decodes HPACK on its
 * own, hpack.js 2.1.6 (unchanged since 2017, kept alive only as a dependency of spdy),
 * does decode RFC 7541's examples right (checked: C.4 and C.6), but through a
 * readable-stream 2 Readable per decoder (a write, an execute and reads per header
 * block), it reports bad input by throwing, and it can neither bound the header list
 * nor tell a size update beyond the peer's SETTINGS from one beyond pktflow's cap. This decoder is tested against every
 * example of RFC 7541 Appendix C (C.2 to C.6, with and without Huffman coding) in
 * test/http2.test.ts; its Huffman code is Appendix B's (./huffman-table.ts).
 */
import { HUFFMAN_CODES, HUFFMAN_LENGTHS } from './huffman-table';

// prettier-ignore
const STATIC: readonly (readonly [string, string])[] = [
  ['', ''], // index 0 is not used
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''],
  ['etag', ''], ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''],
  ['if-modified-since', ''], ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''],
  ['last-modified', ''], ['link', ''], ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''],
  ['proxy-authorization', ''], ['range', ''], ['referer', ''], ['refresh', ''], ['retry-after', ''],
  ['server', ''], ['set-cookie', ''], ['strict-transport-security', ''], ['transfer-encoding', ''],
  ['user-agent', ''], ['vary', ''], ['via', ''], ['www-authenticate', ''],
];
const STATIC_COUNT = STATIC.length - 1; // 61

/**
 * The Huffman code as a binary tree: node i's children are TREE[2i] (bit 0) and
 * TREE[2i+1] (bit 1); a child >= 0 is an inner node, a child < 0 is the leaf of
 * symbol -child-1 (256: EOS).
 */
const TREE = (() => {
  const tree = new Int32Array(2 * 256).fill(0);
  let nodes = 1;
  for (let sym = 0; sym <= 256; sym++) {
    const code = HUFFMAN_CODES[sym];
    const len = HUFFMAN_LENGTHS[sym];
    let node = 0;
    for (let b = len - 1; b > 0; b--) {
      const slot = 2 * node + ((code >>> b) & 1);
      if (tree[slot] === 0) tree[slot] = nodes++;
      node = tree[slot];
    }
    tree[2 * node + (code & 1)] = -(sym + 1);
  }
  return tree;
})();

/** what goes wrong in a header block (the counters' reasons) */
export type HpackError =
  | 'truncated'
  | 'bad_index'
  | 'integer_overflow'
  | 'bad_huffman'
  | 'size_update_position'
  | 'table_size_cap';

/** receives each decoded field of a block, in order */
export type FieldSink = (name: string, value: string) => void;

/** a field's size in the table and for header list limits: name and value octets plus 32 (RFC 7541 §4.1) */
export const entrySize = (name: string, value: string): number => name.length + value.length + 32;

export class HpackDecoder {
  /** dynamic entries, oldest first from `first`; the newest (index 62) is the last */
  private names: string[] = [];
  private values: string[] = [];
  private first = 0;
  /** octets the dynamic table holds now */
  size = 0;
  /** the table's maximum as the encoder last set it (4096 until a size update) */
  maxSize = 4096;
  /** the most the peer's SETTINGS_HEADER_TABLE_SIZE allows (4096 until SETTINGS say else) */
  allowed = 4096;
  /** size updates above `allowed` (still within the cap): a violation that is followed */
  overSettings = 0;
  /** Huffman output, reused */
  private scratch = Buffer.allocUnsafe(256);
  private pos = 0;

  /** `cap`: the largest table pktflow keeps, whatever the peer allows */
  constructor(private readonly cap: number) {}

  /** dynamic table entries held now */
  get length(): number {
    return this.names.length - this.first;
  }

  /** the table's maximum set from outside (RFC 7541's examples assume 256 without a size update) */
  resize(n: number): void {
    this.maxSize = n;
    this.evict(0);
  }

  /** the peer's SETTINGS_HEADER_TABLE_SIZE: what the encoder may grow the table to */
  setAllowed(n: number): void {
    this.allowed = n;
  }

  /**
   * Decode one complete header block buf[off, end), inserting into the dynamic table
   * as it goes. Returns null, or what went wrong: the table may then differ from the
   * encoder's, and the caller must stop trusting this direction's blocks.
   */
  decode(buf: Buffer, off: number, end: number, sink: FieldSink): HpackError | null {
    let p = off;
    let fieldSeen = false;
    while (p < end) {
      const b = buf[p];
      if (b & 0x80) {
        // indexed field
        const idx = this.int(buf, p, end, 7);
        if (idx < 0) return idx === -1 ? 'truncated' : 'integer_overflow';
        p = this.pos;
        if (idx === 0) return 'bad_index';
        if (idx <= STATIC_COUNT) sink(STATIC[idx][0], STATIC[idx][1]);
        else {
          const i = this.names.length - (idx - STATIC_COUNT);
          if (i < this.first) return 'bad_index';
          sink(this.names[i], this.values[i]);
        }
        fieldSeen = true;
      } else if ((b & 0xe0) === 0x20) {
        // dynamic table size update: only before the block's first field (RFC 7541 §4.2)
        if (fieldSeen) return 'size_update_position';
        const n = this.int(buf, p, end, 5);
        if (n < 0) return n === -1 ? 'truncated' : 'integer_overflow';
        p = this.pos;
        if (n > this.cap) return 'table_size_cap';
        if (n > this.allowed) this.overSettings++;
        this.maxSize = n;
        this.evict(0);
      } else {
        // a literal: with incremental indexing (01), without (0000) or never indexed (0001)
        const incremental = (b & 0xc0) === 0x40;
        const idx = this.int(buf, p, end, incremental ? 6 : 4);
        if (idx < 0) return idx === -1 ? 'truncated' : 'integer_overflow';
        p = this.pos;
        let name: string;
        if (idx === 0) {
          const s = this.string(buf, p, end);
          if (s === null) return this.stringError;
          name = s;
          p = this.pos;
        } else if (idx <= STATIC_COUNT) name = STATIC[idx][0];
        else {
          const i = this.names.length - (idx - STATIC_COUNT);
          if (i < this.first) return 'bad_index';
          name = this.names[i];
        }
        const value = this.string(buf, p, end);
        if (value === null) return this.stringError;
        p = this.pos;
        if (incremental) this.insert(name, value);
        sink(name, value);
        fieldSeen = true;
      }
    }
    return null;
  }

  private stringError: HpackError = 'truncated';

  /** an integer with an n-bit prefix at buf[p]; its end in this.pos. -1: truncated, -2: too large */
  private int(buf: Buffer, p: number, end: number, n: number): number {
    const mask = (1 << n) - 1;
    let v = buf[p++] & mask;
    if (v < mask) {
      this.pos = p;
      return v;
    }
    let shift = 0;
    for (;;) {
      if (p >= end) return -1;
      const b = buf[p++];
      // 2^28 and more: no header block field or table is that large
      if (shift > 21) return -2;
      v += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) break;
    }
    this.pos = p;
    return v;
  }

  /** a string literal at buf[p]; its end in this.pos; null on an error (in this.stringError) */
  private string(buf: Buffer, p: number, end: number): string | null {
    if (p >= end) {
      this.stringError = 'truncated';
      return null;
    }
    const huffman = (buf[p] & 0x80) !== 0;
    const len = this.int(buf, p, end, 7);
    if (len < 0) {
      this.stringError = len === -1 ? 'truncated' : 'integer_overflow';
      return null;
    }
    p = this.pos;
    if (end - p < len) {
      this.stringError = 'truncated';
      return null;
    }
    this.pos = p + len;
    if (!huffman) return buf.toString('latin1', p, p + len);
    const s = this.huffman(buf, p, p + len);
    if (s === null) this.stringError = 'bad_huffman';
    this.pos = p + len;
    return s;
  }

  /** Huffman-coded octets buf[p, end) → text; null when they are not a valid code (EOS inside, bad padding) */
  private huffman(buf: Buffer, p: number, end: number): string | null {
    // at most 8/5 output octets per input octet (the shortest code is 5 bits)
    const need = Math.ceil(((end - p) * 8) / 5);
    if (this.scratch.length < need) this.scratch = Buffer.allocUnsafe(Math.max(need, this.scratch.length * 2));
    const out = this.scratch;
    let o = 0;
    let node = 0;
    /** bits read since the last symbol, and whether they were all ones (the padding must be: RFC 7541 §5.2) */
    let pending = 0;
    let ones = true;
    for (let i = p; i < end; i++) {
      const byte = buf[i];
      for (let bit = 7; bit >= 0; bit--) {
        const b = (byte >>> bit) & 1;
        const next = TREE[2 * node + b];
        if (next < 0) {
          const sym = -next - 1;
          if (sym === 256) return null;
          out[o++] = sym;
          node = 0;
          pending = 0;
          ones = true;
        } else {
          node = next;
          pending++;
          if (b === 0) ones = false;
        }
      }
    }
    if (pending > 7 || !ones) return null;
    return out.toString('latin1', 0, o);
  }

  private insert(name: string, value: string): void {
    const size = entrySize(name, value);
    // an entry larger than the table empties it and is not added (RFC 7541 §4.4)
    this.evict(size);
    if (size > this.maxSize) return;
    this.names.push(name);
    this.values.push(value);
    this.size += size;
  }

  /** evict the oldest entries until `room` more octets fit under maxSize */
  private evict(room: number): void {
    while (this.size + room > this.maxSize && this.first < this.names.length) {
      this.size -= entrySize(this.names[this.first], this.values[this.first]);
      this.first++;
    }
    if (this.first === this.names.length) {
      this.names = [];
      this.values = [];
      this.first = 0;
      this.size = 0;
    } else if (this.first > 64 && this.first * 2 > this.names.length) {
      this.names = this.names.slice(this.first);
      this.values = this.values.slice(this.first);
      this.first = 0;
    }
  }

  /** the dynamic table, newest first (for tests) */
  entries(): [string, string][] {
    const out: [string, string][] = [];
    for (let i = this.names.length - 1; i >= this.first; i--) out.push([this.names[i], this.values[i]]);
    return out;
  }
}
