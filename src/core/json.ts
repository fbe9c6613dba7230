/**
 * JSON text of events, written as UTF-8 straight into large output chunks: the bytes
 * `JSON.stringify` would give, with no string to build and encode afterwards, and less
 * garbage (docs/performance.md has the figures).
 *
 * How: events of one kind are built by the same code, so their objects come in a few
 * shapes (the same keys in the same order). Each place in an event (the top level of a
 * `type`, `http.request`, `http.request.headers`, ...) learns the shapes it meets, up to
 * MAX_SHAPES, and, once it has met LEARN_AFTER objects of no shape it knows (a short
 * run compiles nothing), compiles a writer for each: the key text as constant bytes, each value
 * written by the writer of its own type or place. An object is matched to a shape by its
 * keys (one `for...in` pass, compared to the shape's keys); an object that matches none,
 * at a place that has seen too many shapes (a map such as HTTP headers), or of a kind the
 * compiled writers do not cover (arrays' elements other than objects, `toJSON`, objects
 * that are not plain) is written by the general writer, which follows JSON.stringify's
 * rules field by field. Strings are copied byte by byte while they need no escape and are
 * ASCII; any other string is written from `JSON.stringify(s)` (escapes, non-ASCII, lone
 * surrogates exactly as it writes them).
 *
 * Output: `appendJson(v)` appends; `takeOutput()` returns the bytes appended since the
 * last take, a view of the current chunk that stays valid (chunks are never written
 * twice: a full one is left to the views given out and a new one started).
 */

const CHUNK = 1 << 20;
/** shapes compiled for one place before it is written by the general writer */
const MAX_SHAPES = 8;
/** objects a place writes with the general writer before it compiles shapes: a short run compiles none */
const LEARN_AFTER = 16;
/** places nested deeper than this are written by the general writer */
const MAX_DEPTH = 12;

interface Out {
  buf: Buffer;
  /** start of what has not been taken */
  start: number;
  pos: number;
}

const out: Out = { buf: Buffer.allocUnsafe(CHUNK), start: 0, pos: 0 };

/** room for n more bytes, keeping what is not yet taken contiguous */
function ensure(n: number): void {
  if (out.pos + n <= out.buf.length) return;
  const pending = out.pos - out.start;
  const next = Buffer.allocUnsafe(Math.max(CHUNK, 2 * (pending + n)));
  out.buf.copy(next, 0, out.start, out.pos);
  out.buf = next;
  out.start = 0;
  out.pos = pending;
}

/** The bytes appended since the last take. */
export function takeOutput(): Buffer {
  const b = out.buf.subarray(out.start, out.pos);
  out.start = out.pos;
  return b;
}

/** bytes appended and not yet taken */
export function pendingBytes(): number {
  return out.pos - out.start;
}

export function appendByte(c: number): void {
  ensure(1);
  out.buf[out.pos++] = c;
}

/** text of only the characters that need no escape in JSON, all ASCII (`null`, digits, constant keys) */
function writeAscii(s: string): void {
  const n = s.length;
  ensure(n);
  const b = out.buf;
  let p = out.pos;
  for (let i = 0; i < n; i++) b[p++] = s.charCodeAt(i);
  out.pos = p;
}

function writeUtf8(s: string): void {
  ensure(s.length * 3);
  out.pos += (out.buf as unknown as NativeWrites).utf8Write(s, out.pos);
}

/** Buffer's own writers, without Buffer.write's argument handling (Node has them on every Buffer) */
interface NativeWrites {
  latin1Write(s: string, offset: number, length: number): number;
  utf8Write(s: string, offset: number): number;
}

/** a character JSON escapes, or one past ASCII (written from JSON.stringify, which knows how) */
const SPECIAL = /[\u0000-\u001f"\\\u007f-\uffff]/;

function writeString(s: string): void {
  const n = s.length;
  if (n > 24) {
    // long strings: one native scan and one native copy beat a loop in JavaScript
    if (SPECIAL.test(s)) writeUtf8(JSON.stringify(s));
    else {
      ensure(n + 2);
      const b = out.buf;
      b[out.pos] = 34;
      (b as unknown as NativeWrites).latin1Write(s, out.pos + 1, n);
      b[out.pos + n + 1] = 34;
      out.pos += n + 2;
    }
    return;
  }
  ensure(n + 2);
  const b = out.buf;
  const start = out.pos;
  let p = start;
  b[p++] = 34;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 32 || c === 34 || c === 92 || c > 126) {
      out.pos = start;
      writeUtf8(JSON.stringify(s));
      return;
    }
    b[p++] = c;
  }
  b[p++] = 34;
  out.pos = p;
}

function writeNumber(v: number): void {
  // integers of up to 2^53 digit by digit (exact: % and floor of a safe integer are);
  // others as JavaScript prints them, which is what JSON.stringify writes
  if (Number.isSafeInteger(v)) {
    ensure(17);
    const b = out.buf;
    if (v < 0) {
      b[out.pos++] = 45;
      v = -v;
    }
    let digits = 1;
    for (let x = v; x >= 10; x = Math.floor(x / 10)) digits++;
    let p = out.pos + digits;
    out.pos = p;
    do {
      b[--p] = 48 + (v % 10);
      v = Math.floor(v / 10);
    } while (v > 0);
    return;
  }
  writeAscii(Number.isFinite(v) ? String(v) : 'null');
}

const keyTexts = new Map<string, Buffer>();
/** a key's JSON text and colon, after a comma if one is due */
function writeKey(k: string, comma: boolean): void {
  let t = keyTexts.get(k);
  if (t === undefined) {
    t = Buffer.from(JSON.stringify(k) + ':');
    if (keyTexts.size < 65_536) keyTexts.set(k, t);
  }
  writeKeyBytes(t, comma);
}

function writeKeyBytes(t: Buffer, comma: boolean): void {
  ensure(t.length + 1);
  const b = out.buf;
  let p = out.pos;
  if (comma) b[p++] = 44;
  for (let i = 0; i < t.length; i++) b[p++] = t[i];
  out.pos = p;
}

function plain(o: object): boolean {
  const proto = Object.getPrototypeOf(o);
  return proto === Object.prototype || proto === null;
}

/** a value as JSON.stringify takes it at `key`: what its toJSON method returns, if it has one */
function resolve(v: unknown, key: string): unknown {
  return typeof v === 'object' && v !== null && typeof (v as { toJSON?: unknown }).toJSON === 'function' ? (v as { toJSON(k: string): unknown }).toJSON(key) : v;
}

/** a value JSON leaves out of an object (and writes as null in an array) */
function absent(v: unknown): boolean {
  return v === undefined || typeof v === 'function' || typeof v === 'symbol';
}

/** JSON.stringify's rules for a value (after its toJSON), field by field: the writer of whatever no compiled shape covers */
function writeValue(v: unknown): void {
  switch (typeof v) {
    case 'string':
      writeString(v);
      return;
    case 'number':
      writeNumber(v);
      return;
    case 'boolean':
      writeAscii(v ? 'true' : 'false');
      return;
    case 'object':
      if (v === null) writeAscii('null');
      else if (Array.isArray(v)) writeArray(v, null);
      else if (v instanceof Number || v instanceof String || v instanceof Boolean || v instanceof BigInt) writeValue(v.valueOf());
      else writeObject(v as Record<string, unknown>);
      return;
    default:
      // bigint throws as JSON.stringify does; functions, symbols and undefined are not values
      writeUtf8(JSON.stringify(v) ?? 'null');
  }
}

function writeObject(o: Record<string, unknown>): void {
  appendByte(123);
  let comma = false;
  for (const k of Object.keys(o)) {
    const x = resolve(o[k], k);
    if (absent(x)) continue;
    writeKey(k, comma);
    comma = true;
    writeValue(x);
  }
  appendByte(125);
}

function writeArray(a: readonly unknown[], place: Place | null): void {
  appendByte(91);
  for (let i = 0; i < a.length; i++) {
    if (i > 0) appendByte(44);
    const x = resolve(a[i], String(i));
    if (absent(x)) writeAscii('null');
    else if (place !== null && typeof x === 'object' && x !== null && !Array.isArray(x)) writePlace(place, x as Record<string, unknown>);
    else writeValue(x);
  }
  appendByte(93);
}

type ShapeWriter = (o: Record<string, unknown>) => void;

/** one place in an event's tree, with the shapes it has met and their writers */
interface Place {
  readonly depth: number;
  keys: string[][];
  writers: ShapeWriter[];
  /** more shapes than MAX_SHAPES met here: a map, written by the general writer */
  open: boolean;
  /** objects that matched no shape (compiling starts after LEARN_AFTER of them) */
  misses: number;
  /** the places inside, by key (for diagnosis) */
  readonly inside: [string, Place][];
}

function newPlace(depth: number): Place {
  return { depth, keys: [], writers: [], open: depth > MAX_DEPTH, misses: 0, inside: [] };
}

/** the index of o's shape among the place's, -1 if none */
function shapeOf(place: Place, o: Record<string, unknown>): number {
  const all = place.keys;
  for (let s = 0; s < all.length; s++) {
    const keys = all[s];
    let i = 0;
    let same = true;
    for (const k in o) {
      if (k !== keys[i++]) {
        same = false;
        break;
      }
    }
    if (same && i === keys.length) return s;
  }
  return -1;
}

function writePlace(place: Place, o: Record<string, unknown>): void {
  if (!place.open && plain(o)) {
    let s = shapeOf(place, o);
    if (s < 0 && ++place.misses > LEARN_AFTER) {
      if (place.keys.length >= MAX_SHAPES) place.open = true;
      else s = learn(place, o);
    }
    if (s >= 0) {
      place.writers[s](o);
      return;
    }
  }
  writeValue(o);
}

/** compiles the writer of o's shape at this place */
function learn(place: Place, o: Record<string, unknown>): number {
  const keys = Object.keys(o);
  // JSON.stringify calls a toJSON method instead of writing the object: left to it
  if (keys.includes('toJSON')) return -1;
  // for...in lists what Object.keys does for a plain object (no inherited enumerable keys)
  const children: Place[] = [];
  const lines: string[] = [];
  keys.forEach((k, j) => {
    const v = o[k];
    const x = `v${j}`;
    // the key's text as constant stores, after a comma once a key has been written
    const text = Buffer.from(JSON.stringify(k) + ':');
    let key = `ensure(${text.length + 1}); b = out.buf; p = out.pos; `;
    key += j === 0 ? 'comma = true; ' : 'if (comma) b[p++] = 44; else comma = true; ';
    text.forEach((c, i) => (key += `b[p + ${i}] = ${c}; `));
    key += `out.pos = p + ${text.length};`;
    const name = JSON.stringify(k);
    let typed: string;
    if (typeof v === 'string') typed = `typeof ${x} === 'string') { ${key} writeString(${x}); }`;
    else if (typeof v === 'number') typed = `typeof ${x} === 'number') { ${key} writeNumber(${x}); }`;
    else if (typeof v === 'object' && v !== null) {
      const c = children.push(newPlace(place.depth + 1)) - 1;
      place.inside.push([k, children[c]]);
      typed = Array.isArray(v)
        ? `Array.isArray(${x})) { ${key} writeArray(${x}, children[${c}]); }`
        : `typeof ${x} === 'object' && ${x} !== null && !Array.isArray(${x})) { ${key} writePlace(children[${c}], ${x}); }`;
    } else typed = `false) {}`;
    // the type this place had when it was learnt, then any other (after its toJSON); a value
    // that JSON leaves out (undefined, a function, a symbol) leaves its key out too
    lines.push(
      `let ${x} = o[${name}];\nif (typeof ${x} === 'object' && ${x} !== null && typeof ${x}.toJSON === 'function') ${x} = ${x}.toJSON(${name});\n` +
        `if (${typed}\nelse if (!absent(${x})) { ${key} writeValue(${x}); }`,
    );
  });
  const body = `return function (o) {\nlet comma = false, b, p;\nappendByte(123);\n${lines.join('\n')}\nappendByte(125);\n};`;
  const writer = new Function('out', 'ensure', 'absent', 'appendByte', 'writeString', 'writeNumber', 'writeValue', 'writeArray', 'writePlace', 'children', body)(
    out,
    ensure,
    absent,
    appendByte,
    writeString,
    writeNumber,
    writeValue,
    writeArray,
    writePlace,
    children,
  ) as ShapeWriter;
  place.keys.push(keys);
  place.writers.push(writer);
  return place.keys.length - 1;
}

/** the places of top-level objects, one tree per event type */
const roots = new Map<string | undefined, Place>();

/** Appends the JSON text of v, byte for byte what JSON.stringify(v) gives. */
export function appendJson(value: unknown): void {
  // a value that throws (a bigint, a throwing toJSON) leaves nothing of itself behind
  const mark = out.pos - out.start;
  try {
    appendValue(value);
  } catch (err) {
    out.pos = out.start + mark;
    throw err;
  }
}

function appendValue(value: unknown): void {
  const v = resolve(value, '');
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    // what JSON.stringify gives no text for (undefined, a function) has none here either
    if (!absent(v)) writeValue(v);
    return;
  }
  const type = (v as { type?: unknown }).type;
  let root = typeof type === 'string' || type === undefined ? roots.get(type) : undefined;
  if (root === undefined && roots.size < 256 && (typeof type === 'string' || type === undefined)) roots.set(type, (root = newPlace(0)));
  if (root === undefined) writeValue(v);
  else writePlace(root, v as Record<string, unknown>);
}

/** The JSON text of v as a Buffer of its own (a view of the output chunk, never written again). */
export function jsonBytes(v: unknown): Buffer {
  if (out.pos !== out.start) throw new Error('jsonBytes: output appended and not taken');
  appendJson(v);
  return takeOutput();
}

/** for diagnosis: every place learnt, with its shapes and whether it is open */
export function placeSummary(): string[] {
  const lines: string[] = [];
  const walk = (p: Place, path: string): void => {
    lines.push(`${path} shapes=${p.keys.length}${p.open ? ' open' : ''}`);
    for (const [k, c] of p.inside) walk(c, `${path}.${k}`);
  };
  for (const [type, root] of roots) walk(root, String(type));
  return lines;
}
