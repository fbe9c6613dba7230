import { ReasonCounter, TransactionCounters } from '../../core/counters';
import type { Stats } from '../../core/stage';
import type { Endpoints } from '../../events/endpoints';
import { closeEvent, transactionEvent, UNMATCHED_REQUEST, UNMATCHED_RESPONSE } from '../../events/transaction';
import type { Emitter, Protocol, TcpAnalyzer, TcpContext } from '../analyzer';
import { csv, readCString, readErrorFields, readFields, readRow, readTag } from './messages';
import { splitStatements, sqlMethod } from './sql';
import { Framer, isType, MAX_STARTUP, plausible, type FrameSink } from './wire';

export interface PgsqlOptions {
  /** put the statement's text into `request` (default false, as packetbeat's send_request) */
  sendRequest: boolean;
  /** put the result as CSV into `response` (default false, as packetbeat's send_response) */
  sendResponse: boolean;
  /** rows kept for `response` (default 10, packetbeat's max_rows) */
  maxRows: number;
  /** bytes kept of each row for `response` (default 1024, packetbeat's max_row_length) */
  maxRowLength: number;
  /** bytes of a message body read (query texts, errors, row descriptions; default 64 KiB): a longer query is cut, and noted */
  maxMessageBytes: number;
  /** requests waiting for their responses per connection: protocol messages of a pipeline count (default 1024) */
  maxPending: number;
  /** transactions waiting for their responses over all connections (default 16384) */
  maxPendingTotal: number;
  /** prepared statements and portals remembered per connection (default 256) */
  maxStatements: number;
  /** bytes of prepared statements' texts remembered over all connections (default 64 MiB) */
  maxStatementBytesTotal: number;
  /** seconds of packet time a request waits for its response (default 10, as packetbeat) */
  transactionTimeoutSec: number;
}

export const PGSQL_DEFAULTS: PgsqlOptions = {
  sendRequest: false,
  sendResponse: false,
  maxRows: 10,
  maxRowLength: 1024,
  maxMessageBytes: 64 * 1024,
  maxPending: 1024,
  maxPendingTotal: 16_384,
  maxStatements: 256,
  maxStatementBytesTotal: 64 * 1024 * 1024,
  transactionTimeoutSec: 10,
};

/** statements of one Query kept (a longer script's further results have no text) */
const MAX_STATEMENTS = 1024;

class PgCounters extends TransactionCounters {
  queries = 0;
  executes = 0;
  results = 0;
  startups = 0;
  startupErrors = 0;
  sslRequests = 0;
  sslRefused = 0;
  encrypted = 0;
  cancelRequests = 0;
  notices = 0;
  notifications = 0;
  fatalUnsolicited = 0;
  statementsNotExecuted = 0;
  /** server messages passed over after a loss, up to its next ReadyForQuery */
  skippedMessages = 0;
  statementBytes = 0;
  readonly statementsForgotten = new ReasonCounter();
}

/** a prepared statement (or a simple query's statement) as the client sent it */
interface Statement {
  text: string;
  /** the text is whole (not cut at maxMessageBytes) */
  whole: boolean;
}

/** One transaction: a statement of a simple Query, an Execute, or a Parse with no Execute. */
class Tx {
  method = '';
  query = '';
  startSec = 0;
  startNsec = 0;
  endSec = 0;
  endNsec = 0;
  reqBytes = 0;
  respBytes = 0;
  reqMissing = 0;
  respMissing = 0;
  /** a response (result or error) came */
  responded = false;
  /** a response with no request seen (0), or one that came after its request had timed out (1) */
  unmatched = -1;
  emitted = false;
  numRows = 0;
  numFields = 0;
  affected = -1;
  /** 1: COPY FROM STDIN, 2: COPY TO STDOUT */
  copy = 0;
  errCode = '';
  errMessage = '';
  errSeverity = '';
  error = false;
  notes: string[] | null = null;
  /** later Executes of its batch the server skipped after this one's error */
  notExecuted = 0;
  fields: string[] | null = null;
  rows: string[][] | null = null;

  note(s: string): void {
    (this.notes ??= []).push(s);
  }
}

const K_STARTUP = 0;
const K_QUERY = 1;
const K_PARSE = 2;
const K_BIND = 3;
const K_DESCRIBE = 4;
const K_EXECUTE = 5;
const K_CLOSE = 6;
const K_SYNC = 7;
const K_FUNCTION = 8;
/** client messages lost to a gap: stands for them until the server's next ReadyForQuery */
const K_LOST = 9;
const STEP_NAMES = ['startup', 'query', 'parse', 'bind', 'describe', 'execute', 'close', 'sync', 'function_call', 'lost'];

/** What the server owes the client for one of its messages, in order. */
class Step {
  /** the transaction this step's answer completes (null: none, or already emitted at a timeout) */
  tx: Tx | null = null;
  /** QUERY: its statements and how many results came; PARSE/BIND/EXECUTE: the statement */
  statements: string[] | null = null;
  results = 0;
  errored = false;
  timedOut = false;
  stmt: Statement | null = null;
  sec = 0;
  nsec = 0;
  constructor(readonly kind: number) {}
}

/** what a step that ends the server's answer to a batch is: ReadyForQuery pops up to it */
const ENDS_CYCLE = (k: number) => k === K_SYNC || k === K_QUERY || k === K_STARTUP || k === K_LOST;

class PgConnection implements TcpAnalyzer, FrameSink {
  private readonly cf: Framer;
  private readonly sf: Framer;
  private readonly steps: Step[] = [];
  /** the result the server is sending, and the step it answers */
  private cur: Tx | null = null;
  private curStep: Step | null = null;
  /** the last result completed, held until the server's next message: ReadyForQuery's bytes are its */
  private lastDone: Tx | null = null;
  /** client bytes since the last transaction took them; server bytes since the last result */
  private reqAcc = 0;
  private reqMissAcc = 0;
  private respAcc = 0;
  private respMissAcc = 0;
  private readonly statements = new Map<string, Statement>();
  private readonly portals = new Map<string, Statement | null>();
  /** the extended-protocol batch the client is sending (since its last Sync) */
  private batchParses: Step[] = [];
  private batchExecuted = false;
  private batchLast: Tx | null = null;
  /** after an error the server ignores the client's messages up to its next Sync */
  private skipUntilSync = false;
  /** the transaction whose error the server is skipping for: the Executes it skips are its note */
  private skipFor: Tx | null = null;
  /** the error came before its own Execute: the first Execute skipped is that transaction's */
  private skipOwnExecute = false;
  /** COPY FROM STDIN in progress: the client's copy data are its */
  private copyIn: Tx | null = null;
  /** the latest RowDescription's field count, names and binary formats (names only with sendResponse) */
  private fieldCount = 0;
  private fieldNames: string[] | null = null;
  private fieldBinary: number[] | null = null;
  /** a RowDescription or NoData came since the last result */
  private described = false;
  /** the server's stream lost messages: what it sends up to its next ReadyForQuery is not paired */
  private draining = false;
  /** transactions of this connection not yet emitted */
  private live = 0;
  private stmtBytes = 0;
  /** ReadyForQuery messages that ended nothing asked, since the client's last message */
  private unclaimedReady = 0;

  constructor(
    midStream: boolean,
    private readonly ep: Endpoints,
    private readonly out: Emitter,
    private readonly opts: PgsqlOptions,
    private readonly n: PgCounters,
  ) {
    this.cf = new Framer(0, this, opts.maxMessageBytes, true);
    this.sf = new Framer(1, this, opts.maxMessageBytes, false);
    for (const c of 'QPBEDC') this.cf.keep[c.charCodeAt(0)] = 1;
    for (const c of 'ZCTEGHA') this.sf.keep[c.charCodeAt(0)] = 1;
    if (opts.sendResponse) this.sf.keep[68] = 1;
    if (midStream) {
      this.cf.resync();
      this.sf.resync();
    }
  }

  data(side: number, buf: Buffer, off: number, len: number, tsSec: number, tsNsec: number): void {
    (side === 0 ? this.cf : this.sf).feed(buf, off, len, tsSec, tsNsec);
  }

  gap(side: number, n: number, tsSec: number, tsNsec: number): void {
    (side === 0 ? this.cf : this.sf).gap(n, tsSec, tsNsec);
  }

  close(tsSec: number, tsNsec: number): void {
    if (this.cur !== null) {
      this.cur.note('connection closed before the response was complete');
      this.finish(this.cur, tsSec, tsNsec);
    }
    this.flushLast();
    for (const s of this.steps) {
      if (s.tx !== null && !s.tx.emitted) this.unanswered(s.tx, 'no_response', 'no response before the connection closed');
    }
    this.steps.length = 0;
    this.forgetStatements();
  }

  expire(nowSec: number): void {
    const timeout = this.opts.transactionTimeoutSec;
    if (this.lastDone !== null && nowSec - this.lastDone.endSec >= timeout) this.flushLast();
    // a response in progress keeps its request alive
    if (this.cur !== null) return;
    for (const s of this.steps) {
      if (s.kind === K_QUERY && s.results > 0) return;
      const tx = s.tx;
      if (tx === null || tx.emitted) continue;
      if (nowSec - tx.startSec < timeout) return;
      s.tx = null;
      s.timedOut = true;
      this.unanswered(tx, 'timeout', 'no response within the transaction timeout');
    }
  }

  discard(): void {
    this.n.pending -= this.live;
    this.live = 0;
    this.steps.length = 0;
    this.cur = this.lastDone = null;
    this.forgetStatements();
  }

  // ---- the framers' messages ----------------------------------------------

  message(f: Framer, type: number, buf: Buffer, off: number, len: number, bodyLen: number): void {
    if (f.side === 0) this.client(f, type, buf, off, off + len, bodyLen);
    else this.server(f, type, buf, off, off + len, bodyLen);
  }

  byteReply(f: Framer, b: number): void {
    if (b === 78) {
      // 'N': refused; the client goes on in the clear with a startup message
      this.n.sslRefused++;
      this.cf.expectStartup();
      return;
    }
    // 'S' (TLS) or 'G' (GSSAPI): what follows is encrypted
    this.n.encrypted++;
    this.cf.stop();
    this.sf.stop();
    this.steps.length = 0;
  }

  lostSync(f: Framer, reason: string): void {
    this.n.violations.add(`${f.side === 0 ? 'request' : 'response'}_${reason}`);
    this.out.anomaly?.('pgsql', `${f.side === 0 ? 'request' : 'response'}_${reason}`, this.ep);
    if (f.side === 0) {
      // client messages lost: one placeholder keeps the server's next answer from pairing with a
      // later request, unless the server has answered what nobody asked since the client's last
      // message (the lost requests' answers came before the gap showed)
      if (this.unclaimedReady === 0) this.push(new Step(K_LOST), f);
      this.resetBatch();
      this.copyIn = null;
      return;
    }
    // how many answers the loss took is unknown: the requests waiting now are given up, and
    // pairing starts afresh after the server's next ReadyForQuery (a guess would shift every
    // later pair of the connection)
    if (this.cur !== null) {
      this.cur.note('packet loss inside the response');
      this.finish(this.cur, f.endSec, f.endNsec);
    }
    this.flushLast();
    for (const s of this.steps.splice(0)) {
      if (s.tx === null || s.tx.emitted || s.tx.responded) continue;
      this.n.partial++;
      this.unanswered(s.tx, 'response_lost', 'response lost to packet loss');
    }
    this.resetBatch();
    this.skipUntilSync = false;
    this.skipFor = null;
    this.copyIn = null;
    this.draining = true;
  }

  private client(f: Framer, type: number, b: Buffer, i: number, end: number, bodyLen: number): void {
    const wire = bodyLen + (type === 0 ? 4 : 5);
    this.unclaimedReady = 0;
    this.reqMissAcc += f.missing;
    switch (type) {
      case 0: {
        const code = end - i >= 4 ? b.readUInt32BE(i) : 0;
        if (code === 80877103 || code === 80877104) {
          // SSLRequest, GSSENCRequest: a one-byte answer follows
          this.n.sslRequests++;
          this.sf.expectByte();
        } else if (code === 80877102) {
          // CancelRequest: the connection carries nothing else
          this.n.cancelRequests++;
          this.cf.stop();
          this.sf.stop();
        } else if (code >>> 16 === 3) {
          this.n.startups++;
          this.cf.typed();
          this.push(new Step(K_STARTUP), f);
        } else {
          this.n.violations.add('request_bad_startup_code');
          this.cf.resync();
        }
        this.reqAcc = this.reqMissAcc = 0;
        return;
      }
      case 81: {
        // Query
        if (this.skipUntilSync) break;
        this.n.queries++;
        const text = readCString(b, i, end).s;
        let statements = splitStatements(text);
        if (statements.length === 0) statements = [text.trim()];
        else if (statements.length > MAX_STATEMENTS) statements = statements.slice(0, MAX_STATEMENTS);
        const s = new Step(K_QUERY);
        s.statements = statements;
        const tx = this.newTx(statements[0], f.startSec, f.startNsec);
        if (end - i < bodyLen - 1 && f.missing === 0) tx.note(`query cut at ${end - i} bytes (maxMessageBytes)`);
        this.takeRequest(tx, wire);
        s.tx = tx;
        this.push(s, f);
        return;
      }
      case 80: {
        // Parse: statement name, query
        if (this.skipUntilSync) break;
        const name = readCString(b, i, end);
        const q = readCString(b, name.next, end);
        const s = new Step(K_PARSE);
        s.stmt = this.define(name.s, q.s, q.next < end || (end - i === bodyLen && f.missing === 0));
        this.batchParses.push(s);
        this.push(s, f);
        break;
      }
      case 66: {
        // Bind: portal, statement
        if (this.skipUntilSync) break;
        const portal = readCString(b, i, end);
        const stmt = readCString(b, portal.next, end).s;
        if (!this.portals.has(portal.s) && this.portals.size >= this.opts.maxStatements) this.portals.delete(this.portals.keys().next().value!);
        this.portals.set(portal.s, this.statements.get(stmt) ?? null);
        const s = new Step(K_BIND);
        s.stmt = this.portals.get(portal.s)!;
        this.push(s, f);
        break;
      }
      case 68: // Describe
        if (this.skipUntilSync) break;
        this.push(new Step(K_DESCRIBE), f);
        break;
      case 69: {
        // Execute: portal, row limit
        if (this.skipUntilSync) {
          // sent after the error came back (the client pipelines): skipped as those sent before it
          this.n.executes++;
          const t = this.skipFor;
          if (this.skipOwnExecute) this.skipOwnExecute = false;
          else if (t !== null && !t.emitted) {
            this.n.started++;
            this.n.dropped.add('not_executed');
            t.notExecuted++;
          }
          break;
        }
        this.n.executes++;
        const stmt = this.portals.get(readCString(b, i, end).s) ?? null;
        const tx = this.newTx(stmt === null ? '' : stmt.text, f.startSec, f.startNsec);
        if (stmt === null) tx.note('statement unknown: prepared before the capture began, or forgotten');
        else if (!stmt.whole) tx.note('query cut (maxMessageBytes)');
        this.takeRequest(tx, wire);
        const s = new Step(K_EXECUTE);
        s.tx = tx;
        s.stmt = stmt;
        this.batchExecuted = true;
        this.batchLast = tx;
        this.push(s, f);
        return;
      }
      case 67: {
        // Close a statement or portal
        if (this.skipUntilSync) break;
        const name = readCString(b, i + 1, end).s;
        if (b[i] === 83) this.undefine(name);
        else this.portals.delete(name);
        this.push(new Step(K_CLOSE), f);
        break;
      }
      case 83: {
        // Sync: the batch ends; a batch that only prepared statements is a transaction for each
        this.skipUntilSync = false;
        this.skipFor = null;
        if (!this.batchExecuted) {
          for (const p of this.batchParses) {
            if (this.steps.indexOf(p) < 0) continue; // already answered
            const tx = this.newTx(p.stmt!.text, p.sec, p.nsec);
            tx.method = 'PREPARE';
            p.tx = tx;
            this.batchLast = tx;
          }
        }
        const last = this.batchLast;
        if (last !== null && !last.emitted) {
          last.reqBytes += this.reqAcc + wire;
          last.reqMissing += this.reqMissAcc;
          this.reqAcc = this.reqMissAcc = 0;
        }
        this.resetBatch();
        this.push(new Step(K_SYNC), f);
        return;
      }
      case 70: // FunctionCall (fast path): answered, not reported
        if (this.skipUntilSync) break;
        this.push(new Step(K_FUNCTION), f);
        break;
      case 100: // CopyData
      case 99: // CopyDone
      case 102: {
        // CopyFail
        const tx = this.copyIn;
        if (tx !== null && !tx.emitted) {
          tx.reqBytes += wire;
          tx.reqMissing += f.missing;
          this.reqMissAcc -= f.missing;
          return;
        }
        break;
      }
      case 112: // password, SASL, GSSAPI: the startup's
      case 88: // Terminate
        this.reqAcc = this.reqMissAcc = 0;
        return;
    }
    this.reqAcc += wire;
  }

  private server(f: Framer, type: number, b: Buffer, i: number, end: number, bodyLen: number): void {
    if (this.draining) {
      // the rest of an answer whose start was lost
      if (type === 90) this.draining = false;
      this.n.skippedMessages++;
      return;
    }
    this.respAcc += bodyLen + 5;
    this.respMissAcc += f.missing;
    switch (type) {
      case 68: {
        // DataRow
        const tx = this.cur ?? this.result(f);
        tx.numRows++;
        if (this.opts.sendResponse && (tx.rows ??= []).length < this.opts.maxRows) tx.rows.push(readRow(b, i, end, this.fieldBinary, this.opts.maxRowLength));
        return;
      }
      case 67: {
        // CommandComplete
        const tx = this.cur ?? this.result(f);
        const tag = readTag(b, i, end);
        if (tag.count >= 0) {
          const c = tag.command;
          if (c === 'INSERT' || c === 'UPDATE' || c === 'DELETE' || c === 'MERGE' || (c === 'COPY' && tx.copy !== 2)) tx.affected = tag.count;
          else if (c === 'COPY') tx.numRows = tag.count;
          else if ((c === 'SELECT' || c === 'FETCH') && (tx.respMissing > 0 || this.respMissAcc > 0)) tx.numRows = Math.max(tx.numRows, tag.count);
        }
        this.complete(tx, f);
        return;
      }
      case 90: // ReadyForQuery
        this.ready(f, end > i ? b[i] : 0);
        return;
      case 84: {
        // RowDescription: of a Describe, or the start of a result
        const names = this.opts.sendResponse ? [] : null;
        const binary = this.opts.sendResponse ? [] : null;
        this.fieldCount = readFields(b, i, end, names, binary);
        this.fieldNames = names;
        this.fieldBinary = binary;
        this.described = true;
        if (this.cur === null && this.steps.length > 0 && this.steps[0].kind === K_DESCRIBE) this.steps.shift();
        else (this.cur ?? this.result(f)).numFields = this.fieldCount;
        return;
      }
      case 110: // NoData
        this.fieldCount = 0;
        this.fieldNames = this.fieldBinary = null;
        this.described = true;
        this.answered(K_DESCRIBE);
        return;
      case 49: // ParseComplete
        this.answered(K_PARSE);
        return;
      case 50: // BindComplete
        this.answered(K_BIND);
        return;
      case 51: // CloseComplete
        this.answered(K_CLOSE);
        return;
      case 86: // FunctionCallResponse
        this.answered(K_FUNCTION);
        return;
      case 73: // EmptyQueryResponse
      case 115: // PortalSuspended
        this.complete(this.cur ?? this.result(f), f);
        return;
      case 71: // CopyInResponse
      case 72: {
        // CopyOutResponse: format, column count
        const tx = this.cur ?? this.result(f);
        tx.copy = type === 71 ? 1 : 2;
        if (end - i >= 3) tx.numFields = b.readUInt16BE(i + 1);
        if (type === 71) this.copyIn = tx;
        return;
      }
      case 87: // CopyBothResponse: streaming replication, not analysed
        this.n.violations.add('replication_not_analysed');
        this.cf.stop();
        this.sf.stop();
        return;
      case 69:
        this.error(f, b, i, end);
        return;
      case 78: // NoticeResponse: not a response
        this.n.notices++;
        return;
      case 65: // NotificationResponse (NOTIFY): not a response
        this.n.notifications++;
        return;
    }
    // ParameterStatus, BackendKeyData, Authentication, NegotiateProtocolVersion, ParameterDescription, copy data
  }

  // ---- pairing ------------------------------------------------------------

  /** the transaction a result the server starts now belongs to */
  private result(f: Framer): Tx {
    // steps the server should have answered before a result (their answers lost) leave first
    while (this.steps.length > 0) {
      const k = this.steps[0].kind;
      if (k !== K_PARSE && k !== K_BIND && k !== K_DESCRIBE && k !== K_CLOSE) break;
      this.dropStep(this.steps.shift()!, 'response_skipped_step');
    }
    const s = this.steps.length > 0 ? this.steps[0] : null;
    let tx: Tx;
    if (s !== null && s.kind === K_QUERY) {
      const k = s.results++;
      if (k === 0 && s.tx !== null && !s.tx.emitted) tx = s.tx;
      else {
        tx = this.newTx(k < s.statements!.length ? s.statements![k] : '', s.sec, s.nsec);
        if (k >= s.statements!.length) tx.note('more results than statements in the query');
        if (s.timedOut && k === 0) this.late(tx, f);
      }
    } else if (s !== null && s.kind === K_EXECUTE) {
      if (s.tx !== null && !s.tx.emitted) tx = s.tx;
      else {
        tx = this.newTx(s.stmt === null ? '' : s.stmt.text, f.startSec, f.startNsec);
        this.late(tx, f);
      }
    } else if (s !== null && s.kind === K_LOST) {
      tx = this.newTx('', f.startSec, f.startNsec);
      tx.note('request lost to packet loss');
      this.n.partial++;
    } else {
      // nothing asked for it: the capture began after the request
      tx = this.newTx('', f.startSec, f.startNsec);
      tx.unmatched = 0;
      tx.note('response without a request');
      this.n.unmatched.add('response_without_request');
    }
    this.cur = tx;
    this.curStep = s;
    return tx;
  }

  /** a result for a request already emitted at the timeout: emitted alone */
  private late(tx: Tx, f: Framer): void {
    tx.startSec = f.startSec;
    tx.startNsec = f.startNsec;
    tx.unmatched = 1;
    tx.note('response after the transaction timeout');
    this.n.unmatched.add('late_response');
  }

  /** a result is complete (CommandComplete, EmptyQueryResponse, PortalSuspended, ErrorResponse) */
  private complete(tx: Tx, f: Framer): void {
    this.n.results++;
    if (tx.copy === 0) tx.numFields = this.described || tx.numRows > 0 ? this.fieldCount : 0;
    if (this.opts.sendResponse && tx.copy === 0 && this.fieldNames !== null && tx.numFields > 0) tx.fields = this.fieldNames;
    this.described = false;
    this.finish(tx, f.endSec, f.endNsec);
  }

  /** the current result ends here: its step leaves (an Execute's), it waits for the server's next message */
  private finish(tx: Tx, sec: number, nsec: number): void {
    tx.responded = true;
    tx.respBytes += this.respAcc;
    tx.respMissing += this.respMissAcc;
    this.respAcc = this.respMissAcc = 0;
    tx.endSec = sec;
    tx.endNsec = nsec;
    const s = this.curStep;
    if (s !== null && s.kind === K_EXECUTE && this.steps[0] === s) this.steps.shift();
    this.cur = null;
    this.curStep = null;
    if (this.copyIn === tx) this.copyIn = null;
    this.flushLast();
    this.lastDone = tx;
  }

  private error(f: Framer, b: Buffer, i: number, end: number): void {
    const e = readErrorFields(b, i, end);
    let tx = this.cur;
    const head = this.steps.length > 0 ? this.steps[0] : null;
    if (tx === null) {
      if (head === null || head.kind === K_SYNC) {
        if (e.severity === 'FATAL' || e.severity === 'PANIC') {
          // the server ends the session on its own (shutdown, idle timeout): no request's answer
          this.n.fatalUnsolicited++;
          return;
        }
        tx = this.result(f);
      } else if (head.kind === K_STARTUP) {
        this.n.startupErrors++;
        this.respAcc = this.respMissAcc = 0;
        return;
      } else if (head.kind === K_QUERY || head.kind === K_LOST) {
        tx = this.result(f);
        head.errored = true;
      } else tx = this.extendedError(f);
    }
    tx.error = true;
    tx.errCode = e.code;
    tx.errMessage = e.message;
    tx.errSeverity = e.severity;
    this.complete(tx, f);
  }

  /**
   * An error answering an extended-protocol message: it is the transaction of the
   * batch's next Execute (a Parse or Bind failing fails the Execute behind it), and
   * the server skips the rest of the batch up to Sync.
   */
  private extendedError(f: Framer): Tx {
    let sync = this.steps.findIndex((s) => s.kind === K_SYNC);
    if (sync < 0) {
      sync = this.steps.length;
      this.skipUntilSync = true;
    }
    let target: Step | null = null;
    for (let j = 0; j < sync; j++) {
      const s = this.steps[j];
      if (s.kind === K_EXECUTE || s.tx !== null) {
        target = s;
        break;
      }
    }
    const head = this.steps[0];
    let tx: Tx;
    if (target !== null && target.tx !== null && !target.tx.emitted) tx = target.tx;
    else {
      const stmt = (target ?? head).stmt;
      tx = this.newTx(stmt === null ? '' : stmt.text, f.startSec, f.startNsec);
      if (target !== null && target.timedOut) this.late(tx, f);
    }
    let skipped = 0;
    for (const s of this.steps.splice(0, sync)) {
      if (s.tx !== null && s.tx !== tx && !s.tx.emitted) {
        skipped++;
        this.drop(s.tx, 'not_executed');
      }
    }
    tx.notExecuted += skipped;
    if (this.skipUntilSync) {
      this.skipFor = tx;
      this.skipOwnExecute = target === null || target.kind !== K_EXECUTE;
    }
    this.cur = tx;
    this.curStep = null;
    return tx;
  }

  /** ReadyForQuery: the server's answer to a Query or a Sync is over */
  private ready(f: Framer, status: number): void {
    const end = this.steps.findIndex((s) => ENDS_CYCLE(s.kind));
    if (this.cur !== null) {
      this.cur.note('result without its completion');
      this.finish(this.cur, f.endSec, f.endNsec);
    }
    const last = this.lastDone;
    if (end < 0) {
      // nothing was asked (a connection seen mid-stream, requests lost)
      this.n.violations.add('ready_without_request');
      this.unclaimedReady++;
    } else {
      for (const s of this.steps.splice(0, end + 1)) {
        if (s.kind === K_QUERY && s.errored && s.results < s.statements!.length) {
          const left = s.statements!.length - s.results;
          this.n.statementsNotExecuted += left;
          if (last !== null && !last.emitted) last.note(`${left} later statements of the query not executed`);
        }
        const tx = s.tx;
        if (tx === null || tx.emitted || tx.responded) continue;
        this.unanswered(tx, 'no_response', 'no response before ReadyForQuery');
      }
    }
    if (last !== null && !last.emitted) {
      last.respBytes += this.respAcc;
      last.respMissing += this.respMissAcc;
      last.endSec = f.endSec;
      last.endNsec = f.endNsec;
    }
    this.respAcc = this.respMissAcc = 0;
    this.flushLast();
    if (status === 73) this.portals.clear(); // 'I': no transaction block, no portals
  }

  /** a ParseComplete, BindComplete, ... : the step it answers leaves */
  private answered(kind: number): void {
    const s = this.steps.length > 0 ? this.steps[0] : null;
    if (s === null || s.kind !== kind) {
      this.n.violations.add(`unexpected_${STEP_NAMES[kind]}_answer`);
      return;
    }
    this.steps.shift();
    // a Parse with no Execute in its batch is a transaction of its own
    if (s.tx !== null && !s.tx.emitted) {
      this.cur = s.tx;
      this.curStep = null;
      this.complete(s.tx, this.sf);
    }
  }

  // ---- transactions -------------------------------------------------------

  private newTx(query: string, sec: number, nsec: number): Tx {
    const tx = new Tx();
    tx.query = query;
    tx.method = sqlMethod(query);
    tx.startSec = tx.endSec = sec;
    tx.startNsec = tx.endNsec = nsec;
    this.n.started++;
    this.n.pending++;
    this.live++;
    if (this.n.pending > this.opts.maxPendingTotal && this.live > 1) {
      // over all connections: each keeps at least its newest
      for (const s of this.steps) {
        if (s.tx !== null && !s.tx.emitted && !s.tx.responded && s.tx !== this.cur) {
          const old = s.tx;
          s.tx = null;
          s.timedOut = true;
          this.unanswered(old, 'pending_limit_total', 'too many requests waiting for responses over all connections');
          break;
        }
      }
    }
    return tx;
  }

  /** the client's bytes so far belong to this transaction's request */
  private takeRequest(tx: Tx, wire: number): void {
    tx.reqBytes = this.reqAcc + wire;
    tx.reqMissing = this.reqMissAcc;
    this.reqAcc = this.reqMissAcc = 0;
  }

  private push(s: Step, f: Framer): void {
    s.sec = f.startSec;
    s.nsec = f.startNsec;
    if (this.steps.length >= this.opts.maxPending) {
      const old = this.steps.shift()!;
      this.n.violations.add('pending_limit');
      if (old.tx !== null && !old.tx.emitted && old.tx !== this.cur) this.unanswered(old.tx, 'pending_limit', 'too many requests waiting for responses');
    }
    this.steps.push(s);
  }

  /** a step whose answer never came, passed over */
  private dropStep(s: Step, reason: string): void {
    this.n.violations.add(reason);
    if (s.tx !== null && !s.tx.emitted && !s.tx.responded) this.unanswered(s.tx, 'no_response', 'no response');
  }

  private resetBatch(): void {
    this.batchParses = [];
    this.batchExecuted = false;
    this.batchLast = null;
  }

  private flushLast(): void {
    const t = this.lastDone;
    this.lastDone = null;
    if (t !== null && !t.emitted) this.emit(t);
  }

  private unanswered(tx: Tx, reason: string, note: string): void {
    this.n.unmatched.add(reason);
    tx.note(note);
    this.emit(tx);
  }

  /** a transaction that ends without an event (the server skipped its request) */
  private drop(tx: Tx, reason: string): void {
    tx.emitted = true;
    this.n.dropped.add(reason);
    this.n.pending--;
    this.live--;
  }

  private emit(tx: Tx): void {
    tx.emitted = true;
    this.n.transactions++;
    this.n.pending--;
    this.live--;
    const matched = tx.responded && tx.unmatched < 0;
    const status = matched && !tx.error ? 'OK' : 'Error';
    const e = transactionEvent('pgsql', this.ep, tx, status, tx.reqBytes, tx.respBytes);
    if (tx.method !== '') e.method = tx.method;
    if (tx.query !== '') {
      e.query = tx.query;
      if (this.opts.sendRequest) e.request = tx.query;
    }
    if (tx.responded) {
      const p: Record<string, unknown> = { num_rows: tx.numRows, num_fields: tx.numFields };
      if (tx.affected >= 0) p.affected_rows = tx.affected;
      if (tx.error) {
        if (tx.errCode !== '') p.error_code = tx.errCode;
        if (tx.errMessage !== '') p.error_message = tx.errMessage;
        if (tx.errSeverity !== '') p.error_severity = tx.errSeverity;
      }
      e.pgsql = p;
      if (this.opts.sendResponse) e.response = csv(tx.fields ?? [], tx.rows ?? []);
    }
    const notes: string[] = tx.notes ?? [];
    if (tx.notExecuted > 0) notes.push(`${tx.notExecuted} later requests of the batch not executed`);
    if (tx.reqMissing > 0) notes.push(`packet loss: ${tx.reqMissing} request bytes missing`);
    if (tx.respMissing > 0) notes.push(`packet loss: ${tx.respMissing} response bytes missing`);
    if (tx.reqMissing > 0 || tx.respMissing > 0) this.n.partial++;
    closeEvent(e, notes, !tx.responded ? UNMATCHED_REQUEST : tx.unmatched >= 0 ? UNMATCHED_RESPONSE : null);
    this.out.emit(e);
  }

  // ---- prepared statements ------------------------------------------------

  private define(name: string, text: string, whole: boolean): Statement {
    this.undefine(name);
    const max = this.opts.maxStatementBytesTotal;
    while (this.statements.size > 0 && (this.statements.size >= this.opts.maxStatements || this.n.statementBytes + text.length > max)) {
      const oldest = this.statements.keys().next().value!;
      this.n.statementsForgotten.add(this.statements.size >= this.opts.maxStatements ? 'statement_limit' : 'memory_limit');
      this.undefine(oldest);
    }
    const s: Statement = { text, whole };
    if (this.n.statementBytes + text.length > max) {
      // kept for this batch only
      this.n.statementsForgotten.add('memory_limit');
      return s;
    }
    this.statements.set(name, s);
    this.n.statementBytes += text.length;
    this.stmtBytes += text.length;
    return s;
  }

  private undefine(name: string): void {
    const s = this.statements.get(name);
    if (s === undefined) return;
    this.statements.delete(name);
    this.n.statementBytes -= s.text.length;
    this.stmtBytes -= s.text.length;
  }

  private forgetStatements(): void {
    this.n.statementBytes -= this.stmtBytes;
    this.stmtBytes = 0;
    this.statements.clear();
    this.portals.clear();
  }
}

/** is b[off, off+len) exactly a chain of well-formed messages of this side, with one of `wanted` types among them */
function chain(side: number, b: Buffer, off: number, len: number, wanted: string): boolean {
  const end = off + len;
  let i = off;
  let seen = false;
  while (i < end) {
    if (end - i < 5) return false;
    const l = b.readUInt32BE(i + 1);
    if (l < 4 || i + 1 + l > end) return false;
    if (!isType(side, b[i]) || !plausible(side, b[i], b, i + 5, i + 1 + l)) return false;
    if (wanted.includes(String.fromCharCode(b[i]))) seen = true;
    i += 1 + l;
  }
  return seen;
}

export const pgsql: Protocol<PgsqlOptions> = {
  name: 'pgsql',
  tcpPorts: [5432],
  udpPorts: [],
  /**
   * The client's first message: a startup message (protocol 3.x, with its
   * parameters), an SSLRequest, GSSENCRequest or CancelRequest, all without a type
   * byte; mid-stream, whole well-formed messages only: the client's with a Query or
   * Parse, the server's with a ReadyForQuery.
   */
  probe(buf, off, len, side) {
    if (side === 1) return chain(1, buf, off, len, 'Z');
    if (len >= 8) {
      const l = buf.readUInt32BE(off);
      const code = buf.readUInt32BE(off + 4);
      if (l === len && (((code === 80877103 || code === 80877104) && l === 8) || (code === 80877102 && l === 16))) return true;
      if (l === len && l > 8 && l <= MAX_STARTUP && code >>> 16 === 3 && buf[off + len - 1] === 0) return true;
    }
    return chain(0, buf, off, len, 'QP');
  },
  create(options) {
    const opts: PgsqlOptions = { ...PGSQL_DEFAULTS, ...options };
    const n = new PgCounters();
    return {
      tcp: (ctx: TcpContext) => new PgConnection(ctx.midStream, ctx.endpoints, ctx.out, opts, n),
      stats: (): Stats => ({
        transactions_started: n.started,
        transactions_dropped: n.dropped.toJSON(),
        pending: n.pending,
        transactions: n.transactions,
        queries: n.queries,
        executes: n.executes,
        results: n.results,
        partial: n.partial,
        unmatched: n.unmatched.toJSON(),
        violations: n.violations.toJSON(),
        startups: n.startups,
        startup_errors: n.startupErrors,
        ssl_requests: n.sslRequests,
        ssl_refused: n.sslRefused,
        encrypted: n.encrypted,
        cancel_requests: n.cancelRequests,
        notices: n.notices,
        notifications: n.notifications,
        unsolicited_fatal_errors: n.fatalUnsolicited,
        statements_not_executed: n.statementsNotExecuted,
        messages_skipped: n.skippedMessages,
        statements_forgotten: n.statementsForgotten.toJSON(),
        statement_bytes: n.statementBytes,
      }),
    };
  },
};
