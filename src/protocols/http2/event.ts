/**
 * HTTP/2 streams become `type: http` events (src/protocols/http/event.ts) with
 * `http.version: "2"` and these fields (docs/events.md, HTTP/2).
 */
export interface Http2Fields {
  /** the stream's id: odd for a client's request, even for a pushed one */
  stream_id: number;
  /** the request was the server's PUSH_PROMISE, the response its pushed stream */
  pushed?: boolean;
  /** the error code (RFC 9113 §7) of the RST_STREAM or GOAWAY that ended the stream (`CANCEL`, `NO_ERROR`...) */
  error_code?: string;
}
