import type { TransactionEvent } from '../../events/types';

/** a URI as packetbeat splits it */
export interface SipUriFields {
  original: string;
  scheme?: string;
  username?: string;
  host?: string;
  port?: number;
}

/** From, To */
export interface SipPartyFields {
  display_info?: string;
  uri: SipUriFields;
  tag?: string;
}

/** A SIP transaction: a request, its provisional responses and its final response (docs/events.md, SIP). */
export interface SipEvent extends TransactionEvent<'sip'> {
  event: TransactionEvent<'sip'>['event'] & {
    /** `sip-` and the method in lower case (packetbeat) */
    action: string;
    /** `success` for a final response 2xx or 3xx, `failure` for 4xx-6xx (packetbeat) */
    outcome?: string;
    /** the final response's reason phrase (packetbeat) */
    reason?: string;
    /** the CSeq number (packetbeat) */
    sequence?: number;
    /** the request as sent, headers and body (`keepOriginal`, packetbeat's keep_original) */
    original?: string;
  };
  related: TransactionEvent<'sip'>['related'] & { user?: string[] };
  /** the Authorization's user name */
  user?: { name: string };
  /** absent for a response without a request */
  method?: string;
  query?: string;
  sip: {
    /** `request`, or `response` for a response without its request */
    type: string;
    method?: string;
    uri?: SipUriFields;
    version: string;
    code?: number;
    status?: string;
    accept?: string;
    allow?: string[];
    call_id: string;
    content_length?: number;
    content_type?: string;
    max_forwards?: number;
    supported?: string[];
    user_agent?: { original: string };
    private?: { uri: SipUriFields };
    cseq: { code: number; method: string };
    via: { original: string[] };
    from?: SipPartyFields;
    to?: SipPartyFields;
    contact?: {
      display_info?: string;
      uri: SipUriFields;
      transport?: string;
      line?: string;
      expires?: number;
      q?: number;
    };
    auth?: {
      scheme: string;
      realm?: string;
      uri?: { original: string; scheme?: string; host?: string; port?: number };
    };
    sdp?: {
      version?: string;
      owner?: { username?: string; session_id?: string; version?: string; ip?: string };
      session?: { name: string };
      connection?: { info: string; address: string };
      body?: { original: string };
    };
  };
  /** `sendRequest`: the request as sent */
  request?: string;
  /** `sendResponse`: the final response as sent */
  response?: string;
}
