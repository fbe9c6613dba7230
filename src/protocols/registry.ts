import type { Protocol } from './analyzer';
import { cassandra } from './cassandra';
import { dns } from './dns';
import { http } from './http';
import { icmp } from './icmp';

/** Every protocol pktflow knows, by name. A new analyzer is one folder and one line here. */
export const protocols: readonly Protocol[] = [http, dns, icmp, cassandra];
