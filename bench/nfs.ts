/**
 * npx tsx bench/nfs.ts [--runs 3] [--calls 100000]: pktflow against tshark's RPC and
 * NFS dissectors on NFS load captured once from a real NFS-Ganesha (on free ports)
 * into bench/out/nfs.pcap (root needed: capture, rpcbind). libnfs-utils has no load
 * tool, so the load is the raw RPC client of the tests (test/nfs-server.ts): one TCP
 * connection with 32 calls in flight, NFSv3 GETATTR, LOOKUP (found and missing),
 * ACCESS, READ of 4 KiB and FSSTAT, and NFSv4 COMPOUNDs (PUTROOTFH, GETFH, GETATTR;
 * PUTROOTFH, LOOKUP, GETFH, GETATTR), in turn. pktflow finds the server by content (no
 * --ports); tshark is told the port. Results: stdout (markdown) and bench/out/nfs.json.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { recordLoopback } from '../test/capture';
import { freePort } from '../test/net';
import { MOUNT_PROGRAM, NFS_PROGRAM, replyResults, startGanesha, TcpRpc, UdpRpc, Xdr } from '../test/nfs-server';
import { flag, machine, ROOT, VERSUS_HEADER, versusTshark } from './common';

const runs = Number(flag('--runs', '3'));
const calls = Number(flag('--calls', '100000'));
const dir = path.join(ROOT, 'bench/out');
const file = path.join(dir, 'nfs.pcap');
const ME = { machine: 'bench', uid: 0, gid: 0, gids: [0] };

async function load(nfsPort: number, mountPort: number, exportPath: string): Promise<void> {
  const u = new UdpRpc();
  const mnt = replyResults(await u.call(mountPort, { xid: 1, prog: MOUNT_PROGRAM, vers: 3, proc: 1, unix: ME, args: new Xdr().opaque(exportPath).done() }));
  u.close();
  if (mnt === null || mnt.readUInt32BE(0) !== 0) throw new Error('MOUNT failed');
  const root = mnt.subarray(8, 8 + mnt.readUInt32BE(4));
  const c = await TcpRpc.open(nfsPort);
  const look = replyResults(await c.call({ xid: 2, prog: NFS_PROGRAM, vers: 3, proc: 3, unix: ME, args: new Xdr().opaque(root).opaque('big.bin').done() }));
  if (look === null || look.readUInt32BE(0) !== 0) throw new Error('LOOKUP big.bin failed');
  const file = look.subarray(8, 8 + look.readUInt32BE(4));
  const kinds: [number, number, Buffer][] = [
    [3, 1, new Xdr().opaque(root).done()],
    [3, 3, new Xdr().opaque(root).opaque('hello.txt').done()],
    [3, 3, new Xdr().opaque(root).opaque('missing').done()],
    [3, 4, new Xdr().opaque(file).u32(0x3f).done()],
    [3, 6, new Xdr().opaque(file).u64(4096n).u32(4096).done()],
    [3, 18, new Xdr().opaque(root).done()],
    [4, 1, new Xdr().opaque('').u32(0).u32(3).u32(24).u32(10).u32(9).u32(2).u32(0x0010011a).u32(0x00b0a23a).done()],
    [4, 1, new Xdr().opaque('').u32(0).u32(4).u32(24).u32(15).opaque('export').u32(10).u32(9).u32(2).u32(0x0010011a).u32(0x00b0a23a).done()],
  ];
  let next = 0;
  const worker = async () => {
    while (next < calls) {
      const i = next++;
      const [vers, proc, args] = kinds[i % kinds.length];
      await c.call({ xid: 0x10000 + i, prog: NFS_PROGRAM, vers, proc, unix: ME, args });
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  await c.end();
}

async function main(): Promise<void> {
  mkdirSync(dir, { recursive: true });
  if (!existsSync(file) || !existsSync(`${file}.port`)) {
    const port = await freePort();
    process.stderr.write(`bench: capturing ${calls} NFS calls to Ganesha into ${file}\n`);
    const server = await startGanesha(port, await freePort(), { 'hello.txt': 'hello\n', 'big.bin': Buffer.alloc(65536, 7) });
    try {
      await recordLoopback({ filter: `tcp port ${port}`, file, bufferKiB: 1 << 20 }, () => load(port, server.mountPort, server.exportPath));
    } finally {
      await server.stop();
    }
    writeFileSync(`${file}.port`, String(port));
  }
  const port = Number(readFileSync(`${file}.port`, 'utf8'));
  console.log(`${machine()}, ${execFileSync('tshark', ['--version'], { encoding: 'utf8' }).split('\n')[0]}, NFS-Ganesha 4.3\nmedian of ${runs} runs (wall time includes start-up)\n`);
  console.log(VERSUS_HEADER);
  const rows = versusTshark('Ganesha, 32 calls in flight', file, `${process.execPath} bin/pktflow.js read -q ${file}`, `tshark -r ${file} -d tcp.port==${port},rpc -Y nfs -T fields -e rpc.xid -e nfs.procedure_v3 -e nfs.main_opcode -e nfs.status -e nfs.nfsstat4`, runs);
  writeFileSync(path.join(dir, 'nfs.json'), JSON.stringify({ date: new Date().toISOString(), runs, rows }, null, 2) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
