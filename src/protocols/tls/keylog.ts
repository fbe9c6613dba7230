import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

/** bytes of the key log file read at a time */
const READ_BYTES = 4 * 1024 * 1024;

function countLines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/**
 * The NSS key log format (SSLKEYLOGFILE, as written by browsers, curl, OpenSSL, Go and
 * Node's `keylog` event): one secret a line, `LABEL <client_random hex> <secret hex>`,
 * `#` comments. TLS 1.2 and before: `CLIENT_RANDOM` and the master secret (48 bytes);
 * TLS 1.3: the handshake and first application traffic secrets of each side. Other
 * labels (EXPORTER_SECRET, CLIENT_EARLY_TRAFFIC_SECRET, RSA ...) are counted as ignored.
 */
export interface Secrets {
  /** TLS ≤ 1.2 master secret */
  master: Buffer | null;
  clientHandshake: Buffer | null;
  serverHandshake: Buffer | null;
  client0: Buffer | null;
  server0: Buffer | null;
}

const LABELS: Record<string, keyof Secrets> = {
  CLIENT_RANDOM: 'master',
  CLIENT_HANDSHAKE_TRAFFIC_SECRET: 'clientHandshake',
  SERVER_HANDSHAKE_TRAFFIC_SECRET: 'serverHandshake',
  CLIENT_TRAFFIC_SECRET_0: 'client0',
  SERVER_TRAFFIC_SECRET_0: 'server0',
};

const HEX = /^[0-9a-fA-F]+$/;

/** default bound on the client randoms held (each up to five secrets of 48 bytes) */
export const KEYLOG_MAX_ENTRIES = 100_000;

export class KeyLogError extends Error {}

/**
 * Secrets by client random (lower-case hex), from key log text. Bounded: beyond
 * `maxEntries` client randoms the oldest is forgotten (counted). A file named with
 * `load` is read again from where it stopped when a lookup misses and it grew (a
 * live capture whose client keeps writing its key log).
 */
export class KeyLog {
  private readonly map = new Map<string, Secrets>();
  lines = 0;
  badLines = 0;
  ignoredLines = 0;
  evicted = 0;
  private file = '';
  private fileOffset = 0;
  private partial = '';
  /** lines of the file taken so far (for the number of a bad line) */
  private lineNo = 0;
  private readonly decoder = new StringDecoder('utf8');

  constructor(private readonly maxEntries = KEYLOG_MAX_ENTRIES) {}

  /** forget every secret (a capture's secrets when the next capture is read) */
  clear(): void {
    this.map.clear();
  }

  get size(): number {
    return this.map.size;
  }

  /**
   * Read a key log file. A file with lines but not one valid secret line is an
   * error naming the file and its first bad line (a wrong file given); bad lines among
   * good ones are counted.
   */
  load(file: string): void {
    this.file = file;
    const bad = this.readMore();
    if (this.lines > 0 && this.map.size === 0 && this.ignoredLines === 0) {
      throw new KeyLogError(`${file}: line ${bad}: not a key log line (LABEL <client_random hex> <secret hex>): no valid line in the file`);
    }
  }

  /** add key log text (a file's, a pcapng Decryption Secrets Block's); returns the number of the first bad line, or 0 */
  addText(text: string): number {
    let firstBad = 0;
    let n = 0;
    for (const raw of text.split('\n')) {
      n++;
      if (this.addLine(raw) === false && firstBad === 0) firstBad = n;
    }
    return firstBad;
  }

  /** true: a secret taken; false: a bad line; null: blank, comment or an ignored label */
  addLine(raw: string): boolean | null {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return null;
    this.lines++;
    const parts = line.split(/\s+/);
    if (parts.length !== 3 || !HEX.test(parts[1]) || !HEX.test(parts[2]) || parts[2].length % 2 !== 0) {
      this.badLines++;
      return false;
    }
    const field = LABELS[parts[0]];
    if (field === undefined) {
      if (/^[A-Z0-9_]+$/.test(parts[0])) {
        this.ignoredLines++;
        return null;
      }
      this.badLines++;
      return false;
    }
    if (parts[1].length !== 64 || (field === 'master' && parts[2].length !== 96) || parts[2].length < 32 || parts[2].length > 128) {
      this.badLines++;
      return false;
    }
    const key = parts[1].toLowerCase();
    let s = this.map.get(key);
    if (s === undefined) {
      if (this.map.size >= this.maxEntries) {
        this.map.delete(this.map.keys().next().value!);
        this.evicted++;
      }
      s = { master: null, clientHandshake: null, serverHandshake: null, client0: null, server0: null };
      this.map.set(key, s);
    }
    s[field] = Buffer.from(parts[2], 'hex');
    return true;
  }

  /** the secrets of a connection by its client random (hex); a file that grew is read on a miss */
  get(clientRandom: string): Secrets | undefined {
    const s = this.map.get(clientRandom);
    if (s !== undefined || this.file === '') return s;
    this.readMore();
    return this.map.get(clientRandom);
  }

  /**
   * read the file from where the last read stopped, 4 MiB at a time; returns the number
   * (in the file) of this read's first bad line, or 0. The first read takes the whole file; later ones (the file grows
   * under a live capture) keep a last line without its newline for the next read.
   */
  private readMore(): number {
    let fd: number;
    try {
      fd = openSync(this.file, 'r');
    } catch (err) {
      if (this.fileOffset > 0) return 0; // read once: a file rotated away keeps what it gave
      throw new KeyLogError(`${this.file}: cannot open the key log: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    try {
      const size = fstatSync(fd).size;
      const first = this.fileOffset === 0;
      let firstBad = 0;
      let lineBase = this.lineNo;
      // a piece at a time: a key log of months of browsing can be larger than a string may be
      const buf = Buffer.allocUnsafe(Math.min(READ_BYTES, Math.max(0, size - this.fileOffset)));
      while (this.fileOffset < size) {
        const got = readSync(fd, buf, 0, Math.min(buf.length, size - this.fileOffset), this.fileOffset);
        if (got === 0) break;
        this.fileOffset += got;
        let text = this.partial + this.decoder.write(buf.subarray(0, got));
        // the last line without its newline waits for the next piece (or, at the end of the first read, is taken)
        const cut = first && this.fileOffset >= size ? text.length : text.lastIndexOf('\n') + 1;
        this.partial = text.slice(cut);
        text = text.slice(0, cut);
        const bad = this.addText(text);
        if (bad !== 0 && firstBad === 0) firstBad = lineBase + bad;
        lineBase += countLines(text);
      }
      this.lineNo = lineBase;
      return firstBad;
    } finally {
      closeSync(fd);
    }
  }
}
