/**
 * Names of ONC RPC and NFS numbers, as packetbeat writes them (packetbeat/protos/nfs
 * in elastic/beats: rpc.go, nfs3.go, nfs4.go, nfs_status.go), with what it lacks added
 * and said so.
 */

export const NFS_PROGRAM = 100003;

/** accept_stat of an accepted reply (RFC 5531), packetbeat's words */
const ACCEPT = ['success', 'prog_unavail', 'prog_mismatch', 'proc_unavail', 'garbage_args', 'system_err'];
/** reject_stat of a denied reply (RFC 5531): packetbeat drops denied replies; pktflow names them */
const REJECT = ['rpc_mismatch', 'auth_error'];

export function acceptStatus(n: number): string {
  return n < ACCEPT.length ? ACCEPT[n] : `unknown (${n})`;
}

export function rejectStatus(n: number): string {
  return n < REJECT.length ? REJECT[n] : `unknown (${n})`;
}

/** auth_flavor of the call's credentials, packetbeat's words (and RFC 5531's for the flavors it does not name) */
export function authFlavor(n: number): string {
  switch (n) {
    case 0:
      return 'none';
    case 1:
      return 'unix';
    case 6:
      return 'rpcsec_gss';
    default:
      return `unknown (${n})`;
  }
}

/** NFSv3 procedures, packetbeat's spellings (SYM_LINK, MKNODE, PATHINFO: RFC 1813's SYMLINK, MKNOD, PATHCONF) */
const V3 = ['NULL', 'GETATTR', 'SETATTR', 'LOOKUP', 'ACCESS', 'READLINK', 'READ', 'WRITE', 'CREATE', 'MKDIR', 'SYM_LINK', 'MKNODE', 'REMOVE', 'RMDIR', 'RENAME', 'LINK', 'READDIR', 'READDIRPLUS', 'FSSTAT', 'FSINFO', 'PATHINFO', 'COMMIT'];

/** NFSv2 procedures (RFC 1094): packetbeat names none */
const V2 = ['NULL', 'GETATTR', 'SETATTR', 'ROOT', 'LOOKUP', 'READLINK', 'READ', 'WRITECACHE', 'WRITE', 'CREATE', 'REMOVE', 'RENAME', 'LINK', 'SYMLINK', 'MKDIR', 'RMDIR', 'READDIR', 'STATFS'];

/** the procedure's name for NFSv2 and v3; ILLEGAL past the table, as packetbeat */
export function procName(vers: number, proc: number): string {
  const t = vers === 3 ? V3 : vers === 2 ? V2 : null;
  if (t === null) return proc === 0 ? 'NULL' : 'ILLEGAL';
  return proc < t.length ? t[proc] : 'ILLEGAL';
}

/** NFSv4 operations by number (RFC 7530, 5661, 7862; 72 to 75: RFC 8276's extended attributes, which packetbeat calls ILLEGAL) */
const V4_OPS: Record<number, string> = {
  3: 'ACCESS', 4: 'CLOSE', 5: 'COMMIT', 6: 'CREATE', 7: 'DELEGPURGE', 8: 'DELEGRETURN', 9: 'GETATTR', 10: 'GETFH',
  11: 'LINK', 12: 'LOCK', 13: 'LOCKT', 14: 'LOCKU', 15: 'LOOKUP', 16: 'LOOKUPP', 17: 'NVERIFY', 18: 'OPEN',
  19: 'OPENATTR', 20: 'OPEN_CONFIRM', 21: 'OPEN_DOWNGRADE', 22: 'PUTFH', 23: 'PUTPUBFH', 24: 'PUTROOTFH', 25: 'READ',
  26: 'READDIR', 27: 'READLINK', 28: 'REMOVE', 29: 'RENAME', 30: 'RENEW', 31: 'RESTOREFH', 32: 'SAVEFH', 33: 'SECINFO',
  34: 'SETATTR', 35: 'SETCLIENTID', 36: 'SETCLIENTID_CONFIRM', 37: 'VERIFY', 38: 'WRITE', 39: 'RELEASE_LOCKOWNER',
  40: 'BACKCHANNEL_CTL', 41: 'BIND_CONN_TO_SESSION', 42: 'EXCHANGE_ID', 43: 'CREATE_SESSION', 44: 'DESTROY_SESSION',
  45: 'FREE_STATEID', 46: 'GET_DIR_DELEGATION', 47: 'GETDEVICEINFO', 48: 'GETDEVICELIST', 49: 'LAYOUTCOMMIT',
  50: 'LAYOUTGET', 51: 'LAYOUTRETURN', 52: 'SECINFO_NO_NAME', 53: 'SEQUENCE', 54: 'SET_SSV', 55: 'TEST_STATEID',
  56: 'WANT_DELEGATION', 57: 'DESTROY_CLIENTID', 58: 'RECLAIM_COMPLETE', 59: 'ALLOCATE', 60: 'COPY', 61: 'COPY_NOTIFY',
  62: 'DEALLOCATE', 63: 'IO_ADVISE', 64: 'LAYOUTERROR', 65: 'LAYOUTSTATS', 66: 'OFFLOAD_CANCEL', 67: 'OFFLOAD_STATUS',
  68: 'READ_PLUS', 69: 'SEEK', 70: 'WRITE_SAME', 71: 'CLONE', 72: 'GETXATTR', 73: 'SETXATTR', 74: 'LISTXATTRS',
  75: 'REMOVEXATTR', 10044: 'ILLEGAL',
};

export function opName(op: number): string | undefined {
  return V4_OPS[op];
}

/**
 * The operations that are not what a COMPOUND is for: they set up the current file
 * handle or read attributes around the main operation (packetbeat's list). A
 * COMPOUND is named by its first operation that is not one of these, else by its last.
 */
const SECONDARY = new Set([9, 10, 15, 16, 17, 22, 23, 24, 30, 31, 32, 33, 37, 53, 10044]);

export function isMainOp(op: number): boolean {
  return !SECONDARY.has(op);
}

/** nfsstat3 and nfsstat4 values, packetbeat's names (one table for both versions) */
const STATUS: Record<number, string> = {
  0: 'NFS_OK', 1: 'NFSERR_PERM', 2: 'NFSERR_NOENT', 5: 'NFSERR_IO', 6: 'NFSERR_NXIO', 13: 'NFSERR_ACCESS',
  17: 'NFSERR_EXIST', 18: 'NFSERR_XDEV', 19: 'NFSERR_NODEV', 20: 'NFSERR_NOTDIR', 21: 'NFSERR_ISDIR', 22: 'NFSERR_INVAL',
  27: 'NFSERR_FBIG', 28: 'NFSERR_NOSPC', 30: 'NFSERR_ROFS', 31: 'NFSERR_MLINK', 63: 'NFSERR_NAMETOOLONG',
  66: 'NFSERR_NOTEMPTY', 69: 'NFSERR_DQUOT', 70: 'NFSERR_STALE', 71: 'NFSERR_REMOTE', 99: 'NFSERR_WFLUSH',
  10001: 'NFSERR_BADHANDLE', 10002: 'NFSERR_NOT_SYNC', 10003: 'NFSERR_BAD_COOKIE', 10004: 'NFSERR_NOTSUPP',
  10005: 'NFSERR_TOOSMALL', 10006: 'NFSERR_SERVERFAULT', 10007: 'NFSERR_BADTYPE', 10008: 'NFSERR_DELAY',
  10009: 'NFSERR_SAME', 10010: 'NFSERR_DENIED', 10011: 'NFSERR_EXPIRED', 10012: 'NFSERR_LOCKED', 10013: 'NFSERR_GRACE',
  10014: 'NFSERR_FHEXPIRED', 10015: 'NFSERR_SHARE_DENIED', 10016: 'NFSERR_WRONGSEC', 10017: 'NFSERR_CLID_INUSE',
  10018: 'NFSERR_RESOURCE', 10019: 'NFSERR_MOVED', 10020: 'NFSERR_NOFILEHANDLE', 10021: 'NFSERR_MINOR_VERS_MISMATCH',
  10022: 'NFSERR_STALE_CLIENTID', 10023: 'NFSERR_STALE_STATEID', 10024: 'NFSERR_OLD_STATEID', 10025: 'NFSERR_BAD_STATEID',
  10026: 'NFSERR_BAD_SEQID', 10027: 'NFSERR_NOT_SAME', 10028: 'NFSERR_LOCK_RANGE', 10029: 'NFSERR_SYMLINK',
  10030: 'NFSERR_RESTOREFH', 10031: 'NFSERR_LEASE_MOVED', 10032: 'NFSERR_ATTRNOTSUPP', 10033: 'NFSERR_NO_GRACE',
  10034: 'NFSERR_RECLAIM_BAD', 10035: 'NFSERR_RECLAIM_CONFLICT', 10036: 'NFSERR_BADXDR', 10037: 'NFSERR_LOCKS_HELD',
  10038: 'NFSERR_OPENMODE', 10039: 'NFSERR_BADOWNER', 10040: 'NFSERR_BADCHAR', 10041: 'NFSERR_BADNAME',
  10042: 'NFSERR_BAD_RANGE', 10043: 'NFSERR_LOCK_NOTSUPP', 10044: 'NFSERR_OP_ILLEGAL', 10045: 'NFSERR_DEADLOCK',
  10046: 'NFSERR_FILE_OPEN', 10047: 'NFSERR_ADMIN_REVOKED', 10048: 'NFSERR_CB_PATH_DOWN', 10049: 'NFSERR_BADIOMODE',
  10050: 'NFSERR_BADLAYOUT', 10051: 'NFSERR_BAD_SESSION_DIGEST', 10052: 'NFSERR_BADSESSION', 10053: 'NFSERR_BADSLOT',
  10054: 'NFSERR_COMPLETE_ALREADY', 10055: 'NFSERR_CONN_NOT_BOUND_TO_SESSION', 10056: 'NFSERR_DELEG_ALREADY_WANTED',
  10057: 'NFSERR_BACK_CHAN_BUSY', 10058: 'NFSERR_LAYOUTTRYLATER', 10059: 'NFSERR_LAYOUTUNAVAILABLE',
  10060: 'NFSERR_NOMATCHING_LAYOUT', 10061: 'NFSERR_RECALLCONFLICT', 10062: 'NFSERR_UNKNOWN_LAYOUTTYPE',
  10063: 'NFSERR_SEQ_MISORDERED', 10064: 'NFSERR_SEQUENCE_POS', 10065: 'NFSERR_REQ_TOO_BIG', 10066: 'NFSERR_REP_TOO_BIG',
  10067: 'NFSERR_REP_TOO_BIG_TO_CACHE', 10068: 'NFSERR_RETRY_UNCACHED_REP', 10069: 'NFSERR_UNSAFE_COMPOUND',
  10070: 'NFSERR_TOO_MANY_OPS', 10071: 'NFSERR_OP_NOT_IN_SESSION', 10072: 'NFSERR_HASH_ALG_UNSUPP',
  10073: 'NFSERR_CONN_BINDING_NOT_ENFORCED', 10074: 'NFSERR_CLIENTID_BUSY', 10075: 'NFSERR_PNFS_IO_HOLE',
  10076: 'NFSERR_SEQ_FALSE_RETRY', 10077: 'NFSERR_BAD_HIGH_SLOT', 10078: 'NFSERR_DEADSESSION', 10079: 'NFSERR_ENCR_ALG_UNSUPP',
  10080: 'NFSERR_PNFS_NO_LAYOUT', 10081: 'NFSERR_NOT_ONLY_OP', 10082: 'NFSERR_WRONG_CRED', 10083: 'NFSERR_WRONG_TYPE',
  10084: 'NFSERR_DIRDELEG_UNAVAIL', 10085: 'NFSERR_REJECT_DELEG', 10086: 'NFSERR_RETURNCONFLICT',
};

/** the status's name; `unknown (N)` for a number packetbeat does not know (it writes an empty string) */
export function statusName(n: number): string {
  return STATUS[n] ?? `unknown (${n})`;
}
