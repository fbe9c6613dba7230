import { Reason, type Packet } from './packet';
import { fail } from './result';

/** UDP header; the payload is what the length field says, cut at the capture's end */
export function decodeUdp(p: Packet, b: Buffer, off: number, end: number): number {
  if (off + 8 > end) return fail(Reason.truncatedUdp);
  p.srcPort = (b[off] << 8) | b[off + 1];
  p.dstPort = (b[off + 2] << 8) | b[off + 3];
  const len = (b[off + 4] << 8) | b[off + 5];
  if (len < 8) return fail(Reason.badUdpLength);
  p.payloadOff = off + 8;
  const want = len - 8;
  const have = end - p.payloadOff;
  p.payloadLen = want < have ? want : have;
  if (want > have) p.payloadMissing += want - have;
  return off + 8;
}
