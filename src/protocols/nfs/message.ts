import { acceptStatus, authFlavor, isMainOp, NFS_PROGRAM, opName, procName, rejectStatus, statusName } from './names';
import { skipArgs } from './ops';
import { XdrReader } from './xdr';

/** longest machine name and COMPOUND tag kept, and secondary group ids kept (AUTH_SYS allows 16) */
const MAX_NAME = 255;
const MAX_GIDS = 16;

/** An RPC call as read from its record (or datagram). One shape for all. */
export class RpcCall {
  xid = 0;
  prog = 0;
  vers = 0;
  proc = 0;
  flavor = 0;
  /** AUTH_SYS credentials, when read */
  unix = false;
  /** RPCSEC_GSS: the service of a data call (1 none, 2 integrity, 3 privacy), GSS_CONTROL for context set-up; 0 for other flavours */
  gss = 0;
  stamp = 0;
  machine = '';
  uid = 0;
  gid = 0;
  gids: number[] = [];
  /** NFS: the procedure's name, or the COMPOUND's main operation's */
  opcode = '';
  /** COMPOUND: tag and minor version (-1: not a COMPOUND, or not read) */
  tag = '';
  minor = -1;
  /** COMPOUND: the operations as far as they could be read */
  ops: number[] = [];
  /** COMPOUND: how many operations it says it has */
  opCount = 0;
  /** COMPOUND: the operations past `ops` could not be read (cut, unknown, over the bound) */
  opsCut = '';
  /** the header could not be read whole */
  short = false;
  // wire
  startSec = 0;
  startNsec = 0;
  endSec = 0;
  endNsec = 0;
  wireBytes = 0;
  missingBytes = 0;
}

/** An RPC reply. */
export class RpcReply {
  xid = 0;
  /** 0 accepted, 1 denied */
  replyStat = 0;
  /** accept_stat or reject_stat */
  stat = 0;
  /** the results' first word, the NFS status of every procedure but NULL (-1: none read) */
  nfsStat = -1;
  /** COMPOUND: results in the reply (-1: not read) */
  resCount = -1;
  short = false;
  startSec = 0;
  startNsec = 0;
  endSec = 0;
  endNsec = 0;
  wireBytes = 0;
  missingBytes = 0;
  /** the results start here (from the message's first byte), for reading once the call is known (-1: none) */
  resultsAt = -1;

  get rpcStatus(): string {
    return this.replyStat === 0 ? acceptStatus(this.stat) : rejectStatus(this.stat);
  }
}

/** 0 call, 1 reply, -1 neither (fewer than 8 bytes or another message type) */
export function messageType(b: Buffer, off: number, kept: number): number {
  if (kept < 8) return -1;
  const t = b.readUInt32BE(off + 4);
  return t <= 1 ? t : -1;
}

/** RPCSEC_GSS services (RFC 2203), and a control call (context creation or destruction) */
export const GSS_INTEGRITY = 2;
export const GSS_PRIVACY = 3;
export const GSS_CONTROL = -1;

const x = new XdrReader();
const credReader = new XdrReader();

/**
 * A call: header, credentials (AUTH_SYS read), verifier, and for NFS the procedure's
 * name, for a COMPOUND its tag, minor version and operations. `maxOps`: operations
 * listed at most.
 */
export function readCall(c: RpcCall, b: Buffer, off: number, kept: number, total: number, maxOps: number): void {
  x.reset(b, off, kept, total);
  c.xid = x.u32();
  x.u32();
  x.u32(); // rpcvers
  c.prog = x.u32();
  c.vers = x.u32();
  c.proc = x.u32();
  c.flavor = x.u32();
  const credLen = x.u32();
  if (credLen > 400) x.short = true;
  const credEnd = x.pos + credLen;
  if (c.flavor === 1 && !x.short && credEnd <= x.end) {
    const cr = credReader.reset(b, x.pos, credLen, credLen);
    c.stamp = cr.u32();
    c.machine = cr.string(MAX_NAME);
    c.uid = cr.u32();
    c.gid = cr.u32();
    c.gids = cr.u32Array(MAX_GIDS);
    c.unix = !cr.short;
  } else if (c.flavor === 6 && !x.short && credEnd <= x.end) {
    // RPCSEC_GSS (RFC 2203): version, procedure, sequence number, service, context handle
    const cr = credReader.reset(b, x.pos, credLen, credLen);
    cr.u32();
    const gssProc = cr.u32();
    cr.u32();
    const service = cr.u32();
    if (!cr.short) c.gss = gssProc !== 0 ? GSS_CONTROL : service;
  }
  x.skip(credLen);
  x.u32();
  x.skipOpaque(400);
  if (c.prog !== NFS_PROGRAM) {
    c.short = x.short;
    return;
  }
  if (x.short) {
    c.short = true;
    c.opcode = c.vers !== 4 ? procName(c.vers, c.proc) : c.proc === 0 ? 'NULL' : c.proc === 1 ? 'COMPOUND' : 'ILLEGAL';
    return;
  }
  if (c.vers !== 4) {
    c.opcode = procName(c.vers, c.proc);
    return;
  }
  if (c.proc === 0) {
    c.opcode = 'NULL';
    return;
  }
  if (c.proc !== 1) {
    c.opcode = 'ILLEGAL';
    return;
  }
  if (c.gss === GSS_PRIVACY || c.gss === GSS_CONTROL) {
    // the arguments are sealed (krb5p), or a context token: the operations cannot be read
    c.opcode = 'COMPOUND';
    return;
  }
  // krb5i: the arguments come as a length and a sequence number, then themselves, then a checksum
  if (c.gss === GSS_INTEGRITY) x.skip(8);
  c.tag = x.string(MAX_NAME);
  c.minor = x.u32();
  c.opCount = x.u32();
  if (x.short) {
    c.short = true;
    c.minor = -1;
    c.opcode = 'COMPOUND';
    return;
  }
  let main = -1;
  for (let i = 0; i < c.opCount; i++) {
    if (c.ops.length >= maxOps) {
      c.opsCut = 'limit';
      break;
    }
    const op = x.u32();
    if (x.short) {
      c.opsCut = 'cut';
      break;
    }
    if (opName(op) === undefined) {
      // packetbeat names the COMPOUND ILLEGAL at an operation it does not know
      c.ops.push(op);
      if (main < 0) main = 10044;
      c.opsCut = i + 1 < c.opCount ? 'unknown_op' : '';
      break;
    }
    c.ops.push(op);
    if (main < 0 && isMainOp(op)) main = op;
    if (i + 1 < c.opCount && (!skipArgs(op, x) || x.short)) {
      c.opsCut = x.short ? 'cut' : 'unknown_op';
      break;
    }
  }
  if (main < 0) main = c.ops.length > 0 ? c.ops[c.ops.length - 1] : 10044;
  c.opcode = opName(main) ?? 'ILLEGAL';
}

/** a reply's header; its results are read by `readResults` once its call is known */
export function readReply(r: RpcReply, b: Buffer, off: number, kept: number, total: number): void {
  x.reset(b, off, kept, total);
  r.xid = x.u32();
  x.u32();
  r.replyStat = x.u32();
  if (r.replyStat === 0) {
    x.u32();
    x.skipOpaque(400);
    r.stat = x.u32();
    if (!x.short && r.stat === 0) r.resultsAt = x.pos - off;
  } else {
    r.stat = x.u32();
  }
  r.short = x.short;
}

/** the NFS results of an accepted, successful reply to `c` (the same bytes `readReply` read): the status, and for a COMPOUND the count of results */
export function readResults(r: RpcReply, c: RpcCall, b: Buffer, off: number, kept: number, total: number): void {
  if (r.resultsAt < 0 || c.prog !== NFS_PROGRAM) return;
  if (c.proc === 0) {
    // NULL has no results (for a GSS context set-up, they are the server's token)
    r.nfsStat = 0;
    return;
  }
  // sealed results cannot be read; integrity-protected ones follow a length and a sequence number
  if (c.gss === GSS_PRIVACY || c.gss === GSS_CONTROL) return;
  x.reset(b, off + r.resultsAt, kept - r.resultsAt, total - r.resultsAt);
  if (c.gss === GSS_INTEGRITY) x.skip(8);
  const st = x.u32();
  if (x.short) return;
  r.nfsStat = st;
  if (c.vers === 4 && c.proc === 1) {
    x.skipOpaque(1024);
    const n = x.u32();
    if (!x.short) r.resCount = n;
  }
}

export { statusName, authFlavor };
