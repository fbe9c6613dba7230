import { makeFrame, MAX_TIME_SEC, type Frame } from '../core/frame';
import { CaptureFileError, MAX_RECORD_BYTES } from './errors';
import { captureSecrets } from './secrets';

const SHB = 0x0a0d0d0a;
const IDB = 0x00000001;
const PB_OBSOLETE = 0x00000002;
const SPB = 0x00000003;
const EPB = 0x00000006;
const DSB = 0x0000000a;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
/** a block larger than this is taken for damage (largest packet plus generous options) */
const MAX_BLOCK = MAX_RECORD_BYTES + 65_536;

const OPT_END = 0;
const OPT_IF_TSRESOL = 9;
const OPT_IF_TSOFFSET = 14;

interface Iface {
  linkType: number;
  snapLen: number;
  /** timestamp units per second */
  unitsPerSec: number;
  /** units are a power of ten ≤ 1e9 (the usual case: exact Number arithmetic below 2^53) */
  decimal: boolean;
  tsOffsetSec: number;
}

/**
 * pcapng (draft-ietf-opsawg-pcapng) block reader: section header, interface
 * description, enhanced, simple and obsolete packet blocks; every other block type is
 * skipped by its length. Each section has its own byte order and its own interfaces,
 * each interface its own link type and timestamp resolution.
 */
export class PcapngReader {
  private pending: Buffer | null = null;
  /** file offset of pending[0] */
  private base = 0;
  private le = true;
  private sectionSeen = false;
  private ifaces: Iface[] = [];
  private lastSec = 0;
  private lastNsec = 0;
  private error: CaptureFileError | null = null;
  frames = 0;
  bytes = 0;
  skippedBlocks = 0;
  /** Decryption Secrets Blocks read (their secrets go to captureSecrets, for the analyzers) */
  secretsBlocks = 0;

  constructor(private readonly file: string) {}

  get failed(): CaptureFileError | null {
    return this.error;
  }

  push(chunk: Buffer): Frame[] {
    const out: Frame[] = [];
    if (this.error) return out;
    let buf: Buffer;
    if (this.pending === null) buf = chunk;
    else buf = Buffer.concat([this.pending, chunk]);
    let off = 0;
    while (buf.length - off >= 12) {
      const type = this.sectionSeen ? this.u32(buf, off) : buf.readUInt32BE(off);
      if (type === SHB) {
        // the section's byte order decides how its length reads
        const bom = buf.readUInt32LE(off + 8);
        if (bom === BYTE_ORDER_MAGIC) this.le = true;
        else if (bom === 0x4d3c2b1a) this.le = false;
        else {
          this.fail(this.base + off, `bad byte-order magic 0x${buf.readUInt32BE(off + 8).toString(16)} in section header`);
          break;
        }
      } else if (!this.sectionSeen) {
        this.fail(this.base + off, 'not a pcapng section header');
        break;
      }
      const len = this.u32(buf, off + 4);
      if (len < 12 || len % 4 !== 0 || len > MAX_BLOCK) {
        this.fail(this.base + off, `bad block length ${len} (block type 0x${type.toString(16)})`);
        break;
      }
      if (buf.length - off < len) break; // wait for the rest of the block
      if (this.u32(buf, off + len - 4) !== len) {
        this.fail(this.base + off, `block trailing length ${this.u32(buf, off + len - 4)} differs from leading length ${len}`);
        break;
      }
      if (!this.block(buf, off, type, len, out)) break;
      off += len;
    }
    if (this.error) {
      this.pending = null;
      return out;
    }
    if (off === buf.length) {
      this.pending = null;
    } else {
      // keep the unfinished block; copied so the big chunk it came from can be freed
      this.pending = off === 0 ? buf : Buffer.from(buf.subarray(off));
    }
    this.base += off;
    return out;
  }

  end(): void {
    if (this.error) throw this.error;
    if (!this.sectionSeen) throw new CaptureFileError(this.file, this.base, 'file ends before the first section header block');
    if (this.pending !== null && this.pending.length > 0) {
      const have = this.pending.length;
      const want = have >= 8 ? this.u32(this.pending, 4) : -1;
      throw new CaptureFileError(
        this.file,
        this.base,
        want > 0 ? `file ends inside a block (${want} bytes long, ${have} present)` : `file ends inside a block header (${have} bytes present)`,
      );
    }
  }

  private u32(b: Buffer, o: number): number {
    return this.le ? b.readUInt32LE(o) : b.readUInt32BE(o);
  }

  private u16(b: Buffer, o: number): number {
    return this.le ? b.readUInt16LE(o) : b.readUInt16BE(o);
  }

  private fail(offset: number, reason: string): void {
    if (!this.error) this.error = new CaptureFileError(this.file, offset, reason);
  }

  /** handle one complete block; false on a fatal error */
  private block(buf: Buffer, off: number, type: number, len: number, out: Frame[]): boolean {
    switch (type) {
      case SHB: {
        const major = this.u16(buf, off + 12);
        if (major !== 1) {
          this.fail(this.base + off, `unsupported pcapng version ${major}.${this.u16(buf, off + 14)}`);
          return false;
        }
        this.sectionSeen = true;
        this.ifaces = [];
        return true;
      }
      case IDB: {
        if (len < 20) {
          this.fail(this.base + off, `interface description block too short (${len} bytes)`);
          return false;
        }
        const iface: Iface = { linkType: this.u16(buf, off + 8), snapLen: this.u32(buf, off + 12), unitsPerSec: 1e6, decimal: true, tsOffsetSec: 0 };
        this.options(buf, off + 16, off + len - 4, (code, o, l) => {
          if (code === OPT_IF_TSRESOL && l >= 1) {
            const v = buf[o];
            if (v & 0x80) {
              iface.unitsPerSec = 2 ** (v & 0x7f);
              iface.decimal = false;
            } else {
              iface.unitsPerSec = 10 ** v;
              iface.decimal = v <= 9;
            }
          } else if (code === OPT_IF_TSOFFSET && l >= 8) {
            iface.tsOffsetSec = Number(this.le ? buf.readBigInt64LE(o) : buf.readBigInt64BE(o));
          }
        });
        this.ifaces.push(iface);
        return true;
      }
      case EPB:
      case PB_OBSOLETE: {
        const ifIndex = type === EPB ? this.u32(buf, off + 8) : this.u16(buf, off + 8);
        const capLen = this.u32(buf, off + 20);
        const origLen = this.u32(buf, off + 24);
        if (28 + capLen + 4 > len) {
          this.fail(this.base + off, `packet block captured length ${capLen} exceeds its block (${len} bytes)`);
          return false;
        }
        const iface = this.ifaces[ifIndex];
        if (iface === undefined) {
          this.fail(this.base + off, `packet block names interface ${ifIndex}, but the section describes ${this.ifaces.length}`);
          return false;
        }
        // a time outside the years 1970-9999 (a damaged timestamp or resolution) makes the
        // frame's time -1, which the decode stage replaces (timeValid); the block is sound
        const good = this.setTime(iface, this.u32(buf, off + 12), this.u32(buf, off + 16));
        out.push(makeFrame(good ? this.lastSec : -1, good ? this.lastNsec : 0, iface.linkType, origLen, ifIndex, buf.subarray(off + 28, off + 28 + capLen)));
        this.frames++;
        this.bytes += capLen;
        return true;
      }
      case SPB: {
        const iface = this.ifaces[0];
        if (iface === undefined) {
          this.fail(this.base + off, 'simple packet block before any interface description');
          return false;
        }
        const origLen = this.u32(buf, off + 8);
        let capLen = Math.min(origLen, len - 16);
        if (iface.snapLen > 0) capLen = Math.min(capLen, iface.snapLen);
        // a simple packet block has no timestamp: it takes the last one seen
        out.push(makeFrame(this.lastSec, this.lastNsec, iface.linkType, origLen, 0, buf.subarray(off + 12, off + 12 + capLen)));
        this.frames++;
        this.bytes += capLen;
        return true;
      }
      case DSB: {
        // secrets type, secrets length, the secrets (draft-ietf-opsawg-pcapng §4.7)
        const n = len >= 20 ? this.u32(buf, off + 12) : -1;
        if (n < 0 || 16 + n + 4 > len) {
          this.skippedBlocks++;
          return true;
        }
        captureSecrets.add(this.u32(buf, off + 8), buf.subarray(off + 16, off + 16 + n));
        this.secretsBlocks++;
        return true;
      }
      default:
        this.skippedBlocks++;
        return true;
    }
  }

  /** false, the last time left as it was, when the time is outside the years 1970-9999 (a damaged timestamp or resolution) */
  private setTime(iface: Iface, high: number, low: number): boolean {
    const sec0 = this.lastSec;
    const nsec0 = this.lastNsec;
    const u = iface.unitsPerSec;
    if (iface.decimal && high < 0x200000) {
      // below 2^53: exact in a Number
      const ts = high * 4294967296 + low;
      const sec = Math.floor(ts / u);
      this.lastSec = sec + iface.tsOffsetSec;
      this.lastNsec = (ts - sec * u) * (1e9 / u);
    } else {
      const ts = (BigInt(high) << 32n) | BigInt(low);
      const ub = BigInt(u);
      const sec = ts / ub;
      this.lastSec = Number(sec) + iface.tsOffsetSec;
      this.lastNsec = Number(((ts - sec * ub) * 1_000_000_000n) / ub);
    }
    this.lastNsec = Math.floor(this.lastNsec);
    if (this.lastSec >= 0 && this.lastSec <= MAX_TIME_SEC) return true;
    this.lastSec = sec0;
    this.lastNsec = nsec0;
    return false;
  }

  private options(buf: Buffer, from: number, to: number, each: (code: number, off: number, len: number) => void): void {
    let o = from;
    while (o + 4 <= to) {
      const code = this.u16(buf, o);
      const l = this.u16(buf, o + 2);
      if (code === OPT_END || o + 4 + l > to) return;
      each(code, o + 4, l);
      o += 4 + ((l + 3) & ~3);
    }
  }
}
