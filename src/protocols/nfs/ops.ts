import type { XdrReader } from './xdr';

/**
 * The arguments of NFSv4 operations (RFC 7530, 5661, 7862, 8276), passed over so the
 * next operation of a COMPOUND can be read. Returns false for an operation whose
 * arguments pktflow does not know (the list of operations stops there).
 */

const STATEID = 16;
const VERIFIER = 8;
const SESSIONID = 16;
const DEVICEID = 16;
const NFSTIME = 12;

/** fattr4: bitmap4 and attribute values */
function fattr(x: XdrReader): void {
  x.skipU32Array();
  x.skipOpaque();
}

/** lock_owner4, open_owner4: clientid and owner */
function owner(x: XdrReader): void {
  x.skip(8);
  x.skipOpaque();
}

/** callback_sec_parms4<> */
function cbSecParms(x: XdrReader): void {
  const n = x.u32();
  for (let i = 0; i < n && !x.short; i++) {
    const flavor = x.u32();
    if (flavor === 1) {
      x.skip(4);
      x.skipOpaque();
      x.skip(8);
      x.skipU32Array();
    } else if (flavor === 6) {
      x.skip(4);
      x.skipOpaque();
      x.skipOpaque();
    } else if (flavor !== 0) x.short = true;
  }
}

/** channel_attrs4 */
function channelAttrs(x: XdrReader): void {
  x.skip(24);
  x.skipU32Array();
}

/** netloc4 */
function netloc(x: XdrReader): void {
  const t = x.u32();
  if (t === 1 || t === 2) x.skipOpaque();
  else if (t === 3) {
    x.skipOpaque();
    x.skipOpaque();
  } else x.short = true;
}

/** open_claim4 */
function openClaim(x: XdrReader): void {
  switch (x.u32()) {
    case 0:
    case 3:
      x.skipOpaque();
      break;
    case 1:
      x.skip(4);
      break;
    case 2:
      x.skip(STATEID);
      x.skipOpaque();
      break;
    case 4:
    case 6:
      break;
    case 5:
      x.skip(STATEID);
      break;
    default:
      x.short = true;
  }
}

export function skipArgs(op: number, x: XdrReader): boolean {
  switch (op) {
    case 10: // GETFH
    case 16: // LOOKUPP
    case 23: // PUTPUBFH
    case 24: // PUTROOTFH
    case 27: // READLINK
    case 31: // RESTOREFH
    case 32: // SAVEFH
    case 10044: // ILLEGAL
      return true;
    case 3: // ACCESS
    case 19: // OPENATTR
    case 52: // SECINFO_NO_NAME
    case 58: // RECLAIM_COMPLETE
      return x.skip(4);
    case 4: // CLOSE
      return x.skip(4 + STATEID);
    case 5: // COMMIT
      return x.skip(12);
    case 6: {
      // CREATE
      const type = x.u32();
      if (type === 5) x.skipOpaque();
      else if (type === 3 || type === 4) x.skip(8);
      x.skipOpaque();
      fattr(x);
      return true;
    }
    case 7: // DELEGPURGE
    case 30: // RENEW
    case 57: // DESTROY_CLIENTID
      return x.skip(8);
    case 8: // DELEGRETURN
    case 44: // DESTROY_SESSION
    case 45: // FREE_STATEID
    case 66: // OFFLOAD_CANCEL
    case 67: // OFFLOAD_STATUS
      return x.skip(16);
    case 9: // GETATTR
      x.skipU32Array();
      return true;
    case 11: // LINK
    case 15: // LOOKUP
    case 22: // PUTFH
    case 28: // REMOVE
    case 33: // SECINFO
    case 72: // GETXATTR
    case 75: // REMOVEXATTR
      x.skipOpaque();
      return true;
    case 12: {
      // LOCK
      x.skip(4 + 4 + 8 + 8);
      if (x.u32() !== 0) {
        x.skip(4 + STATEID + 4);
        owner(x);
      } else x.skip(STATEID + 4);
      return true;
    }
    case 13: // LOCKT
      x.skip(4 + 8 + 8);
      owner(x);
      return true;
    case 14: // LOCKU
      return x.skip(4 + 4 + STATEID + 8 + 8);
    case 17: // NVERIFY
    case 37: // VERIFY
      fattr(x);
      return true;
    case 18: {
      // OPEN
      x.skip(12);
      owner(x);
      if (x.u32() === 1) {
        const mode = x.u32();
        if (mode === 0 || mode === 1) fattr(x);
        else if (mode === 2) x.skip(VERIFIER);
        else if (mode === 3) {
          x.skip(VERIFIER);
          fattr(x);
        } else x.short = true;
      }
      openClaim(x);
      return true;
    }
    case 20: // OPEN_CONFIRM
      return x.skip(STATEID + 4);
    case 21: // OPEN_DOWNGRADE
      return x.skip(STATEID + 12);
    case 25: // READ
    case 68: // READ_PLUS
      return x.skip(STATEID + 12);
    case 26: // READDIR
      x.skip(8 + VERIFIER + 8);
      x.skipU32Array();
      return true;
    case 29: // RENAME
      x.skipOpaque();
      x.skipOpaque();
      return true;
    case 34: // SETATTR
      x.skip(STATEID);
      fattr(x);
      return true;
    case 35: // SETCLIENTID
      x.skip(VERIFIER);
      x.skipOpaque();
      x.skip(4);
      x.skipOpaque();
      x.skipOpaque();
      return x.skip(4);
    case 36: // SETCLIENTID_CONFIRM
      return x.skip(8 + VERIFIER);
    case 38: // WRITE
      x.skip(STATEID + 12);
      x.skipOpaque();
      return true;
    case 39: // RELEASE_LOCKOWNER
      owner(x);
      return true;
    case 40: // BACKCHANNEL_CTL
      x.skip(4);
      cbSecParms(x);
      return true;
    case 41: // BIND_CONN_TO_SESSION
      return x.skip(SESSIONID + 8);
    case 42: {
      // EXCHANGE_ID
      x.skip(VERIFIER);
      x.skipOpaque();
      x.skip(4);
      const how = x.u32();
      if (how === 1) {
        x.skipU32Array();
        x.skipU32Array();
      } else if (how === 2) {
        x.skipU32Array();
        x.skipU32Array();
        for (let k = 0; k < 2; k++) {
          const n = x.u32();
          for (let i = 0; i < n && !x.short; i++) x.skipOpaque();
        }
        x.skip(8);
      } else if (how !== 0) x.short = true;
      const impl = x.u32();
      if (impl > 1) x.short = true;
      else if (impl === 1) {
        x.skipOpaque();
        x.skipOpaque();
        x.skip(NFSTIME);
      }
      return true;
    }
    case 43: // CREATE_SESSION
      x.skip(16);
      channelAttrs(x);
      channelAttrs(x);
      x.skip(4);
      cbSecParms(x);
      return true;
    case 46: // GET_DIR_DELEGATION
      x.skip(4);
      x.skipU32Array();
      x.skip(2 * NFSTIME);
      x.skipU32Array();
      x.skipU32Array();
      return true;
    case 47: // GETDEVICEINFO
      x.skip(DEVICEID + 8);
      x.skipU32Array();
      return true;
    case 48: // GETDEVICELIST
      return x.skip(8 + 8 + VERIFIER);
    case 49: // LAYOUTCOMMIT
      x.skip(8 + 8 + 4 + STATEID);
      if (x.u32() !== 0) x.skip(8);
      if (x.u32() !== 0) x.skip(NFSTIME);
      x.skip(4);
      x.skipOpaque();
      return true;
    case 50: // LAYOUTGET
      return x.skip(4 + 4 + 4 + 8 + 8 + 8 + STATEID + 4);
    case 51: {
      // LAYOUTRETURN
      x.skip(12);
      if (x.u32() === 1) {
        x.skip(16 + STATEID);
        x.skipOpaque();
      }
      return true;
    }
    case 53: // SEQUENCE
      return x.skip(SESSIONID + 16);
    case 54: // SET_SSV
      x.skipOpaque();
      x.skipOpaque();
      return true;
    case 55: {
      // TEST_STATEID
      const n = x.u32();
      if (n > 0x0fffffff) x.short = true;
      else x.skip(n * STATEID);
      return true;
    }
    case 56: {
      // WANT_DELEGATION
      x.skip(4);
      const claim = x.u32();
      if (claim === 1) x.skip(4);
      else if (claim !== 4 && claim !== 6) x.short = true;
      return true;
    }
    case 59: // ALLOCATE
    case 62: // DEALLOCATE
      return x.skip(STATEID + 16);
    case 60: {
      // COPY
      x.skip(2 * STATEID + 24 + 8);
      const n = x.u32();
      for (let i = 0; i < n && !x.short; i++) netloc(x);
      return true;
    }
    case 61: // COPY_NOTIFY
      x.skip(STATEID);
      netloc(x);
      return true;
    case 63: // IO_ADVISE
      x.skip(STATEID + 16);
      x.skipU32Array();
      return true;
    case 64: {
      // LAYOUTERROR
      x.skip(16 + STATEID);
      const n = x.u32();
      if (n > 0x03ffffff) x.short = true;
      else x.skip(n * (DEVICEID + 8));
      return true;
    }
    case 65: // LAYOUTSTATS
      x.skip(16 + STATEID + 32 + DEVICEID + 4);
      x.skipOpaque();
      return true;
    case 69: // SEEK
      return x.skip(STATEID + 12);
    case 70: // WRITE_SAME
      x.skip(STATEID + 4 + 48);
      x.skipOpaque();
      return true;
    case 71: // CLONE
      return x.skip(2 * STATEID + 24);
    case 73: // SETXATTR
      x.skip(4);
      x.skipOpaque();
      x.skipOpaque();
      return true;
    case 74: // LISTXATTRS
      return x.skip(12);
    default:
      return false;
  }
}
