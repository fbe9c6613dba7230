/**
 * MongoDB properties over the byte streams of every MongoDB fixture (real FerretDB
 * traffic and the generated edge cases): cut at random points they give the same
 * events as whole; damaged (flips, insertions, truncation, lost bytes) they never
 * throw out of the analyzer, every transaction started is emitted or still waiting,
 * and the framers' buffers return to the budget. `npm run fuzz` runs them for a time
 * (PKTFLOW_FUZZ_SECONDS); the corrupted-capture corpus and the frame mutations of
 * test/fuzz.test.ts take the same fixtures through the whole pipeline.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { makeEndpoints } from '../src/events/endpoints';
import { mongodb } from '../src/protocols/mongodb';
import { eventStages } from '../src/pipeline/presets';
import { PcapReader } from '../src/sources/pcap';
import { ItemKind, type StreamItem } from '../src/tcp/items';
import type { Connection } from '../src/tcp/connection';
import { fuzzParams, mutate, mutation } from './fuzz-helpers';
import { ROOT } from './helpers';

const PROPERTIES = 2;

/** what one direction of a connection carried, in order: data with its packet time, or a loss */
interface Turn {
  side: number;
  data: Buffer | null;
  lost: number;
  sec: number;
  nsec: number;
}

interface Stream {
  conn: Connection;
  turns: Turn[];
}

/** the in-order streams of a capture's connections, as the reorderer hands them on (consecutive data of one side merged) */
function streams(file: string): Stream[] {
  const frames = new PcapReader(file).push(readFileSync(file));
  const [decode, reorder] = eventStages();
  const items = [...(reorder.push(decode.push(frames)) as StreamItem[]), ...(reorder.flush() as StreamItem[])];
  const byConn = new Map<Connection, Turn[]>();
  for (const it of items) {
    if (it.kind !== ItemKind.data && it.kind !== ItemKind.gap) continue;
    let turns = byConn.get(it.conn!);
    if (turns === undefined) byConn.set(it.conn!, (turns = []));
    const last = turns[turns.length - 1];
    if (it.kind === ItemKind.gap) turns.push({ side: it.side, data: null, lost: it.len, sec: it.tsSec, nsec: it.tsNsec });
    else if (last !== undefined && last.side === it.side && last.data !== null) last.data = Buffer.concat([last.data, it.buf!.subarray(it.off, it.off + it.len)]);
    else turns.push({ side: it.side, data: Buffer.from(it.buf!.subarray(it.off, it.off + it.len)), lost: 0, sec: it.tsSec, nsec: it.tsNsec });
  }
  return [...byConn].map(([conn, turns]) => ({ conn, turns }));
}

/** the analyzer over one connection's turns, each data turn cut where `cuts` say; its events and stats after close */
function analyze(s: Stream, cuts: number[], options = {}) {
  const events: unknown[] = [];
  const out = { emit: (e: unknown) => events.push(e) };
  const inst = mongodb.create(options, out);
  const a = inst.tcp!({ conn: s.conn, endpoints: makeEndpoints(s.conn, 6), out, midStream: false });
  let k = 0;
  let last: Turn | null = null;
  for (const t of s.turns) {
    last = t;
    if (t.data === null) {
      a.gap(t.side, t.lost, t.sec, t.nsec);
      continue;
    }
    for (let o = 0; o < t.data.length; ) {
      const n = cuts.length === 0 ? t.data.length : 1 + (cuts[k++ % cuts.length] % t.data.length);
      // a fresh copy each time: the analyzer must not keep views into what it was given
      const piece = Buffer.from(t.data.subarray(o, o + n));
      a.data(t.side, piece, 0, piece.length, t.sec, t.nsec);
      piece.fill(0xee);
      o += n;
    }
  }
  a.close(last?.sec ?? 0, last?.nsec ?? 0);
  return { events, stats: inst.stats() as any };
}

const dir = path.join(ROOT, 'fixtures', 'mongodb');
const all = readdirSync(dir)
  .filter((f) => f.endsWith('.pcap'))
  .sort()
  .flatMap((f) => streams(path.join(dir, f)).map((s, i) => ({ name: `${f}#${i}`, s })));

describe('MongoDB streams, fuzzed', { timeout: 600_000 }, () => {
  it('every fixture connection cut at random points gives the same events as whole', () => {
    const whole = all.map(({ s }) => JSON.stringify(analyze(s, []).events));
    fc.assert(
      fc.property(fc.nat(all.length - 1), fc.array(fc.integer({ min: 0, max: 70_000 }), { minLength: 1, maxLength: 20 }), (i, cuts) => {
        assert.equal(JSON.stringify(analyze(all[i].s, cuts).events), whole[i], all[i].name);
      }),
      fuzzParams(300, PROPERTIES),
    );
  });

  it('damaged streams (flips, insertions, truncation, lost bytes) never throw; the accounting holds; the buffers are returned', () => {
    const damage = fc.record({ turn: fc.nat(), m: mutation, lose: fc.option(fc.integer({ min: 1, max: 5000 })) });
    fc.assert(
      fc.property(fc.nat(all.length - 1), fc.array(damage, { minLength: 1, maxLength: 6 }), fc.array(fc.integer({ min: 0, max: 3000 }), { maxLength: 8 }), fc.boolean(), (i, damages, cuts, small) => {
        const s = all[i].s;
        const turns = s.turns.map((t) => ({ ...t }));
        for (const d of damages) {
          const t = turns[d.turn % turns.length];
          if (t.data !== null) t.data = mutate(t.data, d.m);
          if (d.lose !== null) turns.splice(d.turn % (turns.length + 1), 0, { side: t.side, data: null, lost: d.lose, sec: t.sec, nsec: t.nsec });
        }
        // small bounds put every limit in reach of a fixture
        const options = small ? { maxMessageBytes: 2000, maxBufferedBytes: 3000, maxPending: 2, maxDepth: 3, maxDocs: 1, maxDocLength: 20, sendRequest: true, sendResponse: true } : {};
        const { stats } = analyze({ conn: s.conn, turns }, cuts, options);
        assert.equal(stats.transactions_started, stats.transactions, `${all[i].name}: ${JSON.stringify(stats)}`);
        assert.equal(stats.pending, 0);
        assert.equal(stats.buffered_bytes, 0);
      }),
      fuzzParams(300, PROPERTIES),
    );
  });
});
