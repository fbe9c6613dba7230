/// <reference path="../types/pcap-parser.d.ts" />
import { EventEmitter } from 'node:events';
import * as pcapParser from 'pcap-parser';
import { makeFrame, type Frame } from '../core/frame';
import { CaptureFileError, MAX_RECORD_BYTES } from './errors';

const GLOBAL_HEADER = 24;
const RECORD_HEADER = 16;

/**
 * Classic libpcap files through the pcap-parser package.
 *
 * pcap-parser reads any EventEmitter that emits 'data'; we feed it our chunks by
 * hand, synchronously, so every packet it emits for a chunk lands in that chunk's
 * batch, and reading the next chunk waits until the batch was taken. Three things
 * it lacks are added around it: the nanosecond magic (rewritten to the
 * microsecond one, the fraction then read as nanoseconds), a bound on the record
 * length (a damaged length would make it buffer the rest of the file), and a report
 * of where a cut-short file ends.
 */
export class PcapReader {
  private readonly feed = new EventEmitter() as EventEmitter & { pause(): void; resume(): void };
  private readonly parser: EventEmitter & { errored?: boolean };
  private batch: Frame[] = [];
  private linkType = 1;
  private nsResolution = false;
  private fed = 0;
  /** offset of the first byte not yet turned into a frame */
  private consumed = 0;
  private pendingCapLen = -1;
  private error: CaptureFileError | null = null;
  frames = 0;
  bytes = 0;

  constructor(private readonly file: string) {
    this.feed.pause = () => {};
    this.feed.resume = () => {};
    this.parser = pcapParser.parse(this.feed as any) as any;
    this.parser.on('globalHeader', (h: { linkLayerType: number; majorVersion: number }) => {
      // the upper bits of the field carry FCS information, not the link type
      this.linkType = h.linkLayerType & 0xffff;
      this.consumed = GLOBAL_HEADER;
    });
    this.parser.on('packetHeader', (h: { capturedLength: number }) => {
      if (h.capturedLength > MAX_RECORD_BYTES) {
        this.fail(this.consumed, `packet record length ${h.capturedLength} exceeds the maximum ${MAX_RECORD_BYTES}`);
      }
      this.pendingCapLen = h.capturedLength;
    });
    this.parser.on('packet', (p: { header: { timestampSeconds: number; timestampMicroseconds: number; originalLength: number }; data: Buffer }) => {
      if (this.error) return;
      const h = p.header;
      const frac = h.timestampMicroseconds;
      // a fraction past a second (a damaged byte) is passed on as it is: the frame is sound,
      // its time is not, and the decode stage gives it the time of the frame before (timeValid)
      this.batch.push(makeFrame(h.timestampSeconds, this.nsResolution ? frac : frac * 1000, this.linkType, h.originalLength, 0, p.data));
      this.consumed += RECORD_HEADER + p.data.length;
      this.pendingCapLen = -1;
      this.frames++;
      this.bytes += p.data.length;
    });
    this.parser.on('error', (err: Error) => this.fail(this.consumed, err.message));
  }

  /** feed one chunk; returns the frames it completed. The first chunk must hold the 24-byte header. */
  push(chunk: Buffer): Frame[] {
    if (this.fed === 0) {
      const magic = chunk.readUInt32BE(0);
      if (magic === 0xa1b23c4d) {
        this.nsResolution = true;
        chunk.writeUInt32BE(0xa1b2c3d4, 0);
      } else if (magic === 0x4d3cb2a1) {
        this.nsResolution = true;
        chunk.writeUInt32BE(0xd4c3b2a1, 0);
      }
    }
    this.fed += chunk.length;
    if (!this.error) this.feed.emit('data', chunk);
    return this.take();
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
    this.parser.errored = true; // pcap-parser then ignores further data
  }
}
