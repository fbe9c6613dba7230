import { isoTime, tsDiffNs } from '../core/frame';
import type { Endpoints } from './endpoints';

/**
 * An event as the analyzers build it, field by field: a plain JSON-ready object with
 * packetbeat's ECS field names. What pipeline authors see is its typed view, `Event`
 * (./types); sinks that only serialise take any such object.
 */
export type EventObject = Record<string, any>;

/** @deprecated the untyped form under its old name (src/sinks/kafka.ts still uses it): `EventObject`, or the typed `Event` of ./types */
export type Event = EventObject;

export interface TxTimes {
  startSec: number;
  startNsec: number;
  endSec: number;
  endNsec: number;
}

/**
 * The fields every transaction event shares, in a fixed order (so the same input
 * gives byte-identical output). Packet times only. In transactions, source is the
 * client and destination the server, as packetbeat has it.
 */
export function transactionEvent(
  type: string,
  ep: Endpoints,
  t: TxTimes,
  status: 'OK' | 'Error',
  clientBytes: number,
  serverBytes: number,
  protocol: string = type,
): EventObject {
  const start = isoTime(t.startSec, t.startNsec);
  const client = { ip: ep.clientIp, port: ep.clientPort, bytes: clientBytes };
  const server = { ip: ep.serverIp, port: ep.serverPort, bytes: serverBytes };
  const network: Record<string, unknown> = {
    type: ep.type,
    transport: ep.transport,
    protocol,
    direction: ep.direction,
    community_id: ep.communityId,
    bytes: clientBytes + serverBytes,
  };
  if (ep.vlan >= 0) network.vlan = ep.vlanInner >= 0 ? { id: String(ep.vlan), inner: { id: String(ep.vlanInner) } } : { id: String(ep.vlan) };
  return {
    '@timestamp': start,
    type,
    status,
    event: {
      kind: 'event',
      category: ['network'],
      type: ['connection', 'protocol'],
      dataset: type,
      start,
      end: isoTime(t.endSec, t.endNsec),
      duration: tsDiffNs(t.endSec, t.endNsec, t.startSec, t.startNsec),
    },
    source: { ...client },
    destination: { ...server },
    client,
    server,
    network,
    related: { ip: ep.clientIp === ep.serverIp ? [ep.clientIp] : [ep.clientIp, ep.serverIp] },
  };
}
