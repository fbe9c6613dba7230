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
  userAgent = '';
  referer = '';
  /** the Content-Type header as sent */
  contentType = '';
  /** -1: none given */
  contentLength = -1;
  chunked = false;
  connectionClose = false;
  expectContinue = false;
  /** captured headers (lower-case names) other than Content-Length and Content-Type, or null when none are asked for */
  headers: Record<string, string> | null = null;
  headerBytes = 0;
  /** body bytes after transfer decoding (chunk framing not counted) */
  bodyBytes = 0;
  /** everything the message took on the wire */
  wireBytes = 0;
  /** body bytes kept, when capture applies */
  body: Buffer[] | null = null;
  bodyKept = 0;
  bodyTruncated = false;
  /** bytes the capture lost inside this message */
  missingBytes = 0;
  /** what went wrong, for the event's notes */
  notes: string[] | null = null;

  constructor(readonly isRequest: boolean) {}

  note(text: string): void {
    (this.notes ??= []).push(text);
  }
}
