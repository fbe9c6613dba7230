import type { Packet } from '../decode/packet';
import type { Connection } from './connection';
import type { EventObject } from '../events/transaction';

export const ItemKind = {
  /** in-order bytes of one direction of a TCP connection */
  data: 1,
  /** bytes of one direction that will never be seen (len = how many) */
  gap: 2,
  /** the connection ended (reason says how); nothing follows for it */
  close: 3,
  /** a packet that is not TCP (UDP, ICMP, other IP, non-IP), passed on whole */
  datagram: 4,
  /** a finished event made by the transport stage (a flow report), passed through to the output */
  event: 5,
} as const;

/**
 * What the TCP reorderer hands to the analyzers. One shape for every kind.
 * Data bytes are buf[off, off+len): a view into the frame for in-order segments, a
 * copy for segments that waited out of order.
 */
export class StreamItem {
  constructor(
    readonly kind: number,
    readonly conn: Connection | null,
    readonly packet: Packet | null,
    /** 0: client→server, 1: server→client */
    readonly side: number,
    readonly buf: Buffer | null,
    readonly off: number,
    readonly len: number,
    readonly tsSec: number,
    readonly tsNsec: number,
    readonly reason: string,
    /** a flow report, or (the final flush's) what builds it when the item is handed on */
    readonly event: EventObject | (() => EventObject) | null = null,
  ) {}
}
