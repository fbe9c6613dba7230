import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isSpace } from '../src/protocols/http/parser';

describe('HTTP header values', { timeout: 10_000 }, () => {
  it('lose exactly the whitespace String#trim takes off, for every latin1 code unit', () => {
    for (let c = 0; c < 256; c++) assert.equal(isSpace(c), String.fromCharCode(c).trim() === '', `code ${c}`);
  });
});
