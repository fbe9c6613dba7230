import { ReasonCounter, TransactionCounters } from '../../core/counters';
import type { Stats } from '../../core/stage';
import type { Endpoints } from '../../events/endpoints';
import { closeEvent, transactionEvent } from '../../events/transaction';
import type { Emitter, Protocol, TcpAnalyzer, TcpContext } from '../analyzer';
import { CIPHER_SUITES } from './ciphers';
import { ja3, ja3s, ja4, ja4s } from './fingerprint';
import { HRR_RANDOM, negotiatedVersion, parseHello, type Hello } from './hello';
import { ALERTS, EXTENSIONS, GROUPS, nameOf, SIGNATURE_SCHEMES, versionName, versionParts } from './names';
import { certificateHash, parseCertificate, pem, type ParsedCertificate } from './x509';

export interface TlsOptions {
  /** parse the certificates and report them (`tls.*.x509`, subjects, hashes) (packetbeat's send_certificates; default true) */
  sendCertificates: boolean;
  /** the chains as PEM in `tls.server.certificate_chain`, `tls.client.certificate_chain` (packetbeat's include_raw_certificates; default false) */
  includeRawCertificates: boolean;
  /** `tls.detailed` and `tls.*.x509` (packetbeat's include_detailed_fields; default true) */
  includeDetailedFields: boolean;
  /** certificate hashes in `tls.*.hash`: any of sha1, sha256, md5 (packetbeat's fingerprints; default [sha1]) */
  fingerprints: string[];
  /** bytes of one handshake message (default 256 KiB): a longer one ends the handshake's analysis, counted */
  maxHandshakeBytes: number;
  /** certificates of one chain read (default 10); the rest counted */
  maxChainLength: number;
  /** bytes of one chain parsed (default 128 KiB) */
  maxChainBytes: number;
  /** certificates kept parsed, by their DER, for the next handshakes that send them (default 256; servers send the same chain every time) */
  certificateCacheSize: number;
  /** seconds of packet time a handshake may take (default 10, as packetbeat's transaction timeout) */
  transactionTimeoutSec: number;
}

export const TLS_DEFAULTS: TlsOptions = {
  sendCertificates: true,
  includeRawCertificates: false,
  includeDetailedFields: true,
  fingerprints: ['sha1'],
  maxHandshakeBytes: 256 * 1024,
  maxChainLength: 10,
  maxChainBytes: 128 * 1024,
  certificateCacheSize: 256,
  transactionTimeoutSec: 10,
};

class TlsCounters extends TransactionCounters {
  records = 0;
  handshakeMessages = 0;
  certificates = 0;
  established = 0;
  resumed = 0;
  alerts = 0;
  certificateCacheHits = 0;
  /** parsed certificates by DER (latin1), oldest first; null for one that does not parse */
  readonly certificateCache = new Map<string, ParsedCertificate | null>();
  /** bounds hit: handshake_too_long, chain_too_long, chain_too_big */
  readonly limits = new ReasonCounter();
  /** connections whose bytes are not TLS records, or where analysis stopped */
  readonly lost = new ReasonCounter();
}

// record content types
const CCS = 20;
const ALERT = 21;
const HANDSHAKE = 22;
const APP_DATA = 23;
const HEARTBEAT = 24;
/** the longest record RFC 5246 allows (2^14 + 2048 of ciphertext) */
const MAX_RECORD = 16384 + 2048;

interface Alert {
  level: number;
  code: number;
  side: number;
}

/** one direction: records reassembled across segments, handshake messages across records */
class Side {
  /** bytes of an incomplete record header or body */
  rec: Buffer = Buffer.alloc(0);
  /** bytes of an incomplete handshake message */
  hs: Buffer = Buffer.alloc(0);
  /** the side encrypts from here on (after its ChangeCipherSpec, or TLS 1.3's server after its hello) */
  encrypted = false;
  ccs = false;
  /** records after the ChangeCipherSpec (the Finished), or TLS 1.3 application-data records */
  afterCcs = 0;
  appData = 0;
  stopped = false;
  bytes = 0;
  certificates: ParsedCertificate[] = [];
  hello: Hello | null = null;
  keyExchange = false;
}

class TlsConnection implements TcpAnalyzer {
  private readonly s: [Side, Side] = [new Side(), new Side()];
  /** a hello was seen: there is a handshake to report (a capture that starts inside a connection has none) */
  private started = false;
  private done = false;
  private firstSec = -1;
  private firstNsec = 0;
  private startSec = 0;
  private startNsec = 0;
  private endSec = 0;
  private endNsec = 0;
  private alerts: Alert[] = [];
  private certRequested = false;
  private curve = '';
  private hrr = false;
  private tls13 = false;
  private notes: string[] = [];

  constructor(
    private readonly ep: Endpoints,
    private readonly out: Emitter,
    private readonly opts: TlsOptions,
    private readonly n: TlsCounters,
  ) {}

  data(side: number, buf: Buffer, off: number, len: number, tsSec: number, tsNsec: number): void {
    const st = this.s[side];
    if (this.done || st.stopped) return;
    let b = buf.subarray(off, off + len);
    if (st.rec.length > 0) b = Buffer.concat([st.rec, b]);
    let i = 0;
    while (!this.done && !st.stopped && i + 5 <= b.length) {
      const type = b[i];
      const len = (b[i + 3] << 8) | b[i + 4];
      if (type < CCS || type > HEARTBEAT || b[i + 1] !== 3 || b[i + 2] > 4 || len > MAX_RECORD) {
        this.stop(side, 'not_a_record', `${side === 0 ? 'client' : 'server'} bytes are not TLS records`);
        return;
      }
      if (i + 5 + len > b.length) break;
      st.bytes += 5 + len;
      this.n.records++;
      if (this.firstSec < 0) {
        this.firstSec = tsSec;
        this.firstNsec = tsNsec;
      }
      this.endSec = tsSec;
      this.endNsec = tsNsec;
      this.record(side, type, b, i + 5, i + 5 + len);
      i += 5 + len;
      if (!this.done) this.check();
    }
    st.rec = i < b.length && !this.done && !st.stopped ? Buffer.from(b.subarray(i)) : Buffer.alloc(0);
  }

  gap(side: number, n: number, tsSec: number, tsNsec: number): void {
    if (this.done) return;
    const st = this.s[side];
    if (st.stopped) return;
    st.stopped = true;
    this.n.lost.add(side === 0 ? 'request_gap' : 'response_gap');
    if (!this.started) return;
    this.endSec = Math.max(this.endSec, tsSec);
    if (this.endSec === tsSec) this.endNsec = Math.max(this.endNsec, tsNsec);
    this.notes.push(`packet loss: ${n} ${side === 0 ? 'client' : 'server'} bytes missing, handshake cut`);
    this.n.partial++;
    this.emit();
  }

  close(): void {
    if (this.done || !this.started) return;
    this.notes.push('connection closed before the handshake completed');
    this.emit();
  }

  expire(nowSec: number): void {
    if (this.done || !this.started) return;
    if (nowSec - this.endSec < this.opts.transactionTimeoutSec) return;
    this.notes.push('handshake not completed within the transaction timeout');
    this.n.unmatched.add('timeout');
    this.emit();
  }

  discard(): void {
    if (this.started && !this.done) this.n.pending--;
    this.done = true;
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    this.startSec = this.firstSec;
    this.startNsec = this.firstNsec;
    this.n.started++;
    this.n.pending++;
  }

  private stop(side: number, reason: string, note: string): void {
    const st = this.s[side];
    st.stopped = true;
    st.rec = Buffer.alloc(0);
    st.hs = Buffer.alloc(0);
    this.n.lost.add(reason);
    if (reason !== 'not_a_record') this.n.violations.add(reason);
    this.out.anomaly?.('tls', reason, this.ep);
    if (this.started) {
      this.notes.push(note);
      this.emit();
    }
  }

  private record(side: number, type: number, b: Buffer, from: number, to: number): void {
    const st = this.s[side];
    if (type === CCS) {
      st.ccs = true;
      // TLS 1.3's ChangeCipherSpec is a dummy (middlebox compatibility): after a HelloRetryRequest the hellos still come in clear
      if (!this.tls13 && !this.hrr) {
        st.encrypted = true;
        st.hs = Buffer.alloc(0);
      }
      return;
    }
    if (st.encrypted) {
      if (st.ccs) st.afterCcs++;
      if (type === APP_DATA) st.appData++;
      return;
    }
    if (type === APP_DATA) {
      // application data before this side's ChangeCipherSpec: TLS 1.3 without middlebox compatibility
      st.appData++;
      st.encrypted = true;
      return;
    }
    if (type === ALERT) {
      for (let i = from; i + 2 <= to; i += 2) {
        this.alerts.push({ level: b[i], code: b[i + 1], side });
        this.n.alerts++;
        if (b[i] === 2) {
          this.notes.push(`fatal alert from the ${side === 0 ? 'client' : 'server'}: ${nameOf(ALERTS, b[i + 1])}`);
          this.emit();
          return;
        }
      }
      return;
    }
    if (type !== HANDSHAKE) return;
    let hs = st.hs.length > 0 ? Buffer.concat([st.hs, b.subarray(from, to)]) : b.subarray(from, to);
    let i = 0;
    while (i + 4 <= hs.length) {
      const mlen = (hs[i + 1] << 16) | (hs[i + 2] << 8) | hs[i + 3];
      if (mlen > this.opts.maxHandshakeBytes) {
        this.n.limits.add('handshake_too_long');
        this.stop(side, 'handshake_too_long', `a handshake message of ${mlen} bytes, over maxHandshakeBytes`);
        return;
      }
      if (i + 4 + mlen > hs.length) break;
      this.n.handshakeMessages++;
      this.message(side, hs[i], hs.subarray(i + 4, i + 4 + mlen));
      if (this.done || st.stopped) return;
      i += 4 + mlen;
      if (st.encrypted) {
        i = hs.length;
        break;
      }
    }
    st.hs = i < hs.length ? Buffer.from(hs.subarray(i)) : Buffer.alloc(0);
  }

  private message(side: number, type: number, body: Buffer): void {
    const st = this.s[side];
    switch (type) {
      case 1: // ClientHello
      case 2: {
        // ServerHello
        const client = type === 1;
        if (client !== (side === 0)) {
          this.stop(side, 'hello_wrong_direction', `a ${client ? 'ClientHello' : 'ServerHello'} from the ${side === 0 ? 'client' : 'server'}`);
          return;
        }
        if (!client && body.length >= 34 && body.toString('hex', 2, 34) === HRR_RANDOM) {
          // HelloRetryRequest: the client sends a second ClientHello, the server a real ServerHello
          this.hrr = true;
          return;
        }
        const h = parseHello(body, client);
        if (h === null) {
          this.stop(side, client ? 'client_hello_malformed' : 'server_hello_malformed', `a malformed ${client ? 'ClientHello' : 'ServerHello'}`);
          return;
        }
        if (st.hello === null || client) st.hello = h;
        this.start();
        if (!client && negotiatedVersion(h) === 0x0304) {
          this.tls13 = true;
          st.encrypted = true; // the rest of the server's handshake is encrypted
        }
        if (!client && h.keyShareGroups.length > 0) this.curve = nameOf(GROUPS, h.keyShareGroups[0]);
        return;
      }
      case 11: // Certificate
        if (this.opts.sendCertificates || this.opts.includeRawCertificates) this.certificates(side, body);
        if (side === 1) st.keyExchange = true;
        return;
      case 12: // ServerKeyExchange: ECDHE's named curve
        st.keyExchange = true;
        if (body.length >= 3 && body[0] === 3) {
          const cipher = CIPHER_SUITES.get(this.s[1].hello?.ciphers[0] ?? -1) ?? '';
          if (cipher.includes('ECDHE')) this.curve = nameOf(GROUPS, (body[1] << 8) | body[2]);
        }
        return;
      case 13: // CertificateRequest
        this.certRequested = true;
        return;
      case 16: // ClientKeyExchange
        st.keyExchange = true;
        return;
      default:
        return;
    }
  }

  /** a Certificate message (TLS 1.2 and before: the chain in clear) */
  private certificates(side: number, b: Buffer): void {
    if (b.length < 3) return;
    const end = Math.min(b.length, 3 + ((b[0] << 16) | (b[1] << 8) | b[2]));
    const out = this.s[side].certificates;
    let total = 0;
    for (let i = 3; i + 3 <= end; ) {
      const n = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
      if (i + 3 + n > end) break;
      if (out.length >= this.opts.maxChainLength) {
        this.n.limits.add('chain_too_long');
        this.notes.push(`certificate chain cut at maxChainLength (${this.opts.maxChainLength})`);
        return;
      }
      total += n;
      if (total > this.opts.maxChainBytes) {
        this.n.limits.add('chain_too_big');
        this.notes.push(`certificate chain cut at maxChainBytes (${this.opts.maxChainBytes})`);
        return;
      }
      const c = this.parse(b, i + 3, i + 3 + n);
      if (c === null) {
        this.n.violations.add('certificate_unparseable');
        this.notes.push('a certificate that does not parse');
      } else {
        this.n.certificates++;
        out.push(c);
      }
      i += 3 + n;
    }
  }

  /** a certificate, parsed once per stage while it stays in the cache */
  private parse(b: Buffer, from: number, to: number): ParsedCertificate | null {
    const cache = this.n.certificateCache;
    const key = b.toString('latin1', from, to);
    const hit = cache.get(key);
    if (hit !== undefined) {
      this.n.certificateCacheHits++;
      return hit;
    }
    const c = parseCertificate(Buffer.from(b.subarray(from, to)));
    if (this.opts.certificateCacheSize > 0) {
      if (cache.size >= this.opts.certificateCacheSize) cache.delete(cache.keys().next().value!);
      cache.set(key, c);
    }
    return c;
  }

  /** the handshake is over when each side has sent its Finished (encrypted, after its ChangeCipherSpec; TLS 1.3: the client's) */
  private check(): void {
    const [c, s] = this.s;
    if (this.tls13 ? c.afterCcs + c.appData > 0 && s.hello !== null : c.afterCcs > 0 && s.afterCcs > 0) this.emit();
  }

  private get established(): boolean {
    const [c, s] = this.s;
    if (s.hello === null) return false;
    return this.tls13 ? c.afterCcs + c.appData > 0 : c.ccs && s.ccs && c.afterCcs > 0 && s.afterCcs > 0;
  }

  private emit(): void {
    if (this.done) return;
    this.done = true;
    if (!this.started) {
      // no hello: nothing to report (a connection seen from its middle, an alert alone)
      this.n.lost.add('no_hello');
      return;
    }
    const n = this.n;
    n.pending--;
    n.transactions++;
    const [c, s] = this.s;
    const ch = c.hello;
    const sh = s.hello;
    const established = this.established;
    const fatal = this.alerts.some((a) => a.level === 2);
    const status = established && !fatal ? 'OK' : 'Error';
    const sni = ch?.serverNames[0] ?? '';
    const e = transactionEvent('tls', this.ep, { startSec: this.startSec, startNsec: this.startNsec, endSec: this.endSec, endNsec: this.endNsec }, status, c.bytes, s.bytes, 'tls', sni);
    const tls: Record<string, any> = {};
    const version = sh !== null ? negotiatedVersion(sh) : ch !== null ? ch.version : 0;
    const vp = versionParts(version);
    if (vp !== null) {
      tls.version = vp.version;
      tls.version_protocol = vp.protocol;
    }
    if (sh !== null) tls.cipher = nameOf(CIPHER_SUITES, sh.ciphers[0]);
    if (this.curve !== '') tls.curve = this.curve;
    tls.established = established;
    // resumed: the server took the session back (same id, or a ticket) and no certificate or key exchange followed; TLS 1.3: it accepted a PSK
    let method = '';
    if (sh !== null && ch !== null) {
      if (this.tls13) {
        if (sh.psk) method = 'psk';
      } else if (!c.keyExchange && !s.keyExchange) {
        // a client offering a ticket resumes by it, the server echoing the session id (RFC 5077 §3.4): as packetbeat, ticket then
        const echoed = ch.sessionId !== '' && ch.sessionId === sh.sessionId;
        if (ch.ticketLength > 0 && (echoed || sh.extensions.includes(35))) method = 'ticket';
        else if (echoed) method = 'id';
      }
    }
    tls.resumed = method !== '';
    if (method !== '') n.resumed++;
    if (established) n.established++;
    if (sh !== null && sh.alpn.length > 0) tls.next_protocol = sh.alpn[0];
    const client: Record<string, any> = {};
    const server: Record<string, any> = {};
    if (sni !== '') client.server_name = sni;
    if (ch !== null) {
      client.ja3 = ja3(ch).hash;
      client.ja4 = ja4(ch);
      client.supported_ciphers = ch.ciphers.map((v) => nameOf(CIPHER_SUITES, v));
    }
    if (sh !== null) {
      server.ja3s = ja3s(sh).hash;
      server.ja4s = ja4s(sh);
    }
    this.certFields(client, c.certificates);
    this.certFields(server, s.certificates);
    if (Object.keys(client).length > 0) tls.client = client;
    if (Object.keys(server).length > 0) tls.server = server;
    if (this.opts.includeDetailedFields) {
      const d: Record<string, any> = { version: versionName(version) };
      if (ch !== null) d.client_hello = helloDetails(ch, true);
      if (sh !== null) d.server_hello = helloDetails(sh, false);
      d.client_certificate_requested = this.certRequested;
      if (this.hrr) d.hello_retry_request = true;
      if (method !== '') d.resumption_method = method;
      if (this.alerts.length > 0) {
        d.alerts = this.alerts.map((a) => ({ source: a.side === 0 ? 'client' : 'server', severity: a.level === 2 ? 'fatal' : a.level === 1 ? 'warning' : String(a.level), code: a.code, type: nameOf(ALERTS, a.code) }));
        d.alert_types = this.alerts.map((a) => nameOf(ALERTS, a.code));
      }
      if (this.opts.sendCertificates) {
        if (c.certificates.length > 1) d.client_certificate_chain = c.certificates.slice(1).map((x) => x.fields);
        if (s.certificates.length > 1) d.server_certificate_chain = s.certificates.slice(1).map((x) => x.fields);
      }
      tls.detailed = d;
    }
    e.tls = tls;
    if (ch === null) this.notes.push('no ClientHello seen');
    if (!fatal && !established && this.notes.length === 0) this.notes.push('handshake not completed');
    closeEvent(e, this.notes, status === 'Error' ? (fatal ? 'TLS alert' : 'TLS handshake not completed') : null);
    this.out.emit(e);
  }

  private certFields(o: Record<string, any>, certs: ParsedCertificate[]): void {
    if (certs.length === 0) return;
    const leaf = certs[0];
    if (this.opts.sendCertificates) {
      o.subject = leaf.fields.subject.distinguished_name;
      o.issuer = leaf.fields.issuer.distinguished_name;
      o.not_before = leaf.fields.not_before;
      o.not_after = leaf.fields.not_after;
      const hash: Record<string, string> = {};
      for (const f of this.opts.fingerprints) hash[f] = certificateHash(leaf.der, f);
      if (this.opts.fingerprints.length > 0) o.hash = hash;
      if (this.opts.includeDetailedFields) o.x509 = leaf.fields;
    }
    if (this.opts.includeRawCertificates) o.certificate_chain = certs.map((x) => pem(x.der));
  }
}

function helloDetails(h: Hello, client: boolean): Record<string, any> {
  const d: Record<string, any> = { version: versionName(h.version) };
  if (h.sessionId !== '') d.session_id = h.sessionId;
  if (client) d.supported_compression_methods = h.compression.map((m) => (m === 0 ? 'NULL' : m === 1 ? 'DEFLATE' : `unknown (${m})`));
  else {
    d.selected_cipher = nameOf(CIPHER_SUITES, h.ciphers[0]);
    d.selected_compression_method = h.compression[0] === 0 ? 'NULL' : `unknown (${h.compression[0]})`;
  }
  const x: Record<string, any> = {};
  if (h.serverNames.length > 0) x.server_name_indication = h.serverNames;
  if (h.groups.length > 0) x.supported_groups = h.groups.map((g) => nameOf(GROUPS, g));
  if (h.pointFormats.length > 0) x.ec_points_formats = h.pointFormats.map((p) => (p === 0 ? 'uncompressed' : p === 1 ? 'ansiX962_compressed_prime' : p === 2 ? 'ansiX962_compressed_char2' : `unknown (${p})`));
  if (h.signatureAlgorithms.length > 0) x.signature_algorithms = h.signatureAlgorithms.map((v) => nameOf(SIGNATURE_SCHEMES, v));
  if (h.alpn.length > 0) x.application_layer_protocol_negotiation = h.alpn;
  if (h.versions.length > 0) x.supported_versions = h.versions.map(versionName);
  if (h.ticketLength >= 0) x.session_ticket = h.ticketLength > 0 ? `(${h.ticketLength} bytes)` : '';
  if (h.keyShareGroups.length > 0) x.key_share = h.keyShareGroups.map((g) => nameOf(GROUPS, g));
  if (h.pskModes.length > 0) x.psk_key_exchange_modes = h.pskModes.map((m) => (m === 1 ? 'psk_dhe_ke' : m === 0 ? 'psk_ke' : `unknown (${m})`));
  const parsed = new Set([0, 10, 11, 13, 16, 35, 43, 45, 51]);
  const others = h.extensions.filter((t) => !parsed.has(t)).map((t) => nameOf(EXTENSIONS, t));
  if (others.length > 0) x._unparsed_ = others;
  d.extensions = x;
  return d;
}

/** a TLS record header (handshake, SSL 3.0 to TLS 1.3's legacy 3.1-3.3) holding a ClientHello or ServerHello */
function helloProbe(b: Buffer, off: number, len: number, side: number): boolean {
  if (len < 6) return false;
  return b[off] === HANDSHAKE && b[off + 1] === 3 && b[off + 2] <= 4 && b[off + 5] === (side === 0 ? 1 : 2) && ((b[off + 3] << 8) | b[off + 4]) <= MAX_RECORD;
}

export const tls: Protocol<TlsOptions> = {
  name: 'tls',
  tcpPorts: [443],
  udpPorts: [],
  probe: helloProbe,
  create(options) {
    const opts: TlsOptions = { ...TLS_DEFAULTS, ...options };
    const n = new TlsCounters();
    return {
      tcp: (ctx: TcpContext) => new TlsConnection(ctx.endpoints, ctx.out, opts, n),
      stats: (): Stats => ({
        transactions_started: n.started,
        transactions_dropped: n.dropped.toJSON(),
        pending: n.pending,
        transactions: n.transactions,
        records: n.records,
        handshake_messages: n.handshakeMessages,
        certificates: n.certificates,
        established: n.established,
        resumed: n.resumed,
        alerts: n.alerts,
        certificate_cache_hits: n.certificateCacheHits,
        partial: n.partial,
        limits: n.limits.toJSON(),
        unmatched: n.unmatched.toJSON(),
        lost: n.lost.toJSON(),
        violations: n.violations.toJSON(),
      }),
    };
  },
};
