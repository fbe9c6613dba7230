import { ReasonCounter, TransactionCounters } from '../../core/counters';
import type { Stats } from '../../core/stage';
import type { Endpoints } from '../../events/endpoints';
import { closeEvent, transactionEvent } from '../../events/transaction';
import type { Emitter, Protocol, TcpAnalyzer, TcpContext } from '../analyzer';
import { captureSecrets, SECRETS_TLS_KEYLOG } from '../../sources/secrets';
import { CIPHER_SUITES } from './ciphers';
import { RecordCipher, suiteOf, type Opened } from './decrypt';
import { KeyLog, KEYLOG_MAX_ENTRIES, type Secrets } from './keylog';
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
  /**
   * an NSS key log file (SSLKEYLOGFILE; the CLI's --tls-keylog): connections whose
   * secrets it holds are decrypted and their plaintext handed to the analyzer ALPN or a
   * probe chooses. Read when the stage is made, and again when a lookup misses and it grew.
   */
  keylogFile: string;
  /** a key log already read (a pipeline's own), instead of or beside keylogFile */
  keylog: KeyLog | null;
  /** client randoms held from the key log (default 100 000); beyond it the oldest is forgotten, counted */
  maxKeylogEntries: number;
  /** decrypt with the secrets a pcapng Decryption Secrets Block carries (default true) */
  captureSecrets: boolean;
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
  keylogFile: '',
  keylog: null,
  maxKeylogEntries: KEYLOG_MAX_ENTRIES,
  captureSecrets: true,
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
  /** decryption: connections decrypted, records and plaintext bytes */
  decrypted = 0;
  decryptedRecords = 0;
  decryptedBytes = 0;
  /** connections not decrypted, by reason: no_keys, keys_incomplete, unsupported_cipher, no_hello */
  readonly notDecrypted = new ReasonCounter();
  /** gaps in decrypted directions, and the times the next record was found again after one (bytes passed over to find it) */
  decryptGaps = 0;
  resynchronised = 0;
  resyncSkipped = 0;
  /** records lost by decryption: auth_failed */
  readonly decryptFailed = new ReasonCounter();
  /** plaintext handed on, by inner protocol; inner_protocol_not_running, inner_protocol_unknown */
  readonly inner = new ReasonCounter();
  /** the key log read from a pcapng Decryption Secrets Block, and how far into captureSecrets it is */
  readonly captureLog: KeyLog;
  captureGeneration = -1;
  captureBlocks = 0;
  constructor(readonly keylog: KeyLog | null, maxEntries: number) {
    super();
    this.captureLog = new KeyLog(maxEntries);
  }

  /** the capture's Decryption Secrets Blocks read since the last lookup join captureLog (all of them again after a new capture began) */
  private syncCapture(): void {
    if (this.captureGeneration !== captureSecrets.generation) {
      this.captureGeneration = captureSecrets.generation;
      this.captureBlocks = 0;
      this.captureLog.clear();
    }
    const blocks = captureSecrets.blocks;
    for (; this.captureBlocks < blocks.length; this.captureBlocks++) {
      const b = blocks[this.captureBlocks];
      if (b.type === SECRETS_TLS_KEYLOG) this.captureLog.addText(b.data.toString('utf8'));
    }
  }

  /** is there a key log to look in: a file's, a pipeline's, a capture's */
  hasKeys(fromCapture: boolean): boolean {
    if (this.keylog !== null) return true;
    if (!fromCapture) return false;
    this.syncCapture();
    return this.captureLog.size > 0;
  }

  /** the secrets of a client random: the key log's, else a capture's Decryption Secrets Blocks' */
  secrets(clientRandom: string, fromCapture: boolean): Secrets | undefined {
    const s = this.keylog?.get(clientRandom);
    if (s !== undefined || !fromCapture) return s;
    this.syncCapture();
    return this.captureLog.get(clientRandom);
  }
}

// record content types
const CCS = 20;
const ALERT = 21;
const HANDSHAKE = 22;
const APP_DATA = 23;
const HEARTBEAT = 24;
/** the longest record RFC 5246 allows (2^14 + 2048 of ciphertext) */
const MAX_RECORD = 16384 + 2048;
/** records a gap may have taken in a decrypted direction for the next one to be found again (sequence numbers tried) */
const RECORDS_LOST_MAX = 1024;
/**
 * protected records held while the key log file lacks the connection's secrets (a live
 * client writes them as it goes, perhaps after its peer's records were captured), read
 * again at each: beyond these the connection is not decrypted
 */
const HOLD_RECORDS_MAX = 16;
const HOLD_BYTES_MAX = 64 * 1024;
/** candidate records tried after a gap before that direction's decryption is given up (each costs up to RECORDS_LOST_MAX decryptions) */
const RESYNC_CANDIDATES_MAX = 16;

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
  /** the hello's random (32 bytes) */
  random: Buffer | null = null;
  /** decryption: this side's record protection once its keys are in use */
  cipher: RecordCipher | null = null;
  /** TLS 1.3: the application keys, installed after this side's Finished */
  next: RecordCipher | null = null;
  /** decrypted handshake bytes of an incomplete message (TLS 1.3) */
  dhs: Buffer = Buffer.alloc(0);
  /** after a gap: the next record (its start, its sequence number) is looked for */
  resync = false;
  /** whole candidate records that did not authenticate while looking (bounded: RESYNC_CANDIDATES_MAX) */
  resyncMisses = 0;
  /** ciphertext bytes lost since the last record decrypted (a gap, a record it cut, bytes passed over), and when */
  lostBytes = 0;
  lostSec = 0;
  lostNsec = 0;
}

/** what a decrypted connection's inner analyzer emits: its events marked as having come over TLS */
class OverTls implements Emitter {
  tls: Record<string, unknown> = {};
  constructor(private readonly out: Emitter) {}

  emit(e: Record<string, any>): void {
    const u = e.url;
    if (u !== undefined && u.scheme === 'http' && typeof u.full === 'string') {
      const host = String(u.domain).includes(':') ? `[${u.domain}]` : String(u.domain);
      const authority = `${host}${u.port !== 80 ? `:${u.port}` : ''}`;
      const rest = u.full.startsWith(`http://${authority}`) ? u.full.slice(7 + authority.length) : u.path;
      u.scheme = 'https';
      u.full = `https://${host}${u.port !== 443 ? `:${u.port}` : ''}${rest}`;
    }
    e.tls = { ...this.tls };
    this.out.emit(e as any);
  }

  anomaly(layer: string, reason: string, ep: Endpoints): void {
    this.out.anomaly?.(layer, reason, ep);
  }
}

/** the registry's protocols, for the probes of a decrypted connection without ALPN (required late: the registry imports this module) */
function registered(): readonly Protocol[] {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return (require('../registry') as typeof import('../registry')).protocols;
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
  /** decryption: 0 not tried yet, 1 on, -1 off (no key log, no keys, a suite not decrypted) */
  private decrypting = 0;
  /** the protocol negotiated by ALPN (TLS 1.3: in the EncryptedExtensions) */
  private alpn = '';
  /** the analyzer of the plaintext, once chosen; innerTried: chosen or given up */
  private inner: TcpAnalyzer | null = null;
  private innerTried = false;
  /** records waiting for their keys (HOLD_RECORDS_MAX), and why they wait */
  private held: { side: number; type: number; data: Buffer; sec: number; nsec: number }[] | null = null;
  private heldBytes = 0;
  private waitReason = '';

  constructor(
    private readonly ep: Endpoints,
    private readonly out: Emitter,
    private readonly opts: TlsOptions,
    private readonly n: TlsCounters,
    private readonly ctx: TcpContext | null = null,
  ) {}

  data(side: number, buf: Buffer, off: number, len: number, tsSec: number, tsNsec: number): void {
    const st = this.s[side];
    if ((this.done && this.decrypting <= 0 && this.held === null) || st.stopped) return;
    let b = buf.subarray(off, off + len);
    if (st.rec.length > 0) b = Buffer.concat([st.rec, b]);
    let i = 0;
    if (st.resync) {
      i = this.resync(side, b);
      if (i < 0) return;
    }
    while ((!this.done || this.decrypting > 0 || this.held !== null) && !st.stopped && i + 5 <= b.length) {
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
      this.record(side, type, b, i + 5, i + 5 + len, tsSec, tsNsec);
      i += 5 + len;
      if (!this.done) this.check();
    }
    st.rec = i < b.length && (!this.done || this.decrypting > 0 || this.held !== null) && !st.stopped ? Buffer.from(b.subarray(i)) : Buffer.alloc(0);
  }

  gap(side: number, n: number, tsSec: number, tsNsec: number): void {
    if (this.done && this.decrypting > 0 && this.s[side].cipher !== null && !this.s[side].stopped) {
      // the records' boundaries and sequence are lost with the bytes: the inner analyzer gets the gap
      // (the ciphertext's length: near enough for it), and the next record is looked for
      // (its plaintext's length is known once the next record is found: the records lost in between)
      const st = this.s[side];
      if (!st.resync) {
        st.lostSec = tsSec;
        st.lostNsec = tsNsec;
      }
      st.resync = true;
      st.lostBytes += st.rec.length + n;
      st.rec = Buffer.alloc(0);
      st.dhs = Buffer.alloc(0);
      this.n.decryptGaps++;
      return;
    }
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

  close(tsSec: number, tsNsec: number): void {
    if (this.held !== null) this.giveUpHeld();
    for (let side = 0; side < 2; side++) {
      const st = this.s[side];
      // lost up to the end: the inner analyzer gets what was lost (ciphertext's length: no record says more)
      if (st.resync && st.lostBytes > 0) this.inner?.gap(side, st.lostBytes + st.rec.length, st.lostSec, st.lostNsec);
      st.resync = false;
    }
    this.inner?.close(tsSec, tsNsec);
    if (this.done || !this.started) return;
    this.notes.push('connection closed before the handshake completed');
    this.emit();
  }

  expire(nowSec: number, nowNsec: number): void {
    this.inner?.expire(nowSec, nowNsec);
    if (this.done || !this.started) return;
    if (nowSec - this.endSec < this.opts.transactionTimeoutSec) return;
    this.notes.push('handshake not completed within the transaction timeout');
    this.n.unmatched.add('timeout');
    this.emit();
  }

  discard(): void {
    this.inner?.discard?.();
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

  private record(side: number, type: number, b: Buffer, from: number, to: number, tsSec: number, tsNsec: number): void {
    const st = this.s[side];
    if (type !== CCS && this.decrypting >= 0 && (st.encrypted || (this.tls13 && type === APP_DATA))) this.protectedRecord(side, type, b, from, to, tsSec, tsNsec);
    if (this.done) return;
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
        st.random = Buffer.from(body.subarray(2, 34));
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

  /**
   * the connection's record protection from the key log, at its first protected record;
   * false: not decrypted (counted), or (this.waitReason set) not yet: the key log file may
   * still get the secrets
   */
  private setupKeys(): boolean {
    const [c, s] = this.s;
    this.waitReason = '';
    const notDecrypted = (reason: string) => {
      if ((reason === 'no_keys' || reason === 'keys_incomplete') && this.opts.keylogFile !== '') {
        this.waitReason = reason;
        return false;
      }
      this.decrypting = -1;
      this.n.notDecrypted.add(reason);
      return false;
    };
    if (!this.n.hasKeys(this.opts.captureSecrets)) {
      // no key log at all: nothing was asked, nothing to count
      this.decrypting = -1;
      return false;
    }
    if (c.random === null || s.random === null || s.hello === null) return notDecrypted('no_hello');
    const secrets = this.n.secrets(c.random.toString('hex'), this.opts.captureSecrets);
    if (secrets === undefined) return notDecrypted('no_keys');
    const suite = suiteOf(s.hello.ciphers[0]);
    if (suite === null) return notDecrypted('unsupported_cipher');
    const version = negotiatedVersion(s.hello);
    if (version === 0x0304) {
      if (secrets.clientHandshake === null || secrets.serverHandshake === null || secrets.client0 === null || secrets.server0 === null) return notDecrypted('keys_incomplete');
      c.cipher = RecordCipher.tls13(suite, secrets.clientHandshake);
      s.cipher = RecordCipher.tls13(suite, secrets.serverHandshake);
      c.next = RecordCipher.tls13(suite, secrets.client0);
      s.next = RecordCipher.tls13(suite, secrets.server0);
    } else {
      if (secrets.master === null) return notDecrypted('keys_incomplete');
      if (version < 0x0301 || version > 0x0303) return notDecrypted('unsupported_version');
      // encrypt_then_mac (RFC 7366): both hellos carry the extension, and the suite is CBC
      const etm = suite.kind === 'cbc' && s.hello.extensions.includes(22) && (c.hello?.extensions.includes(22) ?? false);
      [c.cipher, s.cipher] = RecordCipher.tls12(suite, version, secrets.master, c.random, s.random, etm);
    }
    this.decrypting = 1;
    this.n.decrypted++;
    return true;
  }

  /** a record under the record protection: decrypted with the key log's secrets, its plaintext handed on */
  private protectedRecord(side: number, type: number, b: Buffer, from: number, to: number, tsSec: number, tsNsec: number): void {
    if (this.decrypting === 0) {
      if (!this.setupKeys()) {
        if (this.waitReason !== '') this.hold(side, type, b, from, to, tsSec, tsNsec);
        return;
      }
      if (this.held !== null) {
        // the keys came: the records that waited for them first
        const held = this.held;
        this.held = null;
        this.heldBytes = 0;
        for (const h of held) this.protectedRecord(h.side, h.type, h.data, 0, h.data.length, h.sec, h.nsec);
      }
    }
    const st = this.s[side];
    if (st.cipher === null) return;
    const cipher = st.cipher;
    const r: Opened | null = cipher.open(type, b, from, to);
    if (r === null) {
      // the record is lost (damage, or keys that are not this connection's): its plaintext becomes a gap, the next record goes on
      this.n.decryptFailed.add('auth_failed');
      this.out.anomaly?.('tls', 'record_auth_failed', this.ep);
      if (type === APP_DATA && this.inner !== null && cipher.lostLength > 0) this.inner.gap(side, cipher.lostLength, tsSec, tsNsec);
      return;
    }
    this.n.decryptedRecords++;
    this.n.decryptedBytes += r.data.length;
    if (r.type === APP_DATA) {
      if (r.data.length > 0) this.plaintext(side, r.data, tsSec, tsNsec);
    } else if (r.type === HANDSHAKE && cipher.version === 0x0304) {
      this.handshake13(side, r.data);
    } else if (r.type === ALERT && this.done) {
      // an alert after the handshake (close_notify): the event is out already
      this.n.alerts += r.data.length >> 1;
    }
  }

  /** a protected record kept (a copy) until the key log has its keys, within HOLD_RECORDS_MAX and HOLD_BYTES_MAX */
  private hold(side: number, type: number, b: Buffer, from: number, to: number, tsSec: number, tsNsec: number): void {
    const held = (this.held ??= []);
    if (held.length >= HOLD_RECORDS_MAX || this.heldBytes + (to - from) > HOLD_BYTES_MAX) {
      this.giveUpHeld();
      return;
    }
    held.push({ side, type, data: Buffer.from(b.subarray(from, to)), sec: tsSec, nsec: tsNsec });
    this.heldBytes += to - from;
  }

  /** the keys did not come in time: the connection is not decrypted, counted as why it waited */
  private giveUpHeld(): void {
    this.held = null;
    this.heldBytes = 0;
    this.decrypting = -1;
    this.n.notDecrypted.add(this.waitReason || 'no_keys');
  }

  /** TLS 1.3 handshake messages under encryption: EncryptedExtensions (ALPN), Certificate, Finished (key change), KeyUpdate */
  private handshake13(side: number, data: Buffer): void {
    const st = this.s[side];
    let hs = st.dhs.length > 0 ? Buffer.concat([st.dhs, data]) : data;
    let i = 0;
    let finished = false;
    let keyUpdate = false;
    while (i + 4 <= hs.length) {
      const mlen = (hs[i + 1] << 16) | (hs[i + 2] << 8) | hs[i + 3];
      if (mlen > this.opts.maxHandshakeBytes) {
        this.n.limits.add('handshake_too_long');
        st.dhs = Buffer.alloc(0);
        return;
      }
      if (i + 4 + mlen > hs.length) break;
      const body = hs.subarray(i + 4, i + 4 + mlen);
      switch (hs[i]) {
        case 8: // EncryptedExtensions: ALPN
          if (side === 1) this.alpn = alpnOf(body);
          break;
        case 11: // Certificate: request context, then entries with their own extensions
          if (!this.done && (this.opts.sendCertificates || this.opts.includeRawCertificates) && body.length >= 1) this.certificates(side, body.subarray(1 + body[0]), true);
          if (side === 1) st.keyExchange = true;
          break;
        case 13:
          this.certRequested = true;
          break;
        case 20:
          finished = true;
          break;
        case 24:
          keyUpdate = true;
          break;
        default:
          break;
      }
      i += 4 + mlen;
    }
    st.dhs = i < hs.length ? Buffer.from(hs.subarray(i)) : Buffer.alloc(0);
    // the keys change after the record that ends with the Finished or the KeyUpdate (RFC 8446 §5.1)
    if (finished && st.next !== null) {
      st.cipher = st.next;
      st.next = null;
    } else if (keyUpdate) st.cipher?.update();
  }

  /**
   * After a gap: the first place in b where a record header is followed by a record that
   * authenticates under a sequence number a little past the last one (RECORDS_LOST_MAX);
   * its offset, or -1 when there is none yet (the bytes that may still start one held).
   * A false header costs one decryption per sequence number tried; a true one ends it.
   */
  private resync(side: number, b: Buffer): number {
    const st = this.s[side];
    const c = st.cipher!;
    for (let p = 0; p + 5 <= b.length; p++) {
      const type = b[p];
      const len = (b[p + 3] << 8) | b[p + 4];
      if ((type !== APP_DATA && type !== ALERT && type !== HANDSHAKE) || b[p + 1] !== 3 || b[p + 2] < 1 || b[p + 2] > 4 || len > MAX_RECORD || len < 17) continue;
      if (p + 5 + len > b.length) {
        // a candidate not whole yet: wait for it (at most one record's bytes held)
        this.n.resyncSkipped += p;
        st.lostBytes += p;
        st.rec = Buffer.from(b.subarray(p));
        return -1;
      }
      const before = c.seq;
      if (c.resync(type, b, p + 5, p + 5 + len, RECORDS_LOST_MAX)) {
        st.resync = false;
        st.resyncMisses = 0;
        this.n.resynchronised++;
        this.n.resyncSkipped += p;
        // the records lost were the bytes lost: their plaintext is those less each record's header and overhead
        const lost = st.lostBytes + p - (c.seq - before) * (5 + c.overhead());
        if (lost > 0) this.inner?.gap(side, lost, st.lostSec, st.lostNsec);
        st.lostBytes = 0;
        return p;
      }
      if (++st.resyncMisses >= RESYNC_CANDIDATES_MAX) {
        // too far from where it was lost (more records than RECORDS_LOST_MAX, a key change in the gap): this direction stays lost
        this.n.decryptFailed.add('resync_gave_up');
        this.inner?.gap(side, st.lostBytes + b.length, st.lostSec, st.lostNsec);
        st.resync = false;
        st.lostBytes = 0;
        st.stopped = true;
        st.rec = Buffer.alloc(0);
        return -1;
      }
    }
    const keep = Math.min(4, b.length);
    this.n.resyncSkipped += b.length - keep;
    st.lostBytes += b.length - keep;
    st.rec = Buffer.from(b.subarray(b.length - keep));
    return -1;
  }

  /** plaintext of an application data record, to the analyzer ALPN or a probe chooses */
  private plaintext(side: number, data: Buffer, tsSec: number, tsNsec: number): void {
    if (!this.innerTried) this.openInner(side, data);
    this.inner?.data(side, data, 0, data.length, tsSec, tsNsec);
  }

  private openInner(side: number, data: Buffer): void {
    this.innerTried = true;
    if (this.alpn === '') this.alpn = this.s[1].hello?.alpn[0] ?? '';
    let name = '';
    if (this.alpn === 'h2' || (this.alpn === '' && data.length >= 14 && data.toString('latin1', 0, 14) === 'PRI * HTTP/2.0')) name = 'http2';
    else if (this.alpn === 'http/1.1' || this.alpn === 'http/1.0') name = 'http';
    else {
      for (const p of registered()) {
        if (p.name !== 'tls' && p.probe?.(data, 0, data.length, side)) {
          name = p.name;
          break;
        }
      }
    }
    if (name === '') {
      this.n.inner.add('inner_protocol_unknown');
      return;
    }
    const out = new OverTls(this.out);
    const inner = this.ctx?.open?.(name, out, false) ?? null;
    if (inner === null) {
      this.n.inner.add('inner_protocol_not_running');
      return;
    }
    const sh = this.s[1].hello;
    const vp = versionParts(sh !== null ? negotiatedVersion(sh) : 0);
    // ECS tls.* on the inner events: how they came (packetbeat's tls fields, as on the tls event)
    out.tls = { established: true, ...(vp !== null ? { version: vp.version, version_protocol: vp.protocol } : {}), cipher: nameOf(CIPHER_SUITES, sh?.ciphers[0] ?? -1), ...(this.alpn !== '' ? { next_protocol: this.alpn } : {}) };
    this.inner = inner;
    this.n.inner.add(name);
  }

  /** a Certificate message (TLS 1.2 and before: the chain in clear; TLS 1.3, decrypted: each entry followed by its extensions) */
  private certificates(side: number, b: Buffer, tls13 = false): void {
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
      // TLS 1.3: the entry's extensions (a 2-byte length)
      if (tls13) i += 2 + (i + 2 <= end ? (b[i] << 8) | b[i + 1] : 0);
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
    else if (this.alpn !== '') tls.next_protocol = this.alpn; // TLS 1.3: from the decrypted EncryptedExtensions
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

/** the protocol an EncryptedExtensions message's ALPN extension names (RFC 7301 §3.1), or '' */
function alpnOf(b: Buffer): string {
  if (b.length < 2) return '';
  const end = Math.min(b.length, 2 + ((b[0] << 8) | b[1]));
  for (let i = 2; i + 4 <= end; ) {
    const type = (b[i] << 8) | b[i + 1];
    const len = (b[i + 2] << 8) | b[i + 3];
    if (i + 4 + len > end) return '';
    // ALPN: a list length, then the one protocol the server chose
    if (type === 16 && len >= 3 && b[i + 6] + 3 <= len) return b.toString('latin1', i + 7, i + 7 + b[i + 6]);
    i += 4 + len;
  }
  return '';
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
    let keylog = opts.keylog;
    if (opts.keylogFile !== '') {
      keylog = new KeyLog(opts.maxKeylogEntries);
      keylog.load(opts.keylogFile);
    }
    const n = new TlsCounters(keylog, opts.maxKeylogEntries);
    const log = (k: KeyLog) => ({ lines: k.lines, bad_lines: k.badLines, ignored_lines: k.ignoredLines, entries: k.size, evicted: k.evicted });
    return {
      tcp: (ctx: TcpContext) => new TlsConnection(ctx.endpoints, ctx.out, opts, n, ctx),
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
        decryption: {
          connections: n.decrypted,
          records: n.decryptedRecords,
          bytes: n.decryptedBytes,
          not_decrypted: n.notDecrypted.toJSON(),
          failed: n.decryptFailed.toJSON(),
          gaps: n.decryptGaps,
          resynchronised: n.resynchronised,
          resync_skipped_bytes: n.resyncSkipped,
          inner: n.inner.toJSON(),
          ...(keylog !== null ? { keylog: log(keylog) } : {}),
          ...(n.captureLog.lines > 0 ? { capture_secrets: log(n.captureLog) } : {}),
        },
      }),
    };
  },
};
