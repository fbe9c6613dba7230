/**
 * Faster paths inside kafkajs (2.2.4, its last release) for what pktflow does most:
 * producing and fetching many small messages. Each produces kafkajs's own results, byte
 * for byte and field for field (test/kafkajs-fast.test.ts compares them with kafkajs's
 * on random input); retries, metadata, the idempotent producer's sequence numbers,
 * group membership and everything else stay kafkajs's.
 *
 * - Produce requests: kafkajs encodes record by record, through an Encoder object and
 *   zero-filled buffers grown by copying per record and per header, with a CRC-32C in
 *   JavaScript. encodeProduce writes the same bytes in one pass into one buffer, the
 *   CRC-32C from @node-rs/crc32 (SIMD, a prebuilt addon shipped in the npm package;
 *   kafkajs's own CRC when it cannot load). Plugged in where kafkajs looks up the
 *   Produce request for a broker's API version (`protocol({ version })` of its produce
 *   request definition): versions 3 to 7 share one layout (kafkajs uses 7 with Kafka
 *   3.9); compression, message timestamps or older versions keep kafkajs's encoder.
 * - Grouping a send()'s messages by partition in linear time (kafkajs's is quadratic),
 *   and a partitioner that remembers each key's partition (kafkajs's DefaultPartitioner
 *   hashes every key with 64-bit arithmetic on objects).
 * - Framing a request (size and header before the body) with one copy of the body,
 *   not two into zero-filled buffers.
 * - Decoding fetched records: kafkajs rebuilds a record's header object once per header
 *   (spread) and computes each offset and timestamp with 64-bit objects; decodeRecord
 *   reads a record in one pass and leaves its timestamp and headers to be made when first
 *   read (FetchedRecord), which a replay never does: it reads a frame's headers from the
 *   record's bytes (frames.ts recordFrame).
 * - The consumer's Batch drops messages before the fetched offset comparing numbers, where
 *   kafkajs makes a 64-bit object of every message's offset.
 * - Reading responses (plaintext connections): a connection reads each response straight
 *   into a buffer of its size and hands it to kafkajs whole (framedSocketFactory);
 *   kafkajs's sockets made a new buffer of every read of up to 64 KiB and joined a
 *   response's reads with one more copy.
 *
 * The grouping, the framing, the record decoder and the Batch replace kafkajs's modules of those
 * names in Node's module cache before the kafkajs modules that use them load, so this
 * file must be loaded before kafkajs itself: src/kafka/client.ts imports it first, and
 * pktflow reaches kafkajs only through client.ts. `replaced` says whether it took: a
 * pipeline file that loads kafkajs itself before pktflow keeps kafkajs's own modules,
 * slower with the same results.
 */
import type { Message } from 'kafkajs';
import { readVarInt } from './frames';

type Encoded = { buf: Buffer; offset: number };
interface EncoderClass {
  new (initialSize?: number): Encoded;
}

interface PartitionData {
  partition: number;
  firstSequence?: number;
  messages: Message[];
}
interface ProduceArgs {
  acks: number;
  timeout: number;
  compression?: number;
  transactionalId?: string | null;
  producerId?: unknown;
  producerEpoch?: number;
  topicData: { topic: string; partitions: PartitionData[] }[];
}
interface ProduceRequest {
  request: { apiVersion: number; encode: () => Promise<Encoded> };
  response: unknown;
}
interface ProduceDefinition {
  versions: string[];
  protocol: (o: { version: number }) => (args: ProduceArgs) => ProduceRequest;
}

// kafkajs's internals, loaded from node_modules (kafkajs is not bundled)
/* eslint-disable @typescript-eslint/no-require-imports */

type Partitioner = (a: { topic: string; partitionMetadata: unknown[]; message: Message }) => number;

/** kafkajs's groupMessagesPerPartition, in linear time (kafkajs pull request #1576, never released) */
function groupMessagesPerPartition({ topic, partitionMetadata, messages, partitioner }: { topic: string; partitionMetadata: unknown[]; messages: Message[]; partitioner: Partitioner }): Record<number, Message[]> {
  const result: Record<number, Message[]> = {};
  if (partitionMetadata.length === 0) return result;
  for (const message of messages) {
    const p = partitioner({ topic, partitionMetadata, message });
    (result[p] ??= []).push(message);
  }
  return result;
}

interface Decoder {
  buffer: Buffer;
  offset: number;
  readVarLong(): { toString(): string };
}
interface BatchContext {
  firstOffset: string;
  firstTimestamp: string;
  magicByte: number;
  isControlBatch?: boolean;
  timestampType: number;
  maxTimestamp: string;
}

/**
 * A fetched record: kafkajs's record, field for field, but its timestamp and headers are
 * made from the record's bytes when first read (then kept). A replay reads neither: the
 * Kafka source takes a frame's headers straight from the bytes (frames.ts
 * recordFrame), so the header object, its five buffers and the timestamp's 64-bit sum
 * are never made. The two are accessors of the class, not own properties: an object
 * spread or Object.keys of a record does not show them (reading them does).
 */
export class FetchedRecord {
  constructor(
    readonly magicByte: number,
    readonly attributes: number,
    readonly offset: string,
    readonly key: Buffer | null,
    readonly value: Buffer | null,
    readonly isControlRecord: boolean,
    readonly batchContext: BatchContext,
    /** the buffer of the record and where its header count starts */
    readonly bytes: Buffer,
    readonly headersAt: number,
    private tsDelta: number | bigint,
    private ts: string | null = null,
    private made: Record<string, Buffer | null | (Buffer | null)[]> | null = null,
  ) {}

  get timestamp(): string {
    if (this.ts !== null) return this.ts;
    const { firstTimestamp, timestampType, maxTimestamp } = this.batchContext;
    const delta = this.tsDelta;
    if (timestampType === 1 && maxTimestamp) this.ts = maxTimestamp;
    else if (delta === 0) this.ts = String(BigInt(firstTimestamp));
    else this.ts = String(BigInt(firstTimestamp) + BigInt(delta)); // kafkajs's Long does not wrap either
    return this.ts;
  }

  get headers(): Record<string, Buffer | null | (Buffer | null)[]> {
    if (this.made === null) {
      const d = { buffer: this.bytes, offset: this.headersAt };
      const headers: Record<string, Buffer | null | (Buffer | null)[]> = {};
      const count = readVarInt(d);
      for (let i = 0; i < count && d.offset < this.bytes.length; i++) {
        const kn = readVarInt(d);
        let k: string;
        if (kn === -1) k = 'null';
        else {
          k = this.bytes.toString('utf8', d.offset, d.offset + kn);
          d.offset += kn;
        }
        const v = readBytes(d);
        // read as kafkajs does, inherited properties included (a header "constructor" comes out as kafkajs's)
        const old = headers[k];
        const next = old === undefined ? v : Array.isArray(old) ? old.concat([v]) : [old, v];
        // an own property whatever the name (kafkajs's spread makes one even of "__proto__")
        if (k === '__proto__') Object.defineProperty(headers, k, { value: next, enumerable: true, writable: true, configurable: true });
        else headers[k] = next;
      }
      this.made = headers;
    }
    return this.made;
  }
}

/** kafkajs's record v0 decoder, in one pass; the timestamp and headers are made when read */
function decodeRecord(d: Decoder, batchContext: BatchContext = {} as BatchContext): FetchedRecord {
  const { firstOffset, magicByte, isControlBatch = false } = batchContext;
  const b = d.buffer;
  const attributes = b.readInt8(d.offset++);
  // the timestamp delta: a varlong, read here while it fits in a double's integers
  const at = d.offset;
  let z = 0;
  let mul = 1;
  let n = 0;
  let byte: number;
  do {
    byte = b[d.offset++];
    z += (byte & 0x7f) * mul;
    mul *= 128;
    n++;
  } while (byte >= 0x80 && n < 7);
  let delta: bigint | number;
  if (byte >= 0x80) {
    d.offset = at;
    delta = BigInt(d.readVarLong().toString());
  } else delta = z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  const offsetDelta = readVarInt(d);
  const base = Number(firstOffset);
  const offset = Number.isSafeInteger(base) && Number.isSafeInteger(base + offsetDelta) ? String(base + offsetDelta) : String(BigInt(firstOffset) + BigInt(offsetDelta));
  const key = readBytes(d);
  const value = readBytes(d);
  const headersAt = d.offset;
  // past the headers: they are made when read
  const count = readVarInt(d);
  // (a count past the record's bytes stops at their end)
  for (let i = 0; i < count && d.offset < b.length; i++) {
    const kn = readVarInt(d);
    if (kn > 0) d.offset += kn;
    const vn = readVarInt(d);
    if (vn > 0) d.offset += vn;
  }
  return new FetchedRecord(magicByte, attributes, offset, key, value, isControlBatch, batchContext, b, headersAt, delta);
}

function readBytes(d: { buffer: Buffer; offset: number }): Buffer | null {
  const n = readVarInt(d);
  if (n === -1) return null;
  const v = d.buffer.slice(d.offset, d.offset + n);
  d.offset += n;
  return v;
}

/** kafkajs's modules as they were, by path under kafkajs/src (for the tests that compare) */
export const originals: Record<string, unknown> = {};

/**
 * kafkajs's request framing (size, API key and version, correlation id, client id, then
 * the request's body), into one buffer: kafkajs copies the body twice, into zero-filled
 * buffers grown to the next power of two, which for a produce request is a megabyte each
 */
async function createRequest({ correlationId, clientId, request }: { correlationId: number; clientId: string | null; request: { apiKey: number; apiVersion: number; encode: () => Promise<Encoded> } }): Promise<Encoded> {
  const payload = await request.encode();
  const body = payload.buf.subarray(0, payload.offset);
  const idLength = clientId == null ? 0 : Buffer.byteLength(clientId, 'utf8');
  const size = 2 + 2 + 4 + 2 + idLength + body.length;
  const buf = Buffer.allocUnsafe(4 + size);
  let at = buf.writeInt32BE(size, 0);
  at = buf.writeInt16BE(request.apiKey, at);
  at = buf.writeInt16BE(request.apiVersion, at);
  at = buf.writeInt32BE(correlationId, at);
  if (clientId == null) at = buf.writeInt16BE(-1, at);
  else {
    at = buf.writeInt16BE(idLength, at);
    at += buf.write(clientId, at, idLength, 'utf8');
  }
  body.copy(buf, at);
  const e = new Encoder(0);
  e.buf = buf;
  e.offset = buf.length;
  return e;
}

interface BatchFields {
  fetchedOffset: string;
  topic: string;
  partition: number;
  highWatermark: string;
  rawMessages: { offset: string; isControlRecord?: boolean }[];
  messagesWithinOffset: { offset: string; isControlRecord?: boolean }[];
  messages: { offset: string; isControlRecord?: boolean }[];
}
interface Long {
  gte(o: Long): boolean;
}

/**
 * kafkajs's consumer Batch (consumer/batch.js) with its offset filter in numbers: kafkajs
 * makes a 64-bit object of every message's offset to drop those before the fetched
 * offset. The same fields (kafkajs's rule wherever an offset is past 2^53), and its
 * prototype: the same methods.
 */
function Batch(this: BatchFields, topic: string, fetchedOffset: string, partitionData: { partition: number; highWatermark: string; messages: BatchFields['messages']; abortedTransactions?: unknown[] }): void {
  this.fetchedOffset = fetchedOffset;
  const { abortedTransactions, messages } = partitionData;
  this.topic = topic;
  this.partition = partitionData.partition;
  this.highWatermark = partitionData.highWatermark;
  this.rawMessages = messages;
  const from = Number(fetchedOffset);
  const exact = typeof fetchedOffset === 'string' && Number.isSafeInteger(from);
  let longFrom: Long | null = null;
  this.messagesWithinOffset = messages.filter((m) => {
    const o = Number(m.offset);
    return exact && Number.isSafeInteger(o) ? o >= from : Long.fromValue(m.offset).gte((longFrom ??= Long.fromValue(fetchedOffset)));
  });
  this.messages = filterAborted({ messages: this.messagesWithinOffset, abortedTransactions }).filter((m) => !m.isControlRecord);
}

export const replaced: { grouping: boolean; recordDecoder: boolean; request: boolean; batch: boolean } = (() => {
  /** kafkajs's module `name` replaced by `by`, unless `user` (which requires it at load) loaded already */
  const replace = (name: string, user: string, by: unknown): boolean => {
    if (require.cache[require.resolve(user)] !== undefined) return false;
    const path = require.resolve(name);
    originals[name.slice(name.lastIndexOf('src/') + 4)] = require(path);
    const entry = require.cache[path];
    if (entry === undefined) return false;
    entry.exports = by;
    return true;
  };
  return {
    grouping: replace('kafkajs/src/producer/groupMessagesPerPartition', 'kafkajs/src/producer/sendMessages', groupMessagesPerPartition),
    recordDecoder: replace('kafkajs/src/protocol/recordBatch/record/v0/decoder', 'kafkajs/src/protocol/recordBatch/v0/decoder', decodeRecord),
    request: replace('kafkajs/src/protocol/request', 'kafkajs/src/network/connection', createRequest),
    batch: replace('kafkajs/src/consumer/batch', 'kafkajs/src/consumer/consumerGroup', Batch),
  };
})();
const originalBatch = originals['consumer/batch'] as { prototype: object } | undefined;
if (originalBatch !== undefined) Batch.prototype = originalBatch.prototype;

export { Batch, createRequest, decodeRecord };

// kafkajs's internals that are used, not replaced (after the replacements: none of them loads those)
const Encoder = require('kafkajs/src/protocol/encoder') as EncoderClass;
const jsCrc32c = require('kafkajs/src/protocol/recordBatch/crc32C') as (b: Buffer) => number;
const produceDefinition = require('kafkajs/src/protocol/requests/produce') as ProduceDefinition;
const Long = require('kafkajs/src/utils/long') as { fromValue(v: unknown): Long };
const filterAborted = require('kafkajs/src/consumer/filterAbortedMessages') as (a: { messages: BatchFields['messages']; abortedTransactions?: unknown[] }) => BatchFields['messages'];

/** CRC-32C of a buffer, unsigned: native when @node-rs/crc32 loads, else kafkajs's */
export const crc32c: (b: Buffer) => number = (() => {
  try {
    const native = (require('@node-rs/crc32') as { crc32c: (b: Uint8Array) => number }).crc32c;
    if (native(Buffer.from('123456789')) === 0xe3069283) return (b: Buffer) => native(b) >>> 0;
  } catch {
    // no prebuilt addon for this platform: kafkajs's table
  }
  return jsCrc32c;
})();

export const nativeCrc = crc32c !== jsCrc32c;

const zigzag = (v: number) => ((v << 1) ^ (v >> 31)) >>> 0;

function sizeOfUVarInt(z: number): number {
  let n = 1;
  while (z >= 0x80) {
    z >>>= 7;
    n++;
  }
  return n;
}

const sizeOfVarInt = (v: number) => sizeOfUVarInt(zigzag(v));

function writeUVarInt(buf: Buffer, at: number, z: number): number {
  while (z >= 0x80) {
    buf[at++] = (z & 0x7f) | 0x80;
    z >>>= 7;
  }
  buf[at++] = z;
  return at;
}

const writeVarInt = (buf: Buffer, at: number, v: number) => writeUVarInt(buf, at, zigzag(v));

type Bytes = Buffer | string | null | undefined;

/**
 * UTF-8 length of a string: short ASCII strings (header values, keys) counted here,
 * which is cheaper than a call into Buffer.byteLength for each
 */
function utf8Length(s: string): number {
  if (s.length > 64) return Buffer.byteLength(s, 'utf8');
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, 'utf8');
  return s.length;
}

/** writes `n` bytes of UTF-8 (n from utf8Length): an ASCII string byte by byte */
function writeUtf8(buf: Buffer, at: number, s: string, n: number): number {
  if (n === s.length && n <= 64) {
    for (let i = 0; i < n; i++) buf[at + i] = s.charCodeAt(i);
    return at + n;
  }
  return at + buf.write(s, at, n, 'utf8');
}

/** bytes of a varint-prefixed key, value or header value (null: length -1) */
function sizeOfBytes(v: Bytes): number {
  if (v == null) return 1;
  const n = Buffer.isBuffer(v) ? v.length : utf8Length(typeof v === 'string' ? v : String(v));
  return sizeOfUVarInt(zigzag(n)) + n;
}

function writeBytes(buf: Buffer, at: number, v: Bytes): number {
  if (v == null) {
    buf[at] = 1; // zigzag(-1)
    return at + 1;
  }
  if (Buffer.isBuffer(v)) {
    at = writeVarInt(buf, at, v.length);
    v.copy(buf, at);
    return at + v.length;
  }
  const s = typeof v === 'string' ? v : String(v);
  const n = utf8Length(s);
  at = writeVarInt(buf, at, n);
  return writeUtf8(buf, at, s, n);
}

const sizeOfHeader = (k: string, v: Bytes) => {
  const kn = utf8Length(k);
  return sizeOfVarInt(kn) + kn + sizeOfBytes(v);
};

function writeHeader(buf: Buffer, at: number, k: string, v: Bytes): number {
  const kn = utf8Length(k);
  at = writeVarInt(buf, at, kn);
  at = writeUtf8(buf, at, k, kn);
  return writeBytes(buf, at, v);
}

/**
 * a record's body (attributes to headers), for a record whose timestamp delta is 0;
 * kafkajs writes every value of an array header as a header of its own
 */
function sizeOfBody(m: Message, offsetDelta: number): number {
  let n = 1 + 1 + sizeOfVarInt(offsetDelta) + sizeOfBytes(m.key as Bytes) + sizeOfBytes(m.value as Bytes);
  let count = 0;
  const h = m.headers;
  if (h != null) {
    for (const k in h) {
      if (!Object.prototype.hasOwnProperty.call(h, k)) continue;
      const v = h[k];
      if (Array.isArray(v)) {
        for (const x of v) n += sizeOfHeader(k, x as Bytes);
        count += v.length;
      } else {
        n += sizeOfHeader(k, v as Bytes);
        count++;
      }
    }
  }
  return n + sizeOfVarInt(count);
}

function writeHeaders(buf: Buffer, at: number, h: Message['headers']): number {
  let count = 0;
  if (h != null) for (const k in h) if (Object.prototype.hasOwnProperty.call(h, k)) count += Array.isArray(h[k]) ? (h[k] as unknown[]).length : 1;
  at = writeVarInt(buf, at, count);
  if (count === 0 || h == null) return at;
  for (const k in h) {
    if (!Object.prototype.hasOwnProperty.call(h, k)) continue;
    const v = h[k];
    if (Array.isArray(v)) for (const x of v) at = writeHeader(buf, at, k, x as Bytes);
    else at = writeHeader(buf, at, k, v as Bytes);
  }
  return at;
}

/** the request body kafkajs's Produce v3-v7 writes, for messages without timestamps and no compression */
export function encodeProduce(a: ProduceArgs, now = Date.now()): Buffer {
  const transactionalId = a.transactionalId ?? null;
  const producerId = BigInt.asIntN(64, BigInt(String(a.producerId ?? -1)));
  const producerEpoch = a.producerEpoch ?? 0;
  const attributes = transactionalId ? 16 : 0;
  // pass 1: sizes
  const bodies: number[][] = [];
  let total = 2 + (transactionalId === null ? 0 : Buffer.byteLength(transactionalId, 'utf8')) + 2 + 4 + 4;
  for (const t of a.topicData) {
    total += 2 + Buffer.byteLength(t.topic, 'utf8') + 4;
    const tb: number[] = [];
    for (const p of t.partitions) {
      // partition, record set size, then the batch: first offset, length, epoch, magic, crc,
      // attributes, last offset delta, timestamps, producer id, epoch, sequence, record count
      total += 4 + 4 + 8 + 4 + 4 + 1 + 4 + 2 + 4 + 8 + 8 + 8 + 2 + 4 + 4;
      for (let i = 0; i < p.messages.length; i++) {
        const body = sizeOfBody(p.messages[i], i);
        tb.push(body);
        total += sizeOfVarInt(body) + body;
      }
    }
    bodies.push(tb);
  }
  // pass 2: the bytes
  const buf = Buffer.allocUnsafe(total);
  let at = 0;
  if (transactionalId === null) at = buf.writeInt16BE(-1, at);
  else {
    at = buf.writeInt16BE(Buffer.byteLength(transactionalId, 'utf8'), at);
    at += buf.write(transactionalId, at, 'utf8');
  }
  at = buf.writeInt16BE(a.acks, at);
  at = buf.writeInt32BE(a.timeout, at);
  at = buf.writeInt32BE(a.topicData.length, at);
  for (let ti = 0; ti < a.topicData.length; ti++) {
    const t = a.topicData[ti];
    const tb = bodies[ti];
    let ri = 0;
    at = buf.writeInt16BE(Buffer.byteLength(t.topic, 'utf8'), at);
    at += buf.write(t.topic, at, 'utf8');
    at = buf.writeInt32BE(t.partitions.length, at);
    for (const p of t.partitions) {
      at = buf.writeInt32BE(p.partition, at);
      const sizeAt = at;
      at += 4;
      const batchStart = at;
      at = buf.writeBigInt64BE(0n, at); // first offset
      const lengthAt = at;
      at += 4;
      at = buf.writeInt32BE(0, at); // partition leader epoch
      at = buf.writeInt8(2, at); // magic
      const crcAt = at;
      at += 4;
      const crcFrom = at;
      at = buf.writeInt16BE(attributes, at);
      at = buf.writeInt32BE(p.messages.length - 1, at);
      at = buf.writeBigInt64BE(BigInt(now), at);
      at = buf.writeBigInt64BE(BigInt(now), at);
      at = buf.writeBigInt64BE(producerId, at);
      at = buf.writeInt16BE(producerEpoch, at);
      at = buf.writeInt32BE(p.firstSequence ?? 0, at);
      at = buf.writeInt32BE(p.messages.length, at);
      for (let i = 0; i < p.messages.length; i++, ri++) {
        const m = p.messages[i];
        at = writeVarInt(buf, at, tb[ri]);
        buf[at++] = 0; // attributes
        buf[at++] = 0; // timestamp delta
        at = writeVarInt(buf, at, i);
        at = writeBytes(buf, at, m.key as Bytes);
        at = writeBytes(buf, at, m.value as Bytes);
        at = writeHeaders(buf, at, m.headers);
      }
      buf.writeInt32BE(at - batchStart, sizeAt);
      buf.writeInt32BE(at - lengthAt - 4, lengthAt);
      buf.writeUInt32BE(crc32c(buf.subarray(crcFrom, at)), crcAt);
    }
  }
  if (at !== total) throw new Error(`produce encoder: wrote ${at} bytes of ${total}`);
  return buf;
}

/** what this encoder writes exactly as kafkajs does (else kafkajs's own encoder runs) */
function handles(a: ProduceArgs, version: number): boolean {
  if (version < 3 || version > 7 || (a.compression ?? 0) !== 0) return false;
  for (const t of a.topicData) for (const p of t.partitions) for (const m of p.messages) if (m.timestamp != null) return false;
  return true;
}

let installed = false;

/** route kafkajs's produce requests through encodeProduce (once per process) */
export function installProduceEncoder(): void {
  if (installed) return;
  installed = true;
  const protocol = produceDefinition.protocol;
  produceDefinition.protocol = ({ version }) => {
    const make = protocol({ version });
    return (args) => {
      const r = make(args);
      if (handles(args, version)) {
        r.request.encode = async () => {
          const e = new Encoder(0);
          e.buf = encodeProduce(args);
          e.offset = e.buf.length;
          return e;
        };
      }
      return r;
    };
  };
}

/**
 * kafkajs's DefaultPartitioner (murmur2 of the key, as the Java client), remembering the
 * partition of the keys it has seen: a capture's frames repeat a few thousand flow keys,
 * and kafkajs hashes each key with 64-bit arithmetic on objects. The same partitions.
 */
export function cachedPartitioner(): Partitioner {
  /* eslint-disable-next-line @typescript-eslint/no-require-imports */
  const { Partitioners } = require('kafkajs') as { Partitioners: { DefaultPartitioner: () => Partitioner } };
  const partition = Partitioners.DefaultPartitioner();
  let cache = new Map<string, number>();
  let partitions = -1;
  return (a) => {
    const key = a.message.key;
    if (typeof key !== 'string' || a.message.partition != null) return partition(a);
    if (a.partitionMetadata.length !== partitions) {
      partitions = a.partitionMetadata.length;
      cache = new Map();
    }
    let p = cache.get(key);
    if (p === undefined) {
      if (cache.size >= 65536) cache = new Map();
      cache.set(key, (p = partition(a)));
    }
    return p;
  };
}

// ---------------------------------------------------------------------------------------
// Reading responses: each read straight into its response's buffer, each response handed to kafkajs whole

/** the size of the shared buffer a connection reads into between responses */
const READ_BYTES = 64 * 1024;

/** Where a connection's reads go, and what it does with what was read (Node's `onread`). */
export interface ResponseFramer {
  /** the buffer for the next read: the rest of the response under way, else the shared one */
  next(): Buffer;
  /** `n` bytes were read into `buf`, the buffer next() gave (Node's order); false ends the reading */
  push(n: number, buf: Uint8Array): boolean;
}

/**
 * Cuts a connection's bytes into Kafka responses (a 4-byte size, then that many bytes),
 * and gives `onFrame` each response whole (size included, as kafkajs expects a read to
 * start) in a buffer of its own. Once a response's size is known, reads go straight into
 * the rest of its buffer, never past its end; between responses they go into one shared
 * buffer and are copied out. A negative size (or one that cannot be allocated) is
 * `onError`, and ends the reading.
 */
export function responseFramer(onFrame: (frame: Buffer) => void, onError: (err: Error) => void, readBytes = READ_BYTES): ResponseFramer {
  const shared = Buffer.allocUnsafe(readBytes);
  const size = Buffer.alloc(4);
  let sizeHave = 0;
  let frame: Buffer | null = null;
  let have = 0;
  let direct: Buffer | null = null;
  let failed = false;
  const filled = (): void => {
    if (frame !== null && have === frame.length) {
      const whole = frame;
      frame = null;
      onFrame(whole);
    }
  };
  return {
    next() {
      direct = frame !== null ? frame.subarray(have) : null;
      return direct ?? shared;
    },
    push(n, into) {
      if (failed) return false;
      const buf = into as Buffer;
      if (buf === direct && frame !== null) {
        have += n;
        filled();
        return true;
      }
      let at = 0;
      while (at < n && !failed) {
        if (frame === null) {
          while (sizeHave < 4 && at < n) size[sizeHave++] = buf[at++];
          if (sizeHave < 4) break;
          sizeHave = 0;
          const len = size.readInt32BE(0);
          try {
            if (len < 0) throw new Error(`a response of ${len} bytes`);
            frame = Buffer.allocUnsafe(4 + len);
          } catch (err) {
            failed = true;
            onError(new Error(`Kafka response unreadable: ${(err as Error).message}`));
            return false;
          }
          size.copy(frame, 0);
          have = 4;
        }
        const take = Math.min(n - at, frame.length - have);
        buf.copy(frame, have, at, at + take);
        have += take;
        at += take;
        filled();
      }
      return !failed;
    },
  };
}

interface SocketFactoryArgs {
  host: string;
  port: number;
  ssl?: unknown;
  onConnect: () => void;
}

/**
 * kafkajs's socket factory (its `socketFactory` option) with the same sockets, except
 * that a plaintext one reads each response into a buffer of its own size (Node's
 * `onread`, responseFramer) and emits it as one `data` event; kafkajs's Connection is
 * told not to join such a read with the empty rest of the one before
 * (installResponseReader). TLS connections come from kafkajs's own factory.
 */
export function framedSocketFactory(): (a: SocketFactoryArgs) => import('node:net').Socket {
  const net = require('node:net') as typeof import('node:net');
  const kafkajsFactory = (require('kafkajs/src/network/socketFactory') as () => (a: SocketFactoryArgs) => import('node:net').Socket)();
  installResponseReader();
  return (a) => {
    if (a.ssl) return kafkajsFactory(a);
    const framer = responseFramer(
      (frame) => {
        if (!socket.destroyed) socket.emit('data', frame);
      },
      (err) => socket.destroy(err),
    );
    const socket = net.connect({ host: a.host, port: a.port, onread: { buffer: framer.next, callback: framer.push } }, a.onConnect);
    // as kafkajs's own sockets
    socket.setKeepAlive(true, 60_000);
    return socket;
  };
}

/**
 * kafkajs's Connection keeps what followed a response (nothing, when each read is one
 * response) as its first chunk and joins it with the next read: one copy of every
 * response. An empty first chunk is dropped before that.
 */
function installResponseReader(): void {
  type Connection = { prototype: { processData(d: Buffer): unknown; pktflowFramed?: boolean } };
  const proto = (require('kafkajs/src/network/connection') as Connection).prototype;
  if (proto.pktflowFramed === true) return;
  const processData = proto.processData;
  proto.processData = function (this: { chunks: Buffer[] }, d: Buffer) {
    if (this.chunks.length === 1 && this.chunks[0].length === 0) this.chunks = [];
    return processData.call(this, d);
  };
  proto.pktflowFramed = true;
}
