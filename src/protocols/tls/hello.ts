/**
 * ClientHello and ServerHello (RFC 5246 §7.4.1, RFC 8446 §4.1.2-3) read from one
 * whole handshake message body. Every length is checked against what encloses it: a
 * malformed hello gives null, never a throw.
 */
export interface Hello {
  /** legacy_version (client_version / server_version) */
  version: number;
  sessionId: string;
  /** client: the offered suites; server: the one selected */
  ciphers: number[];
  compression: number[];
  /** extension types in wire order */
  extensions: number[];
  serverNames: string[];
  groups: number[];
  pointFormats: number[];
  signatureAlgorithms: number[];
  alpn: string[];
  /** client: offered versions (supported_versions); server: the one selected (one element) */
  versions: number[];
  /** session_ticket: -1 absent, else its length */
  ticketLength: number;
  /** key_share: the groups of the shares (server: the selected one) */
  keyShareGroups: number[];
  /** pre_shared_key: present (server: the identity chosen, i.e. PSK resumption in TLS 1.3) */
  psk: boolean;
  pskModes: number[];
}

function emptyHello(version: number): Hello {
  return { version, sessionId: '', ciphers: [], compression: [], extensions: [], serverNames: [], groups: [], pointFormats: [], signatureAlgorithms: [], alpn: [], versions: [], ticketLength: -1, keyShareGroups: [], psk: false, pskModes: [] };
}

const u16 = (b: Buffer, i: number) => (b[i] << 8) | b[i + 1];

function list16(b: Buffer, from: number, end: number, lenBytes: number): number[] | null {
  if (from + lenBytes > end) return null;
  const n = lenBytes === 1 ? b[from] : u16(b, from);
  const start = from + lenBytes;
  if (start + n > end || n % 2 !== 0) return null;
  const out: number[] = [];
  for (let i = start; i < start + n; i += 2) out.push(u16(b, i));
  return out;
}

export function parseHello(b: Buffer, client: boolean): Hello | null {
  const end = b.length;
  let i = 0;
  if (end < 2 + 32 + 1) return null;
  const h = emptyHello(u16(b, 0));
  i = 34;
  const sidLen = b[i++];
  if (sidLen > 32 || i + sidLen > end) return null;
  h.sessionId = b.toString('hex', i, i + sidLen);
  i += sidLen;
  if (client) {
    if (i + 2 > end) return null;
    const n = u16(b, i);
    i += 2;
    if (n % 2 !== 0 || i + n > end) return null;
    for (let k = i; k < i + n; k += 2) h.ciphers.push(u16(b, k));
    i += n;
    if (i + 1 > end) return null;
    const c = b[i++];
    if (i + c > end) return null;
    for (let k = i; k < i + c; k++) h.compression.push(b[k]);
    i += c;
  } else {
    if (i + 3 > end) return null;
    h.ciphers.push(u16(b, i));
    h.compression.push(b[i + 2]);
    i += 3;
  }
  if (i === end) return h; // no extensions (SSL 3.0, old clients)
  if (i + 2 > end) return null;
  const extEnd = i + 2 + u16(b, i);
  if (extEnd > end) return null;
  i += 2;
  while (i < extEnd) {
    if (i + 4 > extEnd) return null;
    const type = u16(b, i);
    const len = u16(b, i + 2);
    const s = i + 4;
    const e = s + len;
    if (e > extEnd) return null;
    h.extensions.push(type);
    if (!extension(h, b, type, s, e, client)) return null;
    i = e;
  }
  return h;
}

function extension(h: Hello, b: Buffer, type: number, s: number, e: number, client: boolean): boolean {
  switch (type) {
    case 0: {
      // server_name: a list of (type, name); a server's is empty
      if (s === e) return true;
      if (s + 2 > e) return false;
      const listEnd = s + 2 + u16(b, s);
      if (listEnd > e) return false;
      for (let i = s + 2; i < listEnd; ) {
        if (i + 3 > listEnd) return false;
        const n = u16(b, i + 1);
        if (i + 3 + n > listEnd) return false;
        if (b[i] === 0) h.serverNames.push(b.toString('latin1', i + 3, i + 3 + n));
        i += 3 + n;
      }
      return true;
    }
    case 10: {
      const l = list16(b, s, e, 2);
      if (l === null) return false;
      h.groups = l;
      return true;
    }
    case 11: {
      if (s + 1 > e || s + 1 + b[s] > e) return false;
      for (let i = s + 1; i < s + 1 + b[s]; i++) h.pointFormats.push(b[i]);
      return true;
    }
    case 13: {
      const l = list16(b, s, e, 2);
      if (l === null) return false;
      h.signatureAlgorithms = l;
      return true;
    }
    case 16: {
      if (s + 2 > e) return false;
      const listEnd = s + 2 + u16(b, s);
      if (listEnd > e) return false;
      for (let i = s + 2; i < listEnd; ) {
        const n = b[i];
        if (i + 1 + n > listEnd) return false;
        h.alpn.push(b.toString('latin1', i + 1, i + 1 + n));
        i += 1 + n;
      }
      return true;
    }
    case 35:
      h.ticketLength = e - s;
      return true;
    case 41:
      h.psk = true;
      return true;
    case 43: {
      if (client) {
        const l = list16(b, s, e, 1);
        if (l === null) return false;
        h.versions = l;
      } else {
        if (e - s !== 2) return false;
        h.versions = [u16(b, s)];
      }
      return true;
    }
    case 45: {
      if (s + 1 > e || s + 1 + b[s] > e) return false;
      for (let i = s + 1; i < s + 1 + b[s]; i++) h.pskModes.push(b[i]);
      return true;
    }
    case 51: {
      if (!client) {
        // a group and its share, or (HelloRetryRequest) the group alone
        if (s + 2 > e) return false;
        h.keyShareGroups.push(u16(b, s));
        return true;
      }
      if (s + 2 > e) return false;
      const listEnd = s + 2 + u16(b, s);
      if (listEnd > e) return false;
      for (let i = s + 2; i < listEnd; ) {
        if (i + 4 > listEnd) return false;
        h.keyShareGroups.push(u16(b, i));
        i += 4 + u16(b, i + 2);
        if (i > listEnd) return false;
      }
      return true;
    }
    default:
      return true;
  }
}

/** the version a ServerHello negotiated: supported_versions' when it has one (TLS 1.3), else legacy_version */
export function negotiatedVersion(server: Hello): number {
  return server.versions.length === 1 ? server.versions[0] : server.version;
}

/** the random of a HelloRetryRequest (RFC 8446 §4.1.3) */
export const HRR_RANDOM = 'cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c';
