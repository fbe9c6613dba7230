/**
 * Is this the first payload of a CQL connection? An envelope header of the right
 * direction (version 3–5, known flags, an opcode this side sends, a sane length)
 * whose body begins as that opcode's body does, or a v5 frame header whose CRC24
 * holds. Text protocols (HTTP, Redis, memcached's text form) start with printable
 * bytes, which no version byte is; binary ones (PostgreSQL, MySQL, MongoDB,
 * memcached's binary form) fail the header's or the body's checks.
 */
import { errorTypeName } from './body';
import { frameHeaderOk } from './stream';
import { Flag, KNOWN_FLAGS, knownVersion, Op, REQUEST_OPS, RESPONSE_OPS } from './wire';

export function looksLikeCql(buf: Buffer, off: number, len: number, side: number): boolean {
  if (len >= 9 && envelopeAt(buf, off, len, side, 0)) {
    // when the chunk holds the next header too, it must fit as well
    const next = off + 9 + buf.readUInt32BE(off + 5);
    if (next + 9 <= off + len) return envelopeAt(buf, next, off + len - next, side, buf[off] & 0x7f);
    return true;
  }
  // a connection first seen after the v5 handshake: a frame (carrying an envelope when uncompressed)
  for (const hl of [6, 8]) {
    if (len < hl || !frameHeaderOk(buf, off, hl)) continue;
    const plen = buf.readUInt32LE(off) & 0x1ffff;
    if (plen === 0 || (hl === 6 && (len < 6 + 9 || !envelopeAt(buf, off + 6, len - 6, side, 5)))) continue;
    // the next frame's header, when in sight, must hold too
    const next = off + hl + plen + 4;
    return next + hl > off + len || frameHeaderOk(buf, next, hl);
  }
  return false;
}

/** an envelope header at b[o] of this side's direction (`version` 0: any of 3–5) whose body looks right */
function envelopeAt(b: Buffer, o: number, len: number, side: number, version: number): boolean {
  if (len < 9) return false;
  const v = b[o];
  if ((v & 0x80) !== (side === 0 ? 0 : 0x80)) return false;
  const ver = v & 0x7f;
  if (!knownVersion(ver) || (version !== 0 && ver !== version)) return false;
  const flags = b[o + 1];
  if ((flags & ~KNOWN_FLAGS) !== 0) return false;
  const stream = b.readInt16BE(o + 2);
  const op = b[o + 4];
  if (op > 16 || ((side === 0 ? REQUEST_OPS : RESPONSE_OPS) & (1 << op)) === 0) return false;
  if (side === 0 && stream < 0) return false;
  const length = b.readUInt32BE(o + 5);
  if (length > 256 * 1024 * 1024) return false;
  // a compressed body, or one with a prefix (tracing id, warnings, custom payload), is not looked into
  if (flags & (Flag.COMPRESSION | Flag.TRACING | Flag.WARNING | Flag.CUSTOM_PAYLOAD)) return false;
  return bodyFits(b, o + 9, Math.min(len - 9, length), length, op, stream);
}

const isUpperWord = (c: number) => (c >= 0x41 && c <= 0x5a) || c === 0x5f || (c >= 0x30 && c <= 0x39);
const isText = (c: number) => (c >= 0x20 && c < 0x7f) || c === 0x09 || c === 0x0a || c === 0x0d || c >= 0x80;

/** the first `avail` bytes of a `length`-byte body of opcode `op` */
function bodyFits(b: Buffer, o: number, avail: number, length: number, op: number, stream: number): boolean {
  switch (op) {
    case Op.OPTIONS:
    case Op.READY:
      return length === 0;
    case Op.STARTUP:
    case Op.SUPPORTED: {
      // [string map] / [string multimap]: a few entries, keys in upper case ("CQL_VERSION")
      if (avail < 4) return false;
      const n = b.readUInt16BE(o);
      const k = b.readUInt16BE(o + 2);
      if (n === 0 || n > 64 || k === 0 || k > 64 || avail < 4 + k) return false;
      for (let i = 0; i < k; i++) if (!isUpperWord(b[o + 4 + i])) return false;
      return true;
    }
    case Op.QUERY:
    case Op.PREPARE: {
      // [long string] of text, then (QUERY) the consistency
      if (avail < 5) return false;
      const n = b.readInt32BE(o);
      if (n <= 0 || n + 4 > length) return false;
      for (let i = 0; i < Math.min(n, 8, avail - 4); i++) if (!isText(b[o + 4 + i])) return false;
      return true;
    }
    case Op.EXECUTE: {
      if (avail < 2) return false;
      const n = b.readUInt16BE(o);
      return n > 0 && n <= 64 && n + 2 < length;
    }
    case Op.BATCH:
      return avail >= 4 && b[o] <= 2 && b.readUInt16BE(o + 1) > 0 && (b[o + 3] === 0 || b[o + 3] === 1);
    case Op.REGISTER: {
      if (avail < 5) return false;
      const n = b.readUInt16BE(o);
      const k = b.readUInt16BE(o + 2);
      return n >= 1 && n <= 3 && k >= 13 && k <= 15 && isUpperWord(b[o + 4]);
    }
    case Op.AUTH_RESPONSE:
    case Op.AUTH_CHALLENGE:
    case Op.AUTH_SUCCESS: {
      // [bytes]: the token fills the body
      if (avail < 4) return false;
      const n = b.readInt32BE(o);
      return n === length - 4 || (n === -1 && length === 4);
    }
    case Op.AUTHENTICATE: {
      // the authenticator's class name
      if (avail < 3) return false;
      const n = b.readUInt16BE(o);
      return n > 0 && n + 2 === length && /[A-Za-z]/.test(String.fromCharCode(b[o + 2]));
    }
    case Op.RESULT:
      // the kind: void, rows, set_keyspace, prepared, schema_change
      return avail >= 4 && length >= 4 && b.readInt32BE(o) >= 1 && b.readInt32BE(o) <= 5 && (b.readInt32BE(o) !== 1 || length === 4);
    case Op.ERROR: {
      if (avail < 6) return false;
      const code = b.readInt32BE(o);
      return errorTypeName(code) !== 'ErrUnknown' && b.readUInt16BE(o + 4) + 6 <= length;
    }
    case Op.EVENT: {
      if (stream >= 0 || avail < 3) return false;
      const k = b.readUInt16BE(o);
      return k >= 13 && k <= 15 && isUpperWord(b[o + 2]);
    }
    default:
      return false;
  }
}
