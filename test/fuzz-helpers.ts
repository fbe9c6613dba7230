/**
 * What the property tests share (test/fuzz.test.ts and each protocol's own): run
 * counts that `npm run fuzz` turns into a time budget, byte-level damage, and a
 * capture's TCP streams taken apart to be fed again in other pieces.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { LinkType, makeFrame, type Frame } from '../src/core/frame';
import { decode, DecodeStage } from '../src/decode/stage';
import { makeEndpoints } from '../src/events/endpoints';
import type { Emitter, Protocol, TcpAnalyzer } from '../src/protocols/analyzer';
import { PcapReader } from '../src/sources/pcap';
import { Connection, DirectionFrom } from '../src/tcp/connection';
import { ItemKind } from '../src/tcp/items';
import { TcpReorderer } from '../src/tcp/reorderer';
import { F, TcpConv } from './gen/packets';

/** PKTFLOW_FUZZ_SECONDS: run the properties for a time instead of a count (npm run fuzz) */
export const FUZZ_SECONDS = Number(process.env.PKTFLOW_FUZZ_SECONDS ?? 0);

/** fast-check parameters: a fixed count for CI, or a share (one of `properties`) of the time budget; PKTFLOW_FUZZ_SEED/PATH replay a failure */
export function fuzzParams(numRuns: number, properties: number): fc.Parameters<unknown> {
  const replay = process.env.PKTFLOW_FUZZ_SEED !== undefined ? { seed: Number(process.env.PKTFLOW_FUZZ_SEED), path: process.env.PKTFLOW_FUZZ_PATH } : {};
  if (FUZZ_SECONDS > 0) return { numRuns: 2 ** 31 - 1, interruptAfterTimeLimit: (FUZZ_SECONDS * 1000) / properties, markInterruptAsFailure: false, ...replay };
  return { numRuns, ...replay };
}

/** byte-level damage to valid input: flips, truncation, insertions */
export const mutation = fc.record({
  flips: fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 6 }),
  cut: fc.option(fc.nat()),
  insert: fc.option(fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 16 }))),
});

export function mutate(data: Buffer, m: { flips: [number, number][]; cut: number | null; insert: [number, Uint8Array] | null }): Buffer {
  let b = Buffer.from(data);
  for (const [i, v] of m.flips) if (b.length > 0) b[i % b.length] = v;
  if (m.insert !== null) {
    const at = m.insert[0] % (b.length + 1);
    b = Buffer.concat([b.subarray(0, at), Buffer.from(m.insert[1]), b.subarray(at)]);
  }
  if (m.cut !== null) b = b.subarray(0, m.cut % (b.length + 1));
  return b;
}

// ---------------------------------------------------------------------------
// a capture's TCP conversations, taken apart and put back together in other pieces

/** the TCP conversations of a capture with a server on `port`: per connection, its turns (side, bytes) in order */
export function conversations(file: string, port: number): [number, Buffer][][] {
  const frames = new PcapReader(file).push(readFileSync(file));
  const byConn = new Map<number, [number, Buffer][]>();
  for (const p of decode().push(frames)) {
    if (p.proto !== 6 || p.payloadLen === 0) continue;
    const side = p.dstPort === port ? 0 : 1;
    const client = side === 0 ? p.srcPort : p.dstPort;
    const turns = byConn.get(client) ?? [];
    byConn.set(client, turns);
    const bytes = Buffer.from(p.data.subarray(p.payloadOff, p.payloadOff + p.payloadLen));
    const last = turns[turns.length - 1];
    if (last !== undefined && last[0] === side) last[1] = Buffer.concat([last[1], bytes]);
    else turns.push([side, bytes]);
  }
  return [...byConn.values()];
}

/** conversations rebuilt as packets to a server on `port`, each turn cut at the given points (1400 bytes without) */
export function rebuild(convs: [number, Buffer][][], cuts: number[], port: number): Frame[] {
  const pkts: Buffer[] = [];
  let k = 0;
  convs.forEach((turns, i) => {
    const c = new TcpConv([{ ip: '10.8.0.1', port: 30000 + i }, { ip: '10.8.0.2', port }]);
    pkts.push(...c.handshake());
    for (const [side, data] of turns) {
      for (let o = 0; o < data.length; ) {
        const n = Math.max(1, cuts.length === 0 ? 1400 : cuts[k++ % cuts.length]);
        pkts.push(c.seg(side, F.ACK | F.PSH, data.subarray(o, o + n)));
        o += n;
      }
    }
    pkts.push(...c.close());
  });
  return pkts.map((p, i) => makeFrame(1_700_000_000, i, LinkType.RAW, p.length, 0, p));
}

/** a piece of a reassembled TCP stream, as the analyzer stage hands it on */
export interface Chunk {
  conn: Connection;
  kind: number;
  side: number;
  data: Buffer | null;
  len: number;
  sec: number;
  nsec: number;
}

/** the reassembled streams of a capture (a copy of each chunk's bytes), as the analyzer stage gets them for a server on `port` */
export function streamsOf(file: string, port: number): Chunk[] {
  const frames = new PcapReader(file).push(readFileSync(file));
  const d = new DecodeStage();
  const r = new TcpReorderer({ isServerPort: (p) => p === port });
  const out: Chunk[] = [];
  for (const it of [...r.push(d.push(frames)), ...r.flush()]) {
    if (it.conn === null || (it.kind !== ItemKind.data && it.kind !== ItemKind.gap && it.kind !== ItemKind.close)) continue;
    out.push({ conn: it.conn, kind: it.kind, side: it.side, data: it.kind === ItemKind.data ? Buffer.from(it.buf!.subarray(it.off, it.off + it.len)) : null, len: it.len, sec: it.tsSec, nsec: it.tsNsec });
  }
  return out;
}

/**
 * the chunks through fresh analyzers of `protocol` (with `options`); `pieces(i, len)` cuts
 * chunk i; `more.inner`: the protocols the analyzers may open on their connections (as the
 * analyzer stage's `ctx.open` does: TLS's plaintext), with their options by name in
 * `more.innerOptions`; `more.after(i)` runs after chunk i. Returns the events, the
 * protocol's counters and every protocol's by name.
 */
export function analyzeChunks(
  protocol: Protocol,
  chunks: Chunk[],
  pieces: (i: number, len: number) => number[] = () => [],
  expireEvery = 0,
  options: object = {},
  more: { inner?: Protocol[]; innerOptions?: Record<string, object>; after?: (i: number) => void } = {},
): { events: any[]; stats: any; byProtocol: Record<string, any> } {
  const events: any[] = [];
  const out: Emitter = { emit: (e: any) => void events.push(e) };
  const inst = protocol.create(options, out);
  const inner = new Map((more.inner ?? []).map((p) => [p.name, p.create(more.innerOptions?.[p.name] ?? {}, out)]));
  const analyzers = new Map<Connection, TcpAnalyzer>();
  const get = (c: Connection) => {
    let a = analyzers.get(c);
    if (a === undefined) {
      const midStream = c.directionFrom !== DirectionFrom.syn && c.directionFrom !== DirectionFrom.synAck;
      const endpoints = makeEndpoints(c, 6);
      const open = (name: string, o?: Emitter, mid?: boolean) => inner.get(name)?.tcp?.({ conn: c, endpoints, out: o ?? out, midStream: mid ?? midStream }) ?? null;
      analyzers.set(c, (a = inst.tcp!({ conn: c, endpoints, out, midStream, open })));
    }
    return a;
  };
  chunks.forEach((ch, i) => {
    const a = get(ch.conn);
    if (ch.kind === ItemKind.close) {
      a.close(ch.sec, ch.nsec);
      analyzers.delete(ch.conn);
    } else if (ch.kind === ItemKind.gap) a.gap(ch.side, ch.len, ch.sec, ch.nsec);
    else {
      const cuts = [...new Set([0, ...pieces(i, ch.len).map((c) => c % (ch.len + 1)), ch.len])].sort((x, y) => x - y);
      for (let k = 0; k + 1 < cuts.length; k++) a.data(ch.side, ch.data!, cuts[k], cuts[k + 1] - cuts[k], ch.sec, ch.nsec);
    }
    if (expireEvery > 0 && i % expireEvery === 0) for (const x of analyzers.values()) x.expire(ch.sec, ch.nsec);
    more.after?.(i);
  });
  for (const a of analyzers.values()) a.close(0, 0);
  const stats = inst.stats();
  return { events, stats, byProtocol: { [protocol.name]: stats, ...Object.fromEntries([...inner].map(([n, i]) => [n, i.stats()])) } };
}

/** damage to a stream's chunks: a byte flipped to one of `bytes`, inserted, a chunk cut short, turned into a gap, or lost (a lost close too) */
export function chunkDamage(bytes: number[]) {
  return fc.record({
    chunk: fc.nat(),
    what: fc.constantFrom('flip', 'insert', 'cut', 'gap', 'drop'),
    at: fc.nat(),
    byte: fc.constantFrom(...bytes),
  });
}

/** a copy of the chunks with the damages done */
export function damageChunks(stream: Chunk[], damages: { chunk: number; what: string; at: number; byte: number }[]): Chunk[] {
  const chunks = stream.map((c) => ({ ...c }));
  for (const d of damages) {
    if (chunks.length === 0) break;
    const i = d.chunk % chunks.length;
    const c = chunks[i];
    if (c.kind !== ItemKind.data) {
      if (d.what === 'drop') chunks.splice(i, 1);
      continue;
    }
    const at = d.at % (c.len + 1);
    if (d.what === 'flip' && c.len > 0) {
      c.data = Buffer.from(c.data!);
      c.data[at % c.len] = d.byte;
    } else if (d.what === 'insert') c.data = Buffer.concat([c.data!.subarray(0, at), Buffer.from([d.byte]), c.data!.subarray(at)]);
    else if (d.what === 'cut') c.data = c.data!.subarray(0, at);
    else if (d.what === 'gap') chunks[i] = { ...c, kind: ItemKind.gap, data: null, len: Math.max(1, at) };
    else chunks.splice(i, 1);
    if (chunks[i] === c) c.len = c.data!.length;
  }
  return chunks;
}
