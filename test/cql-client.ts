/**
 * A small CQL client over a raw socket, for what the npm driver does not do: protocol
 * v5 (its frames with CRCs, self-contained or split), LZ4 and Snappy compression, a
 * chosen stream id, several requests written at once. The fixture script and the live
 * test drive the real Cassandra with it besides the driver. Not a general client:
 * it knows the messages those scripts send and reads only what they need back.
 */
import { connect, type Socket } from 'node:net';
import { decompress, Flag, lz4Block, Op, payloadCrc32, crc24, type Compression } from '../src/protocols/cassandra/wire';
import { compressBody, enc, envelope, plainAuth, prepareBody, queryBody, segments, type QueryParams } from './gen/cql';

export interface Frame {
  version: number;
  flags: number;
  stream: number;
  op: number;
  body: Buffer;
}

export interface RawOptions {
  port: number;
  host?: string;
  version: 3 | 4 | 5;
  compression?: Compression;
  /** PasswordAuthenticator credentials, answered when the server asks */
  auth?: { user: string; pass: string };
  /** send OPTIONS before STARTUP, as drivers do */
  options?: boolean;
}

export class CqlError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export class RawCql {
  private readonly sock: Socket;
  private buf: Buffer = Buffer.alloc(0);
  /** v5 frames are in use (after the server's READY or AUTHENTICATE) */
  private framed = false;
  /** an envelope being assembled from frames that are not self-contained */
  private partial: Buffer[] = [];
  private waiting = new Map<number, { resolve: (f: Frame) => void; reject: (e: Error) => void }>();
  private nextStream = 1;
  private compressing = false;
  readonly events: Frame[] = [];
  private closed: Promise<void>;

  private constructor(
    private readonly o: RawOptions,
    sock: Socket,
  ) {
    this.sock = sock;
    sock.on('data', (d) => this.onData(d));
    this.closed = new Promise((r) => sock.on('close', () => r()));
    sock.on('close', () => {
      for (const w of this.waiting.values()) w.reject(new Error('connection closed'));
      this.waiting.clear();
    });
  }

  static async connect(o: RawOptions): Promise<RawCql> {
    const sock = await new Promise<Socket>((resolve, reject) => {
      const s = connect(o.port, o.host ?? '127.0.0.1');
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    sock.setNoDelay(true);
    const c = new RawCql(o, sock);
    if (o.options) await c.request(Op.OPTIONS, Buffer.alloc(0));
    const startup: Record<string, string> = { CQL_VERSION: '3.0.0', DRIVER_NAME: 'pktflow-raw', DRIVER_VERSION: '1' };
    if (o.compression !== undefined) startup.COMPRESSION = o.compression;
    let r = await c.request(Op.STARTUP, enc.stringMap(startup));
    // in v5, the frames start after the answer to STARTUP, in both directions
    if (o.version === 5) c.framed = true;
    c.compressing = o.compression !== undefined;
    if (r.op === Op.AUTHENTICATE) {
      if (o.auth === undefined) throw new Error('the server asks for authentication');
      r = await c.request(Op.AUTH_RESPONSE, plainAuth(o.auth.user, o.auth.pass));
      if (r.op !== Op.AUTH_SUCCESS) throw new Error(`authentication: opcode ${r.op}`);
    } else if (r.op !== Op.READY) throw new Error(`STARTUP: opcode ${r.op}`);
    return c;
  }

  /** one request; resolves with its response (an ERROR response too) */
  request(op: number, body: Buffer, stream?: number, flags = 0): Promise<Frame> {
    return this.requests([{ op, body, stream, flags }])[0];
  }

  /** several requests in one write (one v5 frame when they fit): their responses may come in any order */
  requests(list: { op: number; body: Buffer; stream?: number; flags?: number }[]): Promise<Frame>[] {
    const envs: Buffer[] = [];
    const out = list.map((r) => {
      const stream = r.stream ?? this.allocStream();
      let flags = r.flags ?? 0;
      let body = r.body;
      // before v5, a compressed connection compresses each body (STARTUP never)
      if (this.compressing && !this.framed && r.op !== Op.STARTUP && r.op !== Op.OPTIONS) {
        body = compressBody(this.o.compression!, body);
        flags |= Flag.COMPRESSION;
      }
      envs.push(envelope(this.o.version, flags, stream, r.op, body));
      return new Promise<Frame>((resolve, reject) => this.waiting.set(stream, { resolve, reject }));
    });
    this.sock.write(this.framed ? Buffer.concat(segments(envs, this.compressing)) : Buffer.concat(envs));
    return out;
  }

  async query(cql: string, p: QueryParams = {}): Promise<Frame> {
    return check(await this.request(Op.QUERY, queryBody(this.o.version, cql, p)));
  }

  /** PREPARE: the statement id (and in v5 the result metadata id) */
  async prepare(cql: string): Promise<{ id: Buffer; resultMetadataId: Buffer }> {
    const r = check(await this.request(Op.PREPARE, prepareBody(this.o.version, cql)));
    const id = r.body.subarray(6, 6 + r.body.readUInt16BE(4));
    let resultMetadataId: Buffer = Buffer.alloc(0);
    if (this.o.version >= 5) {
      const at = 6 + id.length;
      resultMetadataId = r.body.subarray(at + 2, at + 2 + r.body.readUInt16BE(at));
    }
    return { id: Buffer.from(id), resultMetadataId: Buffer.from(resultMetadataId) };
  }

  close(): Promise<void> {
    this.sock.end();
    return this.closed;
  }

  private allocStream(): number {
    while (this.waiting.has(this.nextStream)) this.nextStream = (this.nextStream % 32000) + 1;
    const s = this.nextStream;
    this.nextStream = (this.nextStream % 32000) + 1;
    return s;
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    for (;;) {
      if (this.framed) {
        const seg = this.takeSegment();
        if (seg === null) return;
        this.onPayload(seg.payload, seg.selfContained);
      } else {
        if (this.buf.length < 9) return;
        const len = this.buf.readUInt32BE(5);
        if (this.buf.length < 9 + len) return;
        const f = this.buf.subarray(0, 9 + len);
        this.buf = this.buf.subarray(9 + len);
        this.deliver(f, true);
      }
    }
  }

  /** one v5 frame off the buffer, checked and decompressed */
  private takeSegment(): { payload: Buffer; selfContained: boolean } | null {
    const hl = this.compressing ? 8 : 6;
    if (this.buf.length < hl) return null;
    const b = this.buf;
    let len: number;
    let ulen = 0;
    let selfContained: boolean;
    if (this.compressing) {
      const lo = b.readUInt32LE(0);
      len = lo & 0x1ffff;
      ulen = ((lo >>> 17) | (b[4] << 15)) & 0x1ffff;
      selfContained = (b[4] & 0x04) !== 0;
    } else {
      const v = b[0] | (b[1] << 8) | (b[2] << 16);
      len = v & 0x1ffff;
      selfContained = (v & (1 << 17)) !== 0;
    }
    if (b.readUIntLE(hl - 3, 3) !== crc24(b, 0, hl - 3)) throw new Error('v5 frame header CRC mismatch');
    if (b.length < hl + len + 4) return null;
    if (b.readUInt32LE(hl + len) !== payloadCrc32(b, hl, len)) throw new Error('v5 frame payload CRC mismatch');
    let payload: Buffer = Buffer.from(b.subarray(hl, hl + len));
    if (ulen > 0) payload = lz4Block(b, hl, len, ulen) ?? Buffer.alloc(0);
    this.buf = b.subarray(hl + len + 4);
    return { payload, selfContained };
  }

  private onPayload(p: Buffer, selfContained: boolean): void {
    if (!selfContained) {
      this.partial.push(p);
      const all = Buffer.concat(this.partial);
      if (all.length >= 9 && all.length >= 9 + all.readUInt32BE(5)) {
        this.partial = [];
        this.deliver(all, false);
      }
      return;
    }
    for (let o = 0; o + 9 <= p.length; ) {
      const len = p.readUInt32BE(o + 5);
      this.deliver(p.subarray(o, o + 9 + len), false);
      o += 9 + len;
    }
  }

  private deliver(f: Buffer, legacy: boolean): void {
    let body: Buffer = Buffer.from(f.subarray(9));
    if (legacy && f[1] & Flag.COMPRESSION) body = decompress(this.o.compression!, body, 0, body.length, 256 << 20) ?? Buffer.alloc(0);
    const frame: Frame = { version: f[0], flags: f[1], stream: f.readInt16BE(2), op: f[4], body };
    if (frame.op === Op.EVENT) {
      this.events.push(frame);
      return;
    }
    const w = this.waiting.get(frame.stream);
    if (w === undefined) {
      // an error on a stream nothing waits on: the server could not read what it was sent
      if (frame.op === Op.ERROR) {
        for (const x of this.waiting.values()) x.reject(new Error(`the server answered stream ${frame.stream} with an error`));
        this.waiting.clear();
      }
      return;
    }
    this.waiting.delete(frame.stream);
    w.resolve(frame);
  }
}

/** the response, unless it is an ERROR */
export function check(f: Frame): Frame {
  if (f.op === Op.ERROR) {
    let o = f.flags & Flag.WARNING ? skipStringList(f.body, 0) : 0;
    const code = f.body.readInt32BE(o);
    o += 4;
    throw new CqlError(code, f.body.toString('utf8', o + 2, o + 2 + f.body.readUInt16BE(o)));
  }
  return f;
}

function skipStringList(b: Buffer, o: number): number {
  const n = b.readUInt16BE(o);
  o += 2;
  for (let i = 0; i < n; i++) o += 2 + b.readUInt16BE(o);
  return o;
}

/** the paging state of a ROWS result, or null on the last page */
export function pagingState(f: Frame): Buffer | null {
  let o = f.flags & Flag.WARNING ? skipStringList(f.body, 0) : 0;
  if (f.body.readInt32BE(o) !== 2) return null;
  const flags = f.body.readInt32BE(o + 4);
  o += 12;
  if ((flags & 0x02) === 0) return null;
  const n = f.body.readInt32BE(o);
  return Buffer.from(f.body.subarray(o + 4, o + 4 + n));
}
