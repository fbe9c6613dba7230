/**
 * NFS-Ganesha (Debian's nfs-ganesha with its VFS backend: a userspace NFS server)
 * on 127.0.0.1, and the clients that drive it: libnfs-utils' nfs-ls, nfs-cat and
 * nfs-cp (userspace, NFSv3 and NFSv4 over TCP), and a small raw RPC client for what
 * they do not send (NFS over UDP, a call in several record-marking fragments,
 * AUTH_NONE, a program version the server does not offer).
 *
 * Ganesha registers its programs with rpcbind and will not start without it
 * ("Cannot register NFS V3 on UDP", then it exits); rpcbind listens on its fixed port
 * 111, so one is started here when none runs, and stopped with the server.
 * The kernel here has no NFS client (`mount -t nfs ...` fails with "mount.nfs: No such
 * device": no nfs in /proc/filesystems, no modules), so no kernel mount is used.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { waitForPort } from './net';

export const HOST = '127.0.0.1';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface NfsServer {
  nfsPort: number;
  mountPort: number;
  /** the exported directory on disk */
  dir: string;
  /** its path as NFSv3's MOUNT names it */
  exportPath: string;
  stop(): Promise<void>;
}

/** rpcbind on its fixed port 111, started (in the foreground) when nothing listens there; returns how to stop the one it started */
export async function ensureRpcbind(): Promise<(() => Promise<void>) | null> {
  const up = await new Promise<boolean>((resolve) => {
    const s = connect(111, HOST);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (up) return null;
  mkdirSync('/run/rpcbind', { recursive: true });
  const child = spawn('rpcbind', ['-f', '-w'], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.on('close', () => r()));
  await waitForPort(111);
  return async () => {
    child.kill('SIGTERM');
    await exited;
  };
}

/** ganesha.nfsd in the foreground, exporting a fresh temporary directory over NFSv3 and v4, TCP and UDP */
export async function startGanesha(nfsPort: number, mountPort: number, files: Record<string, Buffer | string> = {}): Promise<NfsServer> {
  const stopRpcbind = await ensureRpcbind();
  const base = mkdtempSync(path.join(tmpdir(), 'pktflow-nfs-'));
  const dir = path.join(base, 'export');
  mkdirSync(dir);
  mkdirSync(path.join(base, 'recovery'));
  for (const [name, data] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), data);
  }
  const conf = path.join(base, 'ganesha.conf');
  writeFileSync(
    conf,
    `NFS_CORE_PARAM {
  NFS_Port = ${nfsPort};
  MNT_Port = ${mountPort};
  Bind_addr = ${HOST};
  Protocols = 3, 4;
  Enable_NLM = false;
  Enable_RQUOTA = false;
}
NFSv4 {
  RecoveryBackend = fs;
  RecoveryRoot = ${path.join(base, 'recovery')};
  Graceless = true;
}
EXPORT {
  Export_Id = 1;
  Path = ${dir};
  Pseudo = /export;
  Protocols = 3, 4;
  Transports = TCP, UDP;
  Access_Type = RW;
  Squash = none;
  SecType = sys, none;
  FSAL { Name = VFS; }
}
`,
  );
  const log = path.join(base, 'ganesha.log');
  const child: ChildProcess = spawn('ganesha.nfsd', ['-F', '-f', conf, '-L', log, '-p', path.join(base, 'ganesha.pid'), '-N', 'NIV_EVENT'], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.on('close', () => r()));
  try {
    await Promise.race([waitForPort(nfsPort), exited.then(() => Promise.reject(new Error(`ganesha.nfsd did not start on port ${nfsPort} (see ${log})`)))]);
    // the listener opens before the exports are ready: wait until a listing works
    for (let i = 0; ; i++) {
      try {
        await nfsCli('nfs-ls', [nfsUrl(nfsPort, mountPort, dir, 3, '')]);
        break;
      } catch (err) {
        if (i > 100) throw err;
        await sleep(100);
      }
    }
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    await stopRpcbind?.();
    throw err;
  }
  return {
    nfsPort,
    mountPort,
    dir,
    exportPath: dir,
    async stop() {
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      // Ganesha needed it to register its programs; the one started for it goes with it
      await stopRpcbind?.();
      rmSync(base, { recursive: true, force: true });
    },
  };
}

/** a libnfs URL: NFSv3 names the export by its path (MOUNT), NFSv4 by its pseudo path */
export function nfsUrl(nfsPort: number, mountPort: number, dir: string, version: 3 | 4, file: string): string {
  const root = version === 3 ? dir : '/export';
  const q = version === 3 ? `version=3&nfsport=${nfsPort}&mountport=${mountPort}` : `version=4&nfsport=${nfsPort}`;
  return `nfs://${HOST}${root}${file === '' ? '' : '/' + file}?${q}`;
}

/** run a libnfs-utils command; rejects with its stderr */
export function nfsCli(cmd: string, args: string[], allowFail = false): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 60_000, maxBuffer: 64 * 1024 * 1024, encoding: 'latin1' }, (err, stdout, stderr) => {
      if (err !== null && !allowFail) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message} ${stderr}`));
      else resolve(stdout);
    });
  });
}

// --- a raw ONC RPC client ------------------------------------------------------

/** XDR writer */
export class Xdr {
  private parts: Buffer[] = [];
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    this.parts.push(b);
    return this;
  }
  u64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(v);
    this.parts.push(b);
    return this;
  }
  opaque(b: Buffer | string): this {
    const d = typeof b === 'string' ? Buffer.from(b) : b;
    this.u32(d.length);
    this.parts.push(d, Buffer.alloc((4 - (d.length % 4)) % 4));
    return this;
  }
  raw(b: Buffer): this {
    this.parts.push(b);
    return this;
  }
  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export interface CallOptions {
  xid: number;
  prog: number;
  vers: number;
  proc: number;
  /** AUTH_SYS credentials (uid, gid, gids), or AUTH_NONE when absent */
  unix?: { machine: string; uid: number; gid: number; gids: number[] };
  args?: Buffer;
}

/** an RPC call message (without record marking) */
export function rpcCall(o: CallOptions): Buffer {
  const x = new Xdr().u32(o.xid).u32(0).u32(2).u32(o.prog).u32(o.vers).u32(o.proc);
  if (o.unix !== undefined) {
    const cred = new Xdr().u32(0x5eed).opaque(o.unix.machine).u32(o.unix.uid).u32(o.unix.gid).u32(o.unix.gids.length);
    for (const g of o.unix.gids) cred.u32(g);
    x.u32(1).opaque(cred.done());
  } else x.u32(0).u32(0);
  x.u32(0).u32(0);
  if (o.args !== undefined) x.raw(o.args);
  return x.done();
}

/** the reply's accepted body after the accept status (the procedure's results), or null when not accepted or not success */
export function replyResults(reply: Buffer): Buffer | null {
  if (reply.length < 24 || reply.readUInt32BE(4) !== 1 || reply.readUInt32BE(8) !== 0) return null;
  const vlen = reply.readUInt32BE(16);
  const at = 20 + vlen + ((4 - (vlen % 4)) % 4);
  if (reply.readUInt32BE(at) !== 0) return null;
  return reply.subarray(at + 4);
}

/** calls over UDP: one datagram each, answered by xid */
export class UdpRpc {
  private readonly sock = createSocket('udp4');
  private readonly waiting = new Map<number, (b: Buffer) => void>();
  constructor() {
    this.sock.on('message', (m) => {
      const w = this.waiting.get(m.readUInt32BE(0));
      if (w !== undefined) {
        this.waiting.delete(m.readUInt32BE(0));
        w(m);
      }
    });
  }
  call(port: number, o: CallOptions): Promise<Buffer> {
    const msg = rpcCall(o);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no UDP reply to xid ${o.xid} on port ${port}`)), 30_000);
      this.waiting.set(o.xid, (b) => {
        clearTimeout(timer);
        resolve(b);
      });
      this.sock.send(msg, port, HOST);
    });
  }
  close(): void {
    this.sock.close();
  }
}

/** calls over one TCP connection, each record in the given fragments (sizes of all fragments but the last) */
export class TcpRpc {
  private got = Buffer.alloc(0);
  private readonly waiting = new Map<number, (b: Buffer) => void>();
  private constructor(private readonly s: import('node:net').Socket) {
    s.on('data', (d) => {
      this.got = Buffer.concat([this.got, d]);
      // replies come in one fragment each from Ganesha; several fragments are put together anyway
      for (;;) {
        let off = 0;
        const parts: Buffer[] = [];
        let last = false;
        while (!last && off + 4 <= this.got.length) {
          const mark = this.got.readUInt32BE(off);
          const len = mark & 0x7fffffff;
          if (off + 4 + len > this.got.length) break;
          parts.push(this.got.subarray(off + 4, off + 4 + len));
          off += 4 + len;
          last = (mark & 0x80000000) !== 0;
        }
        if (!last) return;
        const rec = Buffer.concat(parts);
        this.got = this.got.subarray(off);
        const w = this.waiting.get(rec.readUInt32BE(0));
        this.waiting.delete(rec.readUInt32BE(0));
        w?.(rec);
      }
    });
  }
  static async open(port: number): Promise<TcpRpc> {
    const s = connect(port, HOST);
    await new Promise<void>((r, j) => s.once('connect', () => r()).once('error', j));
    return new TcpRpc(s);
  }
  call(o: CallOptions, fragments: number[] = []): Promise<Buffer> {
    const msg = rpcCall(o);
    const out: Buffer[] = [];
    let at = 0;
    for (const f of fragments) {
      const mark = Buffer.alloc(4);
      mark.writeUInt32BE(f);
      out.push(Buffer.concat([mark, msg.subarray(at, at + f)]));
      at += f;
    }
    const mark = Buffer.alloc(4);
    mark.writeUInt32BE((0x80000000 | (msg.length - at)) >>> 0);
    out.push(Buffer.concat([mark, msg.subarray(at)]));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no TCP reply to xid ${o.xid}`)), 30_000);
      this.waiting.set(o.xid, (b) => {
        clearTimeout(timer);
        resolve(b);
      });
      // each fragment (its mark and bytes) in its own write: they may travel in separate segments
      for (const b of out) this.s.write(b);
    });
  }
  async end(): Promise<void> {
    const closed = new Promise<void>((r) => this.s.on('close', () => r()));
    this.s.end();
    await closed;
  }
}

export const NFS_PROGRAM = 100003;
export const MOUNT_PROGRAM = 100005;
const ME = { machine: 'pktflow-test', uid: 0, gid: 0, gids: [0, 4, 27] };

/** NFSv3 over UDP against a real Ganesha: MOUNT (to the mount port) for the root handle, then NULL, GETATTR, LOOKUP (found and not), READ, READDIRPLUS, FSSTAT, a version the server lacks */
export async function udpScenario(srv: NfsServer, file: string): Promise<void> {
  const u = new UdpRpc();
  try {
    let xid = 0x1d0000;
    const mnt = await u.call(srv.mountPort, { xid: xid++, prog: MOUNT_PROGRAM, vers: 3, proc: 1, unix: ME, args: new Xdr().opaque(srv.exportPath).done() });
    const res = replyResults(mnt);
    if (res === null || res.readUInt32BE(0) !== 0) throw new Error('MOUNT over UDP failed');
    const fh = res.subarray(8, 8 + res.readUInt32BE(4));
    const nfs = (proc: number, args: Buffer, unix: CallOptions['unix'] | null = ME, vers = 3) => u.call(srv.nfsPort, { xid: xid++, prog: NFS_PROGRAM, vers, proc, unix: unix ?? undefined, args });
    await nfs(0, Buffer.alloc(0));
    await nfs(0, Buffer.alloc(0), null);
    await nfs(1, new Xdr().opaque(fh).done());
    const look = replyResults(await nfs(3, new Xdr().opaque(fh).opaque(file).done()));
    await nfs(3, new Xdr().opaque(fh).opaque('no-such-file').done());
    if (look !== null && look.readUInt32BE(0) === 0) {
      const ffh = look.subarray(8, 8 + look.readUInt32BE(4));
      await nfs(6, new Xdr().opaque(ffh).u64(0n).u32(4096).done());
    }
    await nfs(17, new Xdr().opaque(fh).u64(0n).raw(Buffer.alloc(8)).u32(4096).u32(8192).done());
    await nfs(18, new Xdr().opaque(fh).done());
    // NFSv2 is not offered: the server answers prog_mismatch
    await nfs(0, Buffer.alloc(0), ME, 2);
  } finally {
    u.close();
  }
}

/** raw NFS calls over TCP: a call in three record-marking fragments, AUTH_NONE, a procedure that does not exist, garbage arguments */
export async function rawTcpScenario(srv: NfsServer): Promise<void> {
  const c = await TcpRpc.open(srv.nfsPort);
  try {
    let xid = 0x7c0000;
    // NULL, v3, in three fragments (the first holds program, version and procedure, as tshark needs to see the call)
    await c.call({ xid: xid++, prog: NFS_PROGRAM, vers: 3, proc: 0, unix: ME }, [28, 8]);
    // NULL v4 without credentials
    await c.call({ xid: xid++, prog: NFS_PROGRAM, vers: 4, proc: 0 });
    // v3 procedure 99: proc_unavail
    await c.call({ xid: xid++, prog: NFS_PROGRAM, vers: 3, proc: 99, unix: ME });
    // GETATTR with a file handle cut short: garbage_args
    await c.call({ xid: xid++, prog: NFS_PROGRAM, vers: 3, proc: 1, unix: ME, args: Buffer.from([0, 0, 0, 40, 1, 2]) });
    // a v4 COMPOUND in two fragments: PUTROOTFH, GETFH, GETATTR
    const compound = new Xdr().opaque('raw').u32(0).u32(3).u32(24).u32(10).u32(9).u32(2).u32(0x0010011a).u32(0x00b0a23a).done();
    await c.call({ xid: xid++, prog: NFS_PROGRAM, vers: 4, proc: 1, unix: ME, args: compound }, [40]);
    // a v4.0 COMPOUND whose LOOKUP fails: PUTROOTFH, LOOKUP missing, GETFH
    const failing = new Xdr().opaque('lookup').u32(0).u32(3).u32(24).u32(15).opaque('missing').u32(10).done();
    await c.call({ xid: xid++, prog: NFS_PROGRAM, vers: 4, proc: 1, unix: ME, args: failing });
  } finally {
    await c.end();
  }
}

/**
 * The libnfs-utils scenario over one NFS version: list, read, write, read back, read a
 * large file, list recursively, read a missing file. libnfs 4.0 cannot send an NFSv4
 * WRITE of 4000 bytes or more (nfs-cp fails with "ZDR error: Failed to encode
 * COMPOUND4args", a client bug): the v4 upload is 3000 bytes; large reads come from
 * `big.bin` (put in the export beforehand) in both versions.
 */
export async function cliScenario(srv: NfsServer, version: 3 | 4, work: string): Promise<void> {
  const url = (f: string) => nfsUrl(srv.nfsPort, srv.mountPort, srv.dir, version, f);
  await nfsCli('nfs-ls', [url('')]);
  await nfsCli('nfs-cat', [url('hello.txt')]);
  const up = path.join(work, `up-v${version}.bin`);
  if (!existsSync(up)) writeFileSync(up, pattern(version === 3 ? 300_000 : 3000));
  await nfsCli('nfs-cp', [up, url(`uploaded-v${version}.bin`)]);
  await nfsCli('nfs-cp', [url(`uploaded-v${version}.bin`), path.join(work, `down-v${version}.bin`)]);
  await nfsCli('nfs-cp', [url('big.bin'), path.join(work, `big-v${version}.bin`)]);
  await nfsCli('nfs-ls', ['-R', url('')]);
  await nfsCli('nfs-cat', [url('no-such-file.txt')], true);
}

/** n bytes that are not one repeated byte */
export function pattern(n: number): Buffer {
  return Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + (i >> 8)) & 0xff));
}
