import { LinkType } from '../core/frame';
import { Reason, type Packet } from './packet';
import { fail } from './result';

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;
const ETHERTYPE_QINQ = 0x88a8;
const ETHERTYPE_QINQ_OLD = 0x9100;
/** an EtherType field below this is an 802.3 length, not a type */
const ETHERTYPE_MIN = 0x0600;
const MAX_VLAN_TAGS = 4;

/** BSD loopback address families meaning IPv6 (they differ between BSDs) */
function nullFamilyEtherType(family: number): number {
  if (family === 2) return ETHERTYPE_IPV4;
  if (family === 24 || family === 28 || family === 30) return ETHERTYPE_IPV6;
  return 0;
}

/**
 * Decode the link layer. Sets p.etherType (0 for a frame that carries no
 * EtherType, such as 802.3/LLC) and the VLAN ids; returns the offset of the
 * network header.
 */
export function decodeLink(p: Packet, b: Buffer, linkType: number): number {
  const len = b.length;
  switch (linkType) {
    case LinkType.ETHERNET:
      if (len < 14) return fail(Reason.truncatedLink);
      p.ethOff = 0;
      return etherTypeChain(p, b, 12);
    case LinkType.LINUX_SLL:
      if (len < 16) return fail(Reason.truncatedLink);
      return etherTypeChain(p, b, 14);
    case LinkType.LINUX_SLL2:
      if (len < 20) return fail(Reason.truncatedLink);
      // SLL2 puts the protocol first, then 18 more bytes of header
      return etherTypeAt(p, b, 0, 20);
    case LinkType.NULL: {
      if (len < 4) return fail(Reason.truncatedLink);
      // host byte order of the machine that captured: the family fits in the low byte
      const le = b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24);
      const family = (le >>> 0) <= 0xffff ? le : ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
      p.etherType = nullFamilyEtherType(family);
      return 4;
    }
    case LinkType.LOOP: {
      if (len < 4) return fail(Reason.truncatedLink);
      p.etherType = nullFamilyEtherType(((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0);
      return 4;
    }
    case LinkType.RAW:
    case LinkType.IPV4:
    case LinkType.IPV6: {
      if (len < 1) return fail(Reason.truncatedLink);
      const v = b[0] >> 4;
      p.etherType = v === 4 ? ETHERTYPE_IPV4 : v === 6 ? ETHERTYPE_IPV6 : 0;
      if (p.etherType === 0) return fail(Reason.badIpVersion);
      return 0;
    }
    default:
      return fail(Reason.unsupportedLinkType);
  }
}

/** an EtherType field at `at` whose header ends at `next`; follows VLAN tags */
function etherTypeAt(p: Packet, b: Buffer, at: number, next: number): number {
  const t = (b[at] << 8) | b[at + 1];
  if (t === ETHERTYPE_VLAN || t === ETHERTYPE_QINQ || t === ETHERTYPE_QINQ_OLD) {
    // SLL2 carries the tag's TCI and next type right after its header
    if (next + 4 > b.length) return fail(Reason.truncatedVlan);
    p.vlan = ((b[next] << 8) | b[next + 1]) & 0x0fff;
    return vlanTags(p, b, next + 2);
  }
  p.etherType = t >= ETHERTYPE_MIN ? t : 0;
  return next;
}

/** Ethernet or SLL: EtherType at `at`, payload right after it */
function etherTypeChain(p: Packet, b: Buffer, at: number): number {
  const t = (b[at] << 8) | b[at + 1];
  if (t === ETHERTYPE_VLAN || t === ETHERTYPE_QINQ || t === ETHERTYPE_QINQ_OLD) return vlanTags(p, b, at);
  p.etherType = t >= ETHERTYPE_MIN ? t : 0;
  return at + 2;
}

/** 802.1Q / 802.1ad tags; `at` points at the first tag's TPID */
function vlanTags(p: Packet, b: Buffer, at: number): number {
  let o = at;
  for (let n = 0; ; n++) {
    const t = (b[o] << 8) | b[o + 1];
    if (t !== ETHERTYPE_VLAN && t !== ETHERTYPE_QINQ && t !== ETHERTYPE_QINQ_OLD) {
      p.etherType = t >= ETHERTYPE_MIN ? t : 0;
      return o + 2;
    }
    if (n === MAX_VLAN_TAGS) return fail(Reason.tooManyVlanTags);
    if (o + 6 > b.length) return fail(Reason.truncatedVlan);
    const vid = ((b[o + 2] << 8) | b[o + 3]) & 0x0fff;
    if (p.vlan < 0) p.vlan = vid;
    else if (p.vlanInner < 0) p.vlanInner = vid;
    o += 4;
  }
}
