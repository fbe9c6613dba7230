import { isoTime, tsDiffNs } from '../core/frame';
import type { Endpoints } from './endpoints';

/**
 * An event as the analyzers build it, field by field: a plain JSON-ready object with
 * packetbeat's ECS field names. What pipeline authors see is its typed view, `Event`
 * (./types); sinks that only serialise take any such object.
 */
export type EventObject = Record<string, any>;

/** `error.message` of a request that got no response, and of a response that had no request (packetbeat's words) */
export const UNMATCHED_REQUEST = 'Unmatched request';
export const UNMATCHED_RESPONSE = 'Unmatched response';

export interface TxTimes {
  startSec: number;
  startNsec: number;
  endSec: number;
  endNsec: number;
}

/**
 * The fields every transaction event shares, in a fixed order (so the same input
 * gives byte-identical output). Packet times only. In transactions, source is the
 * client and destination the server, as packetbeat has it. `serverDomain`: the
 * server's name as the request gave it (HTTP's Host), '' when none.
 */
export function transactionEvent(
  type: string,
  ep: Endpoints,
  t: TxTimes,
  status: 'OK' | 'Error',
  clientBytes: number,
  serverBytes: number,
  protocol: string = type,
  serverDomain = '',
): EventObject {
  const start = isoTime(t.startSec, t.startNsec);
  const client = { ip: ep.clientIp, port: ep.clientPort, bytes: clientBytes };
  const server: { ip: string; port: number; bytes: number; domain?: string } = { ip: ep.serverIp, port: ep.serverPort, bytes: serverBytes };
  if (serverDomain !== '') server.domain = serverDomain;
  const related: { ip: string[]; hosts?: string[] } = { ip: ep.clientIp === ep.serverIp ? [ep.clientIp] : [ep.clientIp, ep.serverIp] };
  if (serverDomain !== '') related.hosts = [serverDomain];
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
    related,
  };
}

/**
 * The event's closing fields: `notes` (pktflow's own account of what went wrong) and
 * `error.message` (packetbeat's), in this order, each left out when empty.
 */
export function closeEvent(e: EventObject, notes: string[], error: string | null): void {
  if (notes.length > 0) e.notes = notes;
  if (error !== null) e.error = { message: error };
}
