import { ReasonCounter, TransactionCounters } from '../../core/counters';
import type { Stats } from '../../core/stage';
import type { Endpoints } from '../../events/endpoints';
import { closeEvent, transactionEvent, UNMATCHED_REQUEST, UNMATCHED_RESPONSE } from '../../events/transaction';
import type { Emitter, Protocol, TcpAnalyzer, TcpContext } from '../analyzer';
import { blockingSeconds, deliveryKind, isUnsubscribe, nameCommand, Sub, subKind } from './commands';
import { RespMessage } from './message';
import { RespParser, type RespEvents } from './resp';

export interface RedisOptions {
  /** put the command as sent into a `request` field (packetbeat's send_request; default false) */
  sendRequest: boolean;
  /** put the reply as rendered into a `response` field (packetbeat's send_response; default false) */
  sendResponse: boolean;
  /** bytes of a command or reply kept in `query`, `redis.return_value`, `redis.error` (default 4096); longer ones are cut, with a note */
  maxValueBytes: number;
  /** commands waiting for replies on one connection (default 20000, packetbeat's queue_max_messages) */
  maxPending: number;
  /** bytes of `query` text kept for them on one connection (default 1 MiB, packetbeat's queue_max_bytes) */
  maxPendingBytes: number;
  /** commands waiting over all connections (default 65536); each connection keeps its newest */
  maxPendingTotal: number;
  /** bytes of `query` text kept for them over all connections (default 64 MiB) */
  maxPendingBytesTotal: number;
  /** seconds of packet time a command waits for its reply (default 10, as packetbeat), after a blocking command's own timeout */
  transactionTimeoutSec: number;
}

export const REDIS_DEFAULTS: RedisOptions = {
  sendRequest: false,
  sendResponse: false,
  maxValueBytes: 4096,
  maxPending: 20_000,
  maxPendingBytes: 1024 * 1024,
  maxPendingTotal: 65_536,
  maxPendingBytesTotal: 64 * 1024 * 1024,
  transactionTimeoutSec: 10,
};

class RedisCounters extends TransactionCounters {
  /** the `query` bytes of the commands waiting for replies over all connections */
  pendingBytes = 0;
  commands = 0;
  replies = 0;
  /** server messages that are not replies: pub/sub deliveries, RESP3 pushes, MONITOR lines */
  readonly pushes = new ReasonCounter();
  /** commands answered by no reply, by design (CLIENT REPLY OFF / SKIP) */
  noReply = 0;
  /** replies that came after their command was emitted unanswered (timeout, limits): consumed to stay in step */
  lateReplies = 0;
  /** where a stream lost its place: packet loss, unparseable bytes */
  readonly lost = new ReasonCounter();
  /** connections whose replication stream (SYNC, PSYNC) is not analysed */
  replication = 0;
}

// what a command changes once it is answered
const E_NONE = 0;
const E_MONITOR = 1;
const E_RESET = 2;
const E_PSYNC = 3;

/** a command waiting for its reply (or, for the pub/sub family, its confirmations) */
class Command {
  reply: RespMessage | null = null;
  /** further replies: one confirmation per channel */
  more: RespMessage[] | null = null;
  got = 0;

  constructor(
    readonly msg: RespMessage,
    readonly method: string,
    readonly resource: string,
    /** replies expected: 1, one per channel, or -1 (an UNSUBSCRIBE of every channel: until they stop) */
    readonly expect: number,
    readonly sub: number,
    /** a blocking command's own timeout (s; Infinity: none) */
    readonly waitSec: number,
    readonly effect: number,
  ) {}

  add(m: RespMessage): void {
    if (this.reply === null) this.reply = m;
    else (this.more ??= []).push(m);
    this.got++;
  }
}

const LOSS_RESPONSE = 'response lost to packet loss';
const LOSS_UNPARSEABLE = 'response could not be parsed';
const LOSS_BEHIND = 'response not identified: commands before it were lost to packet loss';

class RedisConnection implements TcpAnalyzer {
  private readonly req: RespParser;
  private readonly resp: RespParser;
  /** commands waiting, oldest first: q[head..] */
  private q: Command[] = [];
  private head = 0;
  /** commands emitted unanswered whose replies are still due (they come before the queue's): their replies are consumed */
  private ghosts = 0;
  /** after commands were lost: replies still due to commands sent before the loss; at 0 the pairing is lost (-1: none) */
  private lostAfter = -1;
  private bytes = 0;
  /** RESP2 subscribed mode: channels and patterns, shard channels (from the confirmations' counts) */
  private subscriptions = 0;
  private shardSubscriptions = 0;
  private subscribed = false;
  private monitor = false;
  private replyOff = false;
  private skipNext = false;
  private inMulti = false;

  constructor(
    midStream: boolean,
    private readonly ep: Endpoints,
    private readonly out: Emitter,
    private readonly opts: RedisOptions,
    private readonly n: RedisCounters,
  ) {
    const reqEvents: RespEvents = {
      message: (m) => this.command(m),
      violation: (reason) => {
        this.violation(`request_${reason}`);
        this.commandsLost();
      },
    };
    const respEvents: RespEvents = {
      message: (m) => this.serverMessage(m),
      violation: (reason) => {
        this.violation(`response_${reason}`);
        this.repliesLost(LOSS_UNPARSEABLE, 'unparseable');
      },
    };
    this.req = new RespParser(true, opts.maxValueBytes, reqEvents);
    this.resp = new RespParser(false, opts.maxValueBytes, respEvents);
    if (midStream) {
      // the streams may start inside a message: commands are looked for, replies wait for one
      this.req.lose();
      this.resp.lose();
    }
  }

  data(side: number, buf: Buffer, off: number, len: number, tsSec: number, tsNsec: number): void {
    (side === 0 ? this.req : this.resp).feed(buf, off, len, tsSec, tsNsec);
  }

  gap(side: number, len: number, tsSec: number, tsNsec: number): void {
    if (side === 0) {
      const cut = this.req.current;
      if (this.req.gap(len)) return;
      this.n.lost.add('request_gap');
      if (cut !== null && cut.args.length > 0) {
        cut.endSec = tsSec;
        cut.endNsec = tsNsec;
        this.n.started++;
        this.n.unmatched.add('request_cut_by_packet_loss');
        const named = nameCommand(cut.args, Math.max(cut.count, cut.args.length));
        this.emit(cut, named.method, named.resource, null, 'request cut by packet loss', false);
      }
      this.commandsLost();
    } else {
      if (this.resp.gap(len)) return;
      this.n.lost.add('response_gap');
      this.repliesLost(LOSS_RESPONSE, 'packet_loss');
    }
  }

  close(): void {
    this.req.close();
    const cut = this.resp.close();
    this.endOpenSubscription();
    if (cut !== null && this.ghosts === 0 && this.size > 0) {
      this.n.unmatched.add('closed_inside_response');
      this.unanswered(this.shift()!, 'connection closed inside the response');
    }
    while (this.size > 0) {
      const c = this.shift()!;
      if (c.got > 0) this.answered(c);
      else {
        this.n.unmatched.add('no_response');
        this.unanswered(c, 'no response before the connection closed');
      }
    }
    this.ghosts = 0;
  }

  expire(nowSec: number): void {
    // a reply in progress keeps its command alive
    if (!this.resp.idle) return;
    while (this.size > 0) {
      const c = this.q[this.head];
      if (nowSec - c.msg.endSec < this.opts.transactionTimeoutSec + c.waitSec) break;
      this.shift();
      if (c.got > 0) {
        // a pub/sub command whose confirmations stopped coming
        this.answered(c);
        this.consumed();
        continue;
      }
      this.ghosts++;
      this.n.unmatched.add('timeout');
      this.unanswered(c, 'no response within the transaction timeout');
    }
  }

  discard(): void {
    this.n.pending -= this.size;
    this.n.pendingBytes -= this.bytes;
    this.q = [];
    this.head = 0;
    this.bytes = 0;
    this.ghosts = 0;
  }

  private get size(): number {
    return this.q.length - this.head;
  }

  private shift(): Command | undefined {
    if (this.head >= this.q.length) return undefined;
    const c = this.q[this.head++];
    if (this.head === this.q.length) {
      this.q.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.q.length) {
      this.q = this.q.slice(this.head);
      this.head = 0;
    }
    const size = c.msg.text.length;
    this.bytes -= size;
    this.n.pendingBytes -= size;
    this.n.pending--;
    return c;
  }

  private violation(reason: string): void {
    this.n.violations.add(reason);
    this.out.anomaly?.('redis', reason, this.ep);
  }

  /** a command from the client */
  private command(m: RespMessage): void {
    if (m.count < 1) return; // an empty command: Redis skips it
    this.n.commands++;
    const { method, resource } = nameCommand(m.args, m.count);
    let noReply = this.replyOff || this.skipNext;
    let why = this.replyOff ? 'CLIENT REPLY OFF' : 'CLIENT REPLY SKIP';
    this.skipNext = false;
    let effect = E_NONE;
    if (this.inMulti) {
      // queued, not run: its effects come with EXEC
      if (method === 'EXEC' || method === 'DISCARD') this.inMulti = false;
    } else {
      switch (method) {
        case 'CLIENT REPLY': {
          const mode = (m.args[2] ?? '').toUpperCase();
          if (mode === 'ON') {
            this.replyOff = false;
            noReply = false;
          } else if (mode === 'OFF' || mode === 'SKIP') {
            if (mode === 'OFF') this.replyOff = true;
            else if (!this.replyOff) this.skipNext = true;
            noReply = true;
            why = `CLIENT REPLY ${mode}`;
          }
          break;
        }
        case 'MULTI':
          this.inMulti = true;
          break;
        case 'MONITOR':
          effect = E_MONITOR;
          break;
        case 'RESET':
          effect = E_RESET;
          this.inMulti = false;
          this.replyOff = false;
          this.skipNext = false;
          noReply = false;
          break;
        case 'PSYNC':
          effect = E_PSYNC;
          break;
        case 'SYNC':
          // the reply is the RDB file without a CRLF after it, then the replication stream
          this.n.started++;
          this.n.replication++;
          this.emit(m, method, resource, null, 'replication stream follows: not analysed', true);
          this.req.stop();
          this.resp.stop();
          return;
      }
    }
    this.n.started++;
    if (noReply) {
      this.n.noReply++;
      this.emit(m, method, resource, null, `no reply expected: ${why}`, true);
      return;
    }
    const sub = subKind(m.args[0]);
    const expect = sub === Sub.none || this.inMulti ? 1 : m.count >= 2 ? m.count - 1 : -1;
    const c = new Command(m, method, resource, expect, this.inMulti ? Sub.none : sub, blockingSeconds(method, m.args, m.count, m.last), effect);
    this.q.push(c);
    const size = m.text.length;
    this.bytes += size;
    this.n.pending++;
    this.n.pendingBytes += size;
    this.limit();
    if (this.resp.waiting) this.resp.arm();
  }

  /** the bounds on waiting commands: the oldest leave unanswered (their replies, when they come, are consumed) */
  private limit(): void {
    const o = this.opts;
    while (this.size > 1) {
      let reason: string;
      let note: string;
      if (this.size > o.maxPending) [reason, note] = ['pending_limit', 'too many commands waiting for replies'];
      else if (this.bytes > o.maxPendingBytes) [reason, note] = ['pending_bytes_limit', 'too many bytes of commands waiting for replies'];
      else if (this.n.pending > o.maxPendingTotal) [reason, note] = ['pending_limit_total', 'too many commands waiting for replies over all connections'];
      else if (this.n.pendingBytes > o.maxPendingBytesTotal) [reason, note] = ['pending_bytes_limit_total', 'too many bytes of commands waiting for replies over all connections'];
      else return;
      this.ghosts++;
      this.n.unmatched.add(reason);
      this.unanswered(this.shift()!, note);
    }
  }

  /** a message from the server: a reply, a pub/sub confirmation or delivery, a push, a MONITOR line */
  private serverMessage(m: RespMessage): void {
    const push = m.isPush;
    const name = (m.type === 42 || push) && m.count >= 1 ? m.args[0] : '';
    const head = this.ghosts === 0 && this.size > 0 ? this.q[this.head] : null;
    if (name !== '' && (push || this.subscribed || (head !== null && head.sub !== Sub.none) || (head === null && this.ghosts === 0))) {
      const sub = subKind(name);
      if (sub !== Sub.none && (push || m.count === 3)) return this.confirmation(m, sub, head);
      const delivery = deliveryKind(name);
      if (delivery !== '' && (push || m.count === (delivery === 'pmessage' ? 4 : 3))) {
        this.n.pushes.add(delivery);
        return;
      }
    }
    if (push) {
      this.n.pushes.add(name === 'invalidate' || name === 'tracking-redir-broken' ? name : 'other');
      return;
    }
    this.endOpenSubscription();
    if (this.monitor && m.type === 43 && m.text.charCodeAt(0) >= 48 && m.text.charCodeAt(0) <= 57) {
      this.n.pushes.add('monitor');
      return;
    }
    this.n.replies++;
    if (this.ghosts > 0) {
      this.ghosts--;
      this.n.lateReplies++;
      this.consumed();
      return;
    }
    const c = this.shift();
    if (c === undefined) {
      this.n.started++;
      this.n.unmatched.add('response_without_request');
      this.emit(null, '', '', [m], 'response without a request', false);
      return;
    }
    c.add(m);
    this.answered(c);
    if (!m.isError) this.effect(c.effect);
    this.consumed();
  }

  /** a pub/sub confirmation: one of the replies of the (P|S)(UN)SUBSCRIBE at the head, or the server's own */
  private confirmation(m: RespMessage, sub: number, head: Command | null): void {
    this.n.replies++;
    const count = Number(m.args[2]);
    if (!m.isPush && Number.isInteger(count)) {
      // RESP2: the count says whether the connection is still in subscribed mode
      if (sub === Sub.ssubscribe || sub === Sub.sunsubscribe) this.shardSubscriptions = count;
      else this.subscriptions = count;
      this.subscribed = this.subscriptions > 0 || this.shardSubscriptions > 0;
    }
    if (head === null || head.sub !== sub) {
      // not asked for: the server unsubscribed the client itself (a shard channel moved), or the capture missed the command
      this.n.pushes.add('unsolicited_confirmation');
      return;
    }
    head.add(m);
    // an UNSUBSCRIBE of every channel is over at its last one (count 0), or when it had none (a null channel)
    const done = head.expect > 0 ? head.got >= head.expect : isUnsubscribe(sub) && (count === 0 || (m.nulls & 2) !== 0);
    if (done) {
      this.shift();
      this.answered(head);
      this.consumed();
    }
  }

  /** an UNSUBSCRIBE of every channel at the head with confirmations: whatever comes next ends it */
  private endOpenSubscription(): void {
    if (this.ghosts > 0 || this.size === 0) return;
    const c = this.q[this.head];
    if (c.expect < 0 && c.got > 0) {
      this.shift();
      this.answered(c);
      this.consumed();
    }
  }

  private effect(e: number): void {
    switch (e) {
      case E_MONITOR:
        this.monitor = true;
        break;
      case E_RESET:
        this.monitor = false;
        this.subscribed = false;
        this.subscriptions = this.shardSubscriptions = 0;
        break;
      case E_PSYNC:
        // the replication stream follows
        this.n.replication++;
        this.req.stop();
        this.resp.stop();
        break;
    }
  }

  /** a reply took the place of a command sent before commands were lost */
  private consumed(): void {
    if (this.lostAfter > 0 && --this.lostAfter === 0) this.repliesLost(LOSS_BEHIND, 'commands_lost');
  }

  /** commands were lost (a gap or unparseable bytes on the client side): the replies of those before still pair */
  private commandsLost(): void {
    if (this.lostAfter > 0) return; // already counting down
    this.lostAfter = this.ghosts + this.size;
    if (this.lostAfter === 0) this.repliesLost(LOSS_BEHIND, 'commands_lost');
  }

  /**
   * The pairing is lost: which reply answers which command cannot be known. Every
   * command waiting leaves with `note`; replies are skipped until the first server
   * chunk, after a new command, that starts like a reply.
   */
  private repliesLost(note: string, reason: string): void {
    this.lostAfter = -1;
    this.ghosts = 0;
    while (this.size > 0) {
      this.n.unmatched.add(reason);
      this.unanswered(this.shift()!, note);
    }
    this.resp.lose();
  }

  private answered(c: Command): void {
    let replies: RespMessage[] = [c.reply!];
    if (c.more !== null) replies = replies.concat(c.more);
    this.emit(c.msg, c.method, c.resource, replies, null, false);
  }

  private unanswered(c: Command, note: string): void {
    if (c.got > 0) return this.answered(c);
    this.emit(c.msg, c.method, c.resource, null, note, false);
  }

  /**
   * A transaction: a command with its reply (or replies), a command alone (unanswered,
   * or answered by no reply by design: `noReply`), or a reply alone.
   */
  private emit(req: RespMessage | null, method: string, resource: string, replies: RespMessage[] | null, note: string | null, noReply: boolean): void {
    const n = this.n;
    n.transactions++;
    const first = req ?? replies![0];
    const last = replies !== null ? replies[replies.length - 1] : req!;
    let respBytes = 0;
    let error: RespMessage | null = null;
    let truncated = false;
    let missing = 0;
    if (replies !== null) {
      for (const r of replies) {
        respBytes += r.wireBytes;
        missing += r.missingBytes;
        truncated ||= r.truncated;
        if (error === null && r.isError) error = r;
      }
    }
    const status = req === null || error !== null || (replies === null && !noReply) ? 'Error' : 'OK';
    const e = transactionEvent('redis', this.ep, { startSec: first.startSec, startNsec: first.startNsec, endSec: last.endSec, endNsec: last.endNsec }, status, req?.wireBytes ?? 0, respBytes);
    if (method !== '') {
      e.event.action = `redis.${method.toLowerCase()}`;
      if (error !== null) e.event.outcome = 'failure';
    }
    if (req !== null) {
      e.method = method;
      if (resource !== '') e.resource = resource;
      e.query = req.text;
    }
    let value = '';
    if (replies !== null) {
      value = replies.length === 1 ? replies[0].text : `[${replies.map((r) => r.text).join(', ')}]`;
      if (value.length > this.opts.maxValueBytes) {
        value = value.slice(0, this.opts.maxValueBytes);
        truncated = true;
      }
      e.redis = error !== null ? { error: error.text } : { return_value: value };
    }
    if (this.opts.sendRequest && req !== null) e.request = req.text;
    if (this.opts.sendResponse && replies !== null) e.response = value;
    const notes: string[] = [];
    if (req?.truncated) notes.push(`query cut at ${this.opts.maxValueBytes} bytes`);
    if (truncated) notes.push(`return value cut at ${this.opts.maxValueBytes} bytes`);
    const reqMissing = req?.missingBytes ?? 0;
    if (reqMissing > 0) notes.push(`packet loss: ${reqMissing} request bytes missing`);
    if (missing > 0) notes.push(`packet loss: ${missing} response bytes missing`);
    if (note !== null) notes.push(note);
    if (reqMissing > 0 || missing > 0 || (note !== null && note.includes('packet loss'))) n.partial++;
    closeEvent(e, notes, req === null ? UNMATCHED_RESPONSE : replies === null && !noReply ? UNMATCHED_REQUEST : null);
    this.out.emit(e);
  }
}

/** `*N\r\n$M\r\n` and a letter: a command as every client library sends it */
function commandProbe(b: Buffer, off: number, len: number): boolean {
  const end = off + len;
  let i = off;
  if (b[i++] !== 42) return false;
  for (const lead of [42, 36]) {
    if (lead === 36 && b[i++] !== 36) return false;
    const from = i;
    while (i < end && i - from < 9 && b[i] >= 48 && b[i] <= 57) i++;
    if (i === from || i + 2 > end || b[i] !== 13 || b[i + 1] !== 10) return false;
    i += 2;
  }
  const c = b[i] | 0x20;
  return i < end && c >= 97 && c <= 122;
}

/** the first reply a client gets on a connection whose command went unrecognised: `+PONG`, or a RESP3 map (HELLO 3) */
function replyProbe(b: Buffer, off: number, len: number): boolean {
  if (len >= 7 && b.toString('latin1', off, off + 7) === '+PONG\r\n') return true;
  if (len < 5 || b[off] !== 37) return false;
  let i = off + 1;
  while (i < off + len && i - off < 4 && b[i] >= 48 && b[i] <= 57) i++;
  return i > off + 1 && i + 2 < off + len && b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 36;
}

export const redis: Protocol<RedisOptions> = {
  name: 'redis',
  tcpPorts: [6379],
  udpPorts: [],
  probe(buf, off, len, side) {
    return side === 0 ? commandProbe(buf, off, len) : replyProbe(buf, off, len);
  },
  create(options) {
    const opts: RedisOptions = { ...REDIS_DEFAULTS, ...options };
    const n = new RedisCounters();
    return {
      tcp: (ctx: TcpContext) => new RedisConnection(ctx.midStream, ctx.endpoints, ctx.out, opts, n),
      stats: (): Stats => ({
        transactions_started: n.started,
        transactions_dropped: n.dropped.toJSON(),
        pending: n.pending,
        commands: n.commands,
        replies: n.replies,
        transactions: n.transactions,
        no_reply: n.noReply,
        late_replies: n.lateReplies,
        partial: n.partial,
        pushes: n.pushes.toJSON(),
        unmatched: n.unmatched.toJSON(),
        lost: n.lost.toJSON(),
        violations: n.violations.toJSON(),
        replication_streams: n.replication,
      }),
    };
  },
};
