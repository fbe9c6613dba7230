/**
 * core/json: the bytes it writes are JSON.stringify's, for the events of every golden
 * file, for random mutations of them (so the places learn many shapes, and open up as
 * maps), and for random values of every kind: strings with every escape, non-BMP
 * characters and lone surrogates, numbers of every form, undefined, functions, toJSON,
 * class instances, null-prototype objects, sparse arrays, odd keys.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { appendByte, appendJson, jsonBytes, pendingBytes, takeOutput } from '../src/core/json';

const GOLDEN = path.join(__dirname, 'golden');
const goldenLines = readdirSync(GOLDEN)
  .filter((f) => f.endsWith('.ndjson'))
  .flatMap((f) => readFileSync(path.join(GOLDEN, f), 'utf8').split('\n').filter((l) => l.startsWith('{')));

function same(v: unknown): void {
  const want = JSON.stringify(v);
  if (want === undefined) return;
  assert.equal(jsonBytes(v).toString('utf8'), want);
}

/** every UTF-16 code unit alone: escapes, controls, lone surrogates */
const anyUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
const text = fc.oneof(
  fc.string({ unit: anyUnit, maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ maxLength: 40 }),
  fc.constantFrom('', '"', '\\', '\n', '\u2028', '\u007f', '\ud83d\ude00', '\ud83d', '\ude00x', 'é'),
);
const number = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.maxSafeInteger(),
  fc.constantFrom(-0, 0, NaN, Infinity, -Infinity, 1e21, 1e-7, 5e-324, 2 ** 53, -(2 ** 53), 2 ** 53 + 2, 123456789.125, Number.MAX_VALUE),
);
const odd = fc.constantFrom<unknown>(undefined, () => 1, Symbol('s'), new Date(0), { toJSON: () => 'x' }, Object.create(null), [1, , 3], new (class K {
  a = 1;
  toJSON() {
    return 'k';
  }
})());
const { value } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    text,
    number,
    fc.boolean(),
    fc.constant(null),
    odd,
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.oneof(text, fc.constantFrom('0', '1', '10', 'toJSON', '__proto__', 'type')), tie('value'), { maxKeys: 6 }),
  ),
}));

/** an event of a golden file with some of its values replaced, removed or added */
const mutated = fc
  .record({
    line: fc.integer({ min: 0, max: goldenLines.length - 1 }),
    edits: fc.array(fc.record({ at: fc.nat(), op: fc.constantFrom('replace', 'delete', 'add'), key: text, v: value }), { maxLength: 4 }),
  })
  .map(({ line, edits }) => {
    const e = JSON.parse(goldenLines[line]) as Record<string, unknown>;
    // the objects of the event, in order (only these are edited: the values put in are fast-check's, and shared)
    const objects: Record<string, unknown>[] = [];
    const walk = (o: unknown): void => {
      if (typeof o !== 'object' || o === null) return;
      if (!Array.isArray(o)) objects.push(o as Record<string, unknown>);
      for (const x of Object.values(o)) walk(x);
    };
    walk(e);
    for (const edit of edits) {
      const o = objects[edit.at % objects.length];
      const keys = Object.keys(o);
      const k = keys.length > 0 ? keys[edit.at % keys.length] : edit.key;
      if (edit.op === 'replace') o[k] = edit.v;
      else if (edit.op === 'delete') delete o[k];
      else o[edit.key] = edit.v;
    }
    return e;
  });

describe('core/json writes what JSON.stringify writes', { timeout: 600_000 }, () => {
  it(`the ${goldenLines.length} events of the golden files, byte for byte`, () => {
    assert.ok(goldenLines.length > 1000);
    for (const line of goldenLines) assert.equal(jsonBytes(JSON.parse(line)).toString('utf8'), line);
  });

  it('mutated events: other types in a place, keys missing, added, reordered (property)', () => {
    fc.assert(fc.property(mutated, (e) => same(e)), { numRuns: 3000 });
  });

  it('random values of every kind (property)', () => {
    fc.assert(fc.property(value, (v) => same(v)), { numRuns: 3000 });
    fc.assert(fc.property(fc.dictionary(text, value), text, (o, type) => same({ type, ...o })), { numRuns: 2000 });
  });

  it('the odd cases by name', () => {
    for (const v of [
      { type: 'x', a: undefined, b: () => 1, c: Symbol('c'), d: 1 },
      { type: 'x', 2: 'two', 1: 'one', b: 'b' },
      { type: 'x', d: new Date(86_400_000), n: null, arr: [undefined, () => 0, NaN, -0] },
      Object.assign(Object.create(null), { type: 'x', a: 1 }),
      { type: 'x', nested: { toJSON: (k: string) => `key ${k}` } },
      { type: 'x', '\u0000"\\': '\ud800\udc00\udfff', é: 'ü' },
      { type: 1, a: [1, [2, [3]]] },
      'top-level string',
      [{ a: 1 }, { a: 2, b: 3 }],
    ]) {
      same(v);
    }
    assert.throws(() => jsonBytes({ type: 'x', n: 1n }), TypeError);
    // what the throw left behind is not taken for the next value
    takeOutput();
    same({ type: 'x', a: 1 });
  });

  it('a shape learnt at a place is not used for an object that has more or fewer keys, or its keys in another order', () => {
    const a = { type: 'shape-test', x: { p: 1, q: 'a' } };
    // a place compiles the shapes it meets after it has met a few
    for (let i = 0; i < 40; i++) same(a);
    same({ type: 'shape-test', x: { p: 1 } });
    same({ type: 'shape-test', x: { p: 1, q: 'a', r: true } });
    same({ type: 'shape-test', x: { q: 'a', p: 1 } });
    // more shapes than a place keeps: it is written as a map from then on
    for (let i = 0; i < 20; i++) same({ type: 'shape-test', x: { [`k${i}`]: i } });
    same(a);
  });

  it('output larger than a chunk stays whole, and views already taken keep their bytes', () => {
    const first = jsonBytes({ type: 'big', s: 'a' });
    const big = { type: 'big', s: 'é\ud83d\ude00"'.repeat(400_000) };
    for (let i = 0; i < 3; i++) {
      appendJson(big);
      appendByte(10);
    }
    assert.ok(pendingBytes() > 3 << 20);
    const all = takeOutput().toString('utf8');
    assert.equal(all, (JSON.stringify(big) + '\n').repeat(3));
    assert.equal(first.toString('utf8'), '{"type":"big","s":"a"}');
  });
});
