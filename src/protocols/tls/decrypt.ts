import { createDecipheriv, createHmac, timingSafeEqual } from 'node:crypto';
import { CIPHER_SUITES } from './ciphers';

/**
 * Record protection of the common suites, with Node's crypto: key derivation from a
 * key log's secrets (TLS 1.0-1.2 PRF key expansion, RFC 2246 §5 / RFC 5246 §5 and
 * §6.3; TLS 1.3 HKDF-Expand-Label, RFC 8446 §7.1 and §7.3) and the record decryption
 * of AES-GCM (RFC 5288), CHACHA20-POLY1305 (RFC 7905), AES-CBC with HMAC (RFC 5246
 * §6.2.3.2, encrypt_then_mac RFC 7366) and TLS 1.3's AEAD records (RFC 8446 §5.2).
 */
export interface Suite {
  /** IANA name */
  name: string;
  kind: 'gcm' | 'chacha' | 'cbc';
  keyLen: number;
  /** bytes of the IV from the key block (GCM's salt: 4; ChaCha: 12; CBC: 16) */
  ivLen: number;
  /** HMAC of CBC suites ('' for AEAD) */
  mac: '' | 'sha1' | 'sha256' | 'sha384';
  macLen: number;
  /** the hash of TLS 1.2's PRF and TLS 1.3's HKDF */
  hash: 'sha256' | 'sha384';
}

const SUITE_NAME = /(?:_WITH_|^TLS_)(?:AES_(128|256)_(GCM|CBC)|(CHACHA20_POLY1305))_(SHA384|SHA256|SHA)$/;
const suiteCache = new Map<number, Suite | null>();

/** the suite's record protection, or null for one pktflow does not decrypt (CCM, 3DES, Camellia, NULL, RC4 ...) */
export function suiteOf(id: number): Suite | null {
  const hit = suiteCache.get(id);
  if (hit !== undefined) return hit;
  const name = CIPHER_SUITES.get(id) ?? '';
  const m = SUITE_NAME.exec(name);
  let s: Suite | null = null;
  if (m !== null && !name.includes('_PSK_') && !name.includes('anon')) {
    const hash = m[4] === 'SHA384' ? 'sha384' : 'sha256';
    if (m[3] !== undefined) s = { name, kind: 'chacha', keyLen: 32, ivLen: 12, mac: '', macLen: 0, hash };
    else if (m[2] === 'GCM') s = { name, kind: 'gcm', keyLen: +m[1] / 8, ivLen: 4, mac: '', macLen: 0, hash };
    else {
      const mac = m[4] === 'SHA' ? 'sha1' : m[4] === 'SHA256' ? 'sha256' : 'sha384';
      s = { name, kind: 'cbc', keyLen: +m[1] / 8, ivLen: 16, mac, macLen: mac === 'sha1' ? 20 : mac === 'sha256' ? 32 : 48, hash };
    }
  }
  suiteCache.set(id, s);
  return s;
}

function pHash(hash: string, secret: Buffer, seed: Buffer, n: number): Buffer {
  const out: Buffer[] = [];
  let have = 0;
  let a = seed;
  while (have < n) {
    a = createHmac(hash, secret).update(a).digest();
    const b = createHmac(hash, secret).update(a).update(seed).digest();
    out.push(b);
    have += b.length;
  }
  return Buffer.concat(out).subarray(0, n);
}

/** TLS 1.2's PRF (RFC 5246 §5) with the suite's hash */
export function prf12(hash: string, secret: Buffer, label: string, seed: Buffer, n: number): Buffer {
  return pHash(hash, secret, Buffer.concat([Buffer.from(label, 'latin1'), seed]), n);
}

/** TLS 1.0 and 1.1's PRF (RFC 2246 §5): P_MD5 of the secret's first half XOR P_SHA1 of its second */
export function prf10(secret: Buffer, label: string, seed: Buffer, n: number): Buffer {
  const half = Math.ceil(secret.length / 2);
  const ls = Buffer.concat([Buffer.from(label, 'latin1'), seed]);
  const a = pHash('md5', secret.subarray(0, half), ls, n);
  const b = pHash('sha1', secret.subarray(secret.length - half), ls, n);
  for (let i = 0; i < n; i++) a[i] ^= b[i];
  return a;
}

/** HKDF-Expand (RFC 5869 §2.3) */
export function hkdfExpand(hash: string, prk: Buffer, info: Buffer, n: number): Buffer {
  const out: Buffer[] = [];
  let t = Buffer.alloc(0);
  let have = 0;
  for (let i = 1; have < n; i++) {
    t = createHmac(hash, prk).update(t).update(info).update(Buffer.from([i])).digest();
    out.push(t);
    have += t.length;
  }
  return Buffer.concat(out).subarray(0, n);
}

/** HKDF-Expand-Label (RFC 8446 §7.1) */
export function hkdfExpandLabel(hash: string, secret: Buffer, label: string, context: Buffer, n: number): Buffer {
  const l = Buffer.from(`tls13 ${label}`, 'latin1');
  const info = Buffer.concat([Buffer.from([n >> 8, n & 0xff, l.length]), l, Buffer.from([context.length]), context]);
  return hkdfExpand(hash, secret, info, n);
}

/** what decrypting a record gave: its content type (TLS 1.3: the inner one) and plaintext; null: it did not authenticate */
export interface Opened {
  type: number;
  data: Buffer;
}

const seqBuf = (seq: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(Math.floor(seq / 0x100000000), 0);
  b.writeUInt32BE(seq >>> 0, 4);
  return b;
};

function xorNonce(iv: Buffer, seq: number): Buffer {
  const n = Buffer.from(iv);
  const s = seqBuf(seq);
  for (let i = 0; i < 8; i++) n[n.length - 8 + i] ^= s[i];
  return n;
}

function aead(kind: 'gcm' | 'chacha', key: Buffer, nonce: Buffer, aad: Buffer, ct: Buffer, tag: Buffer): Buffer | null {
  const algo = kind === 'chacha' ? 'chacha20-poly1305' : `aes-${key.length * 8}-gcm`;
  try {
    const d = createDecipheriv(algo as 'aes-128-gcm', key, nonce, { authTagLength: 16 });
    d.setAAD(aad);
    d.setAuthTag(tag);
    const a = d.update(ct);
    const b = d.final();
    return b.length === 0 ? a : Buffer.concat([a, b]);
  } catch {
    return null;
  }
}

/** One direction's record protection: keys, sequence number (RFC 5246 §6.1: from 0 at each key change). */
export class RecordCipher {
  seq = 0;
  /**
   * after a record that did not authenticate: the length its plaintext had, exact where
   * the record tells (AEAD: the ciphertext's; CBC: its padding, when the damage spared it)
   */
  lostLength = 0;
  constructor(
    readonly suite: Suite,
    /** 0x0301-0x0303, or 0x0304 */
    readonly version: number,
    private key: Buffer,
    private iv: Buffer,
    private readonly macKey: Buffer,
    private readonly etm: boolean,
    /** TLS 1.3: the traffic secret the keys came from (for KeyUpdate) */
    private secret: Buffer | null,
  ) {}

  /** TLS 1.3 keys from a traffic secret */
  static tls13(suite: Suite, secret: Buffer): RecordCipher {
    const key = hkdfExpandLabel(suite.hash, secret, 'key', Buffer.alloc(0), suite.keyLen);
    const iv = hkdfExpandLabel(suite.hash, secret, 'iv', Buffer.alloc(0), 12);
    return new RecordCipher(suite, 0x0304, key, iv, Buffer.alloc(0), false, secret);
  }

  /** TLS 1.0-1.2 keys of both directions from the master secret (client's first) */
  static tls12(suite: Suite, version: number, master: Buffer, clientRandom: Buffer, serverRandom: Buffer, etm: boolean): [RecordCipher, RecordCipher] {
    const mac = suite.macLen;
    const k = suite.keyLen;
    const iv = suite.ivLen;
    const n = 2 * (mac + k + iv);
    const seed = Buffer.concat([serverRandom, clientRandom]);
    const kb = version >= 0x0303 ? prf12(suite.hash, master, 'key expansion', seed, n) : prf10(master, 'key expansion', seed, n);
    let o = 0;
    const take = (l: number) => kb.subarray(o, (o += l));
    const cMac = take(mac);
    const sMac = take(mac);
    const cKey = take(k);
    const sKey = take(k);
    const cIv = take(iv);
    const sIv = take(iv);
    return [new RecordCipher(suite, version, cKey, cIv, cMac, etm, null), new RecordCipher(suite, version, sKey, sIv, sMac, etm, null)];
  }

  /** TLS 1.3 KeyUpdate (RFC 8446 §7.2): the next traffic secret's keys, sequence from 0 */
  update(): void {
    if (this.secret === null) return;
    const h = this.suite.hash;
    this.secret = hkdfExpandLabel(h, this.secret, 'traffic upd', Buffer.alloc(0), h === 'sha384' ? 48 : 32);
    this.key = hkdfExpandLabel(h, this.secret, 'key', Buffer.alloc(0), this.suite.keyLen);
    this.iv = hkdfExpandLabel(h, this.secret, 'iv', Buffer.alloc(0), 12);
    this.seq = 0;
  }

  /** bytes a record's body has beyond its plaintext: exact for AEAD (TLS 1.3: without padding), the IV, MAC and an average padding for CBC */
  overhead(): number {
    const s = this.suite;
    if (this.version === 0x0304) return 17;
    if (s.kind === 'gcm') return 24;
    if (s.kind === 'chacha') return 16;
    return (this.version >= 0x0302 ? 16 : 0) + s.macLen + 8;
  }

  /**
   * After a gap: is b[from, to) a record of this direction whose sequence number is at
   * most `maxLost` past the next one expected? Yes: the sequence number is set to it (the
   * record not consumed) and true. TLS 1.2 GCM records carry their nonce, which the
   * usual implementations (OpenSSL, NSS, Go) make the sequence number: tried first.
   * TLS 1.0's CBC chains its IV across records: never found again.
   */
  resync(type: number, b: Buffer, from: number, to: number, maxLost: number): boolean {
    if (this.suite.kind === 'cbc' && this.version < 0x0302) return false;
    const first = this.seq;
    const tries: number[] = [];
    if (this.suite.kind === 'gcm' && this.version !== 0x0304 && to - from >= 8) {
      const hint = b.readUInt32BE(from) * 0x100000000 + b.readUInt32BE(from + 4);
      if (hint >= first && hint - first <= 1 << 24) tries.push(hint);
    }
    for (let s = first; s <= first + maxLost; s++) tries.push(s);
    for (const s of tries) {
      this.seq = s;
      if (this.open(type, b, from, to) !== null) {
        this.seq = s;
        return true;
      }
    }
    this.seq = first;
    return false;
  }

  /** decrypt one record's body b[from, to) of content type `type`; the sequence number moves on either way */
  open(type: number, b: Buffer, from: number, to: number): Opened | null {
    const seq = this.seq++;
    const body = b.subarray(from, to);
    this.lostLength = Math.max(0, body.length - this.overhead());
    if (this.version === 0x0304) return this.open13(seq, body);
    const s = this.suite;
    const hdr = (len: number) => {
      const h = Buffer.alloc(13);
      seqBuf(seq).copy(h, 0);
      h[8] = type;
      h[9] = this.version >> 8;
      h[10] = this.version & 0xff;
      h[11] = len >> 8;
      h[12] = len & 0xff;
      return h;
    };
    if (s.kind === 'gcm') {
      if (body.length < 8 + 16) return null;
      const nonce = Buffer.concat([this.iv, body.subarray(0, 8)]);
      const ct = body.subarray(8, body.length - 16);
      const pt = aead('gcm', this.key, nonce, hdr(ct.length), ct, body.subarray(body.length - 16));
      return pt === null ? null : { type, data: pt };
    }
    if (s.kind === 'chacha') {
      if (body.length < 16) return null;
      const ct = body.subarray(0, body.length - 16);
      const pt = aead('chacha', this.key, xorNonce(this.iv, seq), hdr(ct.length), ct, body.subarray(body.length - 16));
      return pt === null ? null : { type, data: pt };
    }
    return this.openCbc(type, body, hdr);
  }

  private openCbc(type: number, body: Buffer, hdr: (len: number) => Buffer): Opened | null {
    const s = this.suite;
    const explicitIv = this.version >= 0x0302;
    let enc = body;
    let macOk = true;
    if (this.etm) {
      // encrypt_then_mac: the MAC covers the IV and the ciphertext, and comes after them
      if (body.length < s.macLen + 16) return null;
      enc = body.subarray(0, body.length - s.macLen);
      const want = createHmac(s.mac, this.macKey).update(hdr(enc.length)).update(enc).digest();
      // not authentic: decrypted all the same, for the plaintext's length (the padding)
      macOk = timingSafeEqual(want, body.subarray(enc.length));
    }
    const ivLen = explicitIv ? 16 : 0;
    if (enc.length < ivLen + 16 || (enc.length - ivLen) % 16 !== 0) return null;
    const iv = explicitIv ? enc.subarray(0, 16) : this.iv;
    const ct = enc.subarray(ivLen);
    let pt: Buffer;
    try {
      const d = createDecipheriv(`aes-${s.keyLen * 8}-cbc`, this.key, iv);
      d.setAutoPadding(false);
      pt = Buffer.concat([d.update(ct), d.final()]);
    } catch {
      return null;
    }
    // TLS 1.0: the next record's IV is this one's last ciphertext block
    if (!explicitIv) this.iv = Buffer.from(ct.subarray(ct.length - 16));
    const pad = pt[pt.length - 1];
    const macLen = this.etm ? 0 : s.macLen;
    if (pad + 1 + macLen > pt.length) return null;
    for (let i = pt.length - 1 - pad; i < pt.length - 1; i++) if (pt[i] !== pad) return null;
    const end = pt.length - 1 - pad - macLen;
    this.lostLength = end;
    if (!macOk) return null;
    const content = pt.subarray(0, end);
    if (!this.etm) {
      const want = createHmac(s.mac, this.macKey).update(hdr(content.length)).update(content).digest();
      if (!timingSafeEqual(want, pt.subarray(end, end + macLen))) return null;
    }
    return { type, data: content };
  }

  private open13(seq: number, body: Buffer): Opened | null {
    if (body.length < 17) return null;
    const aad = Buffer.from([23, 3, 3, body.length >> 8, body.length & 0xff]);
    const ct = body.subarray(0, body.length - 16);
    const pt = aead(this.suite.kind === 'chacha' ? 'chacha' : 'gcm', this.key, xorNonce(this.iv, seq), aad, ct, body.subarray(body.length - 16));
    if (pt === null) return null;
    // TLSInnerPlaintext: content, the real type, zero padding
    let i = pt.length - 1;
    while (i >= 0 && pt[i] === 0) i--;
    if (i < 0) return null;
    return { type: pt[i], data: pt.subarray(0, i) };
  }
}
