/**
 * One SIP message (RFC 3261 section 7): the start line, the header fields pktflow
 * reports (compact forms included: `i` for Call-ID, `v` for Via, ...), folded lines
 * joined, and the body. Parsing never throws anything but SipParseError.
 */

export class SipParseError extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** a URI as packetbeat splits it: scheme, user (never the password), host, port, and its parameters */
export interface SipUri {
  original: string;
  scheme: string;
  username: string;
  host: string;
  /** -1: none */
  port: number;
  params: Record<string, string> | null;
}

/** From, To, Contact: `"display" <uri>;params` or `uri;params` */
export interface NameAddr {
  display: string;
  uri: SipUri;
  params: Record<string, string>;
}

export class SipMessage {
  isRequest = false;
  method = '';
  uri = '';
  version = '';
  code = 0;
  phrase = '';
  callId = '';
  cseqNum = -1;
  cseqMethod = '';
  /** the top Via's branch parameter ('' when none: RFC 2543 peers) */
  branch = '';
  via: string[] = [];
  from = '';
  to = '';
  contact = '';
  userAgent = '';
  maxForwards = -1;
  contentType = '';
  /** -1: no Content-Length header */
  contentLength = -1;
  contentEncoding = '';
  accept = '';
  allow: string[] | null = null;
  supported: string[] | null = null;
  privateUri = '';
  /** Authorization or Proxy-Authorization */
  authorization = '';
  /** WWW-Authenticate or Proxy-Authenticate */
  challenge = '';
  /** the body as carried (null: none, or not kept) */
  body: Buffer | null = null;
  /** bytes of the message on the wire */
  size = 0;
  /** the header section as text, UTF-8 (for event.original and request/response) */
  head = '';
  sec = 0;
  nsec = 0;
  /** pktflow's notes on what was wrong with it (a cut body, ...) */
  notes: string[] | null = null;

  note(n: string): void {
    (this.notes ??= []).push(n);
  }
}

/** compact header forms (RFC 3261 section 7.3.3, RFC 3841, 3515, 4028) */
const COMPACT: Record<string, string> = {
  i: 'call-id', f: 'from', t: 'to', v: 'via', m: 'contact', l: 'content-length', c: 'content-type',
  e: 'content-encoding', k: 'supported', s: 'subject', o: 'event', r: 'refer-to', x: 'session-expires', u: 'allow-events', b: 'referred-by', a: 'accept-contact', j: 'reject-contact', d: 'request-disposition', y: 'identity', n: 'identity-info',
};

const isTokenChar = (c: number) => (c >= 0x21 && c <= 0x7e && c !== 0x28 && c !== 0x29 && c !== 0x3c && c !== 0x3e && c !== 0x40 && c !== 0x2c && c !== 0x3b && c !== 0x3a && c !== 0x5c && c !== 0x22 && c !== 0x2f && c !== 0x5b && c !== 0x5d && c !== 0x3f && c !== 0x3d && c !== 0x7b && c !== 0x7d);

/**
 * Does a line that starts at `off` look like a SIP start line: `SIP/2.0 ddd ` or
 * `METHOD uri SIP/2.0` ending the line? `end` bounds the look.
 */
export function isStartLine(b: Buffer, off: number, end: number): boolean {
  let eol = off;
  const max = Math.min(end, off + 4096);
  while (eol < max && b[eol] !== 0x0a) eol++;
  if (eol >= max) return false;
  let e = eol;
  if (e > off && b[e - 1] === 0x0d) e--;
  if (e - off >= 12 && b.toString('latin1', off, off + 8) === 'SIP/2.0 ') {
    return b[off + 8] >= 0x31 && b[off + 8] <= 0x36 && b[off + 9] >= 0x30 && b[off + 9] <= 0x39 && b[off + 10] >= 0x30 && b[off + 10] <= 0x39 && b[off + 11] === 0x20;
  }
  // METHOD SP Request-URI SP SIP/2.0
  let i = off;
  while (i < e && b[i] >= 0x41 && b[i] <= 0x5a) i++;
  if (i === off || i - off > 32 || i >= e || b[i] !== 0x20) return false;
  if (e - off < 8 || b.toString('latin1', e - 8, e) !== ' SIP/2.0') return false;
  // the URI: a scheme (letters) then ':'
  let j = i + 1;
  while (j < e && ((b[j] | 0x20) >= 0x61 && (b[j] | 0x20) <= 0x7a)) j++;
  return j > i + 1 && j < e - 8 && b[j] === 0x3a;
}

/** where the header section ends: the index just past its empty line, or -1 */
export function headEnd(b: Buffer, off: number, end: number): number {
  for (let i = off; i < end; i++) {
    if (b[i] !== 0x0a) continue;
    if (i + 1 < end && b[i + 1] === 0x0a) return i + 2;
    if (i + 2 < end && b[i + 1] === 0x0d && b[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}

/**
 * Parse a message's start line and header section, b[off, end) (the empty line
 * included or not). The body is not looked at: `contentLength` says its size.
 */
export function parseHead(b: Buffer, off: number, end: number): SipMessage {
  // header values are UTF-8 (RFC 3261 25.1: display names, reason phrases)
  const text = b.toString('utf8', off, end);
  const m = new SipMessage();
  m.head = text;
  const lines = text.split('\n');
  let first = lines[0];
  if (first.endsWith('\r')) first = first.slice(0, -1);
  startLine(m, first);
  // header lines, folded lines joined (RFC 3261 7.3.1)
  let name = '';
  let value = '';
  for (let i = 1; i <= lines.length; i++) {
    let line = i < lines.length ? lines[i] : '';
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (i < lines.length && line.length > 0 && (line[0] === ' ' || line[0] === '\t')) {
      if (name === '') throw new SipParseError('folded_line_without_header');
      value += ' ' + line.trim();
      continue;
    }
    if (name !== '') header(m, name, value);
    name = '';
    if (line.length === 0) break;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new SipParseError('header_without_colon');
    name = line.slice(0, colon).trim().toLowerCase();
    if (name.length === 0) throw new SipParseError('header_without_name');
    for (let k = 0; k < name.length; k++) if (!isTokenChar(name.charCodeAt(k))) throw new SipParseError('header_name_not_a_token');
    value = line.slice(colon + 1).trim();
  }
  if (m.callId === '') throw new SipParseError('no_call_id');
  if (m.cseqNum < 0) throw new SipParseError('no_cseq');
  return m;
}

function startLine(m: SipMessage, line: string): void {
  if (line.startsWith('SIP/')) {
    const sp = line.indexOf(' ');
    if (sp < 0) throw new SipParseError('bad_status_line');
    m.version = line.slice(4, sp);
    const code = line.slice(sp + 1, sp + 4);
    if (!/^[1-6]\d\d$/.test(code) || (line.length > sp + 4 && line[sp + 4] !== ' ')) throw new SipParseError('bad_status_code');
    m.code = Number(code);
    m.phrase = line.slice(sp + 5);
    return;
  }
  const a = line.indexOf(' ');
  const z = line.lastIndexOf(' ');
  if (a <= 0 || z <= a || !line.startsWith('SIP/', z + 1)) throw new SipParseError('bad_request_line');
  const method = line.slice(0, a);
  for (let k = 0; k < method.length; k++) if (!isTokenChar(method.charCodeAt(k))) throw new SipParseError('bad_method');
  m.isRequest = true;
  m.method = method.toUpperCase();
  m.uri = line.slice(a + 1, z).trim();
  m.version = line.slice(z + 5);
}

function header(m: SipMessage, rawName: string, value: string): void {
  const name = rawName.length === 1 ? COMPACT[rawName] ?? rawName : rawName;
  switch (name) {
    case 'call-id':
      m.callId = value;
      break;
    case 'cseq': {
      const [num, method, ...rest] = value.split(/\s+/);
      if (!/^\d{1,10}$/.test(num) || method === undefined || rest.length > 0) throw new SipParseError('bad_cseq');
      m.cseqNum = Number(num);
      m.cseqMethod = method.toUpperCase();
      break;
    }
    case 'via':
      for (const v of splitList(value)) {
        if (m.via.length === 0) m.branch = paramOf(v, 'branch');
        m.via.push(v);
      }
      break;
    case 'from':
      if (m.from === '') m.from = value;
      break;
    case 'to':
      if (m.to === '') m.to = value;
      break;
    case 'contact':
      if (m.contact === '') m.contact = splitList(value)[0] ?? '';
      break;
    case 'user-agent':
      m.userAgent = value;
      break;
    case 'max-forwards':
      // not needed to pair or frame: a bad value is left out
      if (/^\d{1,10}$/.test(value)) m.maxForwards = Number(value);
      break;
    case 'content-type':
      m.contentType = value.toLowerCase();
      break;
    case 'content-length':
      if (!/^\d{1,10}$/.test(value)) throw new SipParseError('bad_content_length');
      m.contentLength = Number(value);
      break;
    case 'content-encoding':
      m.contentEncoding = value;
      break;
    case 'accept':
      if (m.accept === '') m.accept = value.toLowerCase();
      break;
    case 'allow':
      m.allow = (m.allow ?? []).concat(splitList(value).map((s) => s.toUpperCase()));
      break;
    case 'supported':
      m.supported = (m.supported ?? []).concat(splitList(value).map((s) => s.toLowerCase()));
      break;
    case 'p-associated-uri':
      if (m.privateUri === '') m.privateUri = angle(splitList(value)[0] ?? '');
      break;
    case 'authorization':
    case 'proxy-authorization':
      if (m.authorization === '') m.authorization = value;
      break;
    case 'www-authenticate':
    case 'proxy-authenticate':
      if (m.challenge === '') m.challenge = value;
      break;
  }
}

/** a header value's comma-separated elements, commas inside quotes or <...> kept */
export function splitList(value: string): string[] {
  const out: string[] = [];
  let quoted = false;
  let angled = false;
  let from = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '<') angled = true;
    else if (c === '>') angled = false;
    else if (c === ',' && !angled) {
      const v = value.slice(from, i).trim();
      if (v !== '') out.push(v);
      from = i + 1;
    }
  }
  const v = value.slice(from).trim();
  if (v !== '') out.push(v);
  return out;
}

/** a `;name=value` parameter of a header value (outside quotes), '' when absent */
function paramOf(v: string, want: string): string {
  const p = params(v, v.indexOf(';'));
  return p[want] ?? '';
}

/** `;a=b;c` from index `at` (a `;`): names in lower case, values as sent ('' for a flag) */
function params(v: string, at: number): Record<string, string> {
  const out: Record<string, string> = {};
  if (at < 0) return out;
  for (const part of v.slice(at + 1).split(';')) {
    const eq = part.indexOf('=');
    const k = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (k === '' || k === '__proto__') continue;
    out[k] = eq < 0 ? '' : part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
  }
  return out;
}

/** the URI inside <...>, or the value itself */
function angle(v: string): string {
  const a = v.indexOf('<');
  if (a < 0) return v.trim();
  const z = v.indexOf('>', a);
  return v.slice(a + 1, z < 0 ? v.length : z).trim();
}

/**
 * sip:user:password@host:port;params?headers (and sips:, tel:, anything with a
 * scheme): the password is never kept; an IPv6 host keeps its brackets off.
 */
export function parseUri(original: string): SipUri {
  const u: SipUri = { original, scheme: '', username: '', host: '', port: -1, params: null };
  const colon = original.indexOf(':');
  if (colon <= 0) return u;
  u.scheme = original.slice(0, colon).toLowerCase();
  let rest = original.slice(colon + 1);
  const q = rest.indexOf('?');
  if (q >= 0) rest = rest.slice(0, q);
  const semi = rest.indexOf(';');
  if (semi >= 0) {
    u.params = params(rest, semi);
    rest = rest.slice(0, semi);
  }
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const user = rest.slice(0, at);
    const pc = user.indexOf(':');
    u.username = pc >= 0 ? user.slice(0, pc) : user;
    rest = rest.slice(at + 1);
  }
  if (rest.startsWith('[')) {
    const z = rest.indexOf(']');
    u.host = rest.slice(1, z < 0 ? rest.length : z);
    rest = z < 0 ? '' : rest.slice(z + 1);
    if (rest.startsWith(':')) u.port = port(rest.slice(1));
  } else {
    const pc = rest.indexOf(':');
    u.host = pc >= 0 ? rest.slice(0, pc) : rest;
    if (pc >= 0) u.port = port(rest.slice(pc + 1));
  }
  return u;
}

const port = (s: string) => (/^\d{1,5}$/.test(s) && Number(s) <= 65535 ? Number(s) : -1);

/** From, To, Contact: display name, URI, header parameters (tag, expires, q) */
export function parseNameAddr(v: string): NameAddr {
  v = v.trim();
  const lt = v.indexOf('<');
  if (lt >= 0) {
    const gt = v.indexOf('>', lt);
    const end = gt < 0 ? v.length : gt;
    let display = v.slice(0, lt).trim();
    if (display.startsWith('"')) display = display.slice(1, display.endsWith('"') ? -1 : undefined).replace(/\\(.)/g, '$1');
    return { display, uri: parseUri(v.slice(lt + 1, end).trim()), params: gt < 0 ? {} : params(v, v.indexOf(';', gt)) };
  }
  // addr-spec: parameters after it belong to the header (RFC 3261 20.10)
  const semi = v.indexOf(';');
  return { display: '', uri: parseUri(semi < 0 ? v : v.slice(0, semi)), params: params(v, semi) };
}

/** Authorization / WWW-Authenticate: the scheme and its parameters (quotes removed) */
export function parseAuth(v: string): { scheme: string; params: Record<string, string> } {
  const sp = v.search(/\s/);
  const scheme = sp < 0 ? v : v.slice(0, sp);
  const out: Record<string, string> = {};
  if (sp >= 0) {
    for (const part of splitList(v.slice(sp + 1))) {
      const eq = part.indexOf('=');
      if (eq < 0) continue;
      const k = part.slice(0, eq).trim().toLowerCase();
      if (k === '__proto__') continue;
      out[k] = part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
    }
  }
  return { scheme, params: out };
}

/** sip.sdp.*: the session-level lines packetbeat reports (RFC 8866) */
export interface Sdp {
  version: string;
  ownerUsername: string;
  ownerSessionId: string;
  ownerVersion: string;
  ownerIp: string;
  sessionName: string;
  connectionInfo: string;
  connectionAddress: string;
}

export function parseSdp(text: string): Sdp {
  const s: Sdp = { version: '', ownerUsername: '', ownerSessionId: '', ownerVersion: '', ownerIp: '', sessionName: '', connectionInfo: '', connectionAddress: '' };
  let media = false;
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.length < 2 || line[1] !== '=') continue;
    const value = line.slice(2).trim();
    switch (line[0]) {
      case 'v':
        s.version = value;
        break;
      case 'o': {
        // o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>
        const f = value.split(/\s+/);
        if (f.length < 6) break;
        if (f[0] !== '-') s.ownerUsername = f[0];
        s.ownerSessionId = f[1];
        s.ownerVersion = f[2];
        s.ownerIp = f[5];
        break;
      }
      case 's':
        if (value !== '-') s.sessionName = value;
        break;
      case 'c':
        // session-level only: a media section's own connection line is not the session's
        if (media) break;
        s.connectionInfo = value;
        s.connectionAddress = value.split(/\s+/).pop() ?? '';
        break;
      case 'm':
        media = true;
        break;
    }
  }
  return s;
}
