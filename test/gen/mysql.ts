/**
 * MySQL protocol messages byte by byte, and fixtures/mysql/edge-*.pcap: what real
 * clients do not produce on demand (a capture that starts inside a result set,
 * packet loss inside one, cursors and COM_STMT_FETCH, unanswered commands,
 * servers on other ports found by their first bytes). Deterministic: run
 * `npx tsx test/gen/mysql.ts` and the files come out byte-identical.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { ether, F, TcpConv, timed, writePcap, type GenFrame } from './packets';

const u16 = (v: number) => Buffer.from([v & 0xff, (v >> 8) & 0xff]);
const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
};

export function lenenc(n: number): Buffer {
  if (n < 0xfb) return Buffer.from([n]);
  if (n < 0x10000) return Buffer.concat([Buffer.from([0xfc]), u16(n)]);
  if (n < 0x1000000) return Buffer.from([0xfd, n & 0xff, (n >> 8) & 0xff, n >> 16]);
  const b = Buffer.alloc(9);
  b[0] = 0xfe;
  b.writeUInt32LE(n % 4294967296, 1);
  b.writeUInt32LE(Math.floor(n / 4294967296), 5);
  return b;
}

export const lstr = (s: string | Buffer) => {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  return Buffer.concat([lenenc(b.length), b]);
};

/** one packet: 3-byte length, sequence number, payload */
export function pkt(seq: number, payload: Buffer): Buffer {
  const h = Buffer.from([payload.length & 0xff, (payload.length >> 8) & 0xff, (payload.length >> 16) & 0xff, seq & 0xff]);
  return Buffer.concat([h, payload]);
}

export const CAPS = {
  LONG_PASSWORD: 1, CONNECT_WITH_DB: 8, COMPRESS: 0x20, PROTOCOL_41: 0x200, SSL: 0x800, SECURE_CONNECTION: 0x8000,
  MULTI_RESULTS: 1 << 17, PLUGIN_AUTH: 1 << 19, DEPRECATE_EOF: 1 << 24,
} as const;
export const BASE_CAPS = CAPS.LONG_PASSWORD | CAPS.CONNECT_WITH_DB | CAPS.PROTOCOL_41 | CAPS.SECURE_CONNECTION | CAPS.MULTI_RESULTS | CAPS.PLUGIN_AUTH;

export function greeting(version: string, caps: number): Buffer {
  return pkt(
    0,
    Buffer.concat([
      Buffer.from([10]), Buffer.from(version), Buffer.from([0]), u32(42), Buffer.from('12345678'), Buffer.from([0]),
      u16(caps & 0xffff), Buffer.from([45]), u16(2), u16(caps >>> 16), Buffer.from([21]), Buffer.alloc(10), Buffer.from('123456789012'), Buffer.from([0]),
      Buffer.from('mysql_native_password'), Buffer.from([0]),
    ]),
  );
}

export function handshakeResponse(user: string, db: string, caps: number): Buffer {
  return pkt(
    1,
    Buffer.concat([u32(caps), u32(1 << 24), Buffer.from([45]), Buffer.alloc(23), Buffer.from(user), Buffer.from([0]), Buffer.from([20]), Buffer.alloc(20, 7), Buffer.from(db), Buffer.from([0]), Buffer.from('mysql_native_password'), Buffer.from([0])]),
  );
}

export const ok = (seq: number, affected = 0, insertId = 0, status = 2, header = 0) => pkt(seq, Buffer.concat([Buffer.from([header]), lenenc(affected), lenenc(insertId), u16(status), u16(0)]));
export const eof = (seq: number, status = 2) => pkt(seq, Buffer.concat([Buffer.from([0xfe]), u16(0), u16(status)]));
export const err = (seq: number, code: number, state: string, msg: string) => pkt(seq, Buffer.concat([Buffer.from([0xff]), u16(code), Buffer.from(`#${state}${msg}`)]));
export const command = (code: number, body: Buffer | string = Buffer.alloc(0)) => pkt(0, Buffer.concat([Buffer.from([code]), typeof body === 'string' ? Buffer.from(body) : body]));
export const query = (sql: string) => command(3, sql);

export function columnDef(seq: number, db: string, table: string, name: string, type = 0xfd): Buffer {
  return pkt(seq, Buffer.concat([lstr('def'), lstr(db), lstr(table), lstr(table), lstr(name), lstr(name), Buffer.from([0x0c]), u16(45), u32(255), Buffer.from([type]), u16(0), Buffer.from([0]), u16(0)]));
}

/** a text result set from `seq` on: column count, definitions, [EOF], rows, EOF or OK (0xfe) */
export function resultSet(seq: number, db: string, table: string, columns: string[], rows: (string | null)[][], deprecateEof = false, status = 2): Buffer[] {
  const out = [pkt(seq++, lenenc(columns.length))];
  for (const c of columns) out.push(columnDef(seq++, db, table, c));
  if (!deprecateEof) out.push(eof(seq++));
  for (const r of rows) out.push(pkt(seq++, Buffer.concat(r.map((v) => (v === null ? Buffer.from([0xfb]) : lstr(v))))));
  out.push(deprecateEof ? ok(seq++, 0, 0, status, 0xfe) : eof(seq++, status));
  return out;
}

const cat = (b: Buffer[]) => Buffer.concat(b);
const SERVER = '10.33.0.2';
/** bytes of the segment a conversation loses */
const HOLE = 500;

/** a whole conversation: handshake, login, then the given turns (side, bytes); a turn of null is a segment never captured */
function conversation(port: number, cport: number, turns: [number, Buffer | null][], o: { handshake?: boolean; login?: boolean; close?: boolean; conv?: TcpConv } = {}): Buffer[] {
  const c = o.conv ?? new TcpConv([{ ip: '10.33.0.1', port: cport }, { ip: SERVER, port }], [1000 + cport, 90000 + port]);
  const out: Buffer[] = o.handshake === false ? [] : c.handshake();
  if (o.login !== false) {
    out.push(c.seg(1, F.PSH | F.ACK, greeting('5.5.5-10.11.19-MariaDB-gen', BASE_CAPS)));
    out.push(c.seg(0, F.PSH | F.ACK, handshakeResponse('app', 'shop', BASE_CAPS)));
    out.push(c.seg(1, F.PSH | F.ACK, ok(2)));
  }
  for (const [side, bytes] of turns) {
    if (bytes === null) continue;
    if (bytes.length === 0) {
      // a hole: the next segment of side 1 (stands for one lost) is skipped
      c.seg(1, F.ACK, Buffer.alloc(HOLE, 0x41));
      continue;
    }
    out.push(c.seg(side, F.PSH | F.ACK, bytes));
  }
  if (o.close !== false) out.push(...c.close());
  return out;
}

/** a capture that begins inside a result set, and one that loses a segment inside another */
function resync(): GenFrame[] {
  const rows = (n: number, from = 0) => Array.from({ length: n }, (_, i) => [String(from + i), `name-${from + i}`]);
  // begins inside rows: no handshake seen; the tail of a result and of a command come first
  const mid = conversation(3306, 41001, [
    [1, cat(resultSet(1, 'shop', 'items', ['id', 'name'], rows(5)).slice(4))],
    [0, Buffer.from('tail of an earlier command')],
    [0, query('SELECT COUNT(*) FROM items')],
    [1, cat(resultSet(1, '', '', ['COUNT(*)'], [['42']]))],
    [0, query("UPDATE items SET name = 'x' WHERE id = 1")],
    [1, ok(1, 1)],
  ], { handshake: false, login: false });
  // a result of 200 rows in three segments, the middle one lost
  const set = cat(resultSet(1, 'shop', 'items', ['id', 'name'], rows(200)));
  const lossy = conversation(3306, 41002, [
    [0, query('SELECT id, name FROM items')],
    [1, set.subarray(0, 600)],
    [1, Buffer.alloc(0)],
    [1, set.subarray(600 + HOLE)],
    [0, query('SELECT 1')],
    [1, cat(resultSet(1, '', '', ['1'], [['1']]))],
  ]);
  return timed([...mid, ...lossy].map((p) => ether(0x0800, p)));
}

/** prepared statements with a cursor: EXECUTE opens it (no rows), FETCH reads them; RESET, SEND_LONG_DATA, CLOSE */
function cursor(): GenFrame[] {
  const stmt = 'SELECT id, name FROM items WHERE id > ?';
  const prepareOk = pkt(1, Buffer.concat([Buffer.from([0]), u32(7), u16(2), u16(1), Buffer.from([0]), u16(0)]));
  const prepareResponse = cat([prepareOk, columnDef(2, '', '', '?', 0x08), eof(3), columnDef(4, 'shop', 'items', 'id', 0x03), columnDef(5, 'shop', 'items', 'name'), eof(6)]);
  // EXECUTE: statement 7, CURSOR_TYPE_READ_ONLY, one iteration, no NULLs, types bound: LONGLONG, value 10
  const execute = command(0x17, Buffer.concat([u32(7), Buffer.from([1]), u32(1), Buffer.from([0]), Buffer.from([1]), Buffer.from([0x08, 0]), Buffer.from([10, 0, 0, 0, 0, 0, 0, 0])]));
  const executeResponse = cat([pkt(1, lenenc(2)), columnDef(2, 'shop', 'items', 'id', 0x03), columnDef(3, 'shop', 'items', 'name'), eof(4, 2 | 0x40)]);
  const binRow = (seq: number, id: number, name: string) => pkt(seq, Buffer.concat([Buffer.from([0, 0]), u32(id), lstr(name)]));
  const fetch = command(0x1c, Buffer.concat([u32(7), u32(2)]));
  return timed(
    conversation(3306, 41003, [
      [0, command(0x16, stmt)],
      [1, prepareResponse],
      [0, execute],
      [1, executeResponse],
      [0, fetch],
      [1, cat([binRow(1, 11, 'eleven'), binRow(2, 12, 'twelve'), eof(3, 2 | 0x40)])],
      [0, fetch],
      [1, cat([binRow(1, 13, 'thirteen'), eof(2, 2 | 0x80)])],
      [0, command(0x1a, u32(7))],
      [1, ok(1)],
      [0, command(0x18, Buffer.concat([u32(7), u16(0), Buffer.from('long data')]))],
      [0, command(0x19, u32(7))],
      [0, command(0x19, u32(99))],
      [0, command(0x01)],
    ]).map((p) => ether(0x0800, p)),
  );
}

/** commands without responses: one answered only after the transaction timeout, one never (the connection closes) */
function unanswered(): GenFrame[] {
  const c = new TcpConv([{ ip: '10.33.0.1', port: 41004 }, { ip: SERVER, port: 3306 }]);
  const frames = timed(conversation(3306, 41004, [[0, query('SELECT SLEEP(20)')]], { close: false, conv: c }).map((p) => ether(0x0800, p)));
  // 12 s later the answer comes: too late for its command, which timed out; the next command is never answered
  const late = [c.seg(1, F.PSH | F.ACK, cat(resultSet(1, '', '', ['SLEEP(20)'], [['0']]))), c.seg(0, F.PSH | F.ACK, query('SELECT 2')), ...c.close()];
  const last = frames[frames.length - 1];
  return [...frames, ...late.map((p, i) => ({ sec: last.sec + 12, nsec: i * 1000, data: ether(0x0800, p) }))];
}

/** servers on ports no protocol claims: found by the greeting, and (no handshake seen) by a client's COM_QUERY */
function probed(): GenFrame[] {
  const byGreeting = conversation(4406, 41005, [
    [0, query('SHOW TABLES')],
    [1, cat(resultSet(1, 'information_schema', 'TABLE_NAMES', ['Tables_in_shop'], [['items'], ['notes']], true))],
  ]);
  const byQuery = conversation(4407, 41006, [
    [0, query("SELECT name FROM items WHERE id = 3")],
    [1, cat(resultSet(1, 'shop', 'items', ['name'], [['name-3']]))],
  ], { handshake: false, login: false });
  return timed([...byGreeting, ...byQuery].map((p) => ether(0x0800, p)));
}

export function mysqlEdgeCases(): Record<string, Buffer> {
  return {
    'edge-resync.pcap': writePcap(resync()),
    'edge-cursor.pcap': writePcap(cursor()),
    'edge-unanswered.pcap': writePcap(unanswered()),
    'edge-probe.pcap': writePcap(probed()),
  };
}

if (require.main === module) {
  const dir = path.join(__dirname, '..', '..', 'fixtures', 'mysql');
  mkdirSync(dir, { recursive: true });
  const files = mysqlEdgeCases();
  for (const [name, data] of Object.entries(files)) writeFileSync(path.join(dir, name), data);
  console.log(`wrote ${Object.keys(files).length} files to ${dir}`);
}
