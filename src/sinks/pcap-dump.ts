import { closeSync, openSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import type { Frame } from '../core/frame';
import type { Stage, Stats } from '../core/stage';

export interface PcapDumpOptions {
  /** the file to write; rotated files get .1, .2, ... before the extension */
  path: string;
  /** start a new file when this one would pass this many bytes (default: never) */
  rotateBytes?: number;
}

const HEADER = 24;
const RECORD = 16;
const SNAPLEN = 262_144;

/**
 * Tees raw frames, before any decoding, to a pcap file with nanosecond timestamps
 * (like packetbeat's dumpfile), and passes them on unchanged. One write per batch.
 * A pcap file has one link type: frames of another (pcapng with mixed interfaces)
 * are counted as skipped, not written.
 */
export class PcapDump implements Stage<Frame, Frame> {
  readonly name = 'dump';
  readonly takes = 'Frame';
  readonly outputs = 'Frame';
  private fd = -1;
  private fileBytes = 0;
  private linkType = -1;
  private index = 0;
  frames = 0;
  bytes = 0;
  files = 0;
  skipped = 0;

  constructor(private readonly options: PcapDumpOptions) {}

  push(frames: Frame[]): Frame[] {
    if (frames.length === 0) return frames;
    if (this.fd < 0) this.open(frames[0].linkType);
    let size = 0;
    for (const f of frames) size += RECORD + f.capLen;
    const buf = Buffer.allocUnsafe(size);
    let o = 0;
    const rotate = this.options.rotateBytes ?? 0;
    for (const f of frames) {
      if (f.linkType !== this.linkType) {
        this.skipped++;
        continue;
      }
      const rec = RECORD + f.capLen;
      if (rotate > 0 && this.fileBytes + o + rec > rotate && this.fileBytes + o > HEADER) {
        writeSync(this.fd, buf, 0, o);
        this.fileBytes += o;
        o = 0;
        this.next();
      }
      buf.writeUInt32LE(f.tsSec >>> 0, o);
      buf.writeUInt32LE(f.tsNsec, o + 4);
      buf.writeUInt32LE(f.capLen, o + 8);
      buf.writeUInt32LE(f.origLen, o + 12);
      f.data.copy(buf, o + RECORD);
      o += rec;
      this.frames++;
      this.bytes += f.capLen;
    }
    if (o > 0) {
      writeSync(this.fd, buf, 0, o);
      this.fileBytes += o;
    }
    return frames;
  }

  flush(): Frame[] {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    return [];
  }

  stats(): Stats {
    return { frames: this.frames, bytes: this.bytes, files: this.files, skipped_other_link_type: this.skipped };
  }

  /** the name of the index-th file: out.pcap, out.1.pcap, out.2.pcap ... */
  fileName(index: number): string {
    if (index === 0) return this.options.path;
    const ext = path.extname(this.options.path);
    return `${this.options.path.slice(0, this.options.path.length - ext.length)}.${index}${ext}`;
  }

  private open(linkType: number): void {
    this.linkType = linkType;
    this.fd = openSync(this.fileName(this.index), 'w');
    const h = Buffer.alloc(HEADER);
    h.writeUInt32LE(0xa1b23c4d, 0); // nanosecond pcap
    h.writeUInt16LE(2, 4);
    h.writeUInt16LE(4, 6);
    h.writeUInt32LE(SNAPLEN, 16);
    h.writeUInt32LE(linkType, 20);
    writeSync(this.fd, h);
    this.fileBytes = HEADER;
    this.files++;
  }

  private next(): void {
    closeSync(this.fd);
    this.index++;
    this.open(this.linkType);
  }
}

export function pcapDump(options: PcapDumpOptions): PcapDump {
  return new PcapDump(options);
}
