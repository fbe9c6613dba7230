import { ReasonCounter } from '../../core/counters';
import { PendingTable } from '../../core/pending';
import { holdFrame, readBefore, type Frame, type Hold } from '../../core/frame';
import type { Stats } from '../../core/stage';
import { Packet } from '../../decode/packet';
import { datagramEndpoints, type Endpoints } from '../../events/endpoints';
import { closeEvent, transactionEvent, UNMATCHED_REQUEST, UNMATCHED_RESPONSE } from '../../events/transaction';
import type { Emitter, Protocol, TcpAnalyzer, TcpContext, DatagramAnalyzer } from '../analyzer';
import { DnsParseError, opcodeName, parseDns, rcodeName, type DnsMessage, type DnsQuestion, type DnsRecord } from './message';
import { domainParts } from './suffix';

export interface DnsOptions {
  /** seconds of packet time a query waits for its response (default 10) */
  transactionTimeoutSec: number;
  /** queries waiting for responses over all conversations (default 16384) */
  maxPending: number;
  /** put the authority records into events (packetbeat's include_authorities; default off, as packetbeat) */
  includeAuthorities: boolean;
  /** put the additional records into events (include_additionals; default off) */
  includeAdditionals: boolean;
}

export const DNS_DEFAULTS: DnsOptions = {
  transactionTimeoutSec: 10,
  maxPending: 16_384,
  includeAuthorities: false,
  includeAdditionals: false,
};

interface Pending {
  query: DnsMessage;
  ep: Endpoints;
  sec: number;
  nsec: number;
  hold: Hold | null;
}

/** why a query left without its response: the counter and the event's note */
const UNANSWERED = {
  replaced: ['replaced_by_new_query', 'another query with the same id arrived before a response'],
  pending_limit: ['pending_limit', 'too many queries waiting for responses'],
  timeout: ['no_response', 'no response'],
  flushed: ['no_response', 'no response'],
} as const;

/** Query/response pairing shared by UDP and TCP: keyed by conversation and id. */
class DnsTransactions {
  private readonly pending: PendingTable<Pending>;
  /** started = transactions (emitted) + dropped + pending */
  started = 0;
  readonly dropped = new ReasonCounter();
  queries = 0;
  responses = 0;
  transactions = 0;
  readonly unmatched = new ReasonCounter();
  readonly malformed = new ReasonCounter();

  constructor(
    private readonly opts: DnsOptions,
    private readonly out: Emitter,
  ) {
    this.pending = new PendingTable<Pending>(opts.maxPending, (p, why) => {
      const [reason, note] = UNANSWERED[why];
      this.unmatched.add(reason);
      this.emit(p.query, null, p.ep, p.sec, p.nsec, p.sec, p.nsec, note);
    });
  }

  /** `frame`: the datagram's frame, held while its query waits (null over TCP: the connection holds its frames) */
  message(key: string, m: DnsMessage, ep: Endpoints, sec: number, nsec: number, frame: Frame | null): void {
    if (!m.response) {
      this.queries++;
      this.started++;
      this.pending.add(key, { query: m, ep, sec, nsec, hold: frame === null ? null : holdFrame(frame) });
      return;
    }
    this.responses++;
    const p = this.pending.take(key);
    if (p === undefined) {
      this.started++;
      if (frame !== null && readBefore(frame)) {
        // read again after a restart point: its query came before it and was paired then
        this.unmatched.add('paired_before_restart');
        this.dropped.add('paired_before_restart');
        return;
      }
      this.unmatched.add('response_without_query');
      this.emit(null, m, ep, sec, nsec, sec, nsec, 'response without a query');
      return;
    }
    this.emit(p.query, m, p.ep, p.sec, p.nsec, sec, nsec, null);
  }

  expire(nowSec: number): void {
    this.pending.expire(nowSec, this.opts.transactionTimeoutSec);
  }

  /** end of input (no key), or a TCP connection's own query at its close: emitted unanswered */
  flush(key?: string): void {
    this.pending.flush(key);
  }

  discard(): void {
    this.pending.discard();
  }

  /** a message that does not parse: counted, and an anomaly event when they are on */
  bad(reason: string, where: Packet | Endpoints): void {
    this.malformed.add(reason);
    if (where instanceof Packet) this.out.packetAnomaly?.('dns', reason, where);
    else this.out.anomaly?.('dns', reason, where);
  }

  stats(): Stats {
    return {
      transactions_started: this.started,
      transactions_dropped: this.dropped.toJSON(),
      queries: this.queries,
      responses: this.responses,
      transactions: this.transactions,
      pending: this.pending.size,
      unmatched: this.unmatched.toJSON(),
      malformed: this.malformed.toJSON(),
    };
  }

  private emit(q: DnsMessage | null, r: DnsMessage | null, ep: Endpoints, s: number, sn: number, e: number, en: number, note: string | null): void {
    this.transactions++;
    const status = q !== null && r !== null && r.rcode === 0 ? 'OK' : 'Error';
    const ev = transactionEvent('dns', ep, { startSec: s, startNsec: sn, endSec: e, endNsec: en }, status, q?.size ?? 0, r?.size ?? 0);
    const main = (q ?? r)!;
    const question = main.questions[0];
    ev.method = opcodeName(main.opcode);
    if (question !== undefined) {
      ev.query = `class ${question.class}, type ${question.type}, ${question.name}`;
      ev.resource = question.name;
    }
    const dns: Record<string, unknown> = {
      id: main.id,
      op_code: opcodeName(main.opcode),
      type: r !== null ? 'answer' : 'query',
    };
    if (question !== undefined) dns.question = questionFields(question);
    if (r !== null) {
      dns.flags = {
        authoritative: r.aa,
        recursion_available: r.ra,
        recursion_desired: r.rd,
        authentic_data: r.ad,
        checking_disabled: r.cd,
        truncated_response: r.tc,
      };
      dns.header_flags = headerFlags(r);
      dns.response_code = rcodeName(r.rcode);
      dns.answers_count = r.counts[1];
      dns.authorities_count = r.counts[2];
      // the OPT pseudo-record is not counted, as packetbeat
      dns.additionals_count = r.opt !== null ? r.counts[3] - 1 : r.counts[3];
      if (r.answers.length > 0) dns.answers = r.answers;
      if (this.opts.includeAuthorities && r.authorities.length > 0) dns.authorities = r.authorities;
      if (this.opts.includeAdditionals && r.additionals.length > 0) dns.additionals = r.additionals;
      const ips = resolvedIps(r.answers);
      if (ips.length > 0) dns.resolved_ip = ips;
      if (r.opt !== null) dns.opt = r.opt;
    } else {
      dns.flags = { recursion_desired: main.rd, checking_disabled: main.cd };
      dns.header_flags = headerFlags(main);
      if (main.opt !== null) dns.opt = main.opt;
    }
    ev.dns = dns;
    closeEvent(ev, note !== null ? [note] : [], r === null ? UNMATCHED_REQUEST : q === null ? UNMATCHED_RESPONSE : null);
    this.out.emit(ev);
  }
}

/**
 * dns.question: name, type, class, and the name's parts by the public suffix list
 * (registered_domain = etld_plus_one, subdomain, top_level_domain) when it has a
 * registrable domain. One lookup per question, on the name in lower case.
 */
function questionFields(q: DnsQuestion): Record<string, string> {
  const f: Record<string, string> = { name: q.name, type: q.type, class: q.class };
  const parts = domainParts(q.name);
  if (parts !== null) {
    f.registered_domain = parts.domain;
    f.etld_plus_one = parts.domain;
    if (parts.subdomain !== '') f.subdomain = parts.subdomain;
    f.top_level_domain = parts.suffix;
  }
  return f;
}

function headerFlags(m: DnsMessage): string[] {
  const f: string[] = [];
  if (m.aa) f.push('AA');
  if (m.tc) f.push('TC');
  if (m.rd) f.push('RD');
  if (m.ra) f.push('RA');
  if (m.ad) f.push('AD');
  if (m.cd) f.push('CD');
  if (m.opt?.do) f.push('DO');
  return f;
}

function resolvedIps(answers: DnsRecord[]): string[] {
  const ips: string[] = [];
  for (const a of answers) if (a.type === 'A' || a.type === 'AAAA') ips.push(a.data);
  return ips;
}

class DnsUdp implements DatagramAnalyzer {
  constructor(private readonly tx: DnsTransactions) {}

  datagram(p: Packet): void {
    let m: DnsMessage;
    try {
      m = parseDns(p.data, p.payloadOff, p.payloadLen);
    } catch (err) {
      if (!(err instanceof DnsParseError)) throw err;
      this.tx.bad(err.reason, p);
      return;
    }
    // a query goes client → server, a response server → client
    const ep = datagramEndpoints(p, !m.response);
    this.tx.message(`u|${ep.clientIp}|${ep.clientPort}|${ep.serverIp}|${ep.serverPort}|${ep.vlan}|${m.id}`, m, ep, p.tsSec, p.tsNsec, p.frame);
  }

  expire(nowSec: number): void {
    this.tx.expire(nowSec);
  }

  flush(): void {
    this.tx.flush();
  }

  discard(): void {
    this.tx.discard();
  }

  stats(): Stats {
    return this.tx.stats();
  }
}

/** DNS over TCP: 2-byte length prefix, any number of messages each way */
class DnsTcp implements TcpAnalyzer {
  private readonly buf: [Buffer | null, Buffer | null] = [null, null];
  private readonly lost = [false, false];
  private readonly prefix: string;
  /** keys of the queries this connection sent: flushed at close without scanning the shared table */
  private readonly keys = new Set<string>();

  constructor(
    private readonly ctx: TcpContext,
    private readonly tx: DnsTransactions,
  ) {
    this.prefix = `t|${ctx.conn.id}|`;
  }

  data(side: number, b: Buffer, off: number, len: number, tsSec: number, tsNsec: number): void {
    if (this.lost[side]) return;
    let data: Buffer;
    let o: number;
    let end: number;
    const held = this.buf[side];
    if (held === null) {
      data = b;
      o = off;
      end = off + len;
    } else {
      data = Buffer.concat([held, b.subarray(off, off + len)]);
      o = 0;
      end = data.length;
    }
    while (end - o >= 2) {
      const mlen = data.readUInt16BE(o);
      if (end - o - 2 < mlen) break;
      this.one(data, o + 2, mlen, tsSec, tsNsec);
      o += 2 + mlen;
    }
    // what remains is less than one message (at most 64 KiB + 1): bounded by the format
    this.buf[side] = o < end ? Buffer.from(data.subarray(o, end)) : null;
  }

  gap(side: number): void {
    // message boundaries are lost with the bytes: this direction can no longer be framed
    this.buf[side] = null;
    this.lost[side] = true;
    this.tx.bad('gap_in_tcp_stream', this.ctx.endpoints);
  }

  close(): void {
    for (const k of this.keys) this.tx.flush(k);
    this.keys.clear();
  }

  expire(): void {
    // pending queries time out in the shared table
  }

  private one(b: Buffer, off: number, len: number, tsSec: number, tsNsec: number): void {
    let m: DnsMessage;
    try {
      m = parseDns(b, off, len);
    } catch (err) {
      if (!(err instanceof DnsParseError)) throw err;
      this.tx.bad(err.reason, this.ctx.endpoints);
      return;
    }
    // the 2-byte length prefix counts in the message's bytes, as packetbeat counts it over TCP
    m.size += 2;
    const key = this.prefix + m.id;
    if (m.response) this.keys.delete(key);
    else this.keys.add(key);
    this.tx.message(key, m, this.ctx.endpoints, tsSec, tsNsec, null);
  }
}

/**
 * A DNS message on a port DNS does not own: a header a resolver or server would send
 * (a known opcode, the Z bit clear, one question, few records, a query with no
 * answers) and a question that parses to its end (uncompressed labels of printable
 * characters, at most 255 bytes, a known class). Random or other protocols' datagrams
 * fail within a few bytes.
 */
export function looksLikeDns(b: Buffer, off: number, len: number): boolean {
  if (len < 17) return false;
  const flags = b.readUInt16BE(off + 2);
  const response = (flags & 0x8000) !== 0;
  const opcode = (flags >> 11) & 0xf;
  if ((opcode !== 0 && opcode !== 2 && opcode !== 4 && opcode !== 5) || (flags & 0x0040) !== 0) return false;
  if (b.readUInt16BE(off + 4) !== 1) return false;
  const an = b.readUInt16BE(off + 6);
  const ns = b.readUInt16BE(off + 8);
  const ar = b.readUInt16BE(off + 10);
  if (an > 256 || ns > 256 || ar > 256) return false;
  if (!response && ((flags & 0x000f) !== 0 || (opcode === 0 && (an !== 0 || ns !== 0)))) return false;
  let o = off + 12;
  const end = off + len;
  let name = 0;
  for (;;) {
    if (o >= end) return false;
    const l = b[o++];
    if (l === 0) break;
    if (l > 63) return false; // a pointer cannot come first, and longer labels do not exist
    name += l + 1;
    if (name > 255 || o + l > end) return false;
    for (let i = o; i < o + l; i++) if (b[i] < 0x21 || b[i] > 0x7e) return false;
    o += l;
  }
  if (o + 4 > end || b.readUInt16BE(o) === 0) return false;
  const cls = b.readUInt16BE(o + 2) & 0x7fff; // mDNS uses the top bit
  return cls === 1 || cls === 3 || cls === 4 || cls === 254 || cls === 255;
}

export const dns: Protocol<DnsOptions> = {
  name: 'dns',
  tcpPorts: [53, 5353],
  udpPorts: [53, 5353],
  probeDatagram: looksLikeDns,
  // over TCP a message follows its 2-byte length (RFC 1035 4.2.2); the first one is a query
  probe: (b, off, len, side) => side === 0 && len >= 19 && b.readUInt16BE(off) >= 17 && looksLikeDns(b, off + 2, Math.min(len - 2, b.readUInt16BE(off))),
  create(options, out) {
    const opts: DnsOptions = { ...DNS_DEFAULTS, ...options };
    const tx = new DnsTransactions(opts, out);
    const udp = new DnsUdp(tx);
    return {
      datagrams: udp,
      tcp: (ctx) => new DnsTcp(ctx, tx),
      stats: () => tx.stats(),
    };
  },
};
