import type { Packet } from '../decode/packet';
import type { Endpoints } from '../events/endpoints';
import type { EventObject } from '../events/transaction';
import type { Connection } from '../tcp/connection';
import type { Stats } from '../core/stage';

/** Where analyzers put their transactions. */
export interface Emitter {
  emit(event: EventObject): void;
  /** a protocol violation in a conversation, for anomaly events (when they are on) */
  anomaly?(layer: string, reason: string, ep: Endpoints): void;
  /** a protocol violation in one packet, for anomaly events (when they are on) */
  packetAnomaly?(layer: string, reason: string, p: Packet): void;
}

/**
 * One analyzer instance per TCP connection. Directions: 0 client→server,
 * 1 server→client. Bytes are buf[off, off+len): valid only during the call — copy
 * what must be kept.
 */
export interface TcpAnalyzer {
  data(side: number, buf: Buffer, off: number, len: number, tsSec: number, tsNsec: number): void;
  /** n bytes of `side` were lost and will never come */
  gap(side: number, n: number, tsSec: number, tsNsec: number): void;
  /** the connection ended: emit whatever is pending, with the state it has */
  close(tsSec: number, tsNsec: number): void;
  /** packet time moved on: time out what waited too long */
  expire(nowSec: number, nowNsec: number): void;
  /** the connection's state is dropped without emitting it (its frames will be read again) */
  discard?(): void;
}

/** One analyzer instance per protocol per stage, for all its datagrams (UDP by port, or an IP protocol such as ICMP). */
export interface DatagramAnalyzer {
  datagram(p: Packet): void;
  expire(nowSec: number, nowNsec: number): void;
  /** end of input: emit everything pending */
  flush(): void;
  /** forget everything pending without emitting it (its frames will be read again) */
  discard(): void;
  stats(): Stats;
}

export interface TcpContext {
  readonly conn: Connection;
  readonly endpoints: Endpoints;
  readonly out: Emitter;
  /** the handshake was not seen: the streams may start inside a message */
  readonly midStream: boolean;
  /**
   * An analyzer of another protocol of this stage on the same connection, for bytes
   * this analyzer hands on: the plaintext of a decrypted TLS connection, the rest of
   * an HTTP/1.1 connection upgraded to HTTP/2. Its events go to `out` when given (to
   * add fields to them), else to the stage. The caller owns it: it forwards data,
   * gaps, close and expire. Null when the protocol is not running in this stage;
   * absent where an analyzer runs alone (unit tests).
   */
  open?(protocol: string, out?: Emitter, midStream?: boolean): TcpAnalyzer | null;
}

/** A protocol as the registry knows it. `Opts` is the protocol's own option object. */
export interface Protocol<Opts = any> {
  readonly name: string;
  readonly tcpPorts: readonly number[];
  readonly udpPorts: readonly number[];
  /** IP protocol numbers this protocol takes whole (ICMP: 1 and 58) */
  readonly ipProtocols?: readonly number[];
  /** a look at the first payload of a connection on a port no protocol claims */
  probe?(buf: Buffer, off: number, len: number, side: number): boolean;
  /** a look at a UDP datagram's payload on ports no protocol claims (the first few of each flow) */
  probeDatagram?(buf: Buffer, off: number, len: number): boolean;
  /** shared per stage: options resolved once, counters */
  create(options: Partial<Opts>, out: Emitter): ProtocolInstance;
}

export interface ProtocolInstance {
  tcp?(ctx: TcpContext): TcpAnalyzer;
  /** for UDP datagrams on its ports and packets of its IP protocols */
  datagrams?: DatagramAnalyzer;
  stats(): Stats;
}
