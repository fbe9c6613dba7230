import { Reason, TCP_SYN, type Packet } from './packet';
import { fail } from './result';

/** TCP header from `off` to `end` (end of the IP payload in the buffer). Returns the payload offset. */
export function decodeTcp(p: Packet, b: Buffer, off: number, end: number): number {
  if (off + 20 > end) return fail(Reason.truncatedTcp);
  const hl = (b[off + 12] >> 4) * 4;
  if (hl < 20) return fail(Reason.badTcpHeader);
  if (off + hl > end) return fail(Reason.truncatedTcp);
  p.srcPort = (b[off] << 8) | b[off + 1];
  p.dstPort = (b[off + 2] << 8) | b[off + 3];
  p.seq = ((b[off + 4] << 24) | (b[off + 5] << 16) | (b[off + 6] << 8) | b[off + 7]) >>> 0;
  p.ack = ((b[off + 8] << 24) | (b[off + 9] << 16) | (b[off + 10] << 8) | b[off + 11]) >>> 0;
  p.tcpFlags = b[off + 13];
  p.window = (b[off + 14] << 8) | b[off + 15];
  if (hl > 20 && (p.tcpFlags & TCP_SYN) !== 0) synOptions(p, b, off + 20, off + hl);
  p.payloadOff = off + hl;
  p.payloadLen = end - (off + hl);
  return off + hl;
}

/** MSS and window scale, the options a SYN negotiates; a malformed list just stops the walk */
function synOptions(p: Packet, b: Buffer, o: number, end: number): void {
  while (o < end) {
    const kind = b[o];
    if (kind === 0) return; // end of list
    if (kind === 1) {
      o++; // no-op
      continue;
    }
    if (o + 2 > end) return;
    const len = b[o + 1];
    if (len < 2 || o + len > end) return;
    if (kind === 2 && len === 4) p.mss = (b[o + 2] << 8) | b[o + 3];
    else if (kind === 3 && len === 3) p.wscale = Math.min(b[o + 2], 14);
    o += len;
  }
}
