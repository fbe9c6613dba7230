import type { Stats } from '../core/stage';
import type { AmqpEvent } from '../protocols/amqp/event';
import type { CassandraEvent } from '../protocols/cassandra/event';
import type { DnsEvent } from '../protocols/dns/event';
import type { Dhcpv4Event } from '../protocols/dhcpv4/event';
import type { HttpEvent } from '../protocols/http/event';
import type { IcmpEvent } from '../protocols/icmp/event';
import type { PgsqlEvent } from '../protocols/pgsql/event';
import type { MysqlEvent } from '../protocols/mysql/event';
import type { MemcacheEvent } from '../protocols/memcache/event';
import type { MongodbEvent } from '../protocols/mongodb/event';
import type { RedisEvent } from '../protocols/redis/event';
import type { NfsEvent } from '../protocols/nfs/event';
import type { SipEvent } from '../protocols/sip/event';
import type { ThriftEvent } from '../protocols/thrift/event';
import type { TlsEvent } from '../protocols/tls/event';

/**
 * The events pktflow emits, typed for pipeline authors: a union discriminated by
 * `type`, so `if (e.type === 'dns') e.dns.response_code` needs no cast. Each field is
 * described in docs/events.md, and test/events-doc.test.ts holds the two together:
 * every documented field is declared here with the documented type, and the other
 * way round. A new protocol adds its interface (in its folder) to this union and its
 * table to the document.
 *
 * These are types only: analyzers build plain objects (`EventObject`), and nothing
 * is checked or copied per event.
 */
export type Event = HttpEvent | DnsEvent | IcmpEvent | PgsqlEvent | MysqlEvent | MemcacheEvent | MongodbEvent | RedisEvent | CassandraEvent | NfsEvent | Dhcpv4Event | SipEvent | AmqpEvent | ThriftEvent | TlsEvent | FlowEvent | AnomalyEvent | StatsEvent;

/** `http`, `dns`, `icmp`, `pgsql`, `mysql`, `memcache`, `flow`, `anomaly`, `stats` */
export type EventType = Event['type'];

export type { DnsEvent, DnsRecord } from '../protocols/dns/event';
export type { HttpEvent, HttpMessageFields } from '../protocols/http/event';
export type { IcmpEvent, IcmpMessage } from '../protocols/icmp/event';
export type { PgsqlEvent } from '../protocols/pgsql/event';
export type { MysqlEvent } from '../protocols/mysql/event';
export type { MemcacheEvent, MemcacheRequest, MemcacheResponse } from '../protocols/memcache/event';
export type { MongodbEvent } from '../protocols/mongodb/event';
export type { RedisEvent } from '../protocols/redis/event';
export type { CassandraEvent } from '../protocols/cassandra/event';
export type { NfsEvent } from '../protocols/nfs/event';
export type { Dhcpv4Event, Dhcpv4OptionFields } from '../protocols/dhcpv4/event';
export type { SipEvent } from '../protocols/sip/event';
export type { AmqpEvent, AmqpFields, AmqpTable } from '../protocols/amqp/event';
export type { ThriftEvent } from '../protocols/thrift/event';
export type { TlsEvent, TlsEndpointFields, TlsHelloDetails } from '../protocols/tls/event';
export type { X509Fields, X509Name } from '../protocols/tls/x509';

export interface Vlan {
  id: string;
  inner?: { id: string };
}

/** the client's end of a transaction: `source` and `client` */
export interface ClientEndpoint {
  ip: string;
  port: number;
  /** bytes of the request on the wire */
  bytes: number;
}

/** the server's end: `destination` and `server` (a field only the server side has goes here) */
export interface ServerEndpoint {
  ip: string;
  port: number;
  /** bytes of the response on the wire */
  bytes: number;
  /** HTTP: the server's name from the request (Host header or absolute URI) */
  domain?: string;
}

/** The fields every transaction shares (docs/events.md, "Common to every transaction"). */
export interface TransactionEvent<T extends string, C = ClientEndpoint, S = ServerEndpoint> {
  '@timestamp': string;
  type: T;
  status: 'OK' | 'Error';
  event: {
    kind: 'event';
    category: string[];
    type: string[];
    dataset: T;
    start: string;
    end: string;
    /** nanoseconds */
    duration: number;
  };
  source: C;
  destination: S;
  client: C;
  server: S;
  network: {
    type: 'ipv4' | 'ipv6';
    transport: 'tcp' | 'udp' | 'icmp' | 'ipv6-icmp';
    protocol: string;
    direction: 'internal' | 'outbound' | 'inbound' | 'external';
    community_id: string;
    bytes: number;
    vlan?: Vlan;
  };
  related: { ip: string[]; hosts?: string[] };
  notes?: string[];
  error?: { message: string };
}

/** one side of a flow: addresses for IP, MAC for Ethernet frames */
export interface FlowEndpoint {
  ip?: string;
  port?: number;
  mac?: string;
  packets: number;
  bytes: number;
}

/** A flow record (`--flows`), as packetbeat's. */
export interface FlowEvent {
  '@timestamp': string;
  type: 'flow';
  event: {
    kind: 'event';
    category: string[];
    type: string[];
    action: 'network_flow';
    dataset: 'flow';
    start: string;
    end: string;
    duration: number;
  };
  /** `vlan`: the frame's VLAN ids, outer first */
  flow: { id: string; final: boolean; vlan?: number[] };
  source: FlowEndpoint;
  destination: FlowEndpoint;
  network: {
    type: string;
    transport?: string;
    community_id?: string;
    packets: number;
    bytes: number;
    vlan?: Vlan;
  };
}

/** A protocol violation or decode error (`--anomalies`). */
export interface AnomalyEvent {
  '@timestamp': string;
  type: 'anomaly';
  event: { kind: 'event'; category: string[]; type: string[]; dataset: 'anomaly' };
  anomaly: { layer: string; reason: string; suppressed: number };
  source?: { ip: string; port?: number };
  destination?: { ip: string; port?: number };
  network?: { type: string; transport?: string; community_id?: string };
}

/** The counters at the end of a run (`--stats-event`), by stage. */
export interface StatsEvent {
  type: 'stats';
  stats: Record<string, Stats>;
}
