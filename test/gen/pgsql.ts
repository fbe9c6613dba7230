/**
 * Writes fixtures/pgsql/edge-*.pcap: PostgreSQL conversations real clients do not
 * produce on demand (a capture begun mid-stream, packet loss inside and across
 * messages, a server on another port, GSSENC and SSL requests, a cancel request,
 * COPY that fails, answers after the timeout or never). Deterministic: run
 * `npx tsx test/gen/pgsql.ts` and the files come out byte-identical. The message
 * builders are used by test/pgsql.test.ts too.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { ether, F, TcpConv, timed, writePcap, type GenFrame } from './packets';

const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const z = (s: string) => Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]);

/** a typed message: type byte, length, body */
export function msg(type: string, ...body: Buffer[]): Buffer {
  const b = Buffer.concat(body);
  return Buffer.concat([Buffer.from(type, 'latin1'), u32(b.length + 4), b]);
}

/** a startup-phase message: length, then the body (no type byte) */
export function untyped(...body: Buffer[]): Buffer {
  const b = Buffer.concat(body);
  return Buffer.concat([u32(b.length + 4), b]);
}

export const fe = {
  startup: (user = 'app', db = 'app') => untyped(u32(196608), z('user'), z(user), z('database'), z(db), Buffer.from([0])),
  ssl: () => untyped(u32(80877103)),
  gssenc: () => untyped(u32(80877104)),
  cancel: () => untyped(u32(80877102), u32(4242), u32(123456)),
  query: (q: string) => msg('Q', z(q)),
  parse: (name: string, q: string) => msg('P', z(name), z(q), u16(0)),
  bind: (portal: string, stmt: string, values: string[] = []) =>
    msg('B', z(portal), z(stmt), u16(0), u16(values.length), ...values.flatMap((v) => [u32(Buffer.byteLength(v)), Buffer.from(v)]), u16(0)),
  describePortal: (name = '') => msg('D', Buffer.from('P'), z(name)),
  execute: (portal = '', rows = 0) => msg('E', z(portal), u32(rows)),
  sync: () => msg('S'),
  flush: () => msg('H'),
  copyData: (s: string) => msg('d', Buffer.from(s)),
  copyDone: () => msg('c'),
  copyFail: (why: string) => msg('f', z(why)),
  terminate: () => msg('X'),
};

export const be = {
  authOk: () => msg('R', u32(0)),
  param: (k: string, v: string) => msg('S', z(k), z(v)),
  keyData: () => msg('K', u32(4242), u32(123456)),
  ready: (status = 'I') => msg('Z', Buffer.from(status)),
  rowDescription: (names: string[]) => msg('T', u16(names.length), ...names.flatMap((n) => [z(n), u32(0), u16(0), u32(23), u16(4), u32(-1), u16(0)])),
  dataRow: (values: (string | null)[]) => msg('D', u16(values.length), ...values.flatMap((v) => (v === null ? [u32(-1)] : [u32(Buffer.byteLength(v)), Buffer.from(v)]))),
  complete: (tag: string) => msg('C', z(tag)),
  parseComplete: () => msg('1'),
  bindComplete: () => msg('2'),
  noData: () => msg('n'),
  suspended: () => msg('s'),
  copyIn: (cols: number) => msg('G', Buffer.from([0]), u16(cols), ...Array.from({ length: cols }, () => u16(0))),
  error: (code: string, message: string, severity = 'ERROR') => msg('E', Buffer.from('S'), z(severity), Buffer.from('V'), z(severity), Buffer.from('C'), z(code), Buffer.from('M'), z(message), Buffer.from([0])),
  notice: (message: string) => msg('N', Buffer.from('S'), z('NOTICE'), Buffer.from('C'), z('00000'), Buffer.from('M'), z(message), Buffer.from([0])),
};

/** the server's answer to a startup: authentication ok, parameters, key, ready */
export const welcome = () => Buffer.concat([be.authOk(), be.param('server_version', '15.0'), be.keyData(), be.ready()]);

/** a result of n rows of one int column */
export function rows(n: number, tag = `SELECT ${n}`): Buffer {
  return Buffer.concat([be.rowDescription(['n']), ...Array.from({ length: n }, (_, i) => be.dataRow([String(i + 1)])), be.complete(tag)]);
}

const eth = (pkts: Buffer[]) => pkts.map((p) => ether(0x0800, p));
const PSH = F.PSH | F.ACK;

/** a capture begun in the middle of a result: its tail, then a whole exchange */
function midstream(): GenFrame[] {
  const c = new TcpConv([{ ip: '10.7.0.1', port: 50100 }, { ip: '10.7.0.2', port: 5432 }]);
  const result = Buffer.concat([rows(40), be.ready()]);
  return timed(
    eth([
      c.seg(1, PSH, result.subarray(200)),
      c.seg(0, PSH, fe.query('SELECT 1 AS one')),
      c.seg(1, PSH, Buffer.concat([rows(1), be.ready()])),
      c.seg(0, PSH, Buffer.concat([fe.parse('', 'SELECT $1::int'), fe.bind('', '', ['7']), fe.describePortal(), fe.execute(), fe.sync()])),
      c.seg(1, PSH, Buffer.concat([be.parseComplete(), be.bindComplete(), rows(1), be.ready()])),
      ...c.close(),
    ]),
  );
}

/** a server on port 6543 (found by the probe): GSSENC refused, SSL refused, a startup, a query */
function otherPort(): GenFrame[] {
  const c = new TcpConv([{ ip: '10.7.1.1', port: 50200 }, { ip: '10.7.1.2', port: 6543 }]);
  return timed(
    eth([
      ...c.handshake(),
      c.seg(0, PSH, fe.gssenc()),
      c.seg(1, PSH, Buffer.from('N')),
      c.seg(0, PSH, fe.ssl()),
      c.seg(1, PSH, Buffer.from('N')),
      c.seg(0, PSH, fe.startup()),
      c.seg(1, PSH, welcome()),
      c.seg(0, PSH, fe.query("SELECT 'x;y' AS s; SELECT 2")),
      c.seg(1, PSH, Buffer.concat([rows(1), rows(1), be.ready()])),
      c.seg(0, PSH, fe.terminate()),
      ...c.close(),
    ]),
  );
}

/** segments lost: inside a data row (the message survives), across messages (resync), a whole client query */
function loss(): GenFrame[] {
  const c = new TcpConv([{ ip: '10.7.2.1', port: 50300 }, { ip: '10.7.2.2', port: 5432 }]);
  const out = [...c.handshake(), c.seg(0, PSH, fe.startup()), c.seg(1, PSH, welcome())];
  // 1. a 3000-byte value whose middle 1000 bytes are lost
  out.push(c.seg(0, PSH, fe.query('SELECT big FROM blobs')));
  const big = Buffer.concat([be.rowDescription(['big']), be.dataRow(['b'.repeat(3000)]), be.complete('SELECT 1'), be.ready()]);
  out.push(c.seg(1, F.ACK, big.subarray(0, 1000)));
  c.seg(1, F.ACK, big.subarray(1000, 2000)); // never captured
  out.push(c.seg(1, PSH, big.subarray(2000)), c.seg(0, F.ACK));
  // 2. the end of one result and the start of the next lost together
  out.push(c.seg(0, PSH, Buffer.concat([fe.query('SELECT n FROM a'), fe.query('SELECT n FROM b')])));
  const two = Buffer.concat([rows(30), be.ready(), rows(30), be.ready()]);
  out.push(c.seg(1, F.ACK, two.subarray(0, 300)));
  c.seg(1, F.ACK, two.subarray(300, 520)); // never captured
  out.push(c.seg(1, PSH, two.subarray(520)), c.seg(0, F.ACK));
  // 3. a whole client query lost, the next one seen before the answers: the first answer is the lost one's
  out.push(c.seg(0, PSH, fe.query('SELECT 1 AS seen')), c.seg(1, PSH, Buffer.concat([rows(1), be.ready()])));
  c.seg(0, PSH, fe.query('SELECT 2 AS lost')); // never captured
  out.push(c.seg(0, PSH, fe.query('SELECT 3 AS after')));
  out.push(c.seg(1, PSH, Buffer.concat([rows(1), be.ready(), rows(2), be.ready()])));
  out.push(...c.close());
  return timed(eth(out));
}

/** COPY FROM STDIN the client abandons, a portal read in parts, a notice, a pipeline with a failing Parse */
function protocolCases(): GenFrame[] {
  const c = new TcpConv([{ ip: '10.7.3.1', port: 50400 }, { ip: '10.7.3.2', port: 5432 }]);
  const out = [...c.handshake(), c.seg(0, PSH, fe.startup()), c.seg(1, PSH, welcome())];
  out.push(c.seg(0, PSH, fe.query('COPY t FROM STDIN')), c.seg(1, PSH, be.copyIn(2)));
  out.push(c.seg(0, PSH, Buffer.concat([fe.copyData('1\ta\n'), fe.copyFail('client gave up')])));
  out.push(c.seg(1, PSH, Buffer.concat([be.error('57014', 'COPY from stdin failed: client gave up'), be.ready()])));
  out.push(c.seg(0, PSH, Buffer.concat([fe.parse('', 'SELECT g FROM generate_series(1, 5) g'), fe.bind('', ''), fe.describePortal(), fe.execute('', 3), fe.flush()])));
  out.push(c.seg(1, PSH, Buffer.concat([be.parseComplete(), be.bindComplete(), be.rowDescription(['g']), be.dataRow(['1']), be.dataRow(['2']), be.dataRow(['3']), be.suspended()])));
  out.push(c.seg(0, PSH, Buffer.concat([fe.execute('', 3), fe.sync()])));
  out.push(c.seg(1, PSH, Buffer.concat([be.dataRow(['4']), be.dataRow(['5']), be.complete('SELECT 2'), be.ready()])));
  out.push(c.seg(0, PSH, fe.query("DO $$ BEGIN RAISE NOTICE 'hi'; END $$")), c.seg(1, PSH, Buffer.concat([be.notice('hi'), be.complete('DO'), be.ready()])));
  out.push(
    c.seg(0, PSH, Buffer.concat([fe.parse('ok', 'SELECT 1'), fe.bind('', 'ok'), fe.execute(), fe.parse('', 'SELEC 2'), fe.bind('', ''), fe.execute(), fe.parse('', 'SELECT 3'), fe.bind('', ''), fe.execute(), fe.sync()])),
  );
  out.push(c.seg(1, PSH, Buffer.concat([be.parseComplete(), be.bindComplete(), be.dataRow(['1']), be.complete('SELECT 1'), be.error('42601', 'syntax error at or near "SELEC"'), be.ready()])));
  out.push(c.seg(0, PSH, Buffer.concat([fe.bind('', 'ok'), fe.execute(), fe.sync()])), c.seg(1, PSH, Buffer.concat([be.bindComplete(), be.dataRow(['1']), be.complete('SELECT 1'), be.ready()])));
  out.push(c.seg(0, PSH, fe.terminate()), ...c.close());
  return timed(eth(out));
}

/** an answer after the transaction timeout, a query unanswered at close, SSL accepted, a cancel request */
function timeouts(): GenFrame[] {
  const c = new TcpConv([{ ip: '10.7.4.1', port: 50500 }, { ip: '10.7.4.2', port: 5432 }]);
  const frames: GenFrame[] = [];
  let t = 0;
  const at = (sec: number, p: Buffer) => frames.push({ sec: 1_700_000_000 + Math.floor(sec), nsec: Math.round((sec % 1) * 1e9), data: ether(0x0800, p) });
  for (const p of [...c.handshake(), c.seg(0, PSH, fe.startup()), c.seg(1, PSH, welcome())]) at((t += 0.001), p);
  at((t += 0.001), c.seg(0, PSH, fe.query('SELECT pg_sleep(12)')));
  at((t += 12), c.seg(1, PSH, Buffer.concat([rows(1), be.ready()])));
  at((t += 0.001), c.seg(0, PSH, fe.query('SELECT never_answered()')));
  for (const p of c.close()) at((t += 0.001), p);
  const tls = new TcpConv([{ ip: '10.7.4.1', port: 50501 }, { ip: '10.7.4.2', port: 5432 }]);
  for (const p of [...tls.handshake(), tls.seg(0, PSH, fe.ssl()), tls.seg(1, PSH, Buffer.from('S')), tls.seg(0, PSH, Buffer.from('160301002a0100002603035f', 'hex')), ...tls.close()]) at((t += 0.001), p);
  const cancel = new TcpConv([{ ip: '10.7.4.1', port: 50502 }, { ip: '10.7.4.2', port: 5432 }]);
  for (const p of [...cancel.handshake(), cancel.seg(0, PSH, fe.cancel()), ...cancel.close()]) at((t += 0.001), p);
  return frames;
}

export function pgsqlEdgeCases(): Record<string, Buffer> {
  return {
    'edge-midstream.pcap': writePcap(midstream()),
    'edge-other-port.pcap': writePcap(otherPort()),
    'edge-loss.pcap': writePcap(loss()),
    'edge-protocol.pcap': writePcap(protocolCases()),
    'edge-timeouts.pcap': writePcap(timeouts()),
  };
}

if (require.main === module) {
  const dir = path.join(__dirname, '..', '..', 'fixtures', 'pgsql');
  mkdirSync(dir, { recursive: true });
  const files = pgsqlEdgeCases();
  for (const [name, data] of Object.entries(files)) writeFileSync(path.join(dir, name), data);
  console.log(`wrote ${Object.keys(files).length} files to ${dir}`);
}
