import type { TransactionEvent } from '../../events/types';
import type { X509Fields } from './x509';

/** one side's certificate, fingerprints and (raw) chain */
export interface TlsEndpointFields {
  /** the leaf's subject and issuer, RFC 2253 strings */
  subject?: string;
  issuer?: string;
  not_before?: string;
  not_after?: string;
  /** the leaf's DER hashed, upper-case hex, per `fingerprints` */
  hash?: { sha1?: string; sha256?: string; md5?: string };
  /** the leaf, parsed (`includeDetailedFields`) */
  x509?: X509Fields;
  /** `includeRawCertificates`: the chain as PEM, leaf first */
  certificate_chain?: string[];
}

export interface TlsHelloDetails {
  version: string;
  session_id?: string;
  extensions: {
    server_name_indication?: string[];
    supported_groups?: string[];
    ec_points_formats?: string[];
    signature_algorithms?: string[];
    application_layer_protocol_negotiation?: string[];
    supported_versions?: string[];
    session_ticket?: string;
    key_share?: string[];
    psk_key_exchange_modes?: string[];
    _unparsed_?: string[];
  };
}

/** A TLS handshake (docs/events.md, TLS). */
export interface TlsEvent extends TransactionEvent<'tls'> {
  tls: {
    version?: string;
    version_protocol?: string;
    cipher?: string;
    curve?: string;
    established: boolean;
    resumed: boolean;
    next_protocol?: string;
    client?: TlsEndpointFields & {
      server_name?: string;
      ja3?: string;
      ja4?: string;
      supported_ciphers?: string[];
    };
    server?: TlsEndpointFields & {
      ja3s?: string;
      ja4s?: string;
    };
    detailed?: {
      version: string;
      client_hello?: TlsHelloDetails & { supported_compression_methods: string[] };
      server_hello?: TlsHelloDetails & { selected_cipher: string; selected_compression_method: string };
      client_certificate_requested: boolean;
      hello_retry_request?: boolean;
      resumption_method?: string;
      alerts?: { source: string; severity: string; code: number; type: string }[];
      alert_types?: string[];
      client_certificate_chain?: X509Fields[];
      server_certificate_chain?: X509Fields[];
    };
  };
}
