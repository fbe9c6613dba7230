import type { TransactionEvent } from '../../events/types';

/** An HTTP transaction (docs/events.md, HTTP). */
export interface HttpEvent extends TransactionEvent<'http'> {
  /** absent when the request was lost to packet loss */
  method?: string;
  query?: string;
  url?: {
    scheme: 'http';
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
    response?: HttpMessageFields & { status_code: number; status_phrase: string };
  };
  user_agent?: { original: string };
}

/** what a request and a response have in common */
export interface HttpMessageFields {
  bytes: number;
  body: { bytes: number; content?: string; truncated?: boolean };
  /** content-length and content-type always (as packetbeat), then the captured headers, by lower-case name */
  headers?: { 'content-length'?: number; 'content-type'?: string; [name: string]: string | number | undefined };
  mime_type?: string;
}
