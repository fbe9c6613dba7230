import { Reason, type Packet } from './packet';
import { fail } from './result';

/** IPv4 header: fills addresses and protocol; returns the transport offset. Options are skipped by IHL. */
export function decodeIpv4(p: Packet, b: Buffer, off: number): number {
  if (off + 20 > b.length) return fail(Reason.truncatedIpv4);
  const vihl = b[off];
  if (vihl >> 4 !== 4) return fail(Reason.badIpVersion);
  const hl = (vihl & 0x0f) * 4;
  if (hl < 20) return fail(Reason.badIpv4Header);
  if (off + hl > b.length) return fail(Reason.truncatedIpv4);
  const total = (b[off + 2] << 8) | b[off + 3];
  if (total < hl) return fail(Reason.badIpv4Header);
  p.ipVersion = 4;
  p.ipLen = total;
  p.ttl = b[off + 8];
  p.proto = b[off + 9];
  p.src3 = ((b[off + 12] << 24) | (b[off + 13] << 16) | (b[off + 14] << 8) | b[off + 15]) >>> 0;
  p.dst3 = ((b[off + 16] << 24) | (b[off + 17] << 16) | (b[off + 18] << 8) | b[off + 19]) >>> 0;
  return off + hl;
}

/** fragment fields of the IPv4 header at `off`: offset in bytes, or -1 when not a fragment */
export function ipv4FragmentOffset(b: Buffer, off: number): number {
  const ff = (b[off + 6] << 8) | b[off + 7];
  const more = (ff & 0x2000) !== 0;
  const fo = (ff & 0x1fff) * 8;
  return more || fo !== 0 ? fo : -1;
}

export function ipv4MoreFragments(b: Buffer, off: number): boolean {
  return (b[off + 6] & 0x20) !== 0;
}

export function ipv4Id(b: Buffer, off: number): number {
  return (b[off + 4] << 8) | b[off + 5];
}
