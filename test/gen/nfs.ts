/**
 * Writes fixtures/nfs/edge-*.pcap: NFS conversations the real clients here do not
 * produce on demand: packet loss inside and between records, captures that start
 * inside a connection, a server on other ports (TCP and UDP), NFSv4.1 sessions with
 * a backchannel call from the server, calls to another program on the NFS port,
 * denied replies, COMPOUNDs longer than the operation bound or holding an operation
 * no one knows, bytes that are not RPC, UDP retransmissions. Deterministic:
 * `npx tsx test/gen/nfs.ts` rewrites the files byte-identical.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { rpcCall, Xdr, type CallOptions } from '../nfs-server';
import { ipv4, udp, writePcap, type GenFrame, etherFrames as frames, TcpScript as Conv } from './packets';

const ME = { machine: 'edge-client', uid: 1000, gid: 100, gids: [100, 27] };

/** record marking: the message as one last fragment, or cut into fragments of the given sizes */
export function record(msg: Buffer, fragments: number[] = []): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (const f of fragments) {
    const m = Buffer.alloc(4);
    m.writeUInt32BE(f);
    out.push(m, msg.subarray(at, at + f));
    at += f;
  }
  const m = Buffer.alloc(4);
  m.writeUInt32BE((0x80000000 | (msg.length - at)) >>> 0);
  out.push(m, msg.subarray(at));
  return Buffer.concat(out);
}

/** an accepted reply: success and `results`, or another accept status */
export function rpcReply(xid: number, results: Buffer = Buffer.alloc(0), acceptStat = 0): Buffer {
  return Buffer.concat([new Xdr().u32(xid).u32(1).u32(0).u32(0).u32(0).u32(acceptStat).done(), results]);
}

/** a denied reply: AUTH_ERROR (1) with its auth_stat, or RPC_MISMATCH (0) with the versions */
export function rpcDenied(xid: number, rejectStat: number): Buffer {
  const x = new Xdr().u32(xid).u32(1).u32(1).u32(rejectStat);
  return (rejectStat === 0 ? x.u32(2).u32(2) : x.u32(5)).done();
}

const call = (xid: number, vers: number, proc: number, args: Buffer = Buffer.alloc(0), extra: Partial<CallOptions> = {}) => rpcCall({ xid, prog: 100003, vers, proc, unix: ME, args, ...extra });
const fh = Buffer.from('0123456789abcdef0123456789abcdef');
/** a v3 result: status, and post-op attributes absent */
const v3res = (status: number, more: Buffer = Buffer.alloc(0)) => Buffer.concat([new Xdr().u32(status).u32(0).done(), more]);
/** a COMPOUND's arguments: tag, minor version, operations (each its number and argument bytes) */
function compound(tag: string, minor: number, ops: [number, Buffer?][]): Buffer {
  const x = new Xdr().opaque(tag).u32(minor).u32(ops.length);
  for (const [op, args] of ops) x.u32(op).raw(args ?? Buffer.alloc(0));
  return x.done();
}
/** a COMPOUND's results: status, tag, results (each op number, status, nothing more: enough for the analyzer, which reads no further) */
function compoundRes(status: number, tag: string, ops: [number, number][]): Buffer {
  const x = new Xdr().u32(status).opaque(tag).u32(ops.length);
  for (const [op, st] of ops) x.u32(op).u32(st);
  return x.done();
}
const putfh = (): [number, Buffer] => [22, new Xdr().opaque(fh).done()];
const getattr = (): [number, Buffer] => [9, new Xdr().u32(2).u32(0x0010011a).u32(0x00b0a23a).done()];
const sequence = (): [number, Buffer] => [53, Buffer.concat([Buffer.alloc(16, 7), new Xdr().u32(1).u32(0).u32(0).u32(0).done()])];

/** packet loss: inside a WRITE's data (the place is kept), a whole call lost, a reply cut, then pairing goes on */
function gaps(): GenFrame[] {
  const data = Buffer.alloc(6000, 0x61);
  const write = record(call(0x100, 3, 7, Buffer.concat([new Xdr().opaque(fh).u64(0n).u32(6000).u32(2).done(), new Xdr().opaque(data).done()])));
  const a = new Conv('10.12.0.1', 801, '10.12.0.2', 2049).send(0, write.subarray(0, 1500)).lose(0, write.subarray(1500, 3000)).send(0, write.subarray(3000));
  a.send(1, record(rpcReply(0x100, v3res(0))));
  // a call lost whole: its reply has no call
  a.lose(0, record(call(0x101, 3, 1, new Xdr().opaque(fh).done()))).send(1, record(rpcReply(0x101, v3res(0))));
  // a reply lost across a record boundary: the stream finds its place at the next reply to a waiting call
  const r1 = record(rpcReply(0x102, v3res(0, Buffer.alloc(64, 1))));
  const r2 = record(rpcReply(0x103, v3res(2)));
  a.send(0, record(call(0x102, 3, 3, new Xdr().opaque(fh).opaque('a').done())), record(call(0x103, 3, 3, new Xdr().opaque(fh).opaque('b').done())), record(call(0x104, 3, 1, new Xdr().opaque(fh).done())));
  a.send(1, r1.subarray(0, 20)).lose(1, Buffer.concat([r1.subarray(20), r2.subarray(0, 10)])).send(1, r2.subarray(10));
  a.send(1, record(rpcReply(0x104, v3res(0))));
  return frames(a.close());
}

/** captures that begin inside connections: in a reply, in a call */
function midstream(): GenFrame[] {
  const m = new Conv('10.12.1.1', 802, '10.12.1.2', 2049, false, [70000, 90000]);
  const big = record(rpcReply(0x1ff, v3res(0, Buffer.alloc(300, 9))));
  m.send(1, big.subarray(100));
  m.send(0, record(call(0x200, 3, 1, new Xdr().opaque(fh).done())).subarray(30), record(call(0x201, 3, 1, new Xdr().opaque(fh).done())));
  m.send(1, record(rpcReply(0x200, v3res(0))), record(rpcReply(0x201, v3res(0))));
  m.send(0, record(call(0x202, 4, 1, compound('mid', 0, [putfh(), getattr()])))).send(1, record(rpcReply(0x202, compoundRes(0, 'mid', [[22, 0], [9, 0]]))));
  return frames(m.close());
}

/** a server on ports no protocol claims, found by a call's first bytes: over TCP and UDP */
function otherPort(): GenFrame[] {
  const a = new Conv('10.12.2.1', 803, '10.12.2.2', 20049);
  a.send(0, record(call(0x300, 3, 0))).send(1, record(rpcReply(0x300)));
  a.send(0, record(call(0x301, 3, 4, new Xdr().opaque(fh).u32(0x3f).done()))).send(1, record(rpcReply(0x301, v3res(13))));
  const dg = (src: string, sp: number, dst: string, dp: number, b: Buffer) => ipv4(src, dst, 17, udp(sp, dp, b));
  const u = [
    dg('10.12.2.1', 900, '10.12.2.2', 20050, call(0x310, 3, 1, new Xdr().opaque(fh).done())),
    dg('10.12.2.2', 20050, '10.12.2.1', 900, rpcReply(0x310, v3res(0))),
  ];
  return frames([...a.close(), ...u]);
}

/** NFSv4.1: a session with SEQUENCE, a backchannel call from the server on the client's connection, OPEN that creates, a COMPOUND past the bound of operations, an unknown operation */
function sessions(): GenFrame[] {
  const c = new Conv('10.12.3.1', 804, '10.12.3.2', 2049);
  const open: [number, Buffer] = [18, Buffer.concat([new Xdr().u32(0).u32(2).u32(0).u64(1n).opaque('owner').u32(1).u32(0).u32(1).u32(0x10).opaque(Buffer.alloc(8, 0)).u32(0).opaque('new-file').done()])];
  c.send(0, record(call(0x400, 4, 1, compound('open', 1, [sequence(), putfh(), open, [10], getattr()]))));
  // the server calls back (CB_SEQUENCE, program 0x40000000) on the same connection; the client answers
  c.send(1, record(rpcCall({ xid: 0x9000, prog: 0x40000000, vers: 1, proc: 1, args: Buffer.alloc(8) })));
  c.send(0, record(rpcReply(0x9000, Buffer.alloc(4))));
  c.send(1, record(rpcReply(0x400, compoundRes(0, 'open', [[53, 0], [22, 0], [18, 0], [10, 0], [9, 0]]))));
  // 130 operations: listed up to the bound (128)
  const many: [number, Buffer?][] = [sequence(), putfh(), ...Array.from({ length: 128 }, () => getattr())];
  c.send(0, record(call(0x401, 4, 1, compound('many', 1, many)))).send(1, record(rpcReply(0x401, compoundRes(10070, 'many', []))));
  // an operation number no one knows, in the middle: the COMPOUND is ILLEGAL, as packetbeat names it, the rest not read
  c.send(0, record(call(0x402, 4, 1, compound('odd', 2, [sequence(), [99, Buffer.alloc(4)], getattr()])))).send(1, record(rpcReply(0x402, compoundRes(10044, 'odd', [[53, 0], [10044, 10044]]))));
  // DESTROY_SESSION after SEQUENCE fails with BADSESSION on the first operation
  c.send(0, record(call(0x403, 4, 1, compound('bye', 1, [sequence(), [44, Buffer.alloc(16, 7)]])))).send(1, record(rpcReply(0x403, compoundRes(10052, 'bye', [[53, 10052]]))));
  return frames(c.close());
}

/** what is not a well-formed NFS call: another program on the port, a denied call, a reply from the client, bytes that are not RPC, a record too short */
function violations(): GenFrame[] {
  const c = new Conv('10.12.4.1', 805, '10.12.4.2', 2049);
  // NFS_ACL (100227) shares the NFS port: counted, not emitted
  c.send(0, record(rpcCall({ xid: 0x500, prog: 100227, vers: 3, proc: 1, unix: ME, args: new Xdr().opaque(fh).u32(15).done() }))).send(1, record(rpcReply(0x500, Buffer.alloc(8))));
  // AUTH_ERROR (too weak) and RPC_MISMATCH
  c.send(0, record(call(0x501, 3, 1, new Xdr().opaque(fh).done(), { unix: undefined }))).send(1, record(rpcDenied(0x501, 1)));
  c.send(0, record(call(0x502, 3, 0))).send(1, record(rpcDenied(0x502, 0)));
  // an RPCSEC_GSS call and an unknown flavour
  c.send(0, record(Buffer.concat([new Xdr().u32(0x503).u32(0).u32(2).u32(100003).u32(4).u32(0).u32(6).opaque(Buffer.alloc(20, 1)).u32(6).opaque(Buffer.alloc(12, 2)).done()]))).send(1, record(rpcReply(0x503)));
  c.send(0, record(Buffer.concat([new Xdr().u32(0x504).u32(0).u32(2).u32(100003).u32(3).u32(0).u32(390003).opaque(Buffer.alloc(8, 1)).u32(0).u32(0).done()]))).send(1, record(rpcReply(0x504)));
  // a reply from the client, a message type 7, a record of 4 bytes
  c.send(0, record(rpcReply(0x505)));
  c.send(0, record(new Xdr().u32(0x506).u32(7).u32(0).done()));
  c.send(1, record(Buffer.from([1, 2, 3, 4])));
  // the stream goes on
  c.send(0, record(call(0x507, 3, 18, new Xdr().opaque(fh).done()))).send(1, record(rpcReply(0x507, v3res(0, Buffer.alloc(52, 3)))));
  // a record mark of 1 GiB: past maxRecordBytes, the place is lost until the next call
  c.send(0, Buffer.from([0xc0, 0, 0, 0, 1, 2, 3, 4]));
  c.send(0, record(call(0x508, 3, 0))).send(1, record(rpcReply(0x508)));
  // a call with the same xid as one waiting: the first is reported unanswered
  c.send(0, record(call(0x509, 3, 0)), record(call(0x509, 3, 1, new Xdr().opaque(fh).done()))).send(1, record(rpcReply(0x509, v3res(0))));
  // UDP: a retransmitted call answered twice (one transaction), a reply to no call, a datagram of 3 bytes
  const dg = (src: string, sp: number, dst: string, dp: number, b: Buffer) => ipv4(src, dst, 17, udp(sp, dp, b));
  const retx = call(0x50a, 3, 1, new Xdr().opaque(fh).done());
  const u = [
    dg('10.12.4.1', 901, '10.12.4.2', 2049, retx),
    dg('10.12.4.1', 901, '10.12.4.2', 2049, retx),
    dg('10.12.4.2', 2049, '10.12.4.1', 901, rpcReply(0x50a, v3res(0))),
    // the server's duplicate request cache answers the retransmission too
    dg('10.12.4.2', 2049, '10.12.4.1', 901, rpcReply(0x50a, v3res(0))),
    dg('10.12.4.2', 2049, '10.12.4.1', 901, rpcReply(0x50b, v3res(0))),
    dg('10.12.4.1', 901, '10.12.4.2', 2049, Buffer.from([1, 2, 3])),
    // a call never answered
    dg('10.12.4.1', 901, '10.12.4.2', 2049, call(0x50c, 3, 0)),
  ];
  return frames([...c.close(), ...u]);
}

export function nfsEdgeCases(): Record<string, Buffer> {
  return {
    'edge-gaps.pcap': writePcap(gaps()),
    'edge-midstream.pcap': writePcap(midstream()),
    'edge-other-port.pcap': writePcap(otherPort()),
    'edge-sessions.pcap': writePcap(sessions()),
    'edge-violations.pcap': writePcap(violations()),
  };
}

if (require.main === module) {
  const dir = path.join(__dirname, '..', '..', 'fixtures', 'nfs');
  mkdirSync(dir, { recursive: true });
  for (const [name, data] of Object.entries(nfsEdgeCases())) writeFileSync(path.join(dir, name), data);
}
