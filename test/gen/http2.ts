/**
 * Writes fixtures/http2/edge-*.pcap: HTTP/2 conversations real clients do not produce
 * on demand: packet loss inside a DATA frame (absorbed) and across frames (the
 * direction's HPACK state lost), captures that begin after the handshake or inside a
 * connection, header blocks split into CONTINUATION frames, padding and priority,
 * trailers, an interim 100, unknown frame types, a table size change, and a
 * conversation sent one byte per segment. The frames and header blocks are built
 * here (an HPACK encoder of literals and indexes, no Huffman: the decoder's Huffman
 * path is tested on RFC 7541's examples and the real captures). Deterministic:
 * `npx tsx test/gen/http2.ts` rewrites the files byte-identical.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { writePcap, type GenFrame, etherFrames as frames, TcpScript as Conv } from './packets';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** an HPACK integer with an n-bit prefix, the prefix's other bits `first` */
export function hpackInt(v: number, n: number, first = 0): Buffer {
  const max = (1 << n) - 1;
  if (v < max) return Buffer.from([first | v]);
  const out = [first | max];
  v -= max;
  while (v >= 128) {
    out.push((v % 128) + 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

const str = (s: string) => Buffer.concat([hpackInt(Buffer.byteLength(s, 'latin1'), 7), Buffer.from(s, 'latin1')]);

/** header block pieces: an indexed field, a literal (added to the table unless `index` is false), a table size update */
export const hp = {
  idx: (i: number) => hpackInt(i, 7, 0x80),
  lit: (name: string, value: string, index = true) => Buffer.concat([Buffer.from([index ? 0x40 : 0x00]), str(name), str(value)]),
  /** a literal whose name is the static or dynamic entry `i` */
  litIdx: (i: number, value: string, index = true) => Buffer.concat([index ? hpackInt(i, 6, 0x40) : hpackInt(i, 4, 0x00), str(value)]),
  size: (n: number) => hpackInt(n, 5, 0x20),
};

/** an HTTP/2 frame */
export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

export const T = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PUSH_PROMISE: 5, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const FL = { END_STREAM: 1, ACK: 1, END_HEADERS: 4, PADDED: 8, PRIORITY: 0x20 } as const;

export const settings = (pairs: [number, number][] = []) => {
  const p = Buffer.alloc(6 * pairs.length);
  pairs.forEach(([id, v], i) => {
    p.writeUInt16BE(id, 6 * i);
    p.writeUInt32BE(v, 6 * i + 2);
  });
  return frame(T.SETTINGS, 0, 0, p);
};
export const settingsAck = () => frame(T.SETTINGS, FL.ACK, 0);
export const headers = (stream: number, block: Buffer, end = true) => frame(T.HEADERS, FL.END_HEADERS | (end ? FL.END_STREAM : 0), stream, block);
export const data = (stream: number, body: string | Buffer, end = true) => frame(T.DATA, end ? FL.END_STREAM : 0, stream, typeof body === 'string' ? Buffer.from(body, 'latin1') : body);

/** a GET request's block: :method GET, :scheme http, :path, :authority, and extra literals */
export const get = (p: string, authority = 'example.test', ...extra: Buffer[]) => Buffer.concat([hp.idx(2), hp.idx(6), hp.litIdx(4, p, false), hp.litIdx(1, authority, false), ...extra]);
/** a response's block: :status (literal), content-type */
export const status = (code: number, type = 'text/plain', ...extra: Buffer[]) => Buffer.concat([hp.litIdx(8, String(code), false), hp.litIdx(31, type, false), ...extra]);

/** the connection's opening: the preface with the client's SETTINGS, the server's SETTINGS, both acknowledged */
const opening = (c: Conv) => c.send(0, Buffer.concat([PREFACE, settings([[3, 100]])])).send(1, Buffer.concat([settings([[3, 128]]), settingsAck()])).send(0, settingsAck());

/** packet loss: inside a DATA payload (absorbed), then a client HEADERS lost (the client's table is unknown from there), then a server HEADERS lost */
function gaps(): GenFrame[] {
  const a = opening(new Conv('10.9.0.1', 50001, '10.9.0.2', 18080));
  // x-session enters both tables (62 from then on)
  a.send(0, headers(1, get('/one', 'example.test', hp.lit('x-session', 'abc'))));
  a.send(1, Buffer.concat([headers(1, status(200, 'text/plain', hp.lit('x-served', 'edge')), false), data(1, 'one\n')]));
  a.send(0, headers(3, get('/big', 'example.test', hp.idx(62))));
  const big = 'z'.repeat(3000);
  const resp = Buffer.concat([headers(3, status(200, 'text/plain', hp.idx(62)), false), data(3, big)]);
  // the loss falls inside the DATA payload: the frame's length carries the reader over it
  a.send(1, resp.subarray(0, 1000)).lose(1, resp.subarray(1000, 2000)).send(1, resp.subarray(2000));
  // stream 5's HEADERS are lost, with a new table entry: later client blocks cannot be trusted
  a.lose(0, headers(5, get('/five', 'example.test', hp.lit('x-session', 'def'))));
  a.send(0, headers(7, get('/seven', 'example.test', hp.idx(62))));
  a.send(1, Buffer.concat([headers(5, status(200, 'text/plain', hp.idx(62)), false), data(5, 'five\n')]));
  a.send(1, Buffer.concat([headers(7, status(404, 'text/plain', hp.idx(62)), false), data(7, 'seven\n')]));
  // the server's side loses a HEADERS frame: stream 9 waits in vain, stream 11 is not reported
  const b = opening(new Conv('10.9.0.1', 50002, '10.9.0.2', 18080));
  b.send(0, headers(1, get('/a'))).send(1, Buffer.concat([headers(1, status(200), false), data(1, 'a\n')]));
  b.send(0, headers(9, get('/b')));
  b.lose(1, headers(9, status(200, 'text/plain', hp.lit('x-new', '1')), false));
  b.send(1, data(9, 'b\n'));
  b.send(0, headers(11, get('/c')));
  b.send(1, Buffer.concat([headers(11, status(200, 'text/plain', hp.idx(62)), false), data(11, 'c\n')]));
  return frames([...a.close(), ...b.close()]);
}

/** captures that begin after the handshake (the preface first: all decoded) and inside a connection (nothing to decode) */
function midstream(): GenFrame[] {
  const a = new Conv('10.9.1.1', 50101, '10.9.1.2', 18081, false, [70000, 90000]);
  opening(a);
  a.send(0, headers(1, get('/after-handshake'))).send(1, Buffer.concat([headers(1, status(200), false), data(1, 'ok\n')]));
  // joined inside: a DATA frame, then frames whose header blocks use a table never seen; on an HTTP port
  const b = new Conv('10.9.1.1', 50102, '10.9.1.2', 8080, false, [123, 456]);
  b.send(1, data(3, 'tail of a body\n'));
  b.send(0, headers(5, Buffer.concat([hp.idx(2), hp.idx(6), hp.idx(63), hp.idx(62)])));
  b.send(1, headers(5, Buffer.concat([hp.idx(8), hp.idx(62)])));
  return frames([...a.close(), ...b.close()]);
}

/**
 * What real clients rarely send: a request block in HEADERS (padded, with priority) and
 * two CONTINUATION frames, a padded DATA, unknown frame types, PRIORITY, WINDOW_UPDATE,
 * PING, trailers, an interim 100, a table size lowered by SETTINGS and followed by a
 * size update, a response ending with an empty DATA frame
 */
function frames_(): GenFrame[] {
  const a = opening(new Conv('10.9.2.1', 50201, '10.9.2.2', 18082));
  const block = get('/continued?x=1', 'example.test', hp.lit('user-agent', 'edge-client'), hp.lit('x-long', 'l'.repeat(300)), hp.lit('cookie', 'a=1'), hp.lit('cookie', 'b=2'));
  const pad = 7;
  const first = Buffer.concat([Buffer.from([pad]), Buffer.from([0x80, 0, 0, 0, 200]), block.subarray(0, 40), Buffer.alloc(pad)]);
  a.send(0, frame(T.HEADERS, FL.PADDED | FL.PRIORITY, 1, first));
  a.send(0, frame(T.CONTINUATION, 0, 1, block.subarray(40, 200)), frame(T.CONTINUATION, FL.END_HEADERS, 1, block.subarray(200)), frame(0xfa, 0, 1, Buffer.from('unknown type: passed over')));
  a.send(0, frame(T.DATA, FL.PADDED | FL.END_STREAM, 1, Buffer.concat([Buffer.from([10]), Buffer.from('form=data'), Buffer.alloc(10)])));
  a.send(1, frame(T.PRIORITY, 0, 3, Buffer.from([0, 0, 0, 1, 16])), frame(T.WINDOW_UPDATE, 0, 0, Buffer.from([0, 1, 0, 0])), frame(T.PING, 0, 0, Buffer.alloc(8, 1)));
  a.send(0, frame(T.PING, FL.ACK, 0, Buffer.alloc(8, 1)));
  a.send(1, headers(1, status(200, 'text/html'), false), data(1, '<p>first part</p>', false), data(1, '<p>second</p>', false), headers(1, hp.lit('x-checksum', 'ok', false), true));
  // an interim 100 before the final response; the request's body after it
  a.send(0, headers(3, Buffer.concat([hp.idx(3), hp.idx(6), hp.litIdx(4, '/upload', false), hp.litIdx(1, 'example.test', false), hp.lit('expect', '100-continue', false)]), false));
  a.send(1, headers(3, hp.litIdx(8, '100', false), false));
  a.send(0, data(3, 'uploaded bytes'));
  a.send(1, headers(3, status(201), false), data(3, '', true));
  // the client lowers the server's table to 0 entries, the server's next block says so first
  a.send(0, settings([[1, 0]])).send(1, settingsAck());
  a.send(0, headers(5, get('/small-table')));
  a.send(1, headers(5, Buffer.concat([hp.size(0), status(204)]), true));
  return frames(a.close());
}

/** one conversation with every segment one byte long, on an HTTP port (a probe sees too little of it: the HTTP analyzer gathers the preface) */
function bytewise(): GenFrame[] {
  const a = new Conv('10.9.3.1', 50301, '10.9.3.2', 8080);
  const client = Buffer.concat([PREFACE, settings(), headers(1, get('/bytes', 'example.test', hp.lit('x-one', 'byte'))), headers(3, get('/again', 'example.test', hp.idx(62)))]);
  const server = Buffer.concat([settings(), settingsAck(), headers(1, status(200), false), data(1, 'each byte its own segment\n'), headers(3, status(200)), frame(T.GOAWAY, 0, 0, Buffer.from([0, 0, 0, 3, 0, 0, 0, 0]))]);
  for (let i = 0; i < client.length; i++) a.send(0, client.subarray(i, i + 1));
  for (let i = 0; i < server.length; i++) a.send(1, server.subarray(i, i + 1));
  return frames(a.close());
}

export function http2EdgeCases(): Record<string, Buffer> {
  return {
    'edge-gaps.pcap': writePcap(gaps()),
    'edge-midstream.pcap': writePcap(midstream()),
    'edge-frames.pcap': writePcap(frames_()),
    'edge-bytewise.pcap': writePcap(bytewise()),
  };
}

if (require.main === module) {
  const dir = path.join(__dirname, '..', '..', 'fixtures', 'http2');
  mkdirSync(dir, { recursive: true });
  const files = http2EdgeCases();
  for (const [name, d] of Object.entries(files)) writeFileSync(path.join(dir, name), d);
  console.log(`wrote ${Object.keys(files).join(', ')} to ${dir}`);
}
