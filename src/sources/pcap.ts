/// <reference path="../types/pcap-parser.d.ts" />
import { EventEmitter } from 'node:events';
import * as pcapParser from 'pcap-parser';
import { makeFrame, type Frame } from '../core/frame';
import { CaptureFileError, MAX_RECORD_BYTES } from './errors';

const GLOBAL_HEADER = 24;
const RECORD_HEADER = 16;

/**
 * Classic libpcap files. pcap-parser reads the file header (magic number, version, link
 * type; its errors for a file that is not pcap 2.4); the records are read here, in a
 * loop over each chunk. pcap-parser's own record path costs per record three events,
 * two header objects, three Buffer slices and four method lookups by built name, and it
 * copies every chunk into a new buffer: 9 % of a full run's profile, against about 1 %
 * for this loop (docs/performance.md), whose frames are views of the chunk read and which copies
 * only a record cut by a chunk's end. Around it: the nanosecond magic (the fraction
 * then read as nanoseconds), a bound on the record length (a damaged length would make
 * a reader buffer the rest of the file), and a report of where a cut-short file ends.
 */
export class PcapReader {
  private batch: Frame[] = [];
  private linkType = 1;
  private nsResolution = false;
  private littleEndian = true;
  /** the file header, until pcap-parser has read it */
  private head: Buffer | null = null;
  private fed = 0;
  /** offset of the first byte not yet turned into a frame */
  private consumed = 0;
  /** a record cut by the end of a chunk: its bytes so far (header first), and how many it has */
  private carry: Buffer | null = null;
  private carried = 0;
  private pendingCapLen = -1;
  private error: CaptureFileError | null = null;
  frames = 0;
  bytes = 0;

  constructor(private readonly file: string) {}

  /** feed one chunk; returns the frames it completed */
  push(chunk: Buffer): Frame[] {
    if (this.error) return this.take();
    this.fed += chunk.length;
    let off = 0;
    if (this.consumed < GLOBAL_HEADER) {
      this.head = this.head === null ? chunk : Buffer.concat([this.head, chunk]);
      if (this.head.length < GLOBAL_HEADER) return this.take();
      if (!this.fileHeader(this.head)) return this.take();
      off = GLOBAL_HEADER - (this.head.length - chunk.length);
      this.head = null;
    }
    if (this.carry !== null) off = this.fillCarry(chunk, off);
    if (off >= 0) this.records(chunk, off);
    return this.take();
  }

  /** pcap-parser reads the 24-byte file header; false after an error */
  private fileHeader(head: Buffer): boolean {
    const bytes = Buffer.from(head.subarray(0, GLOBAL_HEADER));
    const magic = bytes.readUInt32BE(0);
    // the nanosecond magic, which pcap-parser does not know, is given as the microsecond one
    if (magic === 0xa1b23c4d || magic === 0x4d3cb2a1) {
      this.nsResolution = true;
      bytes.writeUInt32BE(magic === 0xa1b23c4d ? 0xa1b2c3d4 : 0xd4c3b2a1, 0);
    }
    const feed = new EventEmitter() as EventEmitter & { pause(): void; resume(): void };
    feed.pause = () => {};
    feed.resume = () => {};
    const parser = pcapParser.parse(feed as any) as unknown as EventEmitter;
    parser.on('globalHeader', (h: { linkLayerType: number }) => {
      // the upper bits of the field carry FCS information, not the link type
      this.linkType = h.linkLayerType & 0xffff;
      this.consumed = GLOBAL_HEADER;
    });
    parser.on('error', (err: Error) => this.fail(0, err.message));
    feed.emit('data', bytes);
    this.littleEndian = bytes.readUInt32BE(0) === 0xd4c3b2a1;
    return this.error === null && this.consumed === GLOBAL_HEADER;
  }

  private capLen(b: Buffer, at: number): number {
    return this.littleEndian ? b.readUInt32LE(at + 8) : b.readUInt32BE(at + 8);
  }

  /** a record whose header says `capLen` at `at`: false (and the reader failed) if it is too long */
  private sound(capLen: number): boolean {
    if (capLen <= MAX_RECORD_BYTES) return true;
    this.fail(this.consumed, `packet record length ${capLen} exceeds the maximum ${MAX_RECORD_BYTES}`);
    return false;
  }

  /** whole records of chunk from off; the rest is carried to the next chunk */
  private records(chunk: Buffer, off: number): void {
    const n = chunk.length;
    while (off + RECORD_HEADER <= n) {
      const capLen = this.capLen(chunk, off);
      if (!this.sound(capLen)) return;
      const end = off + RECORD_HEADER + capLen;
      if (end > n) break;
      this.frame(chunk, off, chunk.subarray(off + RECORD_HEADER, end));
      off = end;
    }
    if (off < n) {
      const rest = n - off;
      this.pendingCapLen = rest >= RECORD_HEADER ? this.capLen(chunk, off) : -1;
      this.carry = Buffer.allocUnsafe(this.pendingCapLen >= 0 ? RECORD_HEADER + this.pendingCapLen : RECORD_HEADER);
      chunk.copy(this.carry, 0, off, n);
      this.carried = rest;
    }
  }

  /** completes the carried record from chunk[off...]; the offset after it, -1 if the chunk ended first */
  private fillCarry(chunk: Buffer, off: number): number {
    let carry = this.carry!;
    const take = (want: number): boolean => {
      const k = Math.min(want - this.carried, chunk.length - off);
      chunk.copy(carry, this.carried, off, off + k);
      this.carried += k;
      off += k;
      return this.carried === want;
    };
    if (this.carried < RECORD_HEADER) {
      if (!take(RECORD_HEADER)) return -1;
      const capLen = this.capLen(carry, 0);
      if (!this.sound(capLen)) return -1;
      this.pendingCapLen = capLen;
      const whole = Buffer.allocUnsafe(RECORD_HEADER + capLen);
      carry.copy(whole, 0, 0, RECORD_HEADER);
      this.carry = carry = whole;
    }
    if (!take(carry.length)) return -1;
    this.carry = null;
    this.carried = 0;
    this.frame(carry, 0, carry.subarray(RECORD_HEADER));
    return off;
  }

  private frame(b: Buffer, at: number, data: Buffer): void {
    const le = this.littleEndian;
    const sec = le ? b.readUInt32LE(at) : b.readUInt32BE(at);
    const frac = le ? b.readUInt32LE(at + 4) : b.readUInt32BE(at + 4);
    const origLen = le ? b.readUInt32LE(at + 12) : b.readUInt32BE(at + 12);
    // a fraction past a second (a damaged byte) is passed on as it is: the frame is sound,
    // its time is not, and the decode stage gives it the time of the frame before (timeValid)
    this.batch.push(makeFrame(sec, this.nsResolution ? frac : frac * 1000, this.linkType, origLen, 0, data));
    this.consumed += RECORD_HEADER + data.length;
    this.pendingCapLen = -1;
    this.frames++;
    this.bytes += data.length;
  }

  /** end of input: throws if the file was cut short or damaged */
  end(): void {
    if (this.error) throw this.error;
    if (this.consumed < GLOBAL_HEADER) {
      throw new CaptureFileError(this.file, this.fed, 'file ends inside the pcap file header');
    }
    if (this.fed > this.consumed) {
      const have = this.fed - this.consumed;
      throw new CaptureFileError(
        this.file,
        this.consumed,
        this.pendingCapLen >= 0
          ? `file ends inside a packet record (${this.pendingCapLen} bytes captured, ${have - RECORD_HEADER} present)`
          : `file ends inside a packet record header (${have} of ${RECORD_HEADER} bytes)`,
      );
    }
  }

  /** frames completed before an error; then the error, if any */
  take(): Frame[] {
    const b = this.batch;
    if (b.length > 0) this.batch = [];
    return b;
  }

  get failed(): CaptureFileError | null {
    return this.error;
  }

  private fail(offset: number, reason: string): void {
    if (this.error) return;
    this.error = new CaptureFileError(this.file, offset, reason);
  }
}
