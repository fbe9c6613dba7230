/**
 * A body's MIME type from its bytes, in the order of libbeat's detect_mime_type
 * processor (libbeat/mime): magic numbers of common binary formats first, then the
 * WHATWG sniffing algorithm that Go's http.DetectContentType implements, then text
 * that parses as JSON or XML. '' when nothing is recognised (the processor leaves the
 * field out then). The magic numbers are a subset of the h2non/filetype library's:
 * images, archives, executables, documents.
 */

/** [offset, bytes, type]: magic numbers checked first */
const MAGIC: [number, number[], string][] = [
  [0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'image/png'],
  [0, [0xff, 0xd8, 0xff], 'image/jpeg'],
  [0, [0x47, 0x49, 0x46, 0x38], 'image/gif'],
  [8, [0x57, 0x45, 0x42, 0x50], 'image/webp'],
  [0, [0x42, 0x4d], 'image/bmp'],
  [0, [0x00, 0x00, 0x01, 0x00], 'image/vnd.microsoft.icon'],
  [0, [0x25, 0x50, 0x44, 0x46], 'application/pdf'],
  [0, [0x1f, 0x8b, 0x08], 'application/gzip'],
  [0, [0x42, 0x5a, 0x68], 'application/x-bzip2'],
  [0, [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c], 'application/x-7z-compressed'],
  [0, [0x52, 0x61, 0x72, 0x21, 0x1a, 0x07], 'application/vnd.rar'],
  [0, [0x50, 0x4b, 0x03, 0x04], 'application/zip'],
  [257, [0x75, 0x73, 0x74, 0x61, 0x72], 'application/x-tar'],
  [0, [0x7f, 0x45, 0x4c, 0x46], 'application/x-executable'],
  [0, [0x4d, 0x5a], 'application/vnd.microsoft.portable-executable'],
  [0, [0xcf, 0xfa, 0xed, 0xfe], 'application/x-mach-binary'],
  [0, [0xce, 0xfa, 0xed, 0xfe], 'application/x-mach-binary'],
  [0, [0xfe, 0xed, 0xfa, 0xcf], 'application/x-mach-binary'],
  [0, [0xfe, 0xed, 0xfa, 0xce], 'application/x-mach-binary'],
  [0, [0x00, 0x61, 0x73, 0x6d], 'application/wasm'],
  [0, [0x49, 0x44, 0x33], 'audio/mpeg'],
  [0, [0x4f, 0x67, 0x67, 0x53], 'audio/ogg'],
  [0, [0x1a, 0x45, 0xdf, 0xa3], 'video/webm'],
  [0, [0x77, 0x4f, 0x46, 0x46], 'font/woff'],
  [0, [0x77, 0x4f, 0x46, 0x32], 'font/woff2'],
];

/** WHATWG "HTML" patterns: after white space, case-insensitive, then a space or `>` */
const HTML_TAGS = ['<!DOCTYPE HTML', '<HTML', '<HEAD', '<SCRIPT', '<IFRAME', '<H1', '<DIV', '<FONT', '<TABLE', '<A', '<STYLE', '<TITLE', '<B', '<BODY', '<BR', '<P', '<!--'];
/** [prefix, type] exact patterns of the WHATWG table that the magic numbers above do not already answer */
const EXACT: [string, string][] = [
  ['%!PS-Adobe-', 'application/postscript'],
  ['\xfe\xff', 'text/plain; charset=utf-16be'],
  ['\xff\xfe', 'text/plain; charset=utf-16le'],
  ['\xef\xbb\xbf', 'text/plain; charset=utf-8'],
];

const isWs = (c: number) => c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d || c === 0x20;

function at(b: Buffer, off: number, sig: number[]): boolean {
  if (b.length < off + sig.length) return false;
  for (let i = 0; i < sig.length; i++) if (b[off + i] !== sig[i]) return false;
  return true;
}

/** Go's http.DetectContentType, for what the magic numbers left */
function sniff(b: Buffer): string {
  let i = 0;
  while (i < b.length && isWs(b[i])) i++;
  const head = b.toString('latin1', i, Math.min(b.length, i + 16)).toUpperCase();
  for (const t of HTML_TAGS) {
    if (head.startsWith(t) && b.length > i + t.length && (b[i + t.length] === 0x20 || b[i + t.length] === 0x3e)) return 'text/html; charset=utf-8';
  }
  if (head.startsWith('<?XML')) return 'text/xml; charset=utf-8';
  const raw = b.toString('latin1', 0, 16);
  for (const [p, t] of EXACT) if (raw.startsWith(p)) return t;
  for (let j = 0; j < b.length; j++) {
    const c = b[j];
    if (c <= 0x08 || c === 0x0b || (c >= 0x0e && c <= 0x1a) || (c >= 0x1c && c <= 0x1f)) return 'application/octet-stream';
  }
  return 'text/plain; charset=utf-8';
}

/** a start tag, its name, then everything up to the matching end: a well-formed element, roughly as Go's XML decoder takes one */
function looksLikeXml(s: string): boolean {
  const text = s.trim();
  if (!text.startsWith('<') || !text.endsWith('>')) return false;
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z_][\w.:-]*)[^<>]*?(\/?)>|<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<!\[CDATA\[[\s\S]*?\]\]>|<!DOCTYPE[^>]*>/g;
  let last = 0;
  let roots = 0;
  for (let m = tag.exec(text); m !== null; m = tag.exec(text)) {
    const between = text.slice(last, m.index);
    if (between.includes('<') || (stack.length === 0 && between.trim() !== '')) return false;
    last = tag.lastIndex;
    if (m[2] === undefined) continue;
    if (m[1] === '/') {
      if (stack.pop() !== m[2]) return false;
    } else if (m[3] !== '/') {
      if (stack.length === 0) roots++;
      stack.push(m[2]);
    } else if (stack.length === 0) roots++;
  }
  return last === text.length && stack.length === 0 && roots === 1;
}

/** the body's type from its first bytes (libbeat reads at most 8 KiB for the magic numbers and sniffing) */
export function detectMimeType(body: Buffer): string {
  if (body.length === 0) return '';
  const head = body.length > 8192 ? body.subarray(0, 8192) : body;
  for (const [off, sig, type] of MAGIC) if (at(head, off, sig)) return type;
  const sniffed = sniff(head);
  if (sniffed.startsWith('text/plain')) {
    const text = body.toString('utf8');
    try {
      JSON.parse(text);
      return 'application/json';
    } catch {
      // not JSON
    }
    if (looksLikeXml(text)) return 'text/xml';
  }
  return sniffed === 'application/octet-stream' ? '' : sniffed;
}
