import type { Hold } from '../core/frame';
import type { Packet } from '../decode/packet';

/** How the reorderer decided which side is the client. */
export const DirectionFrom = { syn: 'syn', synAck: 'syn_ack', port: 'port', firstPacket: 'first_packet' } as const;

/** Out-of-order bytes, copied once, waiting for the hole before them to fill. */
export interface Segment {
  seq: number;
  bytes: Buffer;
}

/** One direction of a TCP connection. */
export class HalfStream {
  /** sequence number of the next byte to deliver; valid once `seqKnown` */
  nextSeq = 0;
  seqKnown = false;
  /** sequence number of the SYN this side sent, or -1 */
  synSeq = -1;
  /** sequence number the FIN occupies, or -1 */
  finSeq = -1;
  finDone = false;
  /** out-of-order queue, sorted by sequence (relative to nextSeq) */
  ooo: Segment[] = [];
  oooBytes = 0;
  /** packet time (s) the oldest queued segment arrived */
  holeSince = 0;
  packets = 0;
  /** IP bytes, as flows count them */
  ipBytes = 0;
  /** payload bytes handed to the analyzer */
  delivered = 0;
  gaps = 0;
  gapBytes = 0;
  retransmitted = 0;
  overlaps = 0;
  reordered = 0;
}

/**
 * A TCP connection, keyed by the canonical 5-tuple plus VLAN. Side 0 is the
 * client (it sent the SYN, or a heuristic said so), side 1 the server. The
 * connection is shared with the analyzer stage, which keeps its state in `app`.
 */
export class Connection {
  /** set once by the analyzer stage */
  app: unknown = undefined;
  readonly half: [HalfStream, HalfStream] = [new HalfStream(), new HalfStream()];
  lastSec: number;
  lastNsec: number;
  closed = false;
  /** keeps the connection's first frame needed (Kafka commits) until the connection closes */
  hold: Hold | null = null;
  // LRU list, least recently active first
  prev: Connection | null = null;
  next: Connection | null = null;
  /** next connection in the same hash bucket */
  chain: Connection | null = null;

  constructor(
    readonly id: number,
    readonly hash: number,
    readonly ipVersion: number,
    /** client address words */
    readonly c0: number,
    readonly c1: number,
    readonly c2: number,
    readonly c3: number,
    readonly s0: number,
    readonly s1: number,
    readonly s2: number,
    readonly s3: number,
    readonly clientPort: number,
    readonly serverPort: number,
    readonly vlan: number,
    readonly vlanInner: number,
    readonly directionFrom: string,
    readonly startSec: number,
    readonly startNsec: number,
  ) {
    this.lastSec = startSec;
    this.lastNsec = startNsec;
  }

  /** 0 if the packet goes client→server, 1 if server→client, -1 if not this connection */
  sideOf(p: Packet): number {
    if (p.vlan !== this.vlan || p.vlanInner !== this.vlanInner || p.ipVersion !== this.ipVersion) return -1;
    if (
      p.srcPort === this.clientPort && p.dstPort === this.serverPort &&
      p.src3 === this.c3 && p.dst3 === this.s3 && p.src2 === this.c2 && p.dst2 === this.s2 &&
      p.src1 === this.c1 && p.dst1 === this.s1 && p.src0 === this.c0 && p.dst0 === this.s0
    ) return 0;
    if (
      p.srcPort === this.serverPort && p.dstPort === this.clientPort &&
      p.src3 === this.s3 && p.dst3 === this.c3 && p.src2 === this.s2 && p.dst2 === this.c2 &&
      p.src1 === this.s1 && p.dst1 === this.c1 && p.src0 === this.s0 && p.dst0 === this.c0
    ) return 1;
    return -1;
  }
}

/** A symmetric hash of the 5-tuple and VLANs: both directions of a connection hash alike. */
export function tupleHash(p: Packet): number {
  const a = mix(mix(mix(mix(p.srcPort, p.src0), p.src1), p.src2), p.src3);
  const b = mix(mix(mix(mix(p.dstPort, p.dst0), p.dst1), p.dst2), p.dst3);
  return mix(mix((a ^ b) | 0, (a + b) | 0), (p.vlan << 12) ^ p.vlanInner ^ (p.proto << 24));
}

function mix(h: number, v: number): number {
  h = Math.imul(h ^ v, 0x9e3779b1);
  return h ^ (h >>> 15);
}
