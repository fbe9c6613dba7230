import { createReadStream, fstatSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Frame } from '../core/frame';
import type { Stats } from '../core/stage';
import { CaptureFileError } from './errors';
import { PcapReader } from './pcap';
import { PcapngReader } from './pcapng';
import type { Source } from './source';

export interface CaptureFileOptions {
  /** a file path, or '-' for standard input */
  path: string;
  /** bytes per read; each read becomes one batch (default 256 KiB) */
  chunkBytes?: number;
}

type Reader = PcapReader | PcapngReader;

/**
 * A pcap or pcapng capture from a file or stdin, told apart by its magic number.
 * Reading is pulled: the next chunk is read only when the pipeline asks for the next
 * batch, so memory stays bounded whatever the sink's speed.
 */
export function captureFile(options: CaptureFileOptions): Source & { readonly path: string } {
  return new CaptureFileSource(options.path, options.chunkBytes ?? 256 * 1024);
}

class CaptureFileSource implements Source {
  readonly name = 'capture-file';
  private reader: Reader | null = null;
  private stream: Readable | null = null;
  private closed = false;
  private bytesRead = 0;
  private size = -1;

  constructor(
    readonly path: string,
    private readonly chunkBytes: number,
  ) {}

  private get label(): string {
    return this.path === '-' ? '<stdin>' : this.path;
  }

  async *batches(): AsyncIterable<Frame[]> {
    if (this.path === '-' && process.stdin.isTTY) {
      throw new CaptureFileError(this.label, 0, 'standard input is a terminal: pipe a capture in (e.g. tcpdump -w - | pktflow read -)');
    }
    const stream = this.path === '-' ? process.stdin : createReadStream(this.path, { highWaterMark: this.chunkBytes });
    this.stream = stream;
    const opened = new Promise<void>((resolve, reject) => {
      if (this.path === '-') return resolve();
      stream.once('open', (fd: number) => {
        const st = fstatSync(fd);
        if (st.isFile()) this.size = st.size;
        resolve();
      });
      stream.once('error', reject);
    });
    try {
      await opened;
    } catch (err) {
      throw new CaptureFileError(this.label, 0, `cannot open: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    let head: Buffer | null = null;
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        if (this.closed) break;
        this.bytesRead += chunk.length;
        let data = chunk;
        if (this.reader === null) {
          // the magic number, and pcap's 24-byte header, must be in the first chunk we feed
          head = head === null ? chunk : Buffer.concat([head, chunk]);
          if (head.length < 24) continue;
          this.reader = this.open(head);
          data = head;
          head = null;
        }
        const frames = this.reader.push(data);
        if (frames.length > 0) yield frames;
        if (this.reader.failed) break;
      }
    } catch (err) {
      if (err instanceof CaptureFileError) throw err;
      throw new CaptureFileError(this.label, this.bytesRead, `read error: ${(err as Error).message}`);
    } finally {
      if (this.path !== '-') (stream as ReturnType<typeof createReadStream>).destroy();
    }
    if (this.closed) return;
    if (this.reader === null) {
      if (head !== null && head.length >= 4) this.open(head); // throws for a non-capture
      throw new CaptureFileError(this.label, this.bytesRead, this.bytesRead === 0 ? 'empty file' : 'file ends inside the file header');
    }
    this.reader.end();
  }

  private open(head: Buffer): Reader {
    const magic = head.readUInt32BE(0);
    switch (magic) {
      case 0xa1b2c3d4:
      case 0xd4c3b2a1:
      case 0xa1b23c4d:
      case 0x4d3cb2a1:
        return new PcapReader(this.label);
      case 0x0a0d0d0a:
        return new PcapngReader(this.label);
      default:
        throw new CaptureFileError(this.label, 0, `not a pcap or pcapng capture (magic 0x${magic.toString(16).padStart(8, '0')})`);
    }
  }

  stats(): Stats {
    const r = this.reader;
    return {
      bytes_read: this.bytesRead,
      frames: r ? r.frames : 0,
      frame_bytes: r ? r.bytes : 0,
      ...(r instanceof PcapngReader ? { skipped_blocks: r.skippedBlocks } : {}),
    };
  }

  close(): void {
    this.closed = true;
    this.stream?.destroy();
  }

  progress(): { done: number; total: number } | null {
    return this.size >= 0 ? { done: this.bytesRead, total: this.size } : null;
  }
}
