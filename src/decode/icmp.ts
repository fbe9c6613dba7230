import { Reason, type Packet } from './packet';
import { fail } from './result';

/** ICMPv4 and ICMPv6 share the first 8 bytes' layout: type, code, checksum, then id/sequence for echoes */
export function decodeIcmp(p: Packet, b: Buffer, off: number, end: number): number {
  if (off + 4 > end) return fail(Reason.truncatedIcmp);
  p.icmpType = b[off];
  p.icmpCode = b[off + 1];
  if (off + 8 <= end) {
    p.icmpId = (b[off + 4] << 8) | b[off + 5];
    p.icmpSeq = (b[off + 6] << 8) | b[off + 7];
  }
  p.payloadOff = off + 8 <= end ? off + 8 : end;
  p.payloadLen = end - p.payloadOff;
  return p.payloadOff;
}
