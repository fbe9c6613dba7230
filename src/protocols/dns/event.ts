import type { TransactionEvent } from '../../events/types';

/** A DNS transaction: a query and its response (docs/events.md, DNS). */
export interface DnsEvent extends TransactionEvent<'dns'> {
  method: string;
  query?: string;
  resource?: string;
  dns: {
    id: number;
    op_code: string;
    type: 'answer' | 'query';
    question?: {
      name: string;
      type: string;
      class: string;
      /** from the public suffix list: left out when the name has no registrable domain */
      registered_domain?: string;
      etld_plus_one?: string;
      subdomain?: string;
      top_level_domain?: string;
    };
    /** all six for a response; a query has `recursion_desired` and `checking_disabled` */
    flags: {
      authoritative?: boolean;
      recursion_available?: boolean;
      recursion_desired: boolean;
      authentic_data?: boolean;
      checking_disabled: boolean;
      truncated_response?: boolean;
    };
    header_flags: string[];
    response_code?: string;
    answers_count?: number;
    authorities_count?: number;
    additionals_count?: number;
    answers?: DnsRecord[];
    authorities?: DnsRecord[];
    additionals?: DnsRecord[];
    resolved_ip?: string[];
    opt?: { version: string; do: boolean; ext_rcode: string; udp_size: number };
  };
}

/** A resource record; the fields after `data` belong to some types only. */
export interface DnsRecord {
  name: string;
  type: string;
  class: string;
  /** seconds, as a decimal string (packetbeat's) */
  ttl: string;
  data: string;
  preference?: number;
  priority?: number;
  weight?: number;
  port?: number;
  rname?: string;
  serial?: number;
  refresh?: number;
  retry?: number;
  expire?: number;
  minimum?: number;
  flags?: number;
  tag?: string;
  value?: string;
  /** DNSSEC (RFC 4034, 5155) */
  type_covered?: string;
  algorithm?: string;
  labels?: number;
  original_ttl?: number;
  expiration?: string;
  inception?: string;
  key_tag?: number;
  signer_name?: string;
  protocol?: number;
  digest_type?: string;
  type_bits?: string;
  hash?: string;
  iterations?: number;
  salt?: string;
}
