import { Reason, type Packet } from './packet';
import { fail } from './result';

const HOP_BY_HOP = 0;
const ROUTING = 43;
const FRAGMENT = 44;
const AH = 51;
const DEST_OPTS = 60;
const MOBILITY = 135;
const HIP = 139;
const SHIM6 = 140;
const MAX_EXT_HEADERS = 16;

/** Where the last IPv6 decode found a fragment header (-1: none). Read right after decodeIpv6. */
export const ipv6Frag = { off: -1, id: 0, offset: 0, more: false };

/**
 * IPv6 header and its extension-header chain. Sets p.proto to the upper-layer
 * protocol and returns its offset; a fragment header is reported in ipv6Frag.
 */
export function decodeIpv6(p: Packet, b: Buffer, off: number): number {
  if (off + 40 > b.length) return fail(Reason.truncatedIpv6);
  if (b[off] >> 4 !== 6) return fail(Reason.badIpVersion);
  p.ipVersion = 6;
  p.ipLen = 40 + ((b[off + 4] << 8) | b[off + 5]);
  p.ttl = b[off + 7];
  p.src0 = b.readUInt32BE(off + 8);
  p.src1 = b.readUInt32BE(off + 12);
  p.src2 = b.readUInt32BE(off + 16);
  p.src3 = b.readUInt32BE(off + 20);
  p.dst0 = b.readUInt32BE(off + 24);
  p.dst1 = b.readUInt32BE(off + 28);
  p.dst2 = b.readUInt32BE(off + 32);
  p.dst3 = b.readUInt32BE(off + 36);
  ipv6Frag.off = -1;
  let next = b[off + 6];
  let o = off + 40;
  for (let n = 0; ; n++) {
    switch (next) {
      case HOP_BY_HOP:
      case ROUTING:
      case DEST_OPTS:
      case MOBILITY:
      case HIP:
      case SHIM6: {
        if (n === MAX_EXT_HEADERS) return fail(Reason.tooManyIpv6Ext);
        if (o + 8 > b.length) return fail(Reason.truncatedIpv6Ext);
        const hl = (b[o + 1] + 1) * 8;
        if (o + hl > b.length) return fail(Reason.truncatedIpv6Ext);
        next = b[o];
        o += hl;
        break;
      }
      case AH: {
        if (n === MAX_EXT_HEADERS) return fail(Reason.tooManyIpv6Ext);
        if (o + 8 > b.length) return fail(Reason.truncatedIpv6Ext);
        const hl = (b[o + 1] + 2) * 4;
        if (o + hl > b.length) return fail(Reason.truncatedIpv6Ext);
        next = b[o];
        o += hl;
        break;
      }
      case FRAGMENT: {
        if (n === MAX_EXT_HEADERS) return fail(Reason.tooManyIpv6Ext);
        if (o + 8 > b.length) return fail(Reason.truncatedIpv6Ext);
        const fo = (b[o + 2] << 8) | b[o + 3];
        ipv6Frag.off = o;
        ipv6Frag.offset = fo & 0xfff8;
        ipv6Frag.more = (fo & 1) !== 0;
        ipv6Frag.id = b.readUInt32BE(o + 4);
        next = b[o];
        o += 8;
        // an atomic fragment (offset 0, no more) is a whole datagram
        if (ipv6Frag.offset === 0 && !ipv6Frag.more) ipv6Frag.off = -1;
        else {
          p.proto = next;
          return o;
        }
        break;
      }
      default:
        p.proto = next;
        return o;
    }
  }
}
