/**
 * MongoDB wire protocol messages (www.mongodb.com/docs/manual/reference/mongodb-wire-protocol,
 * the OP_MSG and OP_COMPRESSED specifications): the header, OP_MSG with its body and
 * document-sequence sections, checksum and flags, OP_COMPRESSED (zlib, snappy, zstd),
 * and the legacy operations OP_REPLY, OP_QUERY, OP_GET_MORE, OP_INSERT, OP_UPDATE,
 * OP_DELETE, OP_KILL_CURSORS and the old OP_MSG (1000).
 *
 * `MongoDecoder.parse` reads one whole message (or the part of it the capture has)
 * from (buf, off, len) into a `MongoMessage` of fixed shape, keeping strings and
 * numbers only: nothing points into the buffer after the call.
 */
import { inflateSync } from 'node:zlib';
import { snappyLength, snappyUncompress } from '../snappy';
import { zstdDecompress } from '../zstd';
import type { Document } from 'bson';
import {
  BsonType, checkDocument, countElements, cstringEnd, decode, decodeChecked, docLength, eachDocument, FieldRef, findField, firstField, int64String, numberValue, stringValue, toJson,
} from './bson';

export const enum Op {
  reply = 1,
  msgLegacy = 1000,
  update = 2001,
  insert = 2002,
  query = 2004,
  getMore = 2005,
  delete = 2006,
  killCursors = 2007,
  compressed = 2012,
  msg = 2013,
}

export const HEADER_BYTES = 16;
/** mongod's maxMessageSizeBytes: no message is longer */
export const MAX_WIRE_MESSAGE = 48_000_000;

/** OP_MSG flag bits */
export const MSG_CHECKSUM_PRESENT = 1;
export const MSG_MORE_TO_COME = 2;
export const MSG_EXHAUST_ALLOWED = 1 << 16;
/** bits 0-15 are required: a receiver must refuse a message with one it does not know */
const MSG_UNKNOWN_REQUIRED = 0xfffc;

export function opcodeName(op: number): string {
  switch (op) {
    case Op.reply: return 'OP_REPLY';
    case Op.msgLegacy: return 'OP_MSG_LEGACY';
    case Op.update: return 'OP_UPDATE';
    case Op.insert: return 'OP_INSERT';
    case Op.query: return 'OP_QUERY';
    case Op.getMore: return 'OP_GET_MORE';
    case Op.delete: return 'OP_DELETE';
    case Op.killCursors: return 'OP_KILL_CURSORS';
    case Op.compressed: return 'OP_COMPRESSED';
    case Op.msg: return 'OP_MSG';
    default: return `OP_${op}`;
  }
}

export function knownOpcode(op: number): boolean {
  return op === Op.msg || op === Op.reply || op === Op.query || op === Op.compressed || (op >= Op.update && op <= Op.killCursors && op !== 2003) || op === Op.msgLegacy;
}

/** by content, not by direction: only OP_REPLY and OP_MSG answer, and an answer names the request it answers */
export function isResponseHeader(op: number, responseTo: number): boolean {
  return op === Op.reply || (op === Op.msg && responseTo !== 0);
}

export const COMPRESSORS = ['noop', 'snappy', 'zlib', 'zstd'];

/** One message as read from the wire: header, what the event shows, and what went wrong. */
export class MongoMessage {
  startSec = 0;
  startNsec = 0;
  endSec = 0;
  endNsec = 0;
  /** the message's length on the wire (compressed, when it was) */
  wireBytes = 0;
  requestId = 0;
  responseTo = 0;
  /** the operation (the original one of an OP_COMPRESSED) */
  opCode = 0;
  /** '' or the compressor of an OP_COMPRESSED */
  compressor = '';
  isResponse = false;
  /** OP_MSG flag bits */
  flags = 0;
  /** the body was read (false: only the header, or not even it: see notes) */
  decoded = false;
  /** a command (OP_MSG, or OP_QUERY on `db.$cmd`): a reply's `ok: 0` is an error */
  command = false;
  method = '';
  resource = '';
  /** the request's parameters as JSON (for `query`); '' when there are none */
  params = '';
  /** the whole request as JSON (sendRequest) */
  request = '';
  fullCollectionName = '';
  numberToSkip = NaN;
  numberToReturn = NaN;
  numberReturned = NaN;
  startingFrom = NaN;
  query = '';
  returnFieldsSelector = '';
  selector = '';
  update = '';
  cursorId = '';
  message = '';
  error = '';
  errorCode = NaN;
  codeName = '';
  /** an OP_REPLY's first document says ok: 0, an error only if its request was a command */
  errorIfCommand = false;
  /** the reply's documents as JSON lines (sendResponse), or null */
  documents: string | null = null;
  /** bytes of this message the capture lost */
  missingBytes = 0;
  notes: string[] | null = null;

  note(text: string): void {
    (this.notes ??= []).push(text);
  }

  /** 'request' or 'response', for notes */
  get side(): string {
    return this.isResponse ? 'response' : 'request';
  }

  /**
   * The request an exhaust cursor's next reply answers: this request's fields, keyed
   * by `reply`'s requestID, starting when `reply` ended, with no bytes of its own.
   */
  continuation(reply: MongoMessage): MongoMessage {
    const c = Object.assign(new MongoMessage(), this);
    c.requestId = reply.requestId;
    c.startSec = c.endSec = reply.endSec;
    c.startNsec = c.endNsec = reply.endNsec;
    c.wireBytes = c.missingBytes = 0;
    c.notes = null;
    return c;
  }

  /** OP_MSG moreToCome: a request no reply follows, or a reply another reply follows (exhaust) */
  get moreToCome(): boolean {
    return this.opCode === Op.msg && (this.flags & MSG_MORE_TO_COME) !== 0;
  }

  /** a request the server answers */
  get expectsReply(): boolean {
    switch (this.opCode) {
      case Op.query:
      case Op.getMore:
        return true;
      case Op.msg:
        return (this.flags & MSG_MORE_TO_COME) === 0;
      default:
        return false;
    }
  }
}

export interface MongoDecoderOptions {
  /** nesting of documents rendered or checked */
  maxDepth: number;
  /** characters of each rendered document (and of `query` and `request`) */
  maxDocLength: number;
  /** documents of a reply (or of a request's sequences) rendered */
  maxDocs: number;
  sendRequest: boolean;
  sendResponse: boolean;
}

/** where a message's violations are counted (the connection: it knows the endpoints) */
export interface ViolationSink {
  violation(reason: string): void;
  /** a sound message pktflow cannot read (a compressor it does not know) */
  undecoded(reason: string): void;
}

/** fields the driver adds to every command: not part of what the query asks */
const METADATA = ['$db', 'lsid', '$clusterTime', '$readPreference', 'txnNumber', 'autocommit', 'startTransaction', 'apiVersion', 'apiStrict', 'apiDeprecationErrors', '$audit', '$client'];
/** per command, the field that holds the data rather than the query (left out of `query`, as packetbeat does) */
const DATA_FIELD: Record<string, string> = { insert: 'documents', update: 'updates', findAndModify: 'update', findandmodify: 'update' };
/** document sequences an OP_MSG may carry, at most */
const MAX_SEQUENCES = 8;

const ascii = (s: string) => Buffer.from(s, 'latin1');
const F_DB = ascii('$db');
const F_OK = ascii('ok');
const F_ERRMSG = ascii('errmsg');
const F_ERR = ascii('$err');
const F_CODE = ascii('code');
const F_CODENAME = ascii('codeName');
const F_CURSOR = ascii('cursor');
const F_ID = ascii('id');
const F_FIRSTBATCH = ascii('firstBatch');
const F_NEXTBATCH = ascii('nextBatch');
const F_WRITEERRORS = ascii('writeErrors');
const F_WRITECONCERNERROR = ascii('writeConcernError');
const F_COLLECTION = ascii('collection');
const F_CURSORS = ascii('cursors');
const F_QUERY_WRAPPED = ascii('$query');

/** Reads messages; one per protocol instance, its scratch space reused by every connection. */
export class MongoDecoder {
  private readonly stack: Int32Array;
  private readonly ref = new FieldRef();
  private readonly ref2 = new FieldRef();
  private readonly why: string[] = [''];
  private readonly seqId = new Int32Array(MAX_SEQUENCES * 2);
  private readonly seqDocs = new Int32Array(MAX_SEQUENCES * 2);
  private seqCount = 0;
  private out: ViolationSink | null = null;

  constructor(private readonly o: MongoDecoderOptions) {
    this.stack = new Int32Array(o.maxDepth + 1);
  }

  /**
   * The message at off: its header (16 bytes, already checked by the framer) and as
   * much of the rest as `len` holds. `truncated`: the capture has only these first
   * `len` bytes of a longer message (header fields say how long); the body is read as
   * far as it goes.
   */
  parse(b: Buffer, off: number, len: number, truncated: boolean, m: MongoMessage, out: ViolationSink): void {
    this.out = out;
    m.requestId = b.readInt32LE(off + 4);
    m.responseTo = b.readInt32LE(off + 8);
    m.opCode = b.readInt32LE(off + 12);
    m.isResponse = isResponseHeader(m.opCode, m.responseTo);
    const end = off + len;
    if (m.opCode === Op.compressed) this.compressed(b, off, end, truncated, m);
    else this.body(b, off, off + HEADER_BYTES, end, truncated, m);
    this.out = null;
  }

  private bad(reason: string): void {
    this.out!.violation(reason);
  }

  private body(b: Buffer, msgOff: number, p: number, end: number, truncated: boolean, m: MongoMessage): void {
    switch (m.opCode) {
      case Op.msg:
        this.opMsg(b, msgOff, p, end, truncated, m);
        break;
      case Op.reply:
        this.opReply(b, p, end, truncated, m);
        break;
      case Op.query:
        this.opQuery(b, p, end, truncated, m);
        break;
      case Op.getMore:
        this.opGetMore(b, p, end, m);
        break;
      case Op.insert:
        this.opInsert(b, p, end, truncated, m);
        break;
      case Op.update:
      case Op.delete:
        this.opUpdateDelete(b, p, end, truncated, m);
        break;
      case Op.killCursors:
        this.opKillCursors(b, p, end, m);
        break;
      case Op.msgLegacy: {
        m.method = 'msg';
        const e = cstringEnd(b, p, end);
        if (e >= 0) {
          m.message = b.toString('utf8', p, e);
          m.decoded = true;
        } else if (!truncated) this.bad('malformed_op_msg_legacy');
        break;
      }
      default:
        this.bad('unknown_opcode');
    }
  }

  /** OP_COMPRESSED: originalOpcode, uncompressedSize, compressorId, then the compressed rest */
  private compressed(b: Buffer, off: number, end: number, truncated: boolean, m: MongoMessage): void {
    if (end - off < HEADER_BYTES + 9) {
      if (!truncated) this.bad('malformed_op_compressed');
      return;
    }
    const original = b.readInt32LE(off + 16);
    const size = b.readInt32LE(off + 20);
    const id = b[off + 24];
    m.opCode = original;
    m.isResponse = isResponseHeader(original, m.responseTo);
    m.compressor = id < COMPRESSORS.length ? COMPRESSORS[id] : `compressor ${id}`;
    if (original === Op.compressed || !knownOpcode(original)) {
      this.bad('op_compressed_bad_original_opcode');
      return;
    }
    if (truncated) {
      // a compressed body cannot be read in part; an OP_MSG's flags are inside it too
      m.note(`compressed ${m.side} not decoded: incomplete`);
      return;
    }
    if (size < 0 || size > MAX_WIRE_MESSAGE - HEADER_BYTES) {
      this.bad('op_compressed_bad_size');
      m.note(`compressed ${m.side} not decoded: uncompressed size ${size}`);
      return;
    }
    if (id >= COMPRESSORS.length) {
      this.out!.undecoded('compressed_unsupported');
      m.note(`compressed ${m.side} not decoded: unknown compressor ${id}`);
      return;
    }
    const data = b.subarray(off + 25, end);
    let plain: Buffer;
    try {
      plain = inflate(id, data, size);
    } catch {
      this.bad('decompression_failed');
      m.note(`compressed ${m.side} not decoded: its ${m.compressor} data does not decompress`);
      return;
    }
    if (plain.length !== size) {
      this.bad('decompression_failed');
      m.note(`compressed ${m.side} not decoded: its ${m.compressor} data decompresses to ${plain.length} bytes, not ${size}`);
      return;
    }
    // the original message as if it had come uncompressed: its header, then the body
    const whole = Buffer.allocUnsafe(HEADER_BYTES + size);
    whole.writeInt32LE(HEADER_BYTES + size, 0);
    b.copy(whole, 4, off + 4, off + 12);
    whole.writeInt32LE(original, 12);
    plain.copy(whole, HEADER_BYTES);
    this.body(whole, -1, HEADER_BYTES, whole.length, false, m);
  }

  private opMsg(b: Buffer, msgOff: number, p: number, end: number, truncated: boolean, m: MongoMessage): void {
    if (end - p < 4) {
      if (!truncated) this.bad('malformed_op_msg');
      return;
    }
    const flags = b.readUInt32LE(p);
    m.flags = flags;
    p += 4;
    if ((flags & MSG_UNKNOWN_REQUIRED) !== 0) this.bad('op_msg_unknown_required_flag');
    let secEnd = end;
    if ((flags & MSG_CHECKSUM_PRESENT) !== 0 && !truncated) {
      if (end - p < 4) {
        this.bad('malformed_op_msg');
        return;
      }
      secEnd = end - 4;
      // over the whole message as sent; an OP_COMPRESSED's inner message (msgOff -1) is not checked
      if (msgOff >= 0 && crc32c(b, msgOff, secEnd) !== b.readUInt32LE(secEnd)) {
        this.bad('checksum_mismatch');
        m.note(`${m.side} checksum does not match`);
      }
    }
    let body = -1;
    this.seqCount = 0;
    while (p < secEnd) {
      const kind = b[p++];
      if (kind === 0) {
        const n = docLength(b, p, secEnd);
        if (n < 0) {
          if (!truncated) this.bad('malformed_op_msg_section');
          else if (body < 0 && !m.isResponse) this.commandName(b, p, secEnd, m);
          break;
        }
        if (body >= 0) this.bad('op_msg_two_body_sections');
        else body = p;
        p += n;
      } else if (kind === 1) {
        if (secEnd - p < 5) {
          if (!truncated) this.bad('malformed_op_msg_section');
          break;
        }
        const size = b.readInt32LE(p);
        const id = cstringEnd(b, p + 4, Math.min(p + size, secEnd));
        if (size < 5 || size > secEnd - p || id < 0) {
          if (!truncated || (size >= 5 && size <= secEnd - p)) this.bad('malformed_op_msg_section');
          break;
        }
        if (this.seqCount < MAX_SEQUENCES) {
          const i = this.seqCount++ * 2;
          this.seqId[i] = p + 4;
          this.seqId[i + 1] = id;
          this.seqDocs[i] = id + 1;
          this.seqDocs[i + 1] = p + size;
        } else this.bad('op_msg_too_many_sections');
        p += size;
      } else {
        this.bad('op_msg_bad_section_kind');
        break;
      }
    }
    if (body < 0) {
      if (!truncated) this.bad('op_msg_no_body');
      return;
    }
    if (m.isResponse) this.reply(b, body, secEnd, m);
    else this.command(b, body, secEnd, m, true);
  }

  /**
   * A command document (OP_MSG body, or an OP_QUERY on `db.$cmd`): its first key
   * names it, `$db` (OP_MSG) or the namespace (OP_QUERY, `db` given) its database.
   */
  private command(b: Buffer, doc: number, end: number, m: MongoMessage, opMsg: boolean, db = ''): void {
    // nothing is read from a document before the scanner has passed it
    const reason = checkDocument(b, doc, end, this.o.maxDepth, this.stack);
    if (reason !== '') this.bad(`bson_${reason}`);
    if (reason !== '' && reason !== 'too_deep') {
      this.commandName(b, doc, end, m);
      return;
    }
    const first = firstField(b, doc, this.ref);
    if (first.off < 0) {
      this.bad('empty_command');
      return;
    }
    m.command = true;
    m.decoded = true;
    m.method = b.toString('utf8', doc + 5, first.off - 1);
    if (opMsg) {
      const d = findField(b, doc, F_DB, this.ref2);
      if (d.off >= 0) db = stringValue(b, d.type, d.off);
    }
    let coll = stringValue(b, first.type, first.off);
    if (m.method === 'getMore') {
      m.cursorId = int64String(b, first.type, first.off);
      const c = findField(b, doc, F_COLLECTION, this.ref2);
      if (c.off >= 0) coll = stringValue(b, c.type, c.off);
    } else if (m.method === 'killCursors') {
      const c = findField(b, doc, F_CURSORS, this.ref2);
      if (c.off >= 0 && c.type === BsonType.array) m.cursorId = this.firstInt64(b, c.off);
    }
    m.resource = db === '' ? coll : coll !== '' ? `${db}.${coll}` : `${db}.$cmd`;
    // a document deeper than maxDepth is named, not shown
    const o = reason === '' ? decodeChecked(b, doc, this.why) : null;
    if (o === null) {
      if (reason === '') this.bad(`bson_${this.why[0]}`);
      return;
    }
    delete o[m.method];
    for (const k of METADATA) delete o[k];
    if (this.o.sendRequest) {
      for (let i = 0; i < this.seqCount * 2; i += 2) {
        const docs = this.sequence(b, this.seqDocs[i], this.seqDocs[i + 1]);
        if (docs !== null) o[b.toString('utf8', this.seqId[i], this.seqId[i + 1])] = docs;
      }
      m.request = Object.keys(o).length > 0 ? toJson(o, this.o.maxDocLength) : '';
      for (let i = 0; i < this.seqCount * 2; i += 2) delete o[b.toString('utf8', this.seqId[i], this.seqId[i + 1])];
    }
    const data = DATA_FIELD[m.method];
    if (data !== undefined) delete o[data];
    m.params = Object.keys(o).length > 0 ? toJson(o, this.o.maxDocLength) : '';
  }

  /** the name of a command whose body the capture has only the start of (its first key) */
  private commandName(b: Buffer, doc: number, end: number, m: MongoMessage): void {
    const key = end - doc > 5 ? cstringEnd(b, doc + 5, end) : -1;
    if (key < 0) return;
    m.command = true;
    m.method = b.toString('utf8', doc + 5, key);
  }

  /** the documents of an OP_MSG document sequence, up to maxDocs */
  private sequence(b: Buffer, p: number, end: number): Document[] | null {
    const docs: Document[] = [];
    while (p < end && docs.length < this.o.maxDocs) {
      const n = docLength(b, p, end);
      if (n < 0) {
        this.bad('malformed_op_msg_section');
        return null;
      }
      const d = decode(b, p, end, this.o.maxDepth, this.stack, this.why);
      if (d === null) {
        this.bad(`bson_${this.why[0]}`);
        return null;
      }
      docs.push(d);
      p += n;
    }
    return docs;
  }

  private firstInt64(b: Buffer, arr: number): string {
    const f = firstField(b, arr, this.ref2);
    return f.off >= 0 ? int64String(b, f.type, f.off) : '';
  }

  /** a command's reply: ok, errmsg, code, codeName, writeErrors, writeConcernError, cursor */
  private reply(b: Buffer, doc: number, end: number, m: MongoMessage): void {
    const reason = checkDocument(b, doc, end, this.o.maxDepth, this.stack);
    if (reason !== '') {
      this.bad(`bson_${reason}`);
      if (reason !== 'too_deep') return;
    }
    m.decoded = true;
    m.command = true;
    this.replyErrors(b, doc, m);
    let batch = -1;
    const c = findField(b, doc, F_CURSOR, this.ref);
    if (c.off >= 0 && c.type === BsonType.document) {
      const cursor = c.off;
      const id = findField(b, cursor, F_ID, this.ref);
      if (id.off >= 0) m.cursorId = int64String(b, id.type, id.off);
      let f = findField(b, cursor, F_FIRSTBATCH, this.ref);
      if (f.off < 0) f = findField(b, cursor, F_NEXTBATCH, this.ref);
      if (f.off >= 0 && f.type === BsonType.array) {
        batch = f.off;
        m.numberReturned = countElements(b, batch);
      }
    }
    if (this.o.sendResponse) {
      if (batch >= 0) m.documents = this.render(b, batch, end);
      else m.documents = this.renderOne(b, doc, end);
    }
  }

  /** errors a reply document reports: a failed command, write errors, a write concern error */
  private replyErrors(b: Buffer, doc: number, m: MongoMessage): void {
    const ok = findField(b, doc, F_OK, this.ref);
    if (ok.off >= 0 && numberValue(b, ok.type, ok.off) === 0) {
      this.errorFields(b, doc, m);
      if (m.error === '') m.error = 'command failed';
      return;
    }
    const we = findField(b, doc, F_WRITEERRORS, this.ref);
    if (we.off >= 0 && we.type === BsonType.array) {
      const n = countElements(b, we.off);
      const first = firstField(b, we.off, this.ref);
      if (first.off >= 0 && first.type === BsonType.document) this.errorFields(b, first.off, m);
      if (m.error === '') m.error = 'write error';
      if (n > 1) m.error += ` (and ${n - 1} more write errors)`;
      return;
    }
    const wce = findField(b, doc, F_WRITECONCERNERROR, this.ref);
    if (wce.off >= 0 && wce.type === BsonType.document) {
      this.errorFields(b, wce.off, m);
      if (m.error === '') m.error = 'write concern error';
    }
  }

  /** errmsg (or a legacy $err), code and codeName of an error document */
  private errorFields(b: Buffer, doc: number, m: MongoMessage): void {
    let f = findField(b, doc, F_ERRMSG, this.ref2);
    if (f.off < 0) f = findField(b, doc, F_ERR, this.ref2);
    if (f.off >= 0) m.error = this.cut(stringValue(b, f.type, f.off));
    f = findField(b, doc, F_CODE, this.ref2);
    if (f.off >= 0) {
      const code = numberValue(b, f.type, f.off);
      if (Number.isFinite(code)) m.errorCode = code;
    }
    f = findField(b, doc, F_CODENAME, this.ref2);
    if (f.off >= 0) m.codeName = this.cut(stringValue(b, f.type, f.off));
  }

  private cut(s: string): string {
    return s.length > this.o.maxDocLength ? `${s.slice(0, this.o.maxDocLength)} ...` : s;
  }

  /** the documents of an array as JSON lines, up to maxDocs, then `[...]` (packetbeat's marker) */
  private render(b: Buffer, arr: number, end: number): string {
    const lines: string[] = [];
    const n = eachDocument(b, arr, this.o.maxDocs, (v) => {
      const d = decode(b, v, end, this.o.maxDepth, this.stack, this.why);
      if (d !== null) lines.push(toJson(d, this.o.maxDocLength));
    });
    if (n > this.o.maxDocs) lines.push('[...]');
    return lines.join('\n');
  }

  private renderOne(b: Buffer, doc: number, end: number): string {
    const d = decode(b, doc, end, this.o.maxDepth, this.stack, this.why);
    return d === null ? '' : toJson(d, this.o.maxDocLength);
  }

  /** a document as JSON for a legacy field (query, selector, update); '' when unsound (counted) */
  private docJson(b: Buffer, doc: number, end: number): string {
    const d = decode(b, doc, end, this.o.maxDepth, this.stack, this.why);
    if (d === null) {
      this.bad(`bson_${this.why[0]}`);
      return '';
    }
    return toJson(d, this.o.maxDocLength);
  }

  /** the namespace cstring at p; -1 when it does not end inside the message */
  private namespace(b: Buffer, p: number, end: number, m: MongoMessage): number {
    const e = cstringEnd(b, p, end);
    if (e < 0) return -1;
    m.fullCollectionName = b.toString('utf8', p, e);
    m.resource = m.fullCollectionName;
    return e + 1;
  }

  /** OP_REPLY: responseFlags, cursorID, startingFrom, numberReturned, documents */
  private opReply(b: Buffer, p: number, end: number, truncated: boolean, m: MongoMessage): void {
    if (end - p < 20) {
      if (!truncated) this.bad('malformed_op_reply');
      return;
    }
    const flags = b.readInt32LE(p);
    m.cursorId = b.readBigInt64LE(p + 4).toString();
    m.startingFrom = b.readInt32LE(p + 12);
    m.numberReturned = b.readInt32LE(p + 16);
    m.decoded = true;
    p += 20;
    if (m.numberReturned < 0) this.bad('op_reply_negative_count');
    const n = docLength(b, p, end);
    const reason = n >= 0 ? checkDocument(b, p, end, this.o.maxDepth, this.stack) : '';
    if (n >= 0 && (reason === '' || reason === 'too_deep')) {
      const err = findField(b, p, F_ERR, this.ref);
      if (err.off >= 0) this.errorFields(b, p, m);
      else {
        // a command's reply (the request was on db.$cmd) reports as an OP_MSG reply does
        this.replyErrors(b, p, m);
        m.errorIfCommand = m.error !== '';
      }
    } else if (n >= 0 || (!truncated && m.numberReturned > 0)) this.bad('malformed_op_reply');
    // QueryFailure: the one document is the $err; CursorNotFound: the getMore's cursor is gone
    if ((flags & 2) !== 0 && m.error === '') m.error = 'query failure';
    if ((flags & 1) !== 0 && m.error === '') m.error = 'cursor not found';
    if (this.o.sendResponse && !truncated) {
      const lines: string[] = [];
      let count = 0;
      while (p < end) {
        const len = docLength(b, p, end);
        if (len < 0) break;
        if (count++ < this.o.maxDocs) lines.push(this.renderOne(b, p, end));
        p += len;
      }
      if (count > this.o.maxDocs) lines.push('[...]');
      m.documents = lines.join('\n');
    }
  }

  /** OP_QUERY: flags, fullCollectionName, numberToSkip, numberToReturn, query, returnFieldsSelector */
  private opQuery(b: Buffer, p: number, end: number, truncated: boolean, m: MongoMessage): void {
    if (end - p < 4) {
      if (!truncated) this.bad('malformed_op_query');
      return;
    }
    p = this.namespace(b, p + 4, end, m);
    if (p < 0 || end - p < 8) {
      if (!truncated) this.bad('malformed_op_query');
      return;
    }
    m.numberToSkip = b.readInt32LE(p);
    m.numberToReturn = b.readInt32LE(p + 4);
    p += 8;
    const n = docLength(b, p, end);
    if (n < 0) {
      if (!truncated) this.bad('malformed_op_query');
      return;
    }
    const ns = m.fullCollectionName;
    if (ns.endsWith('.$cmd')) {
      // a command through a query; drivers may wrap it: { $query: { cmd... }, $readPreference }
      let cmd = p;
      const w = findField(b, p, F_QUERY_WRAPPED, this.ref);
      if (w.off >= 0 && w.type === BsonType.document) cmd = w.off;
      this.seqCount = 0;
      this.command(b, cmd, end, m, false, ns.slice(0, -5));
    } else {
      m.method = 'find';
      m.decoded = true;
      m.params = this.docJson(b, p, end);
      if (m.params === '{}') m.params = '';
    }
    m.query = this.docJson(b, p, end);
    p += n;
    if (p < end) {
      const s = docLength(b, p, end);
      if (s >= 0) m.returnFieldsSelector = this.docJson(b, p, end);
      else if (!truncated) this.bad('malformed_op_query');
    }
  }

  /** OP_GET_MORE: ZERO, fullCollectionName, numberToReturn, cursorID */
  private opGetMore(b: Buffer, p: number, end: number, m: MongoMessage): void {
    m.method = 'getMore';
    p = end - p >= 4 ? this.namespace(b, p + 4, end, m) : -1;
    if (p < 0 || end - p < 12) return;
    m.numberToReturn = b.readInt32LE(p);
    m.cursorId = b.readBigInt64LE(p + 4).toString();
    m.decoded = true;
  }

  /** OP_INSERT: flags, fullCollectionName, documents */
  private opInsert(b: Buffer, p: number, end: number, truncated: boolean, m: MongoMessage): void {
    m.method = 'insert';
    p = end - p >= 4 ? this.namespace(b, p + 4, end, m) : -1;
    if (p < 0) {
      if (!truncated) this.bad('malformed_op_insert');
      return;
    }
    m.decoded = true;
    if (this.o.sendRequest) {
      const docs = this.sequence(b, p, end);
      if (docs !== null) m.request = toJson({ documents: docs }, this.o.maxDocLength);
    }
  }

  /** OP_UPDATE: ZERO, fullCollectionName, flags, selector, update; OP_DELETE: ZERO, fullCollectionName, flags, selector */
  private opUpdateDelete(b: Buffer, p: number, end: number, truncated: boolean, m: MongoMessage): void {
    const update = m.opCode === Op.update;
    m.method = update ? 'update' : 'delete';
    p = end - p >= 4 ? this.namespace(b, p + 4, end, m) : -1;
    const n = p >= 0 && end - p >= 4 ? docLength(b, p + 4, end) : -1;
    if (n < 0) {
      if (!truncated) this.bad(update ? 'malformed_op_update' : 'malformed_op_delete');
      return;
    }
    m.decoded = true;
    m.selector = this.docJson(b, p + 4, end);
    if (update && docLength(b, p + 4 + n, end) >= 0) m.update = this.docJson(b, p + 4 + n, end);
    else if (update && !truncated) this.bad('malformed_op_update');
  }

  /** OP_KILL_CURSORS: ZERO, numberOfCursorIDs, cursorIDs */
  private opKillCursors(b: Buffer, p: number, end: number, m: MongoMessage): void {
    m.method = 'killCursors';
    if (end - p < 16) return;
    const count = b.readInt32LE(p + 4);
    if (count < 1 || count > (end - p - 8) / 8) this.bad('malformed_op_kill_cursors');
    else m.decoded = true;
    m.cursorId = b.readBigInt64LE(p + 8).toString();
  }
}

/** decompresses with an output bound of `size` bytes */
function inflate(id: number, data: Buffer, size: number): Buffer {
  switch (id) {
    case 0:
      return data;
    case 1: {
      // the snappy block starts with the uncompressed length: refuse before allocating
      if (snappyLength(data, 0, data.length)?.[0] !== size) throw new Error('snappy length');
      const out = snappyUncompress(data, 0, data.length, size);
      if (out === null) throw new Error('snappy data');
      return out;
    }
    case 2:
      return inflateSync(data, { maxOutputLength: Math.max(size, 1) });
    default: {
      // the frame's content size, when present, must agree; zstd's decoder writes at most `size` bytes
      const declared = zstdContentSize(data);
      if (declared >= 0 && declared !== size) throw new Error('zstd length');
      const out = zstdDecompress(data, size);
      if (out === null) throw new Error('zstd data');
      return out;
    }
  }
}

/** a zstd frame's declared content size, or -1 when it declares none (RFC 8878 3.1.1.1) */
function zstdContentSize(b: Buffer): number {
  if (b.length < 6 || b.readUInt32LE(0) !== 0xfd2fb528) return -1;
  const fhd = b[4];
  const fcs = fhd >> 6;
  const single = (fhd >> 5) & 1;
  const dictBytes = [0, 1, 2, 4][fhd & 3];
  const p = 5 + (single ? 0 : 1) + dictBytes;
  const n = fcs === 0 ? single : 1 << fcs;
  if (n === 0 || b.length < p + n) return -1;
  switch (n) {
    case 1: return b[p];
    case 2: return b.readUInt16LE(p) + 256;
    case 4: return b.readUInt32LE(p);
    default: return Number(b.readBigUInt64LE(p));
  }
}

/** CRC-32C (Castagnoli), reflected, as OP_MSG's checksum */
const CRC32C = (() => {
  const t = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c;
  }
  return t;
})();

export function crc32c(b: Buffer, off: number, end: number): number {
  let c = -1;
  for (let i = off; i < end; i++) c = CRC32C[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}
