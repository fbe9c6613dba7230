/**
 * url.query as packetbeat renders it: the request's query parameters, and those of an
 * application/x-www-form-urlencoded body (which replace the query's of the same name),
 * decoded, the values of the hidden keywords replaced by `xxxxx`, then encoded again in
 * the form of Go's url.Values.Encode: sorted by name (bytes), `name=value` joined by `&`,
 * every byte but `A-Z a-z 0-9 - _ . ~` escaped (`%XX`, a space as `+`).
 *
 * Strings here are byte strings (latin1: one character per byte), so a parameter that
 * is not UTF-8 comes out escaped byte for byte, as from Go. A pair that does not decode
 * (a `%` not followed by two hex digits, a `;` in it) is left out, as Go's parser leaves
 * it out; packetbeat then drops every parameter of a body with one such pair, pktflow
 * only that pair.
 */

const HIDDEN = 'xxxxx';

/** the pairs of a query string or form body into `into`, in order, decoded (a pair that does not decode left out); `replace`: a name's first pair replaces what `into` held for it */
function pairs(s: string, into: Map<string, string[]>, replace: boolean): void {
  const seen = replace ? new Set<string>() : null;
  for (const part of s.split('&')) {
    if (part === '' || part.includes(';')) continue;
    const eq = part.indexOf('=');
    const key = unescape(eq < 0 ? part : part.slice(0, eq));
    const value = unescape(eq < 0 ? '' : part.slice(eq + 1));
    if (key === null || value === null) continue;
    const list = into.get(key);
    if (seen !== null && !seen.has(key)) {
      // a body parameter replaces the query's values of its name
      seen.add(key);
      into.set(key, [value]);
    } else if (list === undefined) into.set(key, [value]);
    else list.push(value);
  }
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/** Go's QueryUnescape on a byte string: `+` is a space, `%XX` a byte; null when a `%` escape is bad */
function unescape(s: string): string | null {
  if (s.indexOf('%') < 0 && s.indexOf('+') < 0) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 43) out += ' ';
    else if (c === 37) {
      const h = i + 2 < s.length ? hexDigit(s.charCodeAt(i + 1)) : -1;
      const l = h >= 0 ? hexDigit(s.charCodeAt(i + 2)) : -1;
      if (l < 0) return null;
      out += String.fromCharCode(h * 16 + l);
      i += 2;
    } else out += s[i];
  }
  return out;
}

const HEX = '0123456789ABCDEF';

/** Go's QueryEscape on a byte string */
function escape(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) & 0xff;
    if ((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 46 || c === 95 || c === 126) out += s[i];
    else if (c === 32) out += '+';
    else out += '%' + HEX[c >> 4] + HEX[c & 15];
  }
  return out;
}

/**
 * The rendered query ('' when there are no parameters). `query` is the request target's
 * query string, `form` an urlencoded body (or ''), both as byte strings; `hide` the
 * hidden keywords, lower-case (a parameter matches whatever its case).
 */
export function renderQuery(query: string, form: string, hide: ReadonlySet<string>): string {
  if (query === '' && form === '') return '';
  const params = new Map<string, string[]>();
  if (query !== '') pairs(query, params, false);
  if (form !== '') pairs(form, params, true);
  const keys = [...params.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let out = '';
  for (const k of keys) {
    const hidden = hide.size > 0 && hide.has(k.toLowerCase());
    const name = escape(k);
    for (const v of params.get(k)!) out += (out === '' ? '' : '&') + name + '=' + (hidden ? HIDDEN : escape(v));
  }
  return out;
}
