import type { ClientEndpoint, ServerEndpoint, TransactionEvent } from '../../events/types';

/** An ICMP request and its reply, or an error message alone (docs/events.md, ICMP). No ports. */
export interface IcmpEvent extends TransactionEvent<'icmp', Omit<ClientEndpoint, 'port'>, Omit<ServerEndpoint, 'port'>> {
  /** the address the request went to (destination.ip), as packetbeat */
  path: string;
  icmp: {
    version: 4 | 6;
    request?: IcmpMessage;
    response?: IcmpMessage;
    /** the datagram an error message quotes */
    original?: {
      transport: string;
      source: { ip: string; port?: number };
      destination: { ip: string; port?: number };
    };
  };
}

export interface IcmpMessage {
  type: number;
  code: number;
  message: string;
}
