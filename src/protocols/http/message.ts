/** One HTTP/1.x request or response as the parser saw it on the wire. */
export class HttpMessage {
  startSec = 0;
  startNsec = 0;
  endSec = 0;
  endNsec = 0;
  method = '';
  uri = '';
  version = '';
  statusCode = 0;
  statusPhrase = '';
  host = '';
  /** the URL scheme: `http`, or HTTP/2's `:scheme` */
  scheme = 'http';
  userAgent = '';
  referer = '';
  /** the Content-Type header as sent */
  contentType = '';
  /** -1: none given */
  contentLength = -1;
  chunked = false;
  connectionClose = false;
  expectContinue = false;
  /** the Upgrade header (`h2c` asks for HTTP/2) and HTTP2-Settings (the client's SETTINGS, base64url), '' when absent */
  upgrade = '';
  http2Settings = '';
  /** the Authorization header (read only for the basic-auth user name) */
  authorization = '';
  /** the client's address from the real-IP header (X-Forwarded-For's first), '' when none */
  realIp = '';
  /** captured headers (lower-case names) other than Content-Length and Content-Type, or null when none are asked for */
  headers: Record<string, string> | null = null;
  headerBytes = 0;
  /** body bytes after transfer decoding (chunk framing not counted) */
  bodyBytes = 0;
  /** everything the message took on the wire */
  wireBytes = 0;
  /** the header section as sent, for the raw `request`/`response` field (only when asked for) */
  raw: Buffer | null = null;
  /** body bytes kept, when capture applies (include_body_for, or a form's parameters) */
  body: Buffer[] | null = null;
  bodyKept = 0;
  bodyTruncated = false;
  /** the body goes into the event (its content type is in include_body_for) */
  sendBody = false;
  /** the first bytes of a body that is not kept, to detect its type (only when asked for) */
  sniffed: Buffer | null = null;
  /** bytes of interim (1xx) responses that preceded this request's final response */
  interimBytes = 0;
  /** bytes the capture lost inside this message */
  missingBytes = 0;
  /** what went wrong, for the event's notes */
  notes: string[] | null = null;

  constructor(readonly isRequest: boolean) {}

  note(text: string): void {
    (this.notes ??= []).push(text);
  }
}
