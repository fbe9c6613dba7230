import type { TransactionEvent } from '../../events/types';
import type { Http2Fields } from '../http2/event';

/** An HTTP transaction (docs/events.md, HTTP). */
export interface HttpEvent extends TransactionEvent<'http'> {
  /** `forwarded_ip`: the client behind a proxy, from the realIpHeader (packetbeat's network.forwarded_ip) */
  network: TransactionEvent<'http'>['network'] & { forwarded_ip?: string };
  /** `user`: the basic-auth user, as packetbeat */
  related: TransactionEvent<'http'>['related'] & { user?: string[] };
  /** absent when the request was lost to packet loss */
  method?: string;
  query?: string;
  url?: {
    /** `https` for HTTP/2 whose `:scheme` says so, and for a request decrypted from a TLS connection (--tls-keylog) */
    scheme: 'http' | 'https';
    domain: string;
    port: number;
    path: string;
    query?: string;
    /** the last path segment's extension, without the dot */
    extension?: string;
    full: string;
  };
  http: {
    version?: string;
    request?: HttpMessageFields & { method: string; referrer?: string };
    /** `end`: the last packet of the response (event.end is its first, as packetbeat) */
    response?: HttpMessageFields & { status_code: number; status_phrase: string; end: string };
  };
  user_agent?: { original: string };
  /** the TLS connection a decrypted request came over (--tls-keylog): ECS tls.* as on the tls event */
  tls?: { established: boolean; version?: string; version_protocol?: string; cipher: string; next_protocol?: string };
  /** the basic-auth user of the request (not with redactAuthorization) */
  user?: { name: string };
  /** the request as sent (sendRequest) */
  request?: string;
  /** the response as sent (sendResponse) */
  response?: string;
  /** HTTP/2 only: the stream (src/protocols/http2) */
  http2?: Http2Fields;
}

/** what a request and a response have in common */
export interface HttpMessageFields {
  bytes: number;
  body: { bytes: number; content?: string; truncated?: boolean };
  /** content-length and content-type always (as packetbeat), then the captured headers, by lower-case name; with splitCookie, cookie and set-cookie are maps */
  headers?: { 'content-length'?: number; 'content-type'?: string } & Record<string, string | Record<string, string>>;
  mime_type?: string;
}
