/// <reference path="../../types/lz4js.d.ts" />
/**
 * CQL native protocol constants and the byte-level pieces of its framing: v5's
 * header CRC24 and payload CRC32, and the two body compressions (LZ4 and Snappy).
 */
import { crc32 as zlibCrc32 } from 'node:zlib';
import lz4 from 'lz4js';
import { snappyLength, snappyUncompress } from '../snappy';

/** opcodes by number; a request opcode is never a response opcode */
export const OPCODES: readonly string[] = [
  'ERROR', 'STARTUP', 'READY', 'AUTHENTICATE', 'UNKNOWN_OP_4', 'OPTIONS', 'SUPPORTED', 'QUERY',
  'RESULT', 'PREPARE', 'EXECUTE', 'REGISTER', 'EVENT', 'BATCH', 'AUTH_CHALLENGE', 'AUTH_RESPONSE', 'AUTH_SUCCESS',
];

export const Op = {
  ERROR: 0x00, STARTUP: 0x01, READY: 0x02, AUTHENTICATE: 0x03, OPTIONS: 0x05, SUPPORTED: 0x06, QUERY: 0x07, RESULT: 0x08,
  PREPARE: 0x09, EXECUTE: 0x0a, REGISTER: 0x0b, EVENT: 0x0c, BATCH: 0x0d, AUTH_CHALLENGE: 0x0e, AUTH_RESPONSE: 0x0f, AUTH_SUCCESS: 0x10,
} as const;

/** bit i set: opcode i is a request (client → server) */
export const REQUEST_OPS = (1 << Op.STARTUP) | (1 << Op.OPTIONS) | (1 << Op.QUERY) | (1 << Op.PREPARE) | (1 << Op.EXECUTE) | (1 << Op.REGISTER) | (1 << Op.BATCH) | (1 << Op.AUTH_RESPONSE);
/** bit i set: opcode i is a response or a server push */
export const RESPONSE_OPS = (1 << Op.ERROR) | (1 << Op.READY) | (1 << Op.AUTHENTICATE) | (1 << Op.SUPPORTED) | (1 << Op.RESULT) | (1 << Op.EVENT) | (1 << Op.AUTH_CHALLENGE) | (1 << Op.AUTH_SUCCESS);

export const Flag = { COMPRESSION: 0x01, TRACING: 0x02, CUSTOM_PAYLOAD: 0x04, WARNING: 0x08, USE_BETA: 0x10 } as const;
/** the header flags any version defines */
export const KNOWN_FLAGS = 0x1f;

/** packetbeat's names for the header flags; several at once are joined with `|` */
const FLAG_NAMES = ['Compress', 'Tracing', 'CustomPayload', 'Warning', 'UseBeta'];

export function flagsName(f: number): string {
  if (f === 0) return 'Default';
  let s = '';
  for (let i = 0; i < 8; i++) {
    if ((f & (1 << i)) === 0) continue;
    const name = FLAG_NAMES[i] ?? `UnknownFlag_${1 << i}`;
    s = s === '' ? name : `${s}|${name}`;
  }
  return s;
}

export function opName(op: number): string {
  return OPCODES[op] ?? `UNKNOWN_OP_${op}`;
}

export const CONSISTENCY: readonly string[] = ['ANY', 'ONE', 'TWO', 'THREE', 'QUORUM', 'ALL', 'LOCAL_QUORUM', 'EACH_QUORUM', 'SERIAL', 'LOCAL_SERIAL', 'LOCAL_ONE'];

export function consistencyName(c: number): string {
  return CONSISTENCY[c] ?? `UNKNOWN_CONS_0x${c.toString(16)}`;
}

/**
 * Versions whose envelopes are read: 3, 4, 5, and DataStax Enterprise's DSE_V1 (0x41,
 * laid out as v4) and DSE_V2 (0x42, as v5 without its frames), which the DataStax
 * drivers try first and Cassandra answers with a protocol error.
 */
export function knownVersion(v: number): boolean {
  return (v >= 3 && v <= 5) || v === 0x41 || v === 0x42;
}

/** the version whose body layout a version's messages have */
export function bodyVersion(v: number): number {
  return v === 0x41 ? 4 : v === 0x42 ? 5 : v;
}

/** the envelope header: version, flags, stream, opcode, body length */
export const HEADER_BYTES = 9;
/** the protocol's own ceiling on a body (256 MiB) */
export const MAX_BODY = 256 * 1024 * 1024;
/** v5 frames: payloads up to 2^17 − 1 bytes */
export const MAX_SEGMENT_PAYLOAD = 0x1ffff;

// --- v5 framing checksums ---------------------------------------------------------------

const CRC24_INIT = 0x875060;
const CRC24_POLY = 0x1974f0b;

/**
 * CRC24 of a v5 frame header's first `n` bytes (3 uncompressed, 5 with LZ4), as
 * Cassandra computes it: the bytes taken least significant first, MSB-first
 * shifting, Koopman's polynomial 0x1974F0B. No table: it runs over 3–5 bytes.
 */
export function crc24(buf: Buffer, off: number, n: number): number {
  let crc = CRC24_INIT;
  for (let i = 0; i < n; i++) {
    crc ^= buf[off + i] << 16;
    for (let b = 0; b < 8; b++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= CRC24_POLY;
    }
  }
  return crc & 0xffffff;
}

/** the four bytes Cassandra primes a v5 payload's CRC32 with */
const CRC32_PRIMER = Buffer.from([0xfa, 0x2d, 0x55, 0xca]);
const PRIMED = crc32Of(CRC32_PRIMER, 0, 4, 0);

let table: Uint32Array | null = null;

/** zlib's CRC32, continued from `crc`; Node's own when it has one (20.15 and later) */
function crc32Of(buf: Buffer, off: number, len: number, crc: number): number {
  if (typeof zlibCrc32 === 'function') return zlibCrc32(off === 0 && len === buf.length ? buf : buf.subarray(off, off + len), crc);
  if (table === null) {
    table = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[i] = c >>> 0;
    }
  }
  let c = ~crc >>> 0;
  for (let i = off; i < off + len; i++) c = table[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** the CRC32 a v5 frame carries after its payload */
export function payloadCrc32(buf: Buffer, off: number, len: number): number {
  return crc32Of(buf, off, len, PRIMED) >>> 0;
}

// --- compression --------------------------------------------------------------------------

export type Compression = 'lz4' | 'snappy';

/**
 * An LZ4 block into exactly `size` bytes, or null when the input is not one.
 * lz4js writes past neither array (a typed array drops such writes) and stops at
 * the input's end; what it returns is checked against the size the sender declared.
 */
export function lz4Block(buf: Buffer, off: number, len: number, size: number): Buffer | null {
  const out = Buffer.allocUnsafe(size);
  if (size === 0) return len === 1 && buf[off] === 0 ? out : null;
  let n: number;
  try {
    n = lz4.decompressBlock(buf, out, off, len, 0);
  } catch {
    return null;
  }
  return n === size ? out : null;
}

/** a v3/v4 body compressed with LZ4: its uncompressed size ([int]) then the block */
export function lz4Body(buf: Buffer, off: number, len: number, max: number): Buffer | null {
  if (len < 4) return null;
  const size = buf.readUInt32BE(off);
  if (size > max) return null;
  return lz4Block(buf, off + 4, len - 4, size);
}

/** the uncompressed size a compressed body declares, -1 when it declares none */
export function declaredSize(c: Compression, buf: Buffer, off: number, len: number): number {
  if (c === 'lz4') return len >= 4 ? buf.readUInt32BE(off) : -1;
  return snappyLength(buf, off, len)?.[0] ?? -1;
}

export function decompress(c: Compression, buf: Buffer, off: number, len: number, max: number): Buffer | null {
  return c === 'lz4' ? lz4Body(buf, off, len, max) : snappyUncompress(buf, off, len, max);
}
