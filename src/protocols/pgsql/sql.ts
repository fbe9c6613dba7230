/**
 * Just enough of PostgreSQL's lexer to split a simple Query into its statements
 * the way the server does: semicolons outside string constants ('...', E'...'),
 * quoted identifiers ("..."), dollar quotes ($tag$...$tag$) and comments (-- and
 * nested /* *\/) end a statement; statements that are only blanks and comments are
 * no statements (the server skips them). packetbeat splits at every semicolon, so
 * a semicolon inside a string literal gives it one transaction too many.
 */

const isIdentStart = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c >= 128;
const isIdentChar = (c: number) => isIdentStart(c) || (c >= 48 && c <= 57) || c === 36;
const isSpace = (c: number) => c === 32 || (c >= 9 && c <= 13);

/** the statements of a query string, each trimmed of surrounding blanks, without their semicolons */
export function splitStatements(q: string): string[] {
  const out: string[] = [];
  let start = 0;
  /** the current statement has something besides blanks and comments */
  let content = false;
  const n = q.length;
  let i = 0;
  while (i < n) {
    const c = q.charCodeAt(i);
    if (c === 59) {
      // ;
      if (content) out.push(q.slice(start, i).trim());
      start = i + 1;
      content = false;
      i++;
    } else if (c === 45 && q.charCodeAt(i + 1) === 45) {
      // -- comment to the end of the line
      const nl = q.indexOf('\n', i + 2);
      i = nl < 0 ? n : nl + 1;
    } else if (c === 47 && q.charCodeAt(i + 1) === 42) {
      // /* comment */, nested
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (q.charCodeAt(i) === 47 && q.charCodeAt(i + 1) === 42) {
          depth++;
          i += 2;
        } else if (q.charCodeAt(i) === 42 && q.charCodeAt(i + 1) === 47) {
          depth--;
          i += 2;
        } else i++;
      }
    } else if (c === 39) {
      // '...': a backslash escapes only in E'...' (standard_conforming_strings, on since 9.1)
      const prev = i > 0 ? q.charCodeAt(i - 1) | 0x20 : 0;
      const escapes = prev === 101 && (i < 2 || !isIdentChar(q.charCodeAt(i - 2)));
      i = skipQuoted(q, i + 1, 39, escapes);
      content = true;
    } else if (c === 34) {
      i = skipQuoted(q, i + 1, 34, false);
      content = true;
    } else if (c === 36 && (i === 0 || !isIdentChar(q.charCodeAt(i - 1)))) {
      // $tag$ ... $tag$ (a $ inside an identifier, or $1, is not one)
      let j = i + 1;
      if (j < n && isIdentStart(q.charCodeAt(j))) {
        j++;
        while (j < n && isIdentChar(q.charCodeAt(j)) && q.charCodeAt(j) !== 36) j++;
      }
      if (q.charCodeAt(j) === 36) {
        const tag = q.slice(i, j + 1);
        const end = q.indexOf(tag, j + 1);
        i = end < 0 ? n : end + tag.length;
      } else i = j;
      content = true;
    } else if (isIdentStart(c)) {
      // a whole word at once (an E right before a quote makes it an E'...' string, above)
      i++;
      while (i < n && isIdentChar(q.charCodeAt(i))) i++;
      content = true;
    } else {
      if (!isSpace(c)) content = true;
      i++;
    }
  }
  if (content) out.push(q.slice(start).trim());
  return out;
}

/** index after the closing quote (doubled quotes stay inside; with `escapes`, so does a backslash-escaped one) */
function skipQuoted(q: string, i: number, quote: number, escapes: boolean): number {
  const n = q.length;
  while (i < n) {
    const c = q.charCodeAt(i);
    if (escapes && c === 92) i += 2;
    else if (c === quote) {
      if (q.charCodeAt(i + 1) === quote) i += 2;
      else return i + 1;
    } else i++;
  }
  return n;
}

/**
 * The SQL verb: the statement's first word, upper case (`SELECT`, `INSERT`,
 * `WITH`, ...), after blanks, comments and opening parentheses; '' when there is none.
 * packetbeat takes what precedes the first space, so `SELECT\n1` gives it `SELECT\N1`.
 */
export function sqlMethod(s: string): string {
  const n = s.length;
  let i = 0;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (isSpace(c) || c === 40) i++;
    else if (c === 45 && s.charCodeAt(i + 1) === 45) {
      const nl = s.indexOf('\n', i + 2);
      i = nl < 0 ? n : nl + 1;
    } else if (c === 47 && s.charCodeAt(i + 1) === 42) {
      const end = s.indexOf('*/', i + 2);
      i = end < 0 ? n : end + 2;
    } else break;
  }
  let j = i;
  while (j < n && isIdentStart(s.charCodeAt(j))) j++;
  return s.slice(i, j).toUpperCase();
}
