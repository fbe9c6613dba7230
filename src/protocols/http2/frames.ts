/** HTTP/2 framing (RFC 9113 §4, §6): frame types, flags, settings and error codes. */

/** the client connection preface (RFC 9113 §3.4) */
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** a frame's header: length (24 bits), type, flags, stream id (31 bits) */
export const FRAME_HEADER = 9;

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** the smallest SETTINGS_MAX_FRAME_SIZE, and every endpoint's until its SETTINGS say more */
export const DEFAULT_MAX_FRAME = 16_384;

const ERRORS = [
  'NO_ERROR',
  'PROTOCOL_ERROR',
  'INTERNAL_ERROR',
  'FLOW_CONTROL_ERROR',
  'SETTINGS_TIMEOUT',
  'STREAM_CLOSED',
  'FRAME_SIZE_ERROR',
  'REFUSED_STREAM',
  'CANCEL',
  'COMPRESSION_ERROR',
  'CONNECT_ERROR',
  'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY',
  'HTTP_1_1_REQUIRED',
];

/** an error code's name (RFC 9113 §7); an unknown one as hex */
export function errorName(code: number): string {
  return code < ERRORS.length ? ERRORS[code] : `0x${code.toString(16)}`;
}

/** does buf[off, off+len) begin with the preface (all of it, or as much as there is) */
export function startsWithPreface(buf: Buffer, off: number, len: number): boolean {
  const n = Math.min(len, PREFACE.length);
  for (let i = 0; i < n; i++) if (buf[off + i] !== PREFACE[i]) return false;
  return true;
}
