/**
 * The MySQL / MariaDB analyzer: driven directly with protocol bytes; properties
 * over the streams of every fixture (random splits give the same events, damage
 * never throws, the accounting holds); agreement with tshark's dissector; and a
 * live test against a private MariaDB server, found by its greeting on a port no
 * protocol claims.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { deflateSync } from 'node:zlib';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createConnection as mysql2Connection } from 'mysql2/promise';
import type { Stats } from '../src/core/stage';
import { makeEndpoints } from '../src/events/endpoints';
import type { EventObject } from '../src/events/transaction';
import type { TcpAnalyzer } from '../src/protocols/analyzer';
import { mysql, sqlVerb, type MysqlOptions } from '../src/protocols/mysql';
import { eventStages } from '../src/pipeline/presets';
import { PcapReader } from '../src/sources/pcap';
import { Connection, DirectionFrom } from '../src/tcp/connection';
import { ItemKind, type StreamItem } from '../src/tcp/items';
import { recordLoopback } from './capture';
import { fuzzParams, mutate, mutation } from './fuzz-helpers';
import { BASE_CAPS, CAPS, columnDef, command, eof, err, greeting, handshakeResponse, lenenc, lstr, ok, pkt, query, resultSet } from './gen/mysql';
import { assertAccounting, fixture, readFile, ROOT } from './helpers';
import { freePort } from './net';
import { haveMariadb, MYSQL_DB, MYSQL_PASSWORD, MYSQL_USER, startMariadb } from './mysql-server';

const x = (e: EventObject) => e as any;
const cat = (b: Buffer[]) => Buffer.concat(b);

/** one connection's analyzer, driven directly; `send` feeds one chunk */
function conn(options: Partial<MysqlOptions> = {}, midStream = false) {
  const events: EventObject[] = [];
  const out = { emit: (e: EventObject) => events.push(e) };
  const inst = mysql.create(options, out);
  const c = new Connection(1, 0, 4, 0, 0, 0, 0x0a000001, 0, 0, 0, 0x0a000002, 40000, 3306, -1, -1, 'syn', 1000, 0);
  const a: TcpAnalyzer = inst.tcp!({ conn: c, endpoints: makeEndpoints(c, 6), out, midStream });
  let t = 0;
  const send = (side: number, b: Buffer, sec = 1000) => a.data(side, b, 0, b.length, sec, ++t * 1000);
  const login = (caps = BASE_CAPS) => {
    send(1, greeting('8.0.36', caps | CAPS.DEPRECATE_EOF | CAPS.COMPRESS | CAPS.SSL));
    send(0, handshakeResponse('app', 'shop', caps));
    send(1, ok(2));
  };
  const stats = () => inst.stats() as any;
  const accounted = () => {
    const s = stats();
    assert.equal(s.transactions_started, s.transactions + s.pending, JSON.stringify(s));
  };
  return { events, a, send, login, stats, accounted };
}

const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
};

describe('MySQL analyzer', { timeout: 600_000 }, () => {
  it('reads the connection phase: server version, user, database; then queries with OK packets', () => {
    const h = conn();
    h.login();
    h.send(0, query("INSERT INTO t (a) VALUES ('x')"));
    h.send(1, ok(1, 1, 77));
    h.send(0, query('UPDATE t SET a = 1'));
    h.send(1, ok(1, 12, 0));
    assert.equal(h.events.length, 3);
    const [login, insert, update] = h.events.map(x);
    assert.equal(login.method, 'CONNECT');
    assert.equal(login.query, 'CONNECT shop');
    assert.deepEqual(login.user, { name: 'app' });
    assert.deepEqual(login.mysql, { command: 'CONNECT', server_version: '8.0.36' });
    assert.equal(insert.status, 'OK');
    assert.equal(insert.method, 'INSERT');
    assert.deepEqual(insert.mysql, { command: 'QUERY', affected_rows: 1, insert_id: 77, num_rows: 0, num_fields: 0 });
    assert.equal(update.mysql.affected_rows, 12);
    assert.equal(insert.source.bytes, query("INSERT INTO t (a) VALUES ('x')").length);
    assert.equal(insert.destination.bytes, ok(1, 1, 77).length);
    h.accounted();
  });

  it('counts rows and columns of result sets with EOF packets and with CLIENT_DEPRECATE_EOF, and takes path from the columns', () => {
    const rows = [['1', 'a'], ['2', null], ['3', 'c']];
    for (const deprecate of [false, true]) {
      const h = conn({ sendResponse: true, sendRequest: true });
      h.login(BASE_CAPS | (deprecate ? CAPS.DEPRECATE_EOF : 0));
      h.send(0, query('  SELECT id, name FROM items  '));
      h.send(1, cat(resultSet(1, 'shop', 'items', ['id', 'name'], rows, deprecate)));
      h.send(0, query('SELECT 1 FROM dual WHERE 0'));
      h.send(1, cat(resultSet(1, '', '', ['1'], [], deprecate)));
      const [, sel, empty] = h.events.map(x);
      assert.equal(sel.query, 'SELECT id, name FROM items', 'trimmed');
      assert.equal(sel.path, 'shop.items');
      assert.deepEqual(sel.mysql, { command: 'QUERY', affected_rows: 0, insert_id: 0, num_rows: 3, num_fields: 2 });
      assert.equal(sel.request, 'SELECT id, name FROM items');
      assert.equal(sel.response, 'id,name\n1,a\n2,NULL\n3,c\n');
      assert.equal(empty.mysql.num_rows, 0);
      assert.equal(empty.path, undefined, 'columns without a table give no path');
      h.accounted();
    }
  });

  it('reads a result set without the handshake, either way, by the length of the 0xfe packet', () => {
    for (const deprecate of [false, true]) {
      const h = conn();
      h.send(0, query('SELECT a FROM t'));
      h.send(1, cat(resultSet(1, 'd', 't', ['a'], [['1'], ['2']], deprecate)));
      h.send(0, query('SELECT 2'));
      h.send(1, cat(resultSet(1, '', '', ['2'], [['2']], deprecate)));
      assert.deepEqual(h.events.map((e) => x(e).mysql.num_rows), [2, 1]);
    }
  });

  it('keeps ERR codes and messages as packetbeat writes them, status Error', () => {
    const h = conn();
    h.login();
    h.send(0, query('SELECT * FROM nope'));
    h.send(1, err(1, 1146, '42S02', "Table 'shop.nope' doesn't exist"));
    const e = x(h.events[1]);
    assert.equal(e.status, 'Error');
    assert.equal(e.error, undefined, 'a server error is not an unmatched message');
    assert.deepEqual(e.mysql, { command: 'QUERY', error_code: 1146, error_message: "42S02: Table 'shop.nope' doesn't exist" });
  });

  it('refused logins and greetings that are errors', () => {
    const h = conn();
    h.send(1, greeting('5.7.44', BASE_CAPS));
    h.send(0, handshakeResponse('app', '', BASE_CAPS));
    h.send(1, err(2, 1045, '28000', "Access denied for user 'app'"));
    const g = conn();
    g.send(1, pkt(0, Buffer.concat([Buffer.from([0xff]), Buffer.from([0x10, 0x04]), Buffer.from('Too many connections')])));
    assert.equal(x(h.events[0]).status, 'Error');
    assert.equal(x(h.events[0]).mysql.error_code, 1045);
    assert.equal(x(h.events[0]).query, undefined);
    assert.deepEqual(x(g.events[0]).mysql, { command: 'CONNECT', error_code: 1040, error_message: 'Too many connections' });
    h.accounted();
    g.accounted();
  });

  it('sums several result sets (MORE_RESULTS_EXISTS) into one transaction', () => {
    const h = conn();
    h.login();
    h.send(0, query('SELECT 1; SELECT 2, 3; UPDATE t SET a = 1'));
    h.send(1, cat([...resultSet(1, '', '', ['1'], [['1']], false, 0x0a), ...resultSet(5, '', '', ['2', '3'], [['2', '3']], false, 0x0a), ok(11, 4)]));
    assert.equal(h.events.length, 2);
    assert.deepEqual(x(h.events[1]).mysql, { command: 'QUERY', affected_rows: 4, insert_id: 0, num_rows: 2, num_fields: 1 });
  });

  it('prepared statements: PREPARE, EXECUTE with typed parameters (bound once, reused), CLOSE', () => {
    const h = conn();
    h.login();
    const sql = 'SELECT * FROM t WHERE a = ? AND b = ? AND c = ? AND d = ? AND e = ? AND f = ? AND g = ?';
    h.send(0, command(0x16, sql));
    const params = Array.from({ length: 7 }, (_, i) => columnDef(2 + i, '', '', '?'));
    h.send(1, cat([pkt(1, Buffer.concat([Buffer.from([0]), u32(5), Buffer.from([1, 0, 7, 0, 0, 0, 0])])), ...params, eof(9), columnDef(10, 'shop', 't', 'a'), eof(11)]));
    const values = Buffer.concat([
      Buffer.from([0xfe]), // TINY -2
      Buffer.from([0x39, 0x30]), // SHORT 12345
      Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), // LONGLONG max
      (() => {
        const d = Buffer.alloc(8);
        d.writeDoubleLE(2.5);
        return d;
      })(),
      Buffer.from([11, 0xea, 0x07, 1, 2, 3, 4, 5, 0x40, 0xe2, 0x01, 0]), // DATETIME 2026-01-02 03:04:05.123456
      lstr('hé'),
    ]);
    // 7 parameters, the 7th NULL: bitmap 0x40; types TINY SHORT LONGLONG DOUBLE DATETIME VAR_STRING NULL
    const types = Buffer.from([0x01, 0, 0x02, 0, 0x08, 0, 0x05, 0, 0x0c, 0, 0xfd, 0, 0x06, 0]);
    h.send(0, command(0x17, Buffer.concat([u32(5), Buffer.from([0]), u32(1), Buffer.from([0x40]), Buffer.from([1]), types, values])));
    h.send(1, cat(resultSet(1, 'shop', 't', ['a'], [])));
    // again, types not sent: the first execution's are used
    h.send(0, command(0x17, Buffer.concat([u32(5), Buffer.from([0]), u32(1), Buffer.from([0x40]), Buffer.from([0]), values])));
    h.send(1, cat(resultSet(1, 'shop', 't', ['a'], [['x']])));
    h.send(0, command(0x19, u32(5)));
    h.send(0, command(0x17, Buffer.concat([u32(5), Buffer.from([0]), u32(1)])));
    h.send(1, err(1, 1243, 'HY000', 'Unknown prepared statement handler'));
    const [, prep, ex1, ex2, close, ex3] = h.events.map(x);
    assert.equal(prep.method, 'SELECT');
    assert.equal(prep.query, sql);
    assert.deepEqual(prep.mysql, { command: 'STMT_PREPARE', affected_rows: 0, insert_id: 0, num_rows: 0, num_fields: 1, statement_id: 5, num_params: 7 });
    assert.equal(prep.path, 'shop.t');
    const expected = ['-2', '12345', '9223372036854775807', '2.5', '2026-01-02 03:04:05.123456', 'hé', 'NULL'];
    assert.deepEqual(ex1.params, expected);
    assert.equal(ex1.query, sql);
    assert.equal(ex1.method, 'SELECT');
    assert.equal(ex1.mysql.command, 'STMT_EXECUTE');
    assert.deepEqual(ex2.params, expected);
    assert.equal(ex2.mysql.num_rows, 1);
    assert.equal(close.method, 'STMT_CLOSE');
    assert.equal(close.query, sql);
    assert.equal(close.destination.bytes, 0);
    assert.equal(ex3.method, 'STMT_EXECUTE', 'a closed statement is not known');
    assert.deepEqual(ex3.notes, ['statement not seen prepared (prepared before the capture began)']);
    h.accounted();
  });

  it('sendResponse: binary rows of an EXECUTE by column type, at most maxRows rows of maxRowLength bytes', () => {
    const h = conn({ sendResponse: true, maxRows: 2, maxRowLength: 12 });
    h.login();
    h.send(0, command(0x16, 'SELECT id, name, at FROM t'));
    h.send(1, cat([pkt(1, Buffer.concat([Buffer.from([0]), u32(3), Buffer.from([3, 0, 0, 0, 0, 0, 0])])), columnDef(2, 'd', 't', 'id', 0x03), columnDef(3, 'd', 't', 'name'), columnDef(4, 'd', 't', 'at', 0x0a), eof(5)]));
    h.send(0, command(0x17, Buffer.concat([u32(3), Buffer.from([0]), u32(1)])));
    const row = (seq: number, id: number, name: string | null) =>
      pkt(seq, Buffer.concat([Buffer.from([0, name === null ? 0x08 : 0]), u32(id), name === null ? Buffer.alloc(0) : lstr(name), Buffer.from([4, 0xea, 0x07, 12, 31])]));
    h.send(1, cat([pkt(1, lenenc(3)), columnDef(2, 'd', 't', 'id', 0x03), columnDef(3, 'd', 't', 'name'), columnDef(4, 'd', 't', 'at', 0x0a), eof(5), row(6, 1, 'a, "quoted"'), row(7, 2, null), row(8, 3, 'third'), eof(9)]));
    const e = x(h.events[2]);
    assert.equal(e.mysql.num_rows, 3);
    // as packetbeat: a row's text stops at maxRowLength bytes (the column that crosses it cut, the rest left out)
    assert.equal(e.response, 'id,name,at\n1,"a, ""quoted"""\n2,NULL,2026-12\n');
  });

  it('reads messages of 16 MiB and more (0xffffff continuations) in any split, keeping only their first bytes', () => {
    const sql = 'INSERT INTO b VALUES (' + "'" + 'z'.repeat(0xffffff + 100) + "')";
    const body = Buffer.concat([Buffer.from([3]), Buffer.from(sql)]);
    const wire = cat([pkt(0, body.subarray(0, 0xffffff)), pkt(1, body.subarray(0xffffff))]);
    const row = Buffer.concat([Buffer.from([0xfe]), lenenc(0xffffff + 10).subarray(1), Buffer.alloc(0xffffff + 10, 0x62)]);
    const rows = cat([pkt(4, row.subarray(0, 0xffffff)), pkt(5, row.subarray(0xffffff))]);
    const response = cat([pkt(1, lenenc(1)), columnDef(2, 'shop', 'b', 'v'), eof(3), rows, eof(6)]);
    for (const chunk of [1 << 16, 1000003, wire.length]) {
      const h = conn({ maxMessageBytes: 4096 });
      for (let o = 0; o < wire.length; o += chunk) h.send(0, wire.subarray(o, o + chunk));
      h.send(1, ok(2, 1, 9));
      h.send(0, query('SELECT v FROM b'));
      for (let o = 0; o < response.length; o += chunk) h.send(1, response.subarray(o, o + chunk));
      assert.equal(h.events.length, 2, `chunks of ${chunk}`);
      const [ins, sel] = h.events.map(x);
      assert.equal(ins.source.bytes, wire.length);
      assert.equal(ins.query.length, 4095);
      assert.deepEqual(ins.notes, [`query cut at 4096 bytes of ${body.length}`]);
      assert.equal(ins.mysql.insert_id, 9);
      assert.equal(sel.mysql.num_rows, 1, 'one row of 16 MiB, not a row and an EOF');
      assert.equal(sel.destination.bytes, response.length);
      assert.equal(h.stats().messages_cut, 1);
    }
  });

  it('inflates a compressed connection (CLIENT_COMPRESS), stored and zlib packets alike', () => {
    const h = conn();
    h.login(BASE_CAPS | CAPS.COMPRESS);
    const wrap = (seq: number, inner: Buffer, compress: boolean) => {
      const body = compress ? deflateSync(inner) : inner;
      const hdr = Buffer.from([body.length & 0xff, (body.length >> 8) & 0xff, body.length >> 16, seq, 0, 0, 0]);
      if (compress) hdr.writeUIntLE(inner.length, 4, 3);
      return Buffer.concat([hdr, body]);
    };
    const rows = Array.from({ length: 200 }, (_, i) => [String(i), 'row '.repeat(10)]);
    h.send(0, wrap(0, query('SELECT id, pad FROM big'), false));
    const response = wrap(1, cat(resultSet(1, 'shop', 'big', ['id', 'pad'], rows)), true);
    h.send(1, response.subarray(0, 100));
    h.send(1, response.subarray(100));
    h.send(0, wrap(0, query('SELEC 1'), true));
    h.send(1, wrap(1, err(1, 1064, '42000', 'You have an error'), false));
    assert.equal(h.events.length, 3);
    assert.equal(x(h.events[1]).mysql.num_rows, 200);
    assert.equal(x(h.events[2]).mysql.error_code, 1064);
    assert.equal(h.stats().connections.compressed, 1);
  });

  it('counts a TLS request and reads no further', () => {
    const h = conn();
    h.send(1, greeting('10.11.6-MariaDB', BASE_CAPS | CAPS.SSL));
    const ssl = Buffer.concat([u32(BASE_CAPS | CAPS.SSL), u32(1 << 24), Buffer.from([45]), Buffer.alloc(23)]);
    h.send(0, pkt(1, ssl));
    h.send(0, Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc]));
    h.send(1, Buffer.from([0x16, 0x03, 0x03, 0x00, 0x7a, 0x02]));
    h.a.close(1001, 0);
    assert.equal(h.events.length, 1);
    assert.deepEqual(x(h.events[0]).notes, ['the client asked for TLS: the rest of the connection is encrypted']);
    assert.equal(h.stats().connections.tls, 1);
    assert.deepEqual(h.stats().violations, {});
    h.accounted();
  });

  it('other commands: PING, INIT_DB, FIELD_LIST, STATISTICS, QUIT, LOCAL INFILE', () => {
    const h = conn({ sendResponse: true });
    h.login();
    h.send(0, command(0x0e));
    h.send(1, ok(1));
    h.send(0, command(0x02, 'shop'));
    h.send(1, ok(1));
    h.send(0, command(0x04, Buffer.from('items\0')));
    h.send(1, cat([columnDef(1, 'shop', 'items', 'id'), columnDef(2, 'shop', 'items', 'name'), eof(3)]));
    h.send(0, command(0x09));
    h.send(1, pkt(1, Buffer.from('Uptime: 5  Threads: 1  Questions: 9')));
    h.send(0, query("LOAD DATA LOCAL INFILE 'f.csv' INTO TABLE items"));
    h.send(1, pkt(1, Buffer.from("\xfbf.csv", 'latin1')));
    h.send(0, pkt(2, Buffer.from('1,a\n2,b\n')));
    h.send(0, pkt(3, Buffer.alloc(0)));
    h.send(1, ok(4, 2));
    h.send(0, command(0x01));
    const [, ping, initDb, fields, stat, infile, quit] = h.events.map(x);
    assert.deepEqual([ping.method, ping.status], ['PING', 'OK']);
    assert.equal(initDb.query, 'INIT_DB shop');
    assert.equal(fields.query, 'FIELD_LIST items');
    assert.equal(fields.path, 'shop.items');
    assert.equal(stat.response, 'Uptime: 5  Threads: 1  Questions: 9');
    assert.equal(infile.mysql.affected_rows, 2);
    assert.equal(infile.source.bytes, query("LOAD DATA LOCAL INFILE 'f.csv' INTO TABLE items").length + 4 + 8 + 4);
    assert.deepEqual([quit.method, quit.status, quit.destination.bytes], ['QUIT', 'OK', 0]);
    assert.deepEqual(h.stats().violations, {});
    h.accounted();
  });

  it('pipelined commands pair with responses in order; the bounds on waiting commands hold', () => {
    const h = conn({ maxPending: 3 });
    h.login();
    h.send(0, cat([query('SELECT 1'), query('SELECT 2'), query('SELECT 3'), query('SELECT 4')]));
    assert.equal(h.events.length, 2, 'the oldest waiting command left at the limit');
    assert.deepEqual(x(h.events[1]).notes, ['too many commands waiting for responses']);
    h.send(1, cat([...resultSet(1, '', '', ['2'], [['2']]), ...resultSet(1, '', '', ['3'], [['3']]), ...resultSet(1, '', '', ['4'], [['4']])]));
    assert.deepEqual(h.events.slice(2).map((e) => x(e).query), ['SELECT 2', 'SELECT 3', 'SELECT 4']);
    assert.equal(h.stats().unmatched.pending_limit, 1);
    h.accounted();
  });

  it('times out unanswered commands on packet time; a late answer is an unmatched response; close flushes the rest', () => {
    const h = conn({ transactionTimeoutSec: 10 });
    h.login();
    h.send(0, query('SELECT SLEEP(100)'), 1000);
    h.a.expire(1005, 0);
    assert.equal(h.events.length, 1);
    h.send(1, cat(resultSet(1, '', '', ['s'], [['0']])), 1020);
    h.send(0, query('SELECT 2'), 1021);
    h.a.close(1022, 0);
    const [, late, orphan, closed] = h.events.map(x);
    assert.deepEqual([late.error.message, late.notes], ['Unmatched request', ['no response within the transaction timeout']]);
    assert.deepEqual([orphan.error.message, orphan.method, orphan.mysql.num_rows], ['Unmatched response', undefined, 1]);
    assert.deepEqual([closed.error.message, closed.notes], ['Unmatched request', ['no response before the connection closed']]);
    const s = h.stats();
    assert.deepEqual(s.unmatched, { no_response: 1, response_without_request: 1, timeout: 1 });
    assert.equal(s.pending, 0);
    h.accounted();
  });

  it('marks a response partial when a gap falls inside it, and finds the next response', () => {
    const h = conn();
    h.login();
    h.send(0, query('SELECT a FROM t'));
    const set = cat(resultSet(1, 'd', 't', ['a'], Array.from({ length: 50 }, (_, i) => [`value-${i}`])));
    h.send(1, set.subarray(0, 200));
    h.a.gap(1, 300, 1000, 0);
    h.send(1, set.subarray(500));
    h.send(0, query('SELECT 2'));
    h.send(1, cat(resultSet(1, '', '', ['2'], [['2']])));
    const [, lossy, next] = h.events.map(x);
    assert.deepEqual(lossy.notes, ['packet loss: 300 response bytes missing']);
    assert.equal(next.query, 'SELECT 2');
    assert.equal(next.mysql.num_rows, 1);
    assert.equal(h.stats().partial, 1);
    h.accounted();
  });

  it('a response lost whole to a gap leaves its command unanswered; the next pairs', () => {
    const h = conn();
    h.login();
    h.send(0, query('SELECT 1'));
    h.a.gap(1, ok(1).length, 1000, 0);
    h.send(0, query('SELECT 2'));
    h.send(1, ok(1, 5));
    const [, lost, next] = h.events.map(x);
    assert.deepEqual([lost.query, lost.notes, lost.error.message], ['SELECT 1', ['response lost to packet loss'], 'Unmatched request']);
    assert.deepEqual([next.query, next.mysql.affected_rows], ['SELECT 2', 5]);
    assert.equal(h.stats().partial, 1);
    h.accounted();
  });

  it('a gap inside a query keeps the framing; the command is partial', () => {
    const h = conn();
    h.login();
    const q = query('SELECT ' + 'x, '.repeat(200) + '1');
    h.send(0, q.subarray(0, 100));
    h.a.gap(0, 200, 1000, 0);
    h.send(0, q.subarray(300));
    h.send(1, ok(1));
    assert.deepEqual(x(h.events[1]).notes, ['packet loss: 200 request bytes missing']);
    assert.equal(x(h.events[1]).method, 'SELECT');
  });

  it('takes the method past comments and parentheses', () => {
    assert.equal(sqlVerb('/* app:42 */ select 1'), 'SELECT');
    assert.equal(sqlVerb('-- note\n  (SELECT 1) UNION (SELECT 2)'), 'SELECT');
    assert.equal(sqlVerb('# x\ninsert into t values (1)'), 'INSERT');
    assert.equal(sqlVerb('  '), '');
  });

  it('probe: a greeting, an error greeting, a lone COM_QUERY; not HTTP, DNS, Redis, PostgreSQL, MongoDB, memcache, Cassandra', () => {
    const yes = [
      [1, greeting('8.0.36', BASE_CAPS)],
      [1, greeting('5.5.5-10.11.6-MariaDB-0+deb12u1', BASE_CAPS)],
      [1, pkt(0, Buffer.concat([Buffer.from([0xff, 0x69, 0x04]), Buffer.from("Host '10.0.0.9' is not allowed to connect")]))],
      [0, query('select * from t')],
    ] as const;
    const b = (s: string) => Buffer.from(s, 'latin1');
    const int32be = (n: number) => {
      const v = Buffer.alloc(4);
      v.writeInt32BE(n);
      return v;
    };
    const no: [number, Buffer][] = [
      [0, b('GET / HTTP/1.1\r\nHost: a\r\n\r\n')],
      [1, b('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')],
      [0, b('\x00\x1d\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01')],
      [0, b('*1\r\n$4\r\nPING\r\n')],
      [1, b('+PONG\r\n')],
      [0, Buffer.concat([int32be(8), int32be(80877103)])],
      [0, Buffer.concat([int32be(41), int32be(196608), b('user\0app\0database\0shop\0\0')])],
      [1, b('R\x00\x00\x00\x08\x00\x00\x00\x00')],
      [0, Buffer.concat([b('Q'), int32be(13), b('SELECT 1;\0')])],
      [0, b('\x3f\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\xdd\x07\x00\x00\x00\x00\x00\x00\x00\x2a\x00\x00\x00\x10ismaster\x00\x01\x00\x00\x00\x00')],
      [0, b('get mykey\r\n')],
      [1, b('VALUE mykey 0 5\r\nhello\r\nEND\r\n')],
      [0, b('\x80\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00mykey')],
      [0, b('\x04\x00\x00\x00\x05\x00\x00\x00\x00')],
      [0, b('\x04\x00\x00\x01\x01\x00\x00\x00\x16\x00\x01\x00\x0bCQL_VERSION\x00\x053.0.0')],
      [1, b('\x84\x00\x00\x01\x02\x00\x00\x00\x00')],
    ];
    for (const [side, bytes] of yes) assert.ok(mysql.probe!(bytes, 0, bytes.length, side), bytes.toString('latin1'));
    for (const [side, bytes] of no) assert.ok(!mysql.probe!(bytes, 0, bytes.length, side), bytes.toString('latin1'));
  });
});

// ---- properties over the fixtures' own streams

interface Chunk {
  kind: number;
  side: number;
  bytes: Buffer;
  sec: number;
  nsec: number;
}
interface Conv {
  conn: Connection;
  chunks: Chunk[];
}

const mysqlFixtures = () => readdirSync(path.join(ROOT, 'fixtures', 'mysql')).filter((f) => f.endsWith('.pcap')).sort();

/** a fixture's TCP connections as the reorderer hands them on (data and gaps), through the default stages */
function conversations(file: string): Conv[] {
  const frames = new PcapReader(file).push(readFileSync(file));
  const [dec, tcp] = eventStages();
  const items = [...(tcp.push(dec.push(frames)) as StreamItem[]), ...(tcp.push(dec.flush()) as StreamItem[]), ...(tcp.flush() as StreamItem[])];
  const convs = new Map<Connection, Conv>();
  for (const it of items) {
    if (it.conn === null || (it.kind !== ItemKind.data && it.kind !== ItemKind.gap)) continue;
    let c = convs.get(it.conn);
    if (c === undefined) convs.set(it.conn, (c = { conn: it.conn, chunks: [] }));
    c.chunks.push({ kind: it.kind, side: it.side, bytes: it.kind === ItemKind.data ? Buffer.from(it.buf!.subarray(it.off, it.off + it.len)) : Buffer.alloc(it.len), sec: it.tsSec, nsec: it.tsNsec });
  }
  return [...convs.values()];
}

/** every conversation through a fresh analyzer; events without their times, and the stats */
function replay(convs: Conv[], options: Partial<MysqlOptions> = {}): { events: string[]; stats: Stats } {
  const events: EventObject[] = [];
  const out = { emit: (e: EventObject) => events.push(e) };
  const inst = mysql.create(options, out);
  for (const c of convs) {
    const midStream = c.conn.directionFrom !== DirectionFrom.syn && c.conn.directionFrom !== DirectionFrom.synAck;
    const a = inst.tcp!({ conn: c.conn, endpoints: makeEndpoints(c.conn, 6), out, midStream });
    let last = c.chunks[0];
    for (const ch of c.chunks) {
      if (ch.kind === ItemKind.gap) a.gap(ch.side, ch.bytes.length, ch.sec, ch.nsec);
      else a.data(ch.side, ch.bytes, 0, ch.bytes.length, ch.sec, ch.nsec);
      last = ch;
    }
    a.close(last?.sec ?? 0, last?.nsec ?? 0);
  }
  return { events: events.map((e) => JSON.stringify({ ...e, '@timestamp': undefined, event: undefined })), stats: inst.stats() };
}

/** the same bytes in other chunks: runs of one side cut at random points (chunks less than a second apart may merge) */
function resplit(convs: Conv[], cuts: number[]): Conv[] {
  let k = 0;
  return convs.map((c) => {
    const chunks: Chunk[] = [];
    let run: Chunk[] = [];
    const flushRun = () => {
      if (run.length === 0) return;
      const bytes = Buffer.concat(run.map((r) => r.bytes));
      // where each byte came from, for its time
      const starts: number[] = [];
      let o = 0;
      for (const r of run) {
        starts.push(o);
        o += r.bytes.length;
      }
      for (let p = 0; p < bytes.length; ) {
        const n = Math.max(1, cuts.length === 0 ? bytes.length : cuts[k++ % cuts.length]);
        let i = starts.length - 1;
        while (starts[i] > p) i--;
        chunks.push({ kind: ItemKind.data, side: run[0].side, bytes: bytes.subarray(p, p + n), sec: run[i].sec, nsec: run[i].nsec });
        p += n;
      }
      run = [];
    };
    for (const ch of c.chunks) {
      const prev = run[run.length - 1];
      if (ch.kind !== ItemKind.data || (prev !== undefined && (prev.side !== ch.side || ch.sec - prev.sec >= 1))) flushRun();
      if (ch.kind === ItemKind.data) run.push(ch);
      else chunks.push(ch);
    }
    flushRun();
    return { conn: c.conn, chunks };
  });
}

const accounted = (s: Stats, label: string) => assertAccounting({ analyze: { protocols: { mysql: s } } } as any, label);

describe('MySQL properties over the fixtures', { timeout: 600_000 }, () => {
  const small = mysqlFixtures().filter((f) => !f.startsWith('blob'));
  const convs = small.map((f) => conversations(fixture(`mysql/${f}`)));

  it('random splits of every fixture stream give the same events', () => {
    // a stream joined in the middle (no handshake) or after a gap is found again at a chunk's start: which
    // starts there are depends on the split, so those conversations are left to the damage property
    const whole = convs.map((cs) => cs.filter((c) => c.conn.directionFrom === DirectionFrom.syn && c.chunks.every((ch) => ch.kind === ItemKind.data)));
    const reference = whole.map((c) => replay(c).events);
    assert.ok(reference.flat().length > 100);
    fc.assert(
      fc.property(fc.nat(convs.length - 1), fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 20 }), (i, cuts) => {
        const r = replay(resplit(whole[i], cuts));
        assert.deepEqual(r.events, reference[i], small[i]);
        accounted(r.stats, small[i]);
      }),
      fuzzParams(60, 2),
    );
  });

  it('damaged and truncated streams never throw, and the accounting holds', () => {
    fc.assert(
      fc.property(fc.nat(convs.length - 1), fc.array(fc.tuple(fc.nat(), mutation), { maxLength: 8 }), fc.option(fc.nat()), fc.integer({ min: 1, max: 500 }), (i, muts, cut, split) => {
        const damaged = resplit(convs[i], [split]).map((c) => ({ conn: c.conn, chunks: c.chunks.map((ch) => ({ ...ch })) }));
        const all = damaged.flatMap((c) => c.chunks);
        for (const [j, m] of muts) {
          const ch = all[j % all.length];
          if (ch.kind === ItemKind.data) ch.bytes = mutate(ch.bytes, m);
        }
        if (cut !== null) for (const c of damaged) c.chunks = c.chunks.slice(0, cut % (c.chunks.length + 1));
        const r = replay(damaged, { maxMessageBytes: 256, maxPending: 4, maxStatements: 2 });
        accounted(r.stats, small[i]);
      }),
      fuzzParams(300, 2),
    );
  });
});

// ---- tshark

const haveTshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;
/** commands tshark names (it reads a LOCAL INFILE's data and a 16 MiB message's continuation as commands: those codes are left out) */
const COMMAND_CODES: Record<string, number> = { QUIT: 1, INIT_DB: 2, QUERY: 3, FIELD_LIST: 4, STATISTICS: 9, PING: 14, CHANGE_USER: 17, STMT_PREPARE: 22, STMT_EXECUTE: 23, STMT_SEND_LONG_DATA: 24, STMT_CLOSE: 25, STMT_RESET: 26, STMT_FETCH: 28, STMT_BULK_EXECUTE: 250 };

function tshark(file: string, filter: string, fields: string[]): string[][] {
  const args = ['-r', file, '-o', 'tcp.desegment_tcp_streams:TRUE', '-o', 'tcp.reassemble_out_of_order:TRUE', '-d', 'tcp.port==4406,mysql', '-d', 'tcp.port==4407,mysql', '-Y', filter, '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=\x1f'];
  for (const f of fields) args.push('-e', f);
  const out = execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 * 1024 * 1024 });
  // several PDUs in one frame: their values joined by the aggregator
  return out.split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
}

const counts = (values: (string | number)[]) => {
  const c: Record<string, number> = {};
  for (const v of values) c[String(v)] = (c[String(v)] ?? 0) + 1;
  return c;
};

describe('MySQL agrees with tshark', { skip: haveTshark ? false : 'tshark not installed', timeout: 600_000 }, () => {
  // edge-resync.pcap begins mid-stream: tshark reads nothing of that connection, pktflow resynchronises
  for (const name of mysqlFixtures().filter((f) => f !== 'edge-resync.pcap')) {
    it(name, async () => {
      const f = fixture(`mysql/${name}`);
      const { events, stats } = await readFile(f, { ports: { mysql: [3306, 4406, 4407] } });
      assertAccounting(stats, name);
      const ours = (events as any[]).filter((e) => e.type === 'mysql');
      const theirCommands = tshark(f, 'mysql.command', ['mysql.command']).flatMap((r) => r[0].split('\x1f')).map(Number);
      const ourCommands = ours.filter((e) => e.mysql.command !== undefined && e.mysql.command !== 'CONNECT').map((e) => COMMAND_CODES[e.mysql.command]);
      assert.deepEqual(counts(ourCommands), counts(theirCommands.filter((c) => Object.values(COMMAND_CODES).includes(c))), 'commands');
      const theirQueries = tshark(f, 'mysql.query', ['mysql.query']).flatMap((r) => r[0].split('\x1f')).map((q) => q.trim());
      const ourQueries = ours.filter((e) => e.mysql.command === 'QUERY' || e.mysql.command === 'STMT_PREPARE').map((e) => e.query);
      assert.deepEqual(counts(ourQueries.map((q) => q.slice(0, 200))), counts(theirQueries.map((q) => q.slice(0, 200))), 'query texts');
      const theirErrors = tshark(f, 'mysql.error_code', ['mysql.error_code']).flatMap((r) => r[0].split('\x1f'));
      assert.deepEqual(counts(ours.filter((e) => e.mysql.error_code !== undefined).map((e) => e.mysql.error_code)), counts(theirErrors), 'error codes');
      // tshark reads the binary rows COM_STMT_FETCH returns (0x00 first) as OK packets: edge-cursor.pcap's are left out
      if (name !== 'edge-cursor.pcap') {
        const ok = tshark(f, 'mysql.affected_rows', ['mysql.affected_rows', 'mysql.insert_id']);
        const theirAffected = ok.flatMap((r) => r[0].split('\x1f')).reduce((s, v) => s + Number(v), 0);
        assert.equal(ours.reduce((s, e) => s + (e.mysql.affected_rows ?? 0), 0), theirAffected, 'affected rows in all');
        const theirIds = ok.flatMap((r) => (r[1] ?? '').split('\x1f')).filter((v) => v !== '' && v !== '0');
        assert.deepEqual(counts(ours.filter((e) => e.mysql.insert_id > 0).map((e) => e.mysql.insert_id)), counts(theirIds), 'insert ids');
      }
      const theirStmts = tshark(f, 'mysql.num_params && mysql.stmt_id', ['mysql.stmt_id', 'mysql.num_params']).map((r) => `${r[0]}/${r[1]}`);
      assert.deepEqual(counts(ours.filter((e) => e.mysql.command === 'STMT_PREPARE' && e.status === 'OK').map((e) => `${e.mysql.statement_id}/${e.mysql.num_params}`)), counts(theirStmts), 'prepared statements');
    });
  }
});

// ---- a real server

const root = process.getuid?.() === 0;
const haveTcpdump = spawnSync('tcpdump', ['--version'], { stdio: 'ignore' }).status === 0;
const liveSkip = !root ? 'needs root for tcpdump' : !haveTcpdump ? 'tcpdump not installed' : !haveMariadb ? 'mariadb-server not installed (scripts/setup.sh)' : false;

describe('MySQL against a real MariaDB server', { skip: liveSkip, timeout: 600_000 }, () => {
  it('finds the server by its greeting on a free port and reports what the clients saw', async () => {
    const port = await freePort();
    const db = await startMariadb(port);
    const dir = mkdtempSync(path.join(tmpdir(), 'pktflow-mysql-live-'));
    const file = path.join(dir, 'live.pcap');
    const seen: { sql: string; rows?: number; fields?: number; affected?: number; insertId?: number; errno?: number; params?: unknown[] }[] = [];
    try {
      await recordLoopback({ filter: `tcp port ${port}`, file, bufferKiB: 256 * 1024 }, async () => {
        const c = await mysql2Connection({ host: '127.0.0.1', port, user: MYSQL_USER, password: MYSQL_PASSWORD, database: MYSQL_DB });
        const run = async (sql: string, params?: unknown[]) => {
          try {
            const [res, fields] = params === undefined ? await c.query(sql) : await c.execute(sql, params as any[]);
            if (Array.isArray(res)) seen.push({ sql, rows: res.length, fields: fields?.length, params });
            else seen.push({ sql, affected: (res as any).affectedRows, insertId: (res as any).insertId, params });
          } catch (e) {
            seen.push({ sql, errno: (e as any).errno, params });
          }
        };
        await run('CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20) UNIQUE, big LONGBLOB)');
        await run("INSERT INTO t (v) VALUES ('a'), ('b'), ('c')");
        await run('INSERT INTO t (v) SELECT CONCAT(seq, \'-x\') FROM seq_1_to_1500');
        await run("UPDATE t SET v = CONCAT(v, '!') WHERE id <= 10");
        await run('SELECT id, v FROM t ORDER BY id');
        await run("INSERT INTO t (v) VALUES ('a!')");
        await run('SELECT * FROM missing');
        await run('SELEC 1');
        await run('SELECT id, v FROM t WHERE id > ? AND v <> ?', [1400, 'none']);
        await run('INSERT INTO t (v, big) VALUES (?, ?)', ['huge', Buffer.alloc(16 * 1024 * 1024 + 10, 0x42)]);
        await run("SELECT big FROM t WHERE v = 'huge'");
        await c.end();
        db.cli(['--compress', MYSQL_DB, '-e', 'SELECT id FROM t LIMIT 700']);
      });
      const { events, stats } = await readFile(file);
      assertAccounting(stats, 'live');
      const a = (stats.analyze as any);
      assert.equal(a.connections.mysql_by_probe, 2, 'both connections found by the greeting');
      assert.deepEqual(a.protocols.mysql.violations, {});
      const ours = (events as any[]).filter((e) => e.type === 'mysql');
      for (const s of seen) {
        const matches = ours.filter((e) => e.query === s.sql && (s.params === undefined ? e.mysql.command === 'QUERY' : e.mysql.command === 'STMT_EXECUTE' || (e.mysql.command === 'STMT_PREPARE' && e.status === 'Error')));
        assert.equal(matches.length, 1, s.sql);
        const e = matches[0];
        if (s.errno !== undefined) {
          assert.equal(e.status, 'Error', s.sql);
          assert.equal(e.mysql.error_code, s.errno, s.sql);
        } else if (s.rows !== undefined) {
          assert.equal(e.mysql.num_rows, s.rows, s.sql);
          assert.equal(e.mysql.num_fields, s.fields, s.sql);
        } else {
          assert.equal(e.mysql.affected_rows, s.affected, s.sql);
          assert.equal(e.mysql.insert_id, s.insertId, s.sql);
        }
      }
      const exec = ours.find((e) => e.query === 'SELECT id, v FROM t WHERE id > ? AND v <> ?' && e.mysql.command === 'STMT_EXECUTE');
      assert.deepEqual(exec.params, ['1400', 'none']);
      const huge = ours.find((e) => e.query === "SELECT big FROM t WHERE v = 'huge'");
      assert.ok(huge.destination.bytes > 16 * 1024 * 1024 && huge.notes === undefined, 'a row over 16 MiB, whole');
      const compressed = ours.find((e) => e.query === 'SELECT id FROM t LIMIT 700');
      assert.equal(compressed.mysql.num_rows, 700);
      assert.equal(a.protocols.mysql.connections.compressed, 1);
    } finally {
      await db.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
