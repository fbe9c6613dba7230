/**
 * BSON (bsonspec.org 1.1) as the MongoDB analyzer needs it, in two halves:
 *
 * - a scanner over (buf, offset) that allocates nothing: a structural check of a
 *   whole document (every length inside its parent, every type known, nesting
 *   bounded), and look-ups of top-level fields, so a reply's `ok`, `errmsg` or
 *   `cursor.id` is read without decoding its documents;
 * - rendering to JSON through the `bson` package (MongoDB's own library), only for
 *   documents the event shows, and only after the scanner has passed them: the
 *   library recurses once per nesting level and reads what the lengths say, so it
 *   gets nothing deeper than `maxDepth` or longer than its buffer.
 *
 * Every reader takes the end of the bytes it may read and answers -1 (or an empty
 * reason) instead of throwing.
 */
import { BSON, EJSON, type Document } from 'bson';

export const enum BsonType {
  double = 0x01,
  string = 0x02,
  document = 0x03,
  array = 0x04,
  binary = 0x05,
  undefined = 0x06,
  objectId = 0x07,
  boolean = 0x08,
  date = 0x09,
  null = 0x0a,
  regex = 0x0b,
  dbPointer = 0x0c,
  code = 0x0d,
  symbol = 0x0e,
  codeWithScope = 0x0f,
  int32 = 0x10,
  timestamp = 0x11,
  int64 = 0x12,
  decimal128 = 0x13,
  minKey = 0xff,
  maxKey = 0x7f,
}

/** the length of the document at off (at least 5, inside end, ending in its NUL), else -1 */
export function docLength(b: Buffer, off: number, end: number): number {
  if (off < 0 || end - off < 5) return -1;
  const n = b.readInt32LE(off);
  if (n < 5 || n > end - off || b[off + n - 1] !== 0) return -1;
  return n;
}

/** the end of the NUL-terminated string starting at off (the NUL's offset), else -1 */
export function cstringEnd(b: Buffer, off: number, end: number): number {
  for (let i = off; i < end; i++) if (b[i] === 0) return i;
  return -1;
}

/** a length-prefixed string value at off: its byte size with the prefix, else -1 */
function stringSize(b: Buffer, off: number, end: number): number {
  if (end - off < 5) return -1;
  const n = b.readInt32LE(off);
  if (n < 1 || n > end - off - 4 || b[off + 4 + n - 1] !== 0) return -1;
  return 4 + n;
}

/**
 * The byte size of a value of `type` at off, inside end, for the types that hold no
 * nested document (documents, arrays and code with scope are the callers'); -1 when
 * it does not fit or the type is unknown.
 */
function scalarSize(b: Buffer, type: number, off: number, end: number): number {
  let n: number;
  switch (type) {
    case BsonType.double:
    case BsonType.date:
    case BsonType.timestamp:
    case BsonType.int64:
      n = 8;
      break;
    case BsonType.int32:
      n = 4;
      break;
    case BsonType.decimal128:
      n = 16;
      break;
    case BsonType.objectId:
      n = 12;
      break;
    case BsonType.boolean:
      n = 1;
      break;
    case BsonType.undefined:
    case BsonType.null:
    case BsonType.minKey:
    case BsonType.maxKey:
      n = 0;
      break;
    case BsonType.string:
    case BsonType.code:
    case BsonType.symbol:
      return stringSize(b, off, end);
    case BsonType.binary: {
      if (end - off < 5) return -1;
      const len = b.readInt32LE(off);
      if (len < 0 || len > end - off - 5) return -1;
      return 5 + len;
    }
    case BsonType.regex: {
      const p = cstringEnd(b, off, end);
      if (p < 0) return -1;
      const f = cstringEnd(b, p + 1, end);
      return f < 0 ? -1 : f + 1 - off;
    }
    case BsonType.dbPointer: {
      const s = stringSize(b, off, end);
      return s < 0 || s + 12 > end - off ? -1 : s + 12;
    }
    default:
      return -1;
  }
  return n <= end - off ? n : -1;
}

/** the byte size of any value at off (nested documents by their length, unchecked inside), else -1 */
export function valueSize(b: Buffer, type: number, off: number, end: number): number {
  if (type === BsonType.document || type === BsonType.array) return docLength(b, off, end);
  if (type === BsonType.codeWithScope) {
    if (end - off < 14) return -1;
    const n = b.readInt32LE(off);
    return n >= 14 && n <= end - off ? n : -1;
  }
  return scalarSize(b, type, off, end);
}

/**
 * Checks the document at off: its length and every nested one inside their parents,
 * every element's type and size, every key terminated, nesting at most maxDepth
 * documents (the outermost is depth 1). Iterative: `stack` holds the end of each open
 * document (length > maxDepth). '' when sound; 'too_deep' when sound down to maxDepth
 * with deeper documents skipped by their lengths (its top-level fields can be read,
 * it cannot be decoded); else what is wrong.
 */
export function checkDocument(b: Buffer, off: number, end: number, maxDepth: number, stack: Int32Array): string {
  const n = docLength(b, off, end);
  if (n < 0) return 'bad_document_length';
  let depth = 0;
  let deep = false;
  stack[0] = off + n;
  let p = off + 4;
  for (;;) {
    const docEnd = stack[depth];
    if (p === docEnd - 1) {
      // the document's terminating NUL (docLength and the nested checks guarantee it)
      p = docEnd;
      if (--depth < 0) return deep ? 'too_deep' : '';
      continue;
    }
    const type = b[p];
    const key = cstringEnd(b, p + 1, docEnd - 1);
    if (key < 0) return 'bad_element_name';
    p = key + 1;
    if (type === BsonType.document || type === BsonType.array) {
      const len = docLength(b, p, docEnd - 1);
      if (len < 0) return 'bad_document_length';
      if (depth + 2 > maxDepth) {
        deep = true;
        p += len;
        continue;
      }
      stack[++depth] = p + len;
      p += 4;
      continue;
    }
    if (type === BsonType.codeWithScope) {
      // int32 total, string, scope document: the scope ends where the total says
      if (docEnd - 1 - p < 14) return 'bad_element';
      const total = b.readInt32LE(p);
      if (total < 14 || total > docEnd - 1 - p) return 'bad_element';
      const s = stringSize(b, p + 4, p + total);
      if (s < 0) return 'bad_element';
      const scope = p + 4 + s;
      if (docLength(b, scope, p + total) !== p + total - scope) return 'bad_element';
      if (depth + 2 > maxDepth) {
        deep = true;
        p += total;
        continue;
      }
      stack[++depth] = p + total;
      p = scope + 4;
      continue;
    }
    const size = scalarSize(b, type, p, docEnd - 1);
    if (size < 0) return type === 0 || !knownType(type) ? 'bad_element_type' : 'bad_element';
    p += size;
  }
}

function knownType(t: number): boolean {
  return (t >= BsonType.double && t <= BsonType.decimal128) || t === BsonType.minKey || t === BsonType.maxKey;
}

/** One element found by `findField`: its type and where its value starts (-1: absent). */
export class FieldRef {
  type = 0;
  off = -1;
}

/**
 * Looks up a top-level field of the document at off (its length already checked
 * against the buffer) by its name as ASCII bytes. `out.off` is -1 when the field is
 * absent or the document is damaged before it.
 */
export function findField(b: Buffer, off: number, name: Buffer, out: FieldRef): FieldRef {
  out.off = -1;
  const docEnd = off + b.readInt32LE(off) - 1;
  let p = off + 4;
  while (p < docEnd) {
    const type = b[p];
    const key = cstringEnd(b, p + 1, docEnd);
    if (key < 0) return out;
    const v = key + 1;
    if (key - p - 1 === name.length && b.compare(name, 0, name.length, p + 1, key) === 0) {
      out.type = type;
      out.off = v;
      return out;
    }
    const size = valueSize(b, type, v, docEnd);
    if (size < 0) return out;
    p = v + size;
  }
  return out;
}

/** the first element of the document at off: its type, value offset, and the key's end in `keyEnd` */
export function firstField(b: Buffer, off: number, out: FieldRef): FieldRef {
  out.off = -1;
  const docEnd = off + b.readInt32LE(off) - 1;
  if (off + 4 >= docEnd) return out;
  const key = cstringEnd(b, off + 5, docEnd);
  if (key < 0) return out;
  out.type = b[off + 4];
  out.off = key + 1;
  return out;
}

/** a numeric value (double, int32, int64, boolean) as a number; NaN for other types */
export function numberValue(b: Buffer, type: number, off: number): number {
  switch (type) {
    case BsonType.double:
      return b.readDoubleLE(off);
    case BsonType.int32:
      return b.readInt32LE(off);
    case BsonType.int64:
      return Number(b.readBigInt64LE(off));
    case BsonType.boolean:
      return b[off] !== 0 ? 1 : 0;
    default:
      return NaN;
  }
}

/** a string value (its length already checked by the scanner), or '' for other types */
export function stringValue(b: Buffer, type: number, off: number): string {
  if (type !== BsonType.string && type !== BsonType.symbol) return '';
  const n = b.readInt32LE(off);
  return b.toString('utf8', off + 4, off + 4 + n - 1);
}

/** an int64 (a cursor id) in decimal, exactly; also int32 and integral doubles; '' otherwise */
export function int64String(b: Buffer, type: number, off: number): string {
  if (type === BsonType.int64) return b.readBigInt64LE(off).toString();
  if (type === BsonType.int32) return String(b.readInt32LE(off));
  if (type === BsonType.double) {
    const d = b.readDoubleLE(off);
    return Number.isSafeInteger(d) ? String(d) : '';
  }
  return '';
}

/** the number of elements of the document or array at off */
export function countElements(b: Buffer, off: number): number {
  const docEnd = off + b.readInt32LE(off) - 1;
  let p = off + 4;
  let n = 0;
  while (p < docEnd) {
    const key = cstringEnd(b, p + 1, docEnd);
    if (key < 0) break;
    const size = valueSize(b, b[p], key + 1, docEnd);
    if (size < 0) break;
    n++;
    p = key + 1 + size;
  }
  return n;
}

/**
 * Calls `each(valueOffset)` for every embedded document of the array at off, up to
 * `max` of them; answers how many documents the array holds in all.
 */
export function eachDocument(b: Buffer, off: number, max: number, each: (valueOff: number) => void): number {
  const docEnd = off + b.readInt32LE(off) - 1;
  let p = off + 4;
  let n = 0;
  while (p < docEnd) {
    const type = b[p];
    const key = cstringEnd(b, p + 1, docEnd);
    if (key < 0) break;
    const v = key + 1;
    const size = valueSize(b, type, v, docEnd);
    if (size < 0) break;
    if (type === BsonType.document) {
      if (n < max) each(v);
      n++;
    }
    p = v + size;
  }
  return n;
}

const DESERIALIZE = { validation: { utf8: false as const }, bsonRegExp: true, promoteBuffers: false };

/**
 * The document at off as a plain object through the `bson` package, or null when
 * the scanner finds it unsound (the reason in `why[0]`). Strings that are not UTF-8
 * become U+FFFD; regular expressions stay BSON values (a JavaScript RegExp would
 * throw on flags it does not know).
 */
export function decode(b: Buffer, off: number, end: number, maxDepth: number, stack: Int32Array, why: string[]): Document | null {
  const reason = checkDocument(b, off, end, maxDepth, stack);
  if (reason !== '') {
    why[0] = reason;
    return null;
  }
  return decodeChecked(b, off, why);
}

/** as `decode`, for a document `checkDocument` has passed */
export function decodeChecked(b: Buffer, off: number, why: string[]): Document | null {
  try {
    return BSON.deserialize(b.subarray(off, off + b.readInt32LE(off)), DESERIALIZE);
  } catch {
    // what the scanner does not check (a boolean byte other than 0 or 1, a binary of subtype 2 whose lengths disagree)
    why[0] = 'bad_element';
    return null;
  }
}

/** a value as MongoDB Extended JSON (relaxed), cut at maxLength characters (then " ..." as packetbeat) */
export function toJson(value: unknown, maxLength: number): string {
  const s = EJSON.stringify(value, { relaxed: true });
  return s.length > maxLength ? `${s.slice(0, maxLength)} ...` : s;
}
