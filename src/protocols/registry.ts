import type { Protocol } from './analyzer';
import { amqp } from './amqp';
import { cassandra } from './cassandra';
import { dhcpv4 } from './dhcpv4';
import { dns } from './dns';
import { http } from './http';
import { http2 } from './http2';
import { icmp } from './icmp';
import { memcache } from './memcache';
import { mongodb } from './mongodb';
import { mysql } from './mysql';
import { nfs } from './nfs';
import { pgsql } from './pgsql';
import { redis } from './redis';
import { sip } from './sip';
import { thrift } from './thrift';
import { tls } from './tls';

/** Every protocol pktflow knows, by name. A new analyzer is one folder and one line here. */
export const protocols: readonly Protocol[] = [http, dns, icmp, pgsql, mysql, memcache, mongodb, redis, cassandra, nfs, dhcpv4, sip, amqp, thrift, tls, http2];
