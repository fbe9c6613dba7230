import { ReasonCounter, TransactionCounters } from '../../core/counters';
import type { Stats } from '../../core/stage';
import type { Endpoints } from '../../events/endpoints';
import { closeEvent, transactionEvent, UNMATCHED_REQUEST, UNMATCHED_RESPONSE } from '../../events/transaction';
import type { Emitter, Protocol, TcpAnalyzer, TcpContext } from '../analyzer';
import { Framer, Inflater, MAX_PACKET, Reader, type FrameSink } from './packets';
import { binaryRow, csv, executeParams, textRow } from './values';

export interface MysqlOptions {
  /** bytes of one message kept for parsing (query text, parameters, a row); the rest of a longer message is skipped (default 64 KiB) */
  maxMessageBytes: number;
  /** rows kept for `response` (default 10, as packetbeat's max_rows) */
  maxRows: number;
  /** bytes of text kept per row, and per parameter (default 1024, as packetbeat's max_row_length) */
  maxRowLength: number;
  /** put the request's SQL text into `request` (default false, as packetbeat's send_request) */
  sendRequest: boolean;
  /** put the result as CSV into `response` (default false, as packetbeat's send_response) */
  sendResponse: boolean;
  /** commands waiting for their responses, per connection (default 64) */
  maxPending: number;
  /** commands waiting for their responses over all connections (default 4096) */
  maxPendingTotal: number;
  /** seconds of packet time a command waits for its response (default 10, as packetbeat) */
  transactionTimeoutSec: number;
  /** prepared statements remembered per connection (default 1024) */
  maxStatements: number;
  /** bytes of prepared statements' text remembered over all connections (default 64 MiB) */
  maxStatementBytesTotal: number;
  /** a compressed packet is held whole to be inflated, up to this size (default 1 MiB) */
  maxCompressedPacketBytes: number;
}

export const MYSQL_DEFAULTS: MysqlOptions = {
  maxMessageBytes: 64 * 1024,
  maxRows: 10,
  maxRowLength: 1024,
  sendRequest: false,
  sendResponse: false,
  maxPending: 64,
  maxPendingTotal: 4096,
  transactionTimeoutSec: 10,
  maxStatements: 1024,
  maxStatementBytesTotal: 64 * 1024 * 1024,
  maxCompressedPacketBytes: 1024 * 1024,
};

/** commands (COM_*) */
const C = {
  SLEEP: 0x00, QUIT: 0x01, INIT_DB: 0x02, QUERY: 0x03, FIELD_LIST: 0x04, CREATE_DB: 0x05, DROP_DB: 0x06, REFRESH: 0x07,
  SHUTDOWN: 0x08, STATISTICS: 0x09, PROCESS_INFO: 0x0a, CONNECT: 0x0b, PROCESS_KILL: 0x0c, DEBUG: 0x0d, PING: 0x0e, TIME: 0x0f,
  DELAYED_INSERT: 0x10, CHANGE_USER: 0x11, BINLOG_DUMP: 0x12, TABLE_DUMP: 0x13, CONNECT_OUT: 0x14, REGISTER_SLAVE: 0x15,
  STMT_PREPARE: 0x16, STMT_EXECUTE: 0x17, STMT_SEND_LONG_DATA: 0x18, STMT_CLOSE: 0x19, STMT_RESET: 0x1a, SET_OPTION: 0x1b,
  STMT_FETCH: 0x1c, DAEMON: 0x1d, BINLOG_DUMP_GTID: 0x1e, RESET_CONNECTION: 0x1f, STMT_BULK_EXECUTE: 0xfa,
} as const;

/** command code → name without COM_ ('' for codes that are not commands) */
const NAMES: string[] = new Array(256).fill('');
for (const [k, v] of Object.entries(C)) NAMES[v] = k;

/** commands the server uses internally, which clients do not send */
const INTERNAL = new Uint8Array(256);
for (const c of [C.SLEEP, C.CONNECT, C.TIME, C.DELAYED_INSERT, C.CONNECT_OUT, C.DAEMON]) INTERNAL[c] = 1;

/** how the response to each command is read */
const K_SIMPLE = 0; // one packet: OK, ERR, EOF, or (STATISTICS) a string
const K_RESULT = 1; // OK, ERR, LOCAL INFILE, or result sets
const K_PREPARE = 2;
const K_FIELD_LIST = 3;
const K_AUTH = 4; // the connection phase, COM_CHANGE_USER
const K_FETCH = 5; // binary rows of an open cursor
const K_DUMP = 6; // a replication stream: the connection is left after its first packet
const K_NONE = 7; // no response: QUIT, STMT_CLOSE, STMT_SEND_LONG_DATA
const KIND = new Uint8Array(256).fill(K_SIMPLE);
KIND[C.QUERY] = KIND[C.STMT_EXECUTE] = KIND[C.PROCESS_INFO] = KIND[C.STMT_BULK_EXECUTE] = K_RESULT;
KIND[C.STMT_PREPARE] = K_PREPARE;
KIND[C.FIELD_LIST] = K_FIELD_LIST;
KIND[C.CHANGE_USER] = KIND[C.CONNECT] = K_AUTH;
KIND[C.STMT_FETCH] = K_FETCH;
KIND[C.BINLOG_DUMP] = KIND[C.BINLOG_DUMP_GTID] = KIND[C.TABLE_DUMP] = K_DUMP;
KIND[C.QUIT] = KIND[C.STMT_CLOSE] = KIND[C.STMT_SEND_LONG_DATA] = K_NONE;

/** capability flags */
const CLIENT_CONNECT_WITH_DB = 0x8;
const CLIENT_COMPRESS = 0x20;
const CLIENT_PROTOCOL_41 = 0x200;
const CLIENT_SSL = 0x800;
const CLIENT_SECURE_CONNECTION = 0x8000;
const CLIENT_PLUGIN_AUTH_LENENC = 1 << 21;
const CLIENT_DEPRECATE_EOF = 1 << 24;
const CLIENT_ZSTD = 1 << 26;
const CLIENT_QUERY_ATTRIBUTES = 1 << 27;
/** server status flags */
const MORE_RESULTS = 0x0008;
const CURSOR_EXISTS = 0x0040;

// reading a response: where in it the next packet falls
const R_FIRST = 0; // its first packet (or the first of the next result set)
const R_COLUMNS = 1; // column definitions of a result set
const R_COLUMNS_END = 2; // after them: an EOF (without CLIENT_DEPRECATE_EOF) or the first row
const R_ROWS = 3;
const R_PREPARE = 4; // parameter and column definitions after COM_STMT_PREPARE_OK
const R_FIELDS = 5; // COM_FIELD_LIST's column definitions
const R_AUTH = 6;
/** complete, but an EOF may follow (CLIENT_DEPRECATE_EOF not known: the handshake was not seen) */
const R_OPT_EOF = 7;

const P_INIT = 0; // nothing seen yet
const P_COMMAND = 1;
const P_STOPPED = 2; // TLS, a replication stream, or an unknown compression: nothing more is read

class MysqlCounters extends TransactionCounters {
  requests = 0;
  responses = 0;
  /** messages longer than maxMessageBytes: read from their first bytes */
  cut = 0;
  readonly connections = new ReasonCounter();
  readonly statementsDropped = new ReasonCounter();
  statementBytes = 0;
}

/** a prepared statement, as COM_STMT_PREPARE and its response made it */
interface Statement {
  query: string;
  params: number;
  /** parameter types from the last execution that bound them (type, flags per parameter) */
  types: number[];
}

/** One command and its response. All fields set in the constructor, in one order. */
class Tx {
  method = '';
  query = '';
  user = '';
  stmtId = -1;
  /** a COM_STMT_EXECUTE's payload (its first maxMessageBytes), for its parameters */
  exec: Buffer | null = null;
  endSec: number;
  endNsec: number;
  respBytes = 0;
  reqMissing = 0;
  respMissing = 0;
  notes: string[] | null = null;
  /** a response packet was seen */
  responded = false;
  /** the handshake response (CONNECT) was seen */
  requested = false;
  isError = false;
  errorCode = -1;
  errorMessage = '';
  affectedRows = 0;
  insertId = 0;
  numRows = 0;
  numFields = 0;
  numParams = -1;
  serverVersion = '';
  /** db.table of the result's columns */
  tables: string[] | null = null;
  infile = false;
  /** packet loss took part of it (beside the bytes counted missing) */
  partial = false;
  // kept for `response` only
  binary = false;
  fields: string[] | null = null;
  types: number[] | null = null;
  unsigned: boolean[] | null = null;
  rows: string[][] | null = null;
  text = '';

  constructor(
    /** command code; -1: a response whose request was not seen */
    readonly cmd: number,
    readonly startSec: number,
    readonly startNsec: number,
    public reqBytes: number,
  ) {
    this.endSec = startSec;
    this.endNsec = startNsec;
  }

  note(s: string): void {
    (this.notes ??= []).push(s);
  }
}

const SQL_WORD = /[A-Za-z_]+/y;

/** the statement's first word, upper-cased (packetbeat's method), past leading comments and parentheses */
export function sqlVerb(q: string): string {
  let i = 0;
  for (;;) {
    while (i < q.length && (q.charCodeAt(i) <= 32 || q[i] === '(')) i++;
    if (q.startsWith('/*', i)) {
      const e = q.indexOf('*/', i + 2);
      if (e < 0) break;
      i = e + 2;
    } else if (q.startsWith('--', i) || q[i] === '#') {
      const e = q.indexOf('\n', i);
      if (e < 0) break;
      i = e + 1;
    } else break;
  }
  SQL_WORD.lastIndex = i;
  const m = SQL_WORD.exec(q);
  if (m !== null) return m[0].toUpperCase();
  const t = q.trim();
  const sp = t.search(/\s/);
  return (sp < 0 ? t : t.slice(0, sp)).toUpperCase();
}

const rd = new Reader();
const rdEmit = new Reader();

class MysqlConnection implements TcpAnalyzer, FrameSink {
  private readonly framers: [Framer, Framer];
  private readonly inflaters: [Inflater | null, Inflater | null] = [null, null];
  private phase = P_INIT;
  /** capabilities: the server's, then both sides' */
  private caps = 0;
  private serverCaps = -1;
  /** EOF packets after column definitions: 1 yes, 0 no (CLIENT_DEPRECATE_EOF), -1 not known yet */
  private eof = -1;
  /** commands waiting for their responses, oldest first; the head may be `cur` */
  private readonly queue: Tx[] = [];
  /** the command whose response is being read */
  private cur: Tx | null = null;
  private rs = R_FIRST;
  private colsLeft = 0;
  private paramsLeft = 0;
  private readonly stmts = new Map<number, Statement>();
  private lastStmt = -1;

  constructor(
    ctx: TcpContext,
    private readonly ep: Endpoints,
    private readonly out: Emitter,
    private readonly opts: MysqlOptions,
    private readonly n: MysqlCounters,
  ) {
    const synced = !ctx.midStream;
    this.framers = [new Framer(0, this, opts.maxMessageBytes, synced), new Framer(1, this, opts.maxMessageBytes, synced)];
  }

  // ---- the TcpAnalyzer contract

  data(side: number, buf: Buffer, off: number, len: number, tsSec: number, tsNsec: number): void {
    if (this.phase === P_STOPPED) return;
    const inf = this.inflaters[side];
    if (inf !== null) {
      inf.feed(buf, off, len, tsSec, tsNsec);
      return;
    }
    const used = this.framers[side].feed(buf, off, len, tsSec, tsNsec);
    // the framer stopped where compression began
    if (used < len && this.inflaters[side] !== null && this.phase !== P_STOPPED) this.inflaters[side]!.feed(buf, off + used, len - used, tsSec, tsNsec);
  }

  gap(side: number, n: number, tsSec: number, tsNsec: number): void {
    if (this.phase === P_STOPPED) return;
    const inf = this.inflaters[side];
    if (inf !== null) inf.gap(n, tsSec, tsNsec);
    else this.framers[side].gap(n, tsSec, tsNsec);
  }

  close(): void {
    if (this.cur !== null && this.rs === R_OPT_EOF) this.done(this.cur);
    while (this.queue.length > 0) {
      const t = this.take();
      if (t === this.cur) {
        this.cur = null;
        this.n.unmatched.add('response_cut_by_close');
        t.note(t.cmd === C.CONNECT ? 'the connection closed during the connection phase' : 'the connection closed before the response ended');
        t.isError = true;
        this.emit(t, t.cmd < 0 ? UNMATCHED_RESPONSE : null);
      } else {
        this.n.unmatched.add('no_response');
        t.note('no response before the connection closed');
        this.emit(t, UNMATCHED_REQUEST);
      }
    }
    this.forgetStatements();
  }

  expire(nowSec: number): void {
    if (this.cur !== null && this.rs === R_OPT_EOF) this.done(this.cur);
    while (this.queue.length > 0) {
      const t = this.queue[0];
      if (t === this.cur || nowSec - t.startSec < this.opts.transactionTimeoutSec) break;
      this.take();
      this.n.unmatched.add('timeout');
      t.note('no response within the transaction timeout');
      this.emit(t, UNMATCHED_REQUEST);
    }
  }

  discard(): void {
    this.n.pending -= this.queue.length;
    this.queue.length = 0;
    this.cur = null;
    this.forgetStatements();
  }

  // ---- the framers' sink

  message(side: number, buf: Buffer, off: number, len: number, f: Framer): void {
    if (this.phase === P_STOPPED) return;
    if (side === 0) this.client(buf, off, len, f);
    else this.server(buf, off, len, f);
  }

  lost(side: number): void {
    this.violation(side === 0 ? 'request_framing_lost' : 'response_framing_lost');
    if (side === 0) return;
    const t = this.cur;
    if (t !== null) {
      // the rest of this response is in the lost bytes
      if (t.respMissing === 0) t.note('packet loss: the end of the response is missing');
      t.partial = true;
      this.done(t);
    } else if (this.queue.length > 0) {
      const w = this.take();
      this.n.unmatched.add('response_lost');
      w.note('response lost to packet loss');
      w.partial = true;
      this.emit(w, UNMATCHED_REQUEST);
    }
  }

  /** while out of step: a command (side 0) or the start of a response (side 1) at buf[off]? 1 yes, 0 no, -1 more bytes needed */
  plausible(side: number, buf: Buffer, off: number, len: number): number {
    if (len < 5) return -1;
    const plen = buf[off] | (buf[off + 1] << 8) | (buf[off + 2] << 16);
    const seq = buf[off + 3];
    const first = buf[off + 4];
    if (plen < 1) return 0;
    const whole = plen + 4 <= len;
    if (side === 0) {
      // a handshake response to a greeting seen, or a command
      if (seq === 1) return this.queue.length === 1 && this.queue[0].cmd === C.CONNECT && !this.queue[0].requested ? (whole ? 1 : -1) : 0;
      // the server's own commands (SLEEP, CONNECT, TIME, ...) are no sign of a client: a zero byte is too common
      if (seq !== 0 || NAMES[first] === '' || INTERNAL[first] === 1) return 0;
      if (first === C.QUERY || first === C.STMT_PREPARE) {
        if (len < 6) return plen >= 2 ? -1 : 0;
        if (plen < 2 || buf[off + 5] < 0x20 || buf[off + 5] >= 0x7f) return 0;
      }
      return whole || len >= 1024 ? 1 : -1;
    }
    // the start of a response is small: a greeting, OK, ERR, or a column count and the first definition
    const more = whole ? 1 : -1;
    if (plen >= 1024) return 0;
    if (seq === 0) return this.phase !== P_INIT || (first !== 0x0a && first !== 0xff) ? 0 : whole ? (probe(buf, off, len, 1) ? 1 : 0) : -1;
    if (first === 0x00) return plen >= 7 ? more : 0;
    if (first === 0xff) return plen < 9 ? 0 : len < 8 ? -1 : buf[off + 7] === 0x23 ? more : 0;
    if (first < 0xfb && plen <= 2) {
      // a column count, then the first column definition: "\x03def"
      const o = off + 4 + plen;
      if (o + 8 > off + len) return -1;
      return buf[o + 3] === ((seq + 1) & 0xff) && buf[o + 4] === 3 && buf[o + 5] === 0x64 && buf[o + 6] === 0x65 && buf[o + 7] === 0x66 ? 1 : 0;
    }
    return 0;
  }

  // ---- client side

  private client(buf: Buffer, off: number, len: number, f: Framer): void {
    if (f.total > len && f.missing === 0) this.n.cut++;
    if (f.seq !== 0) {
      // the same exchange goes on: a handshake response, auth data, a LOCAL INFILE's contents
      const t = this.queue.length > 0 ? this.queue[this.queue.length - 1] : null;
      if (t === null) {
        this.violation('unexpected_client_packet');
        return;
      }
      t.reqBytes += f.wire;
      t.reqMissing += f.missing;
      if (t.cmd === C.CONNECT && !t.requested) this.handshakeResponse(t, buf, off, len);
      return;
    }
    if (this.phase === P_INIT) this.phase = P_COMMAND;
    if (len === 0) {
      this.violation('empty_command');
      return;
    }
    const cmd = buf[off];
    if (NAMES[cmd] === '' || cmd === C.CONNECT) {
      // not a command: the connection phase is CONNECT's alone
      this.violation('unknown_command');
      return;
    }
    this.n.requests++;
    this.n.started++;
    const t = new Tx(cmd, f.startSec, f.startNsec, f.wire);
    t.reqMissing = f.missing;
    t.method = NAMES[cmd];
    const r = rd.at(buf, off + 1, len - 1);
    switch (cmd) {
      case C.QUERY:
      case C.STMT_PREPARE:
        // MySQL 8's query attributes: none (count 0, one set) before the text
        if (cmd === C.QUERY && (this.caps & CLIENT_QUERY_ATTRIBUTES) !== 0 && r.left >= 2 && buf[off + 1] === 0 && buf[off + 2] === 1) r.skip(2);
        t.query = r.rest(len).trim();
        if (f.total > len && f.missing === 0) t.note(`query cut at ${len} bytes of ${f.total}`);
        t.method = sqlVerb(t.query);
        break;
      case C.INIT_DB:
      case C.CREATE_DB:
      case C.DROP_DB:
        t.query = `${NAMES[cmd]} ${r.rest(256)}`;
        break;
      case C.FIELD_LIST:
        t.query = `${NAMES[cmd]} ${r.cstr(256)}`;
        break;
      case C.PROCESS_KILL:
        t.query = `${NAMES[cmd]} ${r.u32()}`;
        break;
      case C.CHANGE_USER:
        t.user = r.cstr(256);
        break;
      case C.STMT_EXECUTE:
      case C.STMT_CLOSE:
      case C.STMT_RESET:
      case C.STMT_SEND_LONG_DATA:
      case C.STMT_FETCH:
      case C.STMT_BULK_EXECUTE: {
        const id = r.u32();
        // MariaDB: 0xffffffff is the statement prepared last (prepare and execute sent together)
        t.stmtId = id === 0xffffffff ? this.lastStmt : id;
        if (cmd === C.STMT_EXECUTE) t.exec = Buffer.from(buf.subarray(off, off + len));
        break;
      }
    }
    if (KIND[cmd] === K_NONE) {
      // nothing answers these: the transaction is the command alone
      if (cmd === C.STMT_CLOSE) this.statementText(t, true);
      else if (cmd === C.STMT_SEND_LONG_DATA) this.statementText(t, false);
      this.n.transactions++;
      this.emit(t, null, false);
      return;
    }
    this.queue.push(t);
    this.n.pending++;
    if (this.queue.length > this.opts.maxPending) this.evict('pending_limit', 'too many commands waiting for responses');
    else if (this.n.pending > this.opts.maxPendingTotal && this.queue.length > 1) this.evict('pending_limit_total', 'too many commands waiting for responses over all connections');
  }

  /** the oldest waiting command leaves unanswered (not the one whose response is being read) */
  private evict(reason: string, note: string): void {
    const i = this.queue[0] === this.cur ? 1 : 0;
    if (i >= this.queue.length) return;
    const t = this.queue.splice(i, 1)[0];
    this.n.pending--;
    this.n.unmatched.add(reason);
    t.note(note);
    this.emit(t, UNMATCHED_REQUEST);
  }

  private handshakeResponse(t: Tx, buf: Buffer, off: number, len: number): void {
    t.requested = true;
    const r = rd.at(buf, off, len);
    let caps = r.u16();
    if ((caps & CLIENT_PROTOCOL_41) !== 0) {
      caps |= r.u16() << 16;
      r.skip(4 + 1 + 23); // max packet size, character set, filler
    } else r.skip(3);
    if (this.serverCaps >= 0) caps &= this.serverCaps;
    this.caps = caps >>> 0;
    this.eof = (caps & CLIENT_DEPRECATE_EOF) !== 0 ? 0 : 1;
    if ((caps & CLIENT_SSL) !== 0 && r.left === 0) {
      // an SSL request: the rest of the connection is TLS
      this.n.connections.add('tls');
      t.note('the client asked for TLS: the rest of the connection is encrypted');
      this.phase = P_STOPPED;
      this.done(t);
      return;
    }
    t.user = r.cstr(256);
    if ((caps & CLIENT_PLUGIN_AUTH_LENENC) !== 0) r.skipLenstr();
    else if ((caps & CLIENT_SECURE_CONNECTION) !== 0) r.skip(r.u8());
    else r.cstr();
    if ((caps & CLIENT_CONNECT_WITH_DB) !== 0 && r.left > 0) {
      const db = r.cstr(256);
      if (db !== '') t.query = `CONNECT ${db}`;
    }
  }

  // ---- server side

  private server(buf: Buffer, off: number, len: number, f: Framer): void {
    const first = len > 0 ? buf[off] : -1;
    if (this.phase === P_INIT) {
      if (f.seq === 0 && (first === 0x0a || first === 0xff)) {
        this.greeting(buf, off, len, f, first);
        return;
      }
      this.phase = P_COMMAND;
    }
    if (this.cur !== null && this.rs === R_OPT_EOF) {
      if (first === 0xfe && f.total < 7) {
        this.eof = 1;
        this.cur.respBytes += f.wire;
        this.cur.endSec = f.endSec;
        this.cur.endNsec = f.endNsec;
        this.done(this.cur);
        return;
      }
      this.eof = 0;
      this.done(this.cur);
    }
    let t = this.cur;
    if (t === null) {
      // a command that waited past the timeout is unanswered, whenever the stage last looked at the clock
      if (this.queue.length > 0) this.expire(f.startSec);
      t = this.queue.length > 0 ? this.queue[0] : null;
      if (t === null) {
        // a response to a command not seen (the capture began after it, or it was lost)
        t = new Tx(-1, f.startSec, f.startNsec, 0);
        this.n.started++;
        this.n.pending++;
        this.queue.push(t);
      }
      this.cur = t;
      this.rs = t.cmd === C.CONNECT || t.cmd === C.CHANGE_USER ? R_AUTH : R_FIRST;
    }
    t.responded = true;
    t.respBytes += f.wire;
    t.respMissing += f.missing;
    t.endSec = f.endSec;
    t.endNsec = f.endNsec;
    if (len === 0) {
      // an empty packet, or one whose bytes were all lost
      if (f.total === 0) this.violation('empty_response_packet');
      return;
    }
    this.response(t, buf, off, len, f.total, first);
  }

  private greeting(buf: Buffer, off: number, len: number, f: Framer, first: number): void {
    const t = new Tx(C.CONNECT, f.startSec, f.startNsec, 0);
    t.method = 'CONNECT';
    t.responded = true;
    t.respBytes = f.wire;
    this.n.started++;
    this.n.requests++;
    this.phase = P_COMMAND;
    if (first === 0xff) {
      // refused before the handshake (too many connections, host not allowed)
      this.err(t, buf, off, len);
      this.n.transactions++;
      this.n.responses++;
      this.emit(t, null, false);
      return;
    }
    const r = rd.at(buf, off + 1, len - 1);
    t.serverVersion = r.cstr(128);
    r.skip(4 + 8 + 1); // connection id, scramble, filler
    let caps = r.u16();
    if (r.left >= 5) {
      r.skip(3); // character set, status
      caps |= r.u16() << 16;
    }
    this.serverCaps = caps >>> 0;
    this.caps = this.serverCaps;
    this.queue.push(t);
    this.n.pending++;
    this.cur = t;
    this.rs = R_AUTH;
  }

  private response(t: Tx, buf: Buffer, off: number, len: number, total: number, first: number): void {
    switch (this.rs) {
      case R_AUTH:
        if (first === 0x00) {
          this.ok(t, buf, off, len);
          this.done(t);
          if (t.cmd === C.CONNECT) this.loggedIn();
        } else if (first === 0xff) {
          this.err(t, buf, off, len);
          this.done(t);
        }
        // 0xfe an authentication switch, 0x01 more authentication data: the exchange goes on
        return;
      case R_FIRST:
        this.first(t, buf, off, len, total, first);
        return;
      case R_COLUMNS:
        if (first === 0xff) return this.errDone(t, buf, off, len);
        if (first === 0xfe && total < 7) {
          // fewer definitions than announced
          this.violation('short_column_definitions');
          this.rs = R_ROWS;
          return;
        }
        this.column(t, buf, off, len, true);
        if (--this.colsLeft === 0) this.rs = R_COLUMNS_END;
        return;
      case R_COLUMNS_END:
        if (first === 0xfe && total < 7) {
          this.eof = 1;
          const status = rd.at(buf, off + 3, len - 3).u16();
          if (t.cmd === C.STMT_EXECUTE && (status & CURSOR_EXISTS) !== 0) this.done(t);
          else this.rs = R_ROWS;
          return;
        }
        if (this.eof === -1) this.eof = 0;
        this.rs = R_ROWS;
        this.row(t, buf, off, len, total, first);
        return;
      case R_ROWS:
        this.row(t, buf, off, len, total, first);
        return;
      case R_PREPARE:
        this.prepareDefinition(t, buf, off, len, total, first);
        return;
      case R_FIELDS:
        if (first === 0xff) return this.errDone(t, buf, off, len);
        if (first === 0xfe && total < MAX_PACKET) {
          if (total < 7) this.eof = 1;
          this.done(t);
          return;
        }
        this.column(t, buf, off, len, false);
        return;
    }
  }

  /** the first packet of a response, or of the next result set */
  private first(t: Tx, buf: Buffer, off: number, len: number, total: number, first: number): void {
    const kind = t.cmd < 0 ? K_RESULT : KIND[t.cmd];
    if (first === 0xff) {
      if (rd.at(buf, off + 1, len - 1).u16() === 0xffff) return; // MariaDB progress report: the command goes on
      return this.errDone(t, buf, off, len);
    }
    switch (kind) {
      case K_PREPARE:
        if (first === 0x00 && len >= 9) return this.prepareOk(t, buf, off, len);
        this.violation('bad_prepare_response');
        this.done(t);
        return;
      case K_FIELD_LIST:
        if (first === 0xfe && total < MAX_PACKET) return this.done(t);
        this.rs = R_FIELDS;
        this.column(t, buf, off, len, false);
        return;
      case K_DUMP:
        // a replication stream of events follows: not transactions
        this.n.connections.add('replication');
        this.done(t);
        this.phase = P_STOPPED;
        return;
      case K_FETCH:
        t.binary = true;
        this.rs = R_ROWS;
        this.row(t, buf, off, len, total, first);
        return;
      case K_SIMPLE:
        if (first === 0x00) this.ok(t, buf, off, len);
        else if (first !== 0xfe && t.cmd === C.STATISTICS && this.opts.sendResponse) t.text = buf.toString('utf8', off, off + Math.min(len, this.opts.maxRowLength));
        this.done(t);
        return;
    }
    // K_RESULT
    if (first === 0x00 || (first === 0xfe && total < MAX_PACKET)) {
      const status = first === 0x00 || total >= 7 ? this.ok(t, buf, off, len) : rd.at(buf, off + 3, len - 3).u16();
      if ((status & MORE_RESULTS) === 0) this.done(t);
      return;
    }
    if (first === 0xfb && t.cmd === C.QUERY && !t.infile) {
      // LOAD DATA LOCAL INFILE: the client sends the file, then the server answers
      t.infile = true;
      return;
    }
    const r = rd.at(buf, off, len);
    const count = r.lenenc();
    if (r.bad || count <= 0) {
      this.violation('bad_column_count');
      this.done(t);
      return;
    }
    if (t.numFields === 0) t.numFields = count;
    t.binary = t.cmd === C.STMT_EXECUTE || t.cmd === C.STMT_BULK_EXECUTE;
    if (this.opts.sendResponse && t.fields === null) {
      t.fields = [];
      t.types = [];
      t.unsigned = [];
      t.rows = [];
    }
    // MariaDB's cached metadata / MySQL's optional metadata: a flag byte says whether definitions follow
    if (r.left > 0 && r.u8() === 0) {
      this.rs = R_ROWS;
      return;
    }
    this.colsLeft = count;
    this.rs = R_COLUMNS;
  }

  private row(t: Tx, buf: Buffer, off: number, len: number, total: number, first: number): void {
    if (first === 0xff) return this.errDone(t, buf, off, len);
    if (first === 0xfe && total < MAX_PACKET) {
      // the end of the rows: EOF, or an OK packet with CLIENT_DEPRECATE_EOF
      const status = total < 7 ? rd.at(buf, off + 3, len - 3).u16() : this.ok(t, buf, off, len);
      if ((status & MORE_RESULTS) !== 0) this.rs = R_FIRST;
      else this.done(t);
      return;
    }
    t.numRows++;
    const rows = t.rows;
    if (rows !== null && rows.length < this.opts.maxRows && t.fields !== null) {
      const r = rd.at(buf, off, len);
      rows.push(t.binary ? binaryRow(r, t.types!, t.unsigned!, this.opts.maxRowLength) : textRow(r, t.fields.length, this.opts.maxRowLength));
    }
  }

  /** a column definition: its db.table for `path`, its name and type for `response` */
  private column(t: Tx, buf: Buffer, off: number, len: number, forRows: boolean): void {
    const r = rd.at(buf, off, len);
    r.skipLenstr(); // catalog
    const db = r.lenstr(256);
    const table = r.lenstr(256);
    if (table !== '') {
      const name = db === '' ? table : `${db}.${table}`;
      if (t.tables === null) t.tables = [name];
      else if (!t.tables.includes(name) && t.tables.length < 64) t.tables.push(name);
    }
    if (forRows && t.fields !== null) {
      r.skipLenstr(); // original table
      t.fields.push(r.lenstr(256));
      r.skipLenstr(); // original name
      r.skip(1 + 2 + 4); // length of the fixed fields, character set, column length
      t.types!.push(r.u8());
      t.unsigned!.push((r.u16() & 0x20) !== 0);
    }
    if (r.bad) this.violation('bad_column_definition');
  }

  private prepareOk(t: Tx, buf: Buffer, off: number, len: number): void {
    const r = rd.at(buf, off + 1, len - 1);
    const id = r.u32();
    const cols = r.u16();
    const params = r.u16();
    t.stmtId = id;
    t.numFields = cols;
    t.numParams = params;
    this.lastStmt = id;
    this.remember(id, t.query, params);
    this.paramsLeft = params;
    this.colsLeft = cols;
    if (params === 0 && cols === 0) return this.done(t);
    this.rs = R_PREPARE;
  }

  /** after COM_STMT_PREPARE_OK: parameter definitions, an EOF, column definitions, an EOF (no EOFs with CLIENT_DEPRECATE_EOF) */
  private prepareDefinition(t: Tx, buf: Buffer, off: number, len: number, total: number, first: number): void {
    if (first === 0xfe && total < 7) {
      this.eof = 1;
      if (this.paramsLeft === 0 && this.colsLeft === 0) this.done(t);
      return;
    }
    if (first === 0xff) return this.errDone(t, buf, off, len);
    if (this.paramsLeft > 0) this.paramsLeft--;
    else if (this.colsLeft > 0) {
      this.column(t, buf, off, len, false);
      this.colsLeft--;
    } else {
      this.violation('extra_prepare_definition');
      return;
    }
    if (this.paramsLeft === 0 && this.colsLeft === 0) {
      // with EOF packets, the last one ends the response
      if (this.eof === 0) this.done(t);
      else if (this.eof === -1) this.rs = R_OPT_EOF;
    }
  }

  /** an OK packet: affected rows, insert id; returns the status flags */
  private ok(t: Tx, buf: Buffer, off: number, len: number): number {
    const r = rd.at(buf, off + 1, len - 1);
    const affected = r.lenenc();
    const insertId = r.lenenc();
    const status = r.left >= 2 ? r.u16() : 0;
    if (r.bad) {
      this.violation('bad_ok_packet');
      return 0;
    }
    t.affectedRows += affected;
    if (insertId !== 0) t.insertId = insertId;
    return status;
  }

  /** an ERR packet: code, SQL state, message ("42S02: Table 'x' doesn't exist", as packetbeat) */
  private err(t: Tx, buf: Buffer, off: number, len: number): void {
    const r = rd.at(buf, off + 1, len - 1);
    t.isError = true;
    t.errorCode = r.u16();
    let state = '';
    if (r.left >= 6 && buf[r.pos] === 0x23) {
      r.skip(1);
      state = r.str(5);
    }
    const msg = r.rest(this.opts.maxRowLength);
    t.errorMessage = state !== '' ? `${state}: ${msg}` : msg;
  }

  private errDone(t: Tx, buf: Buffer, off: number, len: number): void {
    this.err(t, buf, off, len);
    this.done(t);
  }

  /** the server accepted the login: compression, when both sides asked for it, starts now */
  private loggedIn(): void {
    if ((this.caps & CLIENT_ZSTD) !== 0 && (this.caps & CLIENT_COMPRESS) === 0) {
      this.n.connections.add('compressed_zstd');
      this.phase = P_STOPPED;
      return;
    }
    if ((this.caps & CLIENT_COMPRESS) === 0) return;
    this.n.connections.add('compressed');
    for (const side of [0, 1]) {
      this.inflaters[side] = new Inflater(this.framers[side], this.opts.maxCompressedPacketBytes, (reason) => this.violation(reason));
    }
    // the rest of the server's chunk is compressed
    this.framers[1].halt = true;
  }

  // ---- prepared statements

  private remember(id: number, query: string, params: number): void {
    const old = this.stmts.get(id);
    if (old !== undefined) this.forget(id, old);
    if (this.stmts.size >= this.opts.maxStatements) {
      const [k, v] = this.stmts.entries().next().value as [number, Statement];
      this.forget(k, v);
      this.n.statementsDropped.add('statement_limit');
    }
    while (this.n.statementBytes + query.length > this.opts.maxStatementBytesTotal && this.stmts.size > 0) {
      const [k, v] = this.stmts.entries().next().value as [number, Statement];
      this.forget(k, v);
      this.n.statementsDropped.add('statement_bytes_total');
    }
    if (this.n.statementBytes + query.length > this.opts.maxStatementBytesTotal) {
      this.n.statementsDropped.add('statement_bytes_total');
      return;
    }
    this.stmts.set(id, { query, params, types: [] });
    this.n.statementBytes += query.length;
  }

  private forget(id: number, s: Statement): void {
    this.stmts.delete(id);
    this.n.statementBytes -= s.query.length;
  }

  private forgetStatements(): void {
    for (const [k, v] of this.stmts) this.forget(k, v);
  }

  /** a statement command's SQL text, from the statement table (`close`: and forget it) */
  private statementText(t: Tx, close: boolean): Statement | undefined {
    const s = this.stmts.get(t.stmtId);
    if (s === undefined) {
      t.note('statement not seen prepared (prepared before the capture began)');
      return undefined;
    }
    t.query = s.query;
    if (close) this.forget(t.stmtId, s);
    return s;
  }

  // ---- transactions

  /** the response to `t` is complete */
  private done(t: Tx): void {
    if (this.cur === t) this.cur = null;
    this.rs = R_FIRST;
    const i = this.queue.indexOf(t);
    if (i >= 0) {
      this.queue.splice(i, 1);
      this.n.pending--;
    }
    this.n.responses++;
    this.emit(t, t.cmd < 0 ? UNMATCHED_RESPONSE : null);
  }

  private take(): Tx {
    this.n.pending--;
    return this.queue.shift()!;
  }

  private violation(reason: string): void {
    this.n.violations.add(reason);
    this.out.anomaly?.('mysql', reason, this.ep);
  }

  /** one event; `counted`: the transaction was counted as pending (false for commands nothing answers) */
  private emit(t: Tx, error: string | null, counted = true): void {
    if (counted) this.n.transactions++;
    if (t.cmd < 0) this.n.unmatched.add('response_without_request');
    let params: string[] | null = null;
    if (t.cmd === C.STMT_EXECUTE) {
      const s = this.statementText(t, false);
      if (s !== undefined) {
        t.method = sqlVerb(s.query);
        const p = executeParams(rdEmit.at(t.exec!, 0, t.exec!.length), s.params, s.types, this.opts.maxRowLength);
        if (p.params.length > 0) params = p.params;
        if (p.cut) t.note('parameters cut short: the message was longer than maxMessageBytes or damaged');
      }
    } else if (t.cmd === C.STMT_RESET || t.cmd === C.STMT_FETCH || t.cmd === C.STMT_BULK_EXECUTE) this.statementText(t, false);
    const status = t.isError || error !== null ? 'Error' : 'OK';
    const e = transactionEvent('mysql', this.ep, { startSec: t.startSec, startNsec: t.startNsec, endSec: t.endSec, endNsec: t.endNsec }, status, t.reqBytes, t.respBytes);
    if (t.cmd >= 0) e.method = t.method;
    if (t.query !== '') e.query = t.query;
    if (t.tables !== null) e.path = t.tables.join(', ');
    if (params !== null) e.params = params;
    if (t.user !== '') e.user = { name: t.user };
    if (this.opts.sendRequest && t.query !== '') e.request = t.query;
    if (this.opts.sendResponse) {
      if (t.fields !== null) e.response = csv(t.fields, t.rows!);
      else if (t.text !== '') e.response = t.text;
    }
    const mysql: Record<string, unknown> = {};
    if (t.cmd >= 0) mysql.command = NAMES[t.cmd];
    if (t.responded && !t.isError && KIND[t.cmd & 0xff] !== K_AUTH) {
      mysql.affected_rows = t.affectedRows;
      mysql.insert_id = t.insertId;
      mysql.num_rows = t.numRows;
      mysql.num_fields = t.numFields;
    }
    if (t.errorCode >= 0) {
      mysql.error_code = t.errorCode;
      mysql.error_message = t.errorMessage;
    }
    if (t.stmtId >= 0) mysql.statement_id = t.stmtId;
    if (t.numParams >= 0) mysql.num_params = t.numParams;
    if (t.serverVersion !== '') mysql.server_version = t.serverVersion;
    e.mysql = mysql;
    const notes = t.notes ?? [];
    if (t.reqMissing > 0) notes.push(`packet loss: ${t.reqMissing} request bytes missing`);
    if (t.respMissing > 0) notes.push(`packet loss: ${t.respMissing} response bytes missing`);
    if (t.partial || t.reqMissing > 0 || t.respMissing > 0) this.n.partial++;
    if (t.cmd < 0) notes.push('response without a request');
    closeEvent(e, notes, error);
    this.out.emit(e);
  }
}

/** a server greeting (protocol 10, a version string) or an ERR in its place, or a client's COM_QUERY */
function probe(buf: Buffer, off: number, len: number, side: number): boolean {
  if (len < 8) return false;
  const plen = buf[off] | (buf[off + 1] << 8) | (buf[off + 2] << 16);
  if (buf[off + 3] !== 0 || plen + 4 > len) return false;
  const first = buf[off + 4];
  if (side === 1) {
    if (first === 0x0a) {
      // "5.5.5-10.11.6-MariaDB", "8.0.36": a digit, printable characters, a NUL, then at least the connection id and scramble
      if (plen < 30 || plen > 1024 || buf[off + 5] < 0x30 || buf[off + 5] > 0x39) return false;
      for (let i = off + 6; i < off + 4 + plen; i++) {
        const c = buf[i];
        if (c === 0) return i - off - 5 <= 64 && off + 4 + plen - i >= 13;
        if (c < 0x20 || c > 0x7e) return false;
      }
      return false;
    }
    if (first === 0xff) {
      const code = buf[off + 5] | (buf[off + 6] << 8);
      return plen >= 8 && code >= 1000 && code < 5000 && printable(buf, off + 7, Math.min(plen - 3, 32));
    }
    return false;
  }
  // a COM_QUERY alone in its chunk, starting with a word
  if (first !== C.QUERY || plen + 4 !== len || plen < 4) return false;
  const c = buf[off + 5] | 0x20;
  return c >= 0x61 && c <= 0x7a && printable(buf, off + 5, Math.min(plen - 1, 32));
}

function printable(buf: Buffer, off: number, n: number): boolean {
  for (let i = off; i < off + n; i++) {
    const c = buf[i];
    if ((c < 0x20 && c !== 9 && c !== 10 && c !== 13) || c === 0x7f) return false;
  }
  return true;
}

export const mysql: Protocol<MysqlOptions> = {
  name: 'mysql',
  tcpPorts: [3306],
  udpPorts: [],
  probe,
  create(options) {
    const opts: MysqlOptions = { ...MYSQL_DEFAULTS, ...options };
    const n = new MysqlCounters();
    return {
      tcp: (ctx: TcpContext) => new MysqlConnection(ctx, ctx.endpoints, ctx.out, opts, n),
      stats: (): Stats => ({
        transactions_started: n.started,
        transactions_dropped: n.dropped.toJSON(),
        pending: n.pending,
        requests: n.requests,
        responses: n.responses,
        transactions: n.transactions,
        partial: n.partial,
        messages_cut: n.cut,
        unmatched: n.unmatched.toJSON(),
        violations: n.violations.toJSON(),
        connections: n.connections.toJSON(),
        statements: { held_bytes: n.statementBytes, dropped: n.statementsDropped.toJSON() },
      }),
    };
  },
};
