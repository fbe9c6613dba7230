/**
 * CQL native protocol messages built byte by byte (v3, v4, v5): envelopes, v5
 * frames with their CRCs, compressed bodies, and the request bodies a client sends.
 * Used by the edge-case generator (test/gen/cassandra.ts) and by the raw client the
 * fixtures and the live test drive Cassandra with (test/cql-client.ts), for what the
 * npm driver does not produce (v5, compression, v3 edge cases).
 */
import snappy from 'snappyjs';
import { crc24, MAX_SEGMENT_PAYLOAD, Op, payloadCrc32, type Compression } from '../../src/protocols/cassandra/wire';

export { Op };

const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
const i32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

export const enc = {
  byte: (n: number) => Buffer.from([n]),
  short: u16,
  int: i32,
  long: (n: bigint) => {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(n);
    return b;
  },
  string: (s: string) => Buffer.concat([u16(Buffer.byteLength(s)), Buffer.from(s)]),
  longString: (s: string) => Buffer.concat([i32(Buffer.byteLength(s)), Buffer.from(s)]),
  stringList: (l: string[]) => Buffer.concat([u16(l.length), ...l.map((s) => enc.string(s))]),
  stringMap: (m: Record<string, string>) => Buffer.concat([u16(Object.keys(m).length), ...Object.entries(m).flatMap(([k, v]) => [enc.string(k), enc.string(v)])]),
  stringMultimap: (m: Record<string, string[]>) => Buffer.concat([u16(Object.keys(m).length), ...Object.entries(m).flatMap(([k, v]) => [enc.string(k), enc.stringList(v)])]),
  /** [bytes]; null is length −1 */
  bytes: (b: Buffer | null) => (b === null ? i32(-1) : Buffer.concat([i32(b.length), b])),
  shortBytes: (b: Buffer) => Buffer.concat([u16(b.length), b]),
  inet: (ip: number[], port: number) => Buffer.concat([Buffer.from([ip.length, ...ip]), i32(port)]),
};

/** one envelope (a frame before v5): 9-byte header and body */
export function envelope(version: number, flags: number, stream: number, op: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h[0] = version;
  h[1] = flags;
  h.writeInt16BE(stream, 2);
  h[4] = op;
  h.writeUInt32BE(body.length, 5);
  return Buffer.concat([h, body]);
}

/**
 * An LZ4 block of `src`: a greedy compressor that keeps the format's end rules (the
 * last match starts 12 bytes or more before the end, the last 5 bytes are literals),
 * which Cassandra's decompressor holds senders to.
 */
export function lz4Block(src: Buffer): Buffer {
  const n = src.length;
  const out: number[] = [];
  const length = (v: number) => {
    for (; v >= 255; v -= 255) out.push(255);
    out.push(v);
  };
  const sequence = (litFrom: number, litTo: number, offset: number, matchLen: number) => {
    const lit = litTo - litFrom;
    const m = matchLen - 4;
    out.push((Math.min(lit, 15) << 4) | (offset === 0 ? 0 : Math.min(m, 15)));
    if (lit >= 15) length(lit - 15);
    for (let i = litFrom; i < litTo; i++) out.push(src[i]);
    if (offset === 0) return;
    out.push(offset & 0xff, offset >> 8);
    if (m >= 15) length(m - 15);
  };
  const table = new Map<number, number>();
  let anchor = 0;
  let i = 0;
  while (i + 12 <= n) {
    const word = src.readUInt32LE(i);
    const ref = table.get(word);
    table.set(word, i);
    if (ref !== undefined && i - ref < 65536) {
      let len = 4;
      while (i + len < n - 5 && src[ref + len] === src[i + len]) len++;
      sequence(anchor, i, i - ref, len);
      i += len;
      anchor = i;
    } else i++;
  }
  sequence(anchor, n, 0, 0);
  return Buffer.from(out);
}

/** a v3/v4 compressed body */
export function compressBody(c: Compression, body: Buffer): Buffer {
  if (c === 'snappy') return Buffer.from(snappy.compress(body));
  return Buffer.concat([i32(body.length), lz4Block(body)]);
}

/**
 * One v5 frame: header (payload length, self-contained flag; with LZ4 also the
 * uncompressed length, 0 when sent as is) with its CRC24, the payload, its CRC32.
 */
export function segment(payload: Buffer, selfContained: boolean, lz4Compressed = false): Buffer {
  if (!lz4Compressed) {
    const h = Buffer.alloc(6);
    const v = payload.length | (selfContained ? 1 << 17 : 0);
    h[0] = v & 0xff;
    h[1] = (v >>> 8) & 0xff;
    h[2] = (v >>> 16) & 0xff;
    h.writeUIntLE(crc24(h, 0, 3), 3, 3);
    return Buffer.concat([h, payload, crcTrailer(payload)]);
  }
  let body = lz4Block(payload);
  let uncompressed = payload.length;
  if (body.length >= payload.length) {
    body = payload;
    uncompressed = 0;
  }
  const h = Buffer.alloc(8);
  // 17 bits compressed length, 17 bits uncompressed length, the flag: 35 bits, little-endian
  const v = BigInt(body.length) | (BigInt(uncompressed) << 17n) | (selfContained ? 1n << 34n : 0n);
  for (let i = 0; i < 5; i++) h[i] = Number((v >> BigInt(8 * i)) & 0xffn);
  h.writeUIntLE(crc24(h, 0, 5), 5, 3);
  return Buffer.concat([h, body, crcTrailer(body)]);
}

function crcTrailer(b: Buffer): Buffer {
  const t = Buffer.alloc(4);
  t.writeUInt32LE(payloadCrc32(b, 0, b.length));
  return t;
}

/**
 * Envelopes in v5 frames as Cassandra packs them: small ones together in
 * self-contained frames, one larger than a frame split over frames that are not.
 */
export function segments(envelopes: Buffer[], lz4Compressed = false, maxPayload = MAX_SEGMENT_PAYLOAD): Buffer[] {
  const out: Buffer[] = [];
  let pending: Buffer[] = [];
  let size = 0;
  const flush = () => {
    if (pending.length > 0) out.push(segment(Buffer.concat(pending), true, lz4Compressed));
    pending = [];
    size = 0;
  };
  for (const e of envelopes) {
    if (e.length > maxPayload) {
      flush();
      for (let o = 0; o < e.length; o += maxPayload) out.push(segment(e.subarray(o, o + maxPayload), false, lz4Compressed));
      continue;
    }
    if (size + e.length > maxPayload) flush();
    pending.push(e);
    size += e.length;
  }
  flush();
  return out;
}

// --- request bodies ------------------------------------------------------------------------

export const Consistency = { ANY: 0, ONE: 1, QUORUM: 4, ALL: 5, LOCAL_ONE: 10, SERIAL: 8 } as const;

export interface QueryParams {
  consistency?: number;
  values?: (Buffer | null)[];
  pageSize?: number;
  pagingState?: Buffer;
  skipMetadata?: boolean;
}

/** <consistency><flags>[values][page size][paging state]: flags are a byte before v5, an int in v5 */
export function queryParams(version: number, p: QueryParams = {}): Buffer {
  let flags = 0;
  const rest: Buffer[] = [];
  if (p.values !== undefined && p.values.length > 0) {
    flags |= 0x01;
    rest.push(u16(p.values.length), ...p.values.map((v) => enc.bytes(v)));
  }
  if (p.skipMetadata) flags |= 0x02;
  if (p.pageSize !== undefined) {
    flags |= 0x04;
    rest.push(i32(p.pageSize));
  }
  if (p.pagingState !== undefined) {
    flags |= 0x08;
    rest.push(enc.bytes(p.pagingState));
  }
  return Buffer.concat([u16(p.consistency ?? Consistency.ONE), version >= 5 ? i32(flags) : Buffer.from([flags]), ...rest]);
}

export function queryBody(version: number, cql: string, p: QueryParams = {}): Buffer {
  return Buffer.concat([enc.longString(cql), queryParams(version, p)]);
}

export function prepareBody(version: number, cql: string): Buffer {
  return version >= 5 ? Buffer.concat([enc.longString(cql), i32(0)]) : enc.longString(cql);
}

/** v5 sends the result metadata id the PREPARE result gave */
export function executeBody(version: number, id: Buffer, p: QueryParams = {}, resultMetadataId?: Buffer): Buffer {
  return Buffer.concat([enc.shortBytes(id), ...(version >= 5 ? [enc.shortBytes(resultMetadataId ?? Buffer.alloc(0))] : []), queryParams(version, p)]);
}

export type BatchStatement = { cql: string; values?: (Buffer | null)[] } | { id: Buffer; values?: (Buffer | null)[] };

/** type 0 LOGGED, 1 UNLOGGED, 2 COUNTER */
export function batchBody(version: number, type: number, statements: BatchStatement[], consistency: number = Consistency.ONE): Buffer {
  const parts: Buffer[] = [Buffer.from([type]), u16(statements.length)];
  for (const s of statements) {
    parts.push('cql' in s ? Buffer.concat([Buffer.from([0]), enc.longString(s.cql)]) : Buffer.concat([Buffer.from([1]), enc.shortBytes(s.id)]));
    const v = s.values ?? [];
    parts.push(u16(v.length), ...v.map((x) => enc.bytes(x)));
  }
  parts.push(u16(consistency), version >= 5 ? i32(0) : Buffer.from([0]));
  return Buffer.concat(parts);
}

/** SASL PLAIN for Cassandra's PasswordAuthenticator */
export function plainAuth(user: string, pass: string): Buffer {
  return enc.bytes(Buffer.concat([Buffer.from([0]), Buffer.from(user), Buffer.from([0]), Buffer.from(pass)]));
}
