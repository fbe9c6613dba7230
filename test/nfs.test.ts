/**
 * NFS: the XDR reader and the call/reply decoding (procedure names, COMPOUND main
 * operation as packetbeat picks it, credentials), the analyzer's pairing (by xid,
 * out of order, loss, mid-stream, limits, UDP), its probe, properties over the
 * fixtures' streams (any split gives the same events; damage never throws),
 * agreement with tshark's RPC and NFS dissectors, and a live test against a real
 * NFS-Ganesha driven by libnfs-utils.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { Stats } from '../src/core/stage';
import { DecodeStage } from '../src/decode/stage';
import { nfs, type NfsOptions } from '../src/protocols/nfs';
import { readCall, RpcCall } from '../src/protocols/nfs/message';
import { opName, procName, statusName } from '../src/protocols/nfs/names';
import { XdrReader } from '../src/protocols/nfs/xdr';
import { PcapReader } from '../src/sources/pcap';
import { FILES, scenarios } from '../scripts/fixtures/nfs';
import { recordLoopback } from './capture';
import { analyzeChunks, chunkDamage, damageChunks, fuzzParams, streamsOf } from './fuzz-helpers';
import { record, rpcDenied, rpcReply } from './gen/nfs';
import { analyzerOn, assertAccounting, cli, fixture, ndjson, readFile } from './helpers';
import { freePort } from './net';
import { rpcCall, startGanesha, Xdr, type NfsServer } from './nfs-server';

const ME = { machine: 'unit', uid: 1000, gid: 100, gids: [100, 27] };
const fh = Buffer.from('0123456789abcdef');
const call = (xid: number, vers: number, proc: number, args: Buffer = Buffer.alloc(0)) => rpcCall({ xid, prog: 100003, vers, proc, unix: ME, args });
function compound(tag: string, ops: [number, Buffer?][], minor = 0): Buffer {
  const x = new Xdr().opaque(tag).u32(minor).u32(ops.length);
  for (const [op, a] of ops) x.u32(op).raw(a ?? Buffer.alloc(0));
  return x.done();
}
const compoundRes = (status: number, n: number) => {
  const x = new Xdr().u32(status).opaque('t').u32(n);
  for (let i = 0; i < n; i++) x.u32(22).u32(i === n - 1 ? status : 0);
  return x.done();
};
const putfh: [number, Buffer] = [22, new Xdr().opaque(fh).done()];
const getattr: [number, Buffer] = [9, new Xdr().u32(1).u32(0x1a).done()];
const readdir: [number, Buffer] = [26, Buffer.concat([Buffer.alloc(16), new Xdr().u32(512).u32(4096).u32(1).u32(0x1a).done()])];
const v3ok = new Xdr().u32(0).u32(0).done();

function decodeCall(msg: Buffer, maxOps = 128): RpcCall {
  const c = new RpcCall();
  readCall(c, msg, 0, msg.length, msg.length, maxOps);
  return c;
}

/** one analyzer on one connection, driven directly */
function conn(options: Partial<NfsOptions> = {}, midStream = false) {
  return analyzerOn(nfs, options, [800, 2049], midStream);
}

describe('NFS decoding', { timeout: 60_000 }, () => {
  it('the XDR reader never throws: reads past the kept bytes give 0 and set short; skips may pass them inside the record', () => {
    const x = new XdrReader().reset(Buffer.from([0, 0, 0, 5, 1, 2]), 0, 6, 100);
    assert.equal(x.u32(), 5);
    assert.equal(x.u32(), 0);
    assert.equal(x.short, true);
    const y = new XdrReader().reset(Buffer.alloc(8), 0, 8, 100);
    assert.equal(y.skip(50), true);
    assert.equal(y.skip(60), false);
    assert.equal(y.short, true);
    assert.equal(new XdrReader().reset(Buffer.from([0xff, 0xff, 0xff, 0xff]), 0, 4, 4).string(10), '');
  });

  it('names NFSv3 procedures as packetbeat (ILLEGAL past the table) and statuses by its table', () => {
    assert.deepEqual([0, 1, 10, 11, 17, 20, 21, 22].map((p) => procName(3, p)), ['NULL', 'GETATTR', 'SYM_LINK', 'MKNODE', 'READDIRPLUS', 'PATHINFO', 'COMMIT', 'ILLEGAL']);
    assert.equal(procName(2, 8), 'WRITE');
    assert.deepEqual([0, 2, 10008, 424242].map(statusName), ['NFS_OK', 'NFSERR_NOENT', 'NFSERR_DELAY', 'unknown (424242)']);
  });

  it('reads AUTH_SYS credentials and names the flavour', () => {
    const c = decodeCall(call(0xabc, 3, 1, new Xdr().opaque(fh).done()));
    assert.deepEqual([c.xid, c.vers, c.proc, c.flavor, c.unix, c.stamp, c.machine, c.uid, c.gid, c.gids, c.opcode], [0xabc, 3, 1, 1, true, 0x5eed, 'unit', 1000, 100, [100, 27], 'GETATTR']);
    const none = decodeCall(rpcCall({ xid: 1, prog: 100003, vers: 4, proc: 0 }));
    assert.deepEqual([none.flavor, none.unix, none.opcode], [0, false, 'NULL']);
  });

  it("names a COMPOUND by its main operation, as packetbeat: the first that is not file-handle or attribute work, else the last", () => {
    const name = (ops: [number, Buffer?][]) => decodeCall(call(1, 4, 1, compound('t', ops))).opcode;
    assert.equal(name([putfh, readdir, getattr]), 'READDIR');
    assert.equal(name([putfh, getattr]), 'GETATTR');
    assert.equal(name([[53, Buffer.alloc(32)], putfh, getattr]), 'GETATTR');
    assert.equal(name([[24], [15, new Xdr().opaque('a').done()], [10]]), 'GETFH');
    assert.equal(name([]), 'ILLEGAL');
    const c = decodeCall(call(1, 4, 1, compound('ls', [putfh, readdir, getattr], 1)));
    assert.deepEqual([c.tag, c.minor, c.ops, c.opsCut], ['ls', 1, [22, 26, 9], '']);
  });

  it('bounds the operations listed and stops at an unknown operation or at the kept bytes', () => {
    const many = decodeCall(call(1, 4, 1, compound('m', Array.from({ length: 10 }, () => getattr))), 4);
    assert.deepEqual([many.ops.length, many.opsCut, many.opCount], [4, 'limit', 10]);
    const odd = decodeCall(call(1, 4, 1, compound('o', [putfh, [99, Buffer.alloc(4)], getattr])));
    assert.deepEqual([odd.ops, odd.opsCut, odd.opcode], [[22, 99], 'unknown_op', 'ILLEGAL']);
    const msg = call(1, 4, 1, compound('w', [putfh, [38, Buffer.concat([Buffer.alloc(28), new Xdr().opaque(Buffer.alloc(5000)).done()])], getattr]));
    const c = new RpcCall();
    readCall(c, msg, 0, 200, msg.length, 128);
    assert.deepEqual([c.ops, c.opsCut, c.opcode], [[22, 38], 'cut', 'WRITE']);
  });
});

describe('NFS analyzer', { timeout: 60_000 }, () => {
  it('pairs replies with calls by xid, in any order, with packetbeat fields', () => {
    const t = conn();
    t.send(0, Buffer.concat([record(call(1, 3, 1, new Xdr().opaque(fh).done())), record(call(2, 3, 3, new Xdr().opaque(fh).opaque('x').done()))]));
    t.send(1, record(rpcReply(2, new Xdr().u32(2).u32(0).done())));
    t.send(1, record(rpcReply(1, v3ok)));
    t.done();
    assert.deepEqual(
      t.events.map((e) => [e.rpc.xid, e.event.action, e.nfs.status, e.status]),
      [
        ['00000002', 'nfs.LOOKUP', 'NFSERR_NOENT', 'Error'],
        ['00000001', 'nfs.GETATTR', 'NFS_OK', 'OK'],
      ],
    );
    const e = t.events[1];
    assert.deepEqual(e.rpc, { xid: '00000001', auth_flavor: 'unix', cred: { stamp: 0x5eed, machinename: 'unit', uid: 1000, gid: 100, gids: [100, 27] }, status: 'success' });
    assert.deepEqual(e.nfs, { version: 3, opcode: 'GETATTR', status: 'NFS_OK' });
    assert.deepEqual([e.network.protocol, e.source.domain, e.user.id, e.group.id, e.type], ['nfsv3', 'unit', '1000', '100', 'nfs']);
    assert.equal(e.source.bytes, record(call(1, 3, 1, new Xdr().opaque(fh).done())).length);
  });

  it("gives every COMPOUND operation its status: those before the one that failed succeeded, those after it did not run", () => {
    const t = conn();
    t.send(0, record(call(7, 4, 1, compound('x', [putfh, [15, new Xdr().opaque('nope').done()], [10], getattr]))));
    t.send(1, record(rpcReply(7, compoundRes(2, 2))));
    t.done();
    const e = t.events[0];
    assert.deepEqual(e.nfs, {
      version: 4,
      minor_version: 0,
      tag: 'x',
      opcode: 'GETATTR',
      status: 'NFSERR_NOENT',
      operations: [{ opcode: 'PUTFH', status: 'NFS_OK' }, { opcode: 'LOOKUP', status: 'NFSERR_NOENT' }, { opcode: 'GETFH' }, { opcode: 'GETATTR' }],
    });
    assert.equal(e.status, 'Error');
  });

  it('reads records of several fragments, split anywhere', () => {
    const msg = call(9, 3, 1, new Xdr().opaque(fh).done());
    const wire = Buffer.concat([record(msg, [8, 8, 20]), record(rpcReply(9, v3ok), [4])]);
    for (let cut = 0; cut <= wire.length; cut += 3) {
      const t = conn();
      const clientEnd = record(msg, [8, 8, 20]).length;
      const c = wire.subarray(0, clientEnd);
      t.send(0, c.subarray(0, Math.min(cut, c.length)));
      t.send(0, c.subarray(Math.min(cut, c.length)));
      t.send(1, wire.subarray(clientEnd));
      t.done();
      assert.equal(t.events.length, 1, `cut ${cut}`);
      assert.deepEqual([t.events[0].nfs.opcode, t.events[0].nfs.status, t.events[0].source.bytes], ['GETATTR', 'NFS_OK', msg.length + 16]);
      assert.equal(t.stats().multi_fragment_records, 2);
    }
  });

  it('denied replies, other programs, the v4.1 backchannel', () => {
    const t = conn();
    t.send(0, record(call(1, 3, 0)));
    t.send(1, record(rpcDenied(1, 1)));
    t.send(0, record(rpcCall({ xid: 2, prog: 100227, vers: 3, proc: 1 })));
    t.send(1, record(rpcReply(2)));
    t.send(1, record(rpcCall({ xid: 3, prog: 0x40000000, vers: 1, proc: 1 })));
    t.send(0, record(rpcReply(3)));
    t.done();
    assert.equal(t.events.length, 1);
    assert.deepEqual([t.events[0].rpc.status, t.events[0].event.outcome, t.events[0].status, t.events[0].nfs.status], ['auth_error', 'failure', 'Error', undefined]);
    const s = t.stats();
    assert.deepEqual([s.other_program_calls, s.other_program_replies, s.callbacks, s.violations], [{ '100227': 1 }, 1, 1, {}]);
  });

  it('RPCSEC_GSS: integrity-protected arguments and results are read past their wrapper; sealed ones are not read', () => {
    const gssCall = (xid: number, service: number, args: Buffer) =>
      Buffer.concat([new Xdr().u32(xid).u32(0).u32(2).u32(100003).u32(4).u32(1).u32(6).opaque(new Xdr().u32(1).u32(0).u32(xid).u32(service).opaque(Buffer.alloc(8, 1)).done()).u32(6).opaque(Buffer.alloc(16, 2)).done(), args]);
    const wrap = (body: Buffer) => Buffer.concat([new Xdr().u32(body.length + 4).u32(77).done(), body, new Xdr().opaque(Buffer.alloc(16, 3)).done()]);
    const reply = (xid: number, results: Buffer) => Buffer.concat([new Xdr().u32(xid).u32(1).u32(0).u32(6).opaque(Buffer.alloc(16, 4)).u32(0).done(), results]);
    const t = conn();
    t.send(0, record(gssCall(1, 2, wrap(compound('i', [putfh, readdir])))));
    t.send(1, record(reply(1, wrap(compoundRes(0, 2)))));
    t.send(0, record(gssCall(2, 3, new Xdr().opaque(Buffer.alloc(40, 9)).done())));
    t.send(1, record(reply(2, new Xdr().opaque(Buffer.alloc(40, 8)).done())));
    t.done();
    assert.deepEqual(t.events.map((e) => [e.rpc.auth_flavor, e.nfs.opcode, e.nfs.status ?? null, e.nfs.operations?.length ?? 0, e.notes ?? null]), [
      ['rpcsec_gss', 'READDIR', 'NFS_OK', 2, null],
      ['rpcsec_gss', 'COMPOUND', null, 0, ['RPCSEC_GSS privacy: arguments and results sealed']],
    ]);
  });

  it('times out a call on packet time (60 s, as packetbeat), and emits what waits at close', () => {
    const t = conn();
    t.send(0, record(call(1, 3, 0)), 1000);
    t.send(0, record(call(2, 3, 0)), 1030);
    t.a.expire(1059, 0);
    assert.equal(t.events.length, 0);
    t.a.expire(1060, 0);
    assert.deepEqual(t.events.map((e) => [e.rpc.xid, e.notes, e.error.message]), [['00000001', ['no response within the transaction timeout'], 'Unmatched request']]);
    t.send(1, record(rpcReply(1)));
    t.done();
    assert.deepEqual(t.events.map((e) => [e.rpc.xid, e.error.message]), [
      ['00000001', 'Unmatched request'],
      ['00000001', 'Unmatched response'],
      ['00000002', 'Unmatched request'],
    ]);
  });

  it('a gap inside a record keeps the place; elsewhere the stream finds the next call, or a reply to a waiting one', () => {
    const t = conn();
    const w = record(call(1, 3, 7, Buffer.concat([new Xdr().opaque(fh).u64(0n).u32(3000).u32(0).done(), new Xdr().opaque(Buffer.alloc(3000)).done()])));
    t.send(0, w.subarray(0, 500));
    t.a.gap(0, 1000, 1000, 0);
    t.send(0, w.subarray(1500));
    t.send(1, record(rpcReply(1, v3ok)));
    t.a.gap(0, 10, 1000, 0);
    t.send(0, Buffer.from('garbage, then a call'));
    t.send(0, record(call(2, 3, 0)));
    t.send(1, record(rpcReply(2)));
    t.done();
    assert.deepEqual(t.events.map((e) => [e.rpc.xid, e.nfs.opcode, e.notes ?? null]), [
      ['00000001', 'WRITE', ['packet loss: 1000 request bytes missing']],
      ['00000002', 'NULL', null],
    ]);
    assert.equal(t.stats().resyncs, 1);
  });

  it("a reply whose last bytes were lost is complete at the gap, not at the connection's close", () => {
    const t = conn();
    t.send(0, record(call(1, 3, 6, new Xdr().opaque(fh).u64(0n).u32(100).done())));
    const r = record(rpcReply(1, Buffer.concat([v3ok, Buffer.alloc(100, 5)])));
    t.send(1, r.subarray(0, 60));
    t.a.gap(1, r.length - 60, 1000, 5000);
    assert.deepEqual(t.events.map((e) => [e.nfs.opcode, e.nfs.status, e.notes]), [['READ', 'NFS_OK', [`packet loss: ${r.length - 60} response bytes missing`]]]);
    t.done();
  });

  it('bounds: a record past maxRecordBytes, too many fragments, too many calls waiting', () => {
    const t = conn({ maxRecordBytes: 100, maxFragments: 2, maxPending: 2 });
    t.send(0, Buffer.from([0x80, 0, 1, 0]));
    t.send(0, Buffer.concat([1, 2, 3].map((x) => record(call(10 + x, 3, 0)))));
    t.send(0, record(call(1, 3, 0), [4, 4, 4]));
    t.send(1, Buffer.concat([1, 2, 3].map((x) => record(rpcReply(10 + x)))));
    t.done();
    const s = t.stats();
    assert.deepEqual(s.violations, { record_too_large: 1, too_many_fragments: 1 });
    assert.deepEqual(s.unmatched, { pending_limit: 1, response_without_request: 1 });
    assert.equal(t.events.filter((e) => e.status === 'OK').length, 2);
  });

  it('UDP: a retransmitted call is one transaction, the second reply to it is counted, a reply to no call is emitted alone', async () => {
    const run = await readFile(fixture('nfs/edge-violations.pcap'));
    const udp = (run.events as any[]).filter((e) => e.type === 'nfs' && e.network.transport === 'udp');
    assert.deepEqual(udp.map((e) => [e.rpc.xid, e.status, e.error?.message ?? null]), [
      ['0000050a', 'OK', null],
      ['0000050b', 'Error', 'Unmatched response'],
      ['0000050c', 'Error', 'Unmatched request'],
    ]);
    const s = (run.stats.analyze as any).protocols.nfs;
    assert.deepEqual([s.retransmitted_calls, s.duplicate_replies, s.violations.datagram_too_short], [1, 1, 1]);
    assertAccounting(run.stats, 'edge-violations');
  });

  it('a capture that starts inside a connection finds the next call', () => {
    const t = conn({}, true);
    t.send(0, Buffer.concat([record(call(1, 3, 1, new Xdr().opaque(fh).done())).subarray(10), record(call(2, 3, 0))]));
    t.send(1, record(rpcReply(2)));
    t.done();
    assert.deepEqual(t.events.map((e) => [e.rpc.xid, e.status]), [['00000002', 'OK']]);
  });
});

describe('NFS probe', { timeout: 60_000 }, () => {
  it('recognises a call to the NFS program over TCP (after its record mark) and UDP', () => {
    const m = call(1, 3, 1, new Xdr().opaque(fh).done());
    assert.equal(nfs.probe!(record(m), 0, record(m).length, 0), true);
    assert.equal(nfs.probeDatagram!(m, 0, m.length), true);
    assert.equal(nfs.probe!(record(rpcReply(1, v3ok)), 0, 40, 1), false);
    const mount = rpcCall({ xid: 1, prog: 100005, vers: 3, proc: 1, args: new Xdr().opaque('/x').done() });
    assert.equal(nfs.probeDatagram!(mount, 0, mount.length), false);
  });

  it("takes none of the other fixtures' first payloads (TCP, each side) nor their datagrams", () => {
    let tcp = 0;
    let udp = 0;
    for (const dir of readdirSync(fixture('.'))) {
      if (dir === 'nfs' || dir === 'fuzz') continue;
      const files = dir.endsWith('.pcap') || dir.endsWith('.pcapng') ? [dir] : (() => {
        try {
          return readdirSync(fixture(dir)).filter((f) => f.endsWith('.pcap')).map((f) => `${dir}/${f}`);
        } catch {
          return [];
        }
      })();
      for (const f of files) {
        if (!f.endsWith('.pcap')) continue;
        let packets;
        try {
          packets = new DecodeStage().push(new PcapReader(f).push(readFileSync(fixture(f))));
        } catch {
          continue;
        }
        const seen = new Set<string>();
        for (const p of packets as any[]) {
          if (p.payloadLen === undefined || p.payloadLen <= 0) continue;
          if (p.proto === 17) {
            udp++;
            assert.equal(nfs.probeDatagram!(p.data, p.payloadOff, p.payloadLen), false, `${f}: a datagram`);
          } else if (p.proto === 6) {
            const k = `${p.srcPort}>${p.dstPort}`;
            if (seen.has(k)) continue;
            seen.add(k);
            tcp++;
            assert.equal(nfs.probe!(p.data, p.payloadOff, p.payloadLen, 0), false, `${f}: ${k}`);
          }
        }
      }
    }
    assert.ok(tcp > 100 && udp > 20, `${tcp} ${udp}`);
  });
});

// ---------------------------------------------------------------------------
// properties over the fixtures' streams

const TCP_FIXTURES = ['v3', 'v4', 'raw', 'edge-gaps', 'edge-sessions', 'edge-violations'].map((n) => `nfs/${n}.pcap`);


describe('NFS fuzzing', { timeout: 600_000 }, () => {
  const streams = TCP_FIXTURES.map((f) => streamsOf(fixture(f), 2049));
  const reference = streams.map((s) => JSON.stringify(analyzeChunks(nfs, s).events));

  it("random splits of the fixtures' streams give the same events", () => {
    fc.assert(
      fc.property(fc.nat(streams.length - 1), fc.array(fc.tuple(fc.nat(), fc.array(fc.nat(), { minLength: 1, maxLength: 6 })), { maxLength: 40 }), fc.nat(), (which, splits, every) => {
        const cuts = new Map(splits.map(([i, c]) => [i % streams[which].length, c]));
        const dense = every % 7 === 0;
        const { events, stats } = analyzeChunks(nfs, streams[which], (i, len) => (dense ? Array.from({ length: Math.min(len, 40) }, (_, k) => k) : (cuts.get(i) ?? [])));
        assert.equal(JSON.stringify(events), reference[which]);
        assertAccounting({ analyze: { protocols: { nfs: stats } } } as Record<string, Stats>, TCP_FIXTURES[which]);
      }),
      fuzzParams(100, 3),
    );
  });

  it('damaged streams (flipped, inserted and cut bytes, gaps, lost closes) never throw, and the accounting holds', () => {
    const damage = chunkDamage([0x00, 0x80, 0xff, 0x01, 0x7f, 0x02, 0x04]);
    fc.assert(
      fc.property(fc.nat(streams.length - 1), fc.array(damage, { minLength: 1, maxLength: 30 }), fc.array(fc.nat(), { maxLength: 10 }), (which, damages, cuts) => {
        const chunks = damageChunks(streams[which], damages);
        const { stats } = analyzeChunks(nfs, chunks, (i) => cuts.map((x) => x + i), 5);
        assertAccounting({ analyze: { protocols: { nfs: stats } } } as Record<string, Stats>, 'damaged');
        assert.equal(stats.pending, 0);
      }),
      fuzzParams(200, 3),
    );
  });

  it('damaged UDP datagrams never throw, and the accounting holds', () => {
    const base = new DecodeStage().push(new PcapReader('udp').push(readFileSync(fixture('nfs/udp.pcap')))) as any[];
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(), fc.nat(), fc.nat(255)), { maxLength: 40 }), (flips) => {
        const events: any[] = [];
        const inst = nfs.create({}, { emit: (e: any) => events.push(e) });
        const packets = base.filter((p) => p.proto === 17 && (p.srcPort === 2049 || p.dstPort === 2049)).map((p) => ({ ...p, data: Buffer.from(p.data) }));
        for (const [i, at, v] of flips) {
          const p = packets[i % packets.length];
          if (p.payloadLen > 0) p.data[p.payloadOff + (at % p.payloadLen)] = v;
        }
        for (const p of packets) inst.datagrams!.datagram(p);
        inst.datagrams!.flush();
        assertAccounting({ analyze: { protocols: { nfs: inst.stats() } } } as Record<string, Stats>, 'udp');
      }),
      fuzzParams(200, 3),
    );
  });
});

// ---------------------------------------------------------------------------
// agreement with tshark's RPC and NFS dissectors

const haveTshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;

/** every value of `key` anywhere under `o`, in document order */
function deep(o: any, key: string, out: string[] = []): string[] {
  if (o === null || typeof o !== 'object') return out;
  for (const [k, v] of Object.entries(o)) {
    if (k === key) out.push(...(Array.isArray(v) ? v : [v]).map(String));
    else deep(v, key, out);
  }
  return out;
}

interface TsharkRpc {
  xid: string;
  call: boolean;
  vers: number;
  proc: number;
  accept: string | null;
  ops: number[];
  statuses: number[];
  /** calls: the credentials' flavour, uid and machine name (AUTH_SYS) */
  flavor: number;
  uid: number | null;
  machine: string | null;
}

/** the NFS program's calls and replies tshark sees, in order (a frame's several messages each) */
function tsharkView(file: string, ports: number[]): TsharkRpc[] {
  const args = ['-r', file, '-o', 'tcp.desegment_tcp_streams:TRUE', '-o', 'rpc.defragment_rpc_over_tcp:TRUE', '-Y', 'rpc.program == 100003', '-T', 'json', '--no-duplicate-keys'];
  for (const p of ports) if (p !== 2049) args.push('-d', `tcp.port==${p},rpc`, '-d', `udp.port==${p},rpc`);
  const packets = JSON.parse(execFileSync('tshark', args, { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] }));
  const list = (x: unknown): any[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);
  const out: TsharkRpc[] = [];
  for (const p of packets) {
    const rpcs = list(p._source.layers.rpc);
    const nfss = list(p._source.layers.nfs);
    // a reply that is not success has no NFS layer
    assert.ok(rpcs.length === nfss.length || (rpcs.length === 1 && nfss.length === 0), 'one NFS layer per RPC message');
    rpcs.forEach((r, i) => {
      const n = nfss[i] ?? {};
      const call = r['rpc.msgtyp'] === '0';
      const vers = Number(deep(r, 'rpc.programversion')[0]);
      const st = deep(n, vers === 4 ? 'nfs.nfsstat4' : 'nfs.status').map(Number);
      const uid = deep(r, 'rpc.auth.uid')[0];
      out.push({ xid: r['rpc.xid'], call, vers, proc: Number(deep(r, 'rpc.procedure')[0]), accept: call ? null : (deep(r, 'rpc.state_accept')[0] ?? null), ops: deep(n, 'nfs.opcode').map(Number), statuses: st, flavor: Number(deep(r, 'rpc.auth.flavor')[0]), uid: uid === undefined ? null : Number(uid), machine: deep(r, 'rpc.auth.machinename')[0] ?? null });
    });
  }
  return out;
}

const ACCEPT = ['success', 'prog_unavail', 'prog_mismatch', 'proc_unavail', 'garbage_args', 'system_err'];

describe('agreement with tshark (RPC and NFS dissectors)', { skip: haveTshark ? false : 'tshark not installed', timeout: 600_000 }, () => {
  // (the other edge cases' replies are cut short after each operation's status, which the analyzer reads no further than, but tshark does)
  for (const name of ['v3', 'v4', 'udp', 'raw', 'edge-other-port']) {
    it(`${name}: the same calls and replies, credentials, procedures and operations, RPC and NFS statuses`, async () => {
      const ports = name === 'edge-other-port' ? [20049, 20050] : [2049];
      const file = fixture(`nfs/${name}.pcap`);
      const theirs = tsharkView(file, ports);
      const run = await readFile(file, { ports: { nfs: ports } });
      const ours = (run.events as any[]).filter((e) => e.type === 'nfs');
      const stats = (run.stats.analyze as any).protocols.nfs;
      const calls = theirs.filter((t) => t.call);
      const replies = theirs.filter((t) => !t.call);
      assert.equal(calls.length, stats.calls - Object.values<number>(stats.other_program_calls).reduce((a, b) => a + b, 0), 'NFS calls');
      assert.equal(replies.length, stats.replies - stats.other_program_replies, 'NFS replies');
      assert.equal(ours.length, calls.length, 'one transaction per call');
      for (const c of calls) {
        const e = ours.find((x) => x.rpc.xid === c.xid.replace(/^0x/, ''));
        assert.ok(e !== undefined, `no transaction for xid ${c.xid}`);
        assert.equal(e.nfs.version, c.vers);
        assert.equal(e.rpc.auth_flavor, ['none', 'unix'][c.flavor] ?? (c.flavor === 6 ? 'rpcsec_gss' : `unknown (${c.flavor})`), `flavour of ${c.xid}`);
        assert.deepEqual([e.rpc.cred?.uid ?? null, e.rpc.cred?.machinename ?? null], [c.uid, c.machine], `credentials of ${c.xid}`);
        if (c.vers === 4 && c.proc === 1) assert.deepEqual(e.nfs.operations.map((o: any) => o.opcode), c.ops.slice(0, e.nfs.operations.length).map((op) => opName(op) ?? 'ILLEGAL'), `operations of ${c.xid}`);
        else assert.equal(e.nfs.opcode, procName(c.vers, c.proc), `procedure of ${c.xid}`);
        const r = replies.find((x) => x.xid === c.xid);
        if (r === undefined) {
          assert.equal(e.rpc.status, undefined);
          continue;
        }
        assert.equal(e.rpc.status, r.accept === null ? undefined : ACCEPT[Number(r.accept)], `rpc status of ${c.xid}`);
        if (r.statuses.length === 0) {
          assert.ok(e.nfs.status === undefined || c.proc === 0, `no NFS status for ${c.xid}`);
          continue;
        }
        assert.equal(e.nfs.status, statusName(r.statuses[0]), `NFS status of ${c.xid}`);
        if (c.vers === 4 && c.proc === 1) {
          const mine = e.nfs.operations.filter((o: any) => o.status !== undefined).map((o: any) => o.status);
          assert.deepEqual(mine, r.statuses.slice(1).map(statusName), `operation statuses of ${c.xid}`);
          assert.deepEqual(e.nfs.operations.slice(0, r.ops.length).map((o: any) => o.opcode), r.ops.map((op) => opName(op) ?? 'ILLEGAL'), `reply operations of ${c.xid}`);
        }
      }
    });
  }
});

// ---------------------------------------------------------------------------
// a real server

const isRoot = process.getuid?.() === 0;
const haveGanesha = spawnSync('sh', ['-c', 'command -v ganesha.nfsd && command -v nfs-ls && command -v rpcbind'], { stdio: 'ignore' }).status === 0;
const liveSkip = !isRoot ? 'needs root (tcpdump on lo, rpcbind)' : !haveGanesha ? 'nfs-ganesha, libnfs-utils or rpcbind is not installed (scripts/setup.sh installs them)' : false;

const actions = (tx: any[]) => new Set(tx.map((e) => e.event.action));
const expectations: Record<string, (tx: any[]) => void> = {
  v3(tx) {
    for (const a of ['nfs.NULL', 'nfs.FSINFO', 'nfs.LOOKUP', 'nfs.READ', 'nfs.WRITE', 'nfs.READDIRPLUS', 'nfs.CREATE', 'nfs.COMMIT']) assert.ok(actions(tx).has(a), a);
    assert.ok(tx.some((e) => e.nfs.opcode === 'LOOKUP' && e.nfs.status === 'NFSERR_NOENT'), 'the missing file');
    assert.ok(tx.some((e) => e.nfs.opcode === 'READ' && e.destination.bytes > 300_000), 'the 300 kB read');
    assert.ok(tx.every((e) => e.rpc.status === 'success' && e.network.protocol === 'nfsv3'));
  },
  v4(tx) {
    // libnfs opens with PUTFH, GETATTR, ACCESS, OPEN, GETFH: named ACCESS, the first main operation, as packetbeat names it
    for (const a of ['nfs.SETCLIENTID', 'nfs.SETCLIENTID_CONFIRM', 'nfs.ACCESS', 'nfs.OPEN_CONFIRM', 'nfs.READ', 'nfs.WRITE', 'nfs.CLOSE', 'nfs.READDIR']) assert.ok(actions(tx).has(a), a);
    assert.ok(tx.some((e) => e.nfs.operations?.some((o: any) => o.opcode === 'OPEN' && o.status === 'NFS_OK')), 'an OPEN');
    assert.ok(tx.some((e) => e.nfs.status === 'NFSERR_NOENT' && e.nfs.operations.some((o: any) => o.opcode === 'OPEN' && o.status === 'NFSERR_NOENT')), 'the missing file: its OPEN fails');
    assert.ok(tx.every((e) => e.nfs.version === 4 && e.network.protocol === 'nfsv4'));
  },
  udp(tx) {
    assert.deepEqual(
      tx.map((e) => [e.event.action, e.rpc.auth_flavor, e.rpc.status, e.nfs.status ?? null]),
      [
        ['nfs.NULL', 'unix', 'success', 'NFS_OK'],
        ['nfs.NULL', 'none', 'success', 'NFS_OK'],
        ['nfs.GETATTR', 'unix', 'success', 'NFS_OK'],
        ['nfs.LOOKUP', 'unix', 'success', 'NFS_OK'],
        ['nfs.LOOKUP', 'unix', 'success', 'NFSERR_NOENT'],
        ['nfs.READ', 'unix', 'success', 'NFS_OK'],
        ['nfs.READDIRPLUS', 'unix', 'success', 'NFS_OK'],
        ['nfs.FSSTAT', 'unix', 'success', 'NFS_OK'],
        ['nfs.NULL', 'unix', 'prog_mismatch', null],
      ],
    );
    assert.ok(tx.every((e) => e.network.transport === 'udp'));
  },
  raw(tx) {
    assert.deepEqual(
      tx.map((e) => [e.event.action, e.rpc.status, e.nfs.status ?? null]),
      [
        ['nfs.NULL', 'success', 'NFS_OK'],
        ['nfs.NULL', 'success', 'NFS_OK'],
        ['nfs.ILLEGAL', 'proc_unavail', null],
        ['nfs.GETATTR', 'garbage_args', null],
        ['nfs.GETATTR', 'success', 'NFS_OK'],
        ['nfs.GETFH', 'success', 'NFSERR_NOENT'],
      ],
    );
  },
};

describe('live: NFS-Ganesha and libnfs-utils on ports pktflow does not know', { skip: liveSkip, timeout: 600_000 }, () => {
  let server: NfsServer | null = null;
  let dir = '';
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'pktflow-nfs-live-'));
    server = await startGanesha(await freePort(), await freePort(), FILES);
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  for (const [name, s] of Object.entries(scenarios)) {
    it(`${name}: found by probe, every transaction as expected`, async () => {
      const file = path.join(dir, `${name}.pcap`);
      await recordLoopback({ filter: s.filter(server!), file }, () => s.run(server!, dir));
      const r = await cli(['read', file, '--stats-event', '-q']);
      assert.equal(r.code, 0, r.stderr);
      const events = ndjson(r.stdout) as any[];
      const stats = events.pop();
      assert.equal(stats.type, 'stats');
      assertAccounting(stats.stats, name);
      const analyze = stats.stats.analyze;
      assert.ok((analyze.connections?.nfs_by_probe ?? 0) + (analyze.datagrams?.nfs_by_probe ?? 0) > 0, 'found by probe');
      const tx = events.filter((e) => e.type === 'nfs');
      assert.ok(tx.length > 0);
      assert.ok(tx.every((e) => e.error === undefined), 'every call answered');
      expectations[name](tx);
    });
  }
});
