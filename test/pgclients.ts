/**
 * Real clients against a real PostgreSQL server (test/pgserver.ts), for the
 * fixtures, the live test and the benchmark: psql (simple queries, COPY, NOTICE,
 * SSLRequest refused), node-postgres (the extended protocol with parameters, named
 * statements, pipelined executes, a cursor's portal, LISTEN/NOTIFY, md5 and
 * cleartext passwords) and pgbench.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { EventEmitter } from 'node:events';
import { Client } from 'pg';
import Cursor from 'pg-cursor';
import type { PgServer } from './pgserver';

export const PASSWORD = 'pktflow-secret';

/** pg_hba lines for the users `setupUsers` makes: SCRAM, md5, cleartext */
export const HBA = [
  `host all app 127.0.0.1/32 scram-sha-256`,
  `host all legacy 127.0.0.1/32 md5`,
  `host all plain 127.0.0.1/32 password`,
];

/** users, a database and a table, made over the Unix socket (nothing on the wire) */
export function setupUsers(pg: PgServer): void {
  pg.sql(`
    SET password_encryption = 'scram-sha-256';
    CREATE USER app PASSWORD '${PASSWORD}';
    SET password_encryption = 'md5';
    CREATE USER legacy PASSWORD '${PASSWORD}';
    CREATE USER plain PASSWORD '${PASSWORD}';
    CREATE DATABASE app OWNER app;
  `);
  execFileSync('runuser', ['-u', 'postgres', '--', path.join(pg.bin, 'psql'), '-h', pg.socketDir, '-p', String(pg.port), '-X', '-q', '-U', 'app', '-d', 'app', '-c', 'CREATE TABLE items (id int PRIMARY KEY, name text); GRANT ALL ON items TO legacy, plain;'], { stdio: 'ignore' });
}

/** what psql sends, statement by statement (`\;` joins statements into one Query message) */
export const PSQL_SCRIPT = String.raw`SELECT n, md5(n::text) AS hash, repeat('x', 40) AS pad FROM generate_series(1, 500) AS n;
INSERT INTO items (id, name) VALUES (1, 'one'), (2, 'two'), (3, 'three');
UPDATE items SET name = upper(name) WHERE id >= 2;
DELETE FROM items WHERE id = 3;
SELECT 'a;b' AS semi \; SELECT 2 AS two \; INSERT INTO items VALUES (4, 'four');
SELEC 1;
INSERT INTO items VALUES (1, 'again');
SELECT 1 AS first \; SELECT * FROM missing_table \; SELECT 3 AS never;
DO $$ BEGIN RAISE NOTICE 'hello; from a DO block'; END $$;
BEGIN;
UPDATE items SET name = 'tx' WHERE id = 1;
ROLLBACK;
COPY items (id, name) FROM STDIN;
20	twenty
21	twenty-one
22	twenty-two
\.
COPY (SELECT id, name FROM items ORDER BY id) TO STDOUT;
LISTEN news;
NOTIFY news, 'to myself';
SELECT relname, relkind, relpages FROM pg_class WHERE relname LIKE 'pg_am%' ORDER BY 1;
`;

/** psql over TCP with sslmode=prefer (the server refuses SSL), SCRAM; then a wrong password */
export function psqlSession(pg: PgServer): void {
  const psql = path.join(pg.bin, 'psql');
  const env = { ...process.env, PGPASSWORD: PASSWORD, PGSSLMODE: 'prefer', PGGSSENCMODE: 'disable', PGAPPNAME: 'pktflow-fixture' };
  const r = spawnSync(psql, ['-X', '-q', '-h', '127.0.0.1', '-p', String(pg.port), '-U', 'app', '-d', 'app', '-f', '-'], { input: PSQL_SCRIPT, env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`psql: ${r.stderr}`);
  const bad = spawnSync(psql, ['-X', '-h', '127.0.0.1', '-p', String(pg.port), '-U', 'app', '-d', 'app', '-c', 'SELECT 1'], { env: { ...env, PGPASSWORD: 'wrong' }, encoding: 'utf8' });
  if (bad.status === 0) throw new Error('psql logged in with a wrong password');
}

/**
 * A node-postgres submittable that pipelines several Parse/Bind/Describe/Execute
 * groups behind one Sync, as libpq's pipeline mode does: what the driver's own
 * query() never sends.
 */
class Pipeline extends EventEmitter {
  readonly errors: string[] = [];
  rows = 0;
  constructor(private readonly queries: [string, unknown[]][]) {
    super();
  }
  submit(con: any): void {
    for (const [text, values] of this.queries) {
      con.parse({ text, types: [] });
      con.bind({ values: values.map(String) });
      con.describe({ type: 'P' });
      con.execute({ rows: 0 });
    }
    con.sync();
  }
  handleRowDescription(): void {}
  handleDataRow(): void {
    this.rows++;
  }
  handleCommandComplete(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {}
  handleCopyData(): void {}
  handleError(err: Error): void {
    // the driver forgets a query that failed: its ReadyForQuery is not passed on
    this.errors.push(err.message);
    this.emit('end');
  }
  handleReadyForQuery(): void {
    this.emit('end');
  }
}

function pipeline(c: Client, queries: [string, unknown[]][]): Promise<Pipeline> {
  const p = new Pipeline(queries);
  return new Promise((resolve) => {
    p.once('end', () => resolve(p));
    c.query(p as any);
  });
}

const expectError = async (p: Promise<unknown>, code: string) => {
  try {
    await p;
  } catch (e: any) {
    if (e.code === code) return;
    throw e;
  }
  throw new Error(`expected error ${code}`);
};

/** node-postgres: the extended protocol, named statements, a pipeline, a cursor, LISTEN/NOTIFY, md5 and cleartext passwords */
export async function nodeSession(pg: PgServer): Promise<void> {
  const opts = { host: '127.0.0.1', port: pg.port, database: 'app', password: PASSWORD };
  const c = new Client({ ...opts, user: 'app' });
  await c.connect();
  const sum = await c.query('SELECT $1::int + $2::int AS sum', [1, 2]);
  if (sum.rows[0].sum !== 3) throw new Error('sum');
  await c.query({ text: 'INSERT INTO items (id, name) VALUES ($1, $2) RETURNING id', values: [100, 'hundred'] });
  for (const id of [1, 2, 100]) await c.query({ name: 'item-by-id', text: 'SELECT id, name FROM items WHERE id = $1', values: [id] });
  await expectError(c.query('INSERT INTO items (id, name) VALUES ($1, $2)', [100, 'again']), '23505');
  await expectError(c.query('SELEC $1::int', [1]), '42601');
  await c.query('-- nothing but a comment');
  const ok = await pipeline(c, [
    ['SELECT $1::int AS a', [1]],
    ['SELECT g FROM generate_series(1, $1::int) AS g', [5]],
    ['UPDATE items SET name = $1 WHERE id = $2', ['piped', 2]],
  ]);
  if (ok.errors.length !== 0 || ok.rows !== 6) throw new Error(`pipeline: ${ok.errors} ${ok.rows}`);
  const failed = await pipeline(c, [
    ['SELECT $1::int AS before', [1]],
    ['SELECT 1 / $1::int AS boom', [0]],
    ['SELECT $1::int AS skipped', [3]],
  ]);
  if (failed.errors.length !== 1) throw new Error(`pipeline with an error: ${failed.errors}`);
  await c.query('BEGIN');
  const cursor = c.query(new Cursor('SELECT g, g * 2 AS twice FROM generate_series(1, 250) AS g'));
  let read = 0;
  for (;;) {
    const rows = await cursor.read(100);
    read += rows.length;
    if (rows.length === 0) break;
  }
  await cursor.close();
  await c.query('COMMIT');
  if (read !== 250) throw new Error(`cursor read ${read}`);

  // LISTEN on one connection, NOTIFY from another: the notification arrives while the listener is idle
  const listener = new Client({ ...opts, user: 'app' });
  await listener.connect();
  await listener.query('LISTEN jobs');
  const heard = new Promise<string>((r) => listener.once('notification', (m) => r(m.payload ?? '')));
  await c.query("SELECT pg_notify('jobs', 'job 42')");
  if ((await heard) !== 'job 42') throw new Error('notification');
  await listener.query('SELECT 1 AS after_notify');
  await listener.end();
  await c.end();

  for (const user of ['legacy', 'plain']) {
    const u = new Client({ ...opts, user });
    await u.connect();
    await u.query('SELECT count(*) AS n FROM items WHERE id > $1', [0]);
    await u.end();
  }
  const wrong = new Client({ ...opts, user: 'legacy', password: 'wrong' });
  await expectError(wrong.connect(), '28P01');
}

/** pgbench's tables, made over the Unix socket */
export function pgbenchInit(pg: PgServer, scale = 1): void {
  pg.sql('CREATE DATABASE bench');
  execFileSync('runuser', ['-u', 'postgres', '--', path.join(pg.bin, 'pgbench'), '-i', '-q', '-s', String(scale), '-h', pg.socketDir, '-p', String(pg.port), '-U', 'postgres', 'bench'], { stdio: 'ignore' });
}

/** pgbench over TCP: `args` are its own (-S, -M, -t, -c, -f ...) */
export function pgbench(pg: PgServer, args: string[], dir: string): void {
  const r = spawnSync(path.join(pg.bin, 'pgbench'), ['-n', '-h', '127.0.0.1', '-p', String(pg.port), '-U', 'postgres', ...args, 'bench'], { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pgbench ${args.join(' ')}: ${r.stderr}`);
}

/** pgbench: TPC-B-like with prepared statements, then a script in pipeline mode */
export function pgbenchSession(pg: PgServer, dir: string): void {
  pgbench(pg, ['-M', 'prepared', '-t', '3', '-c', '1'], dir);
  const script = path.join(dir, 'pipeline.sql');
  writeFileSync(script, ['\\set aid random(1, 100000)', '\\startpipeline', 'SELECT abalance FROM pgbench_accounts WHERE aid = :aid;', 'UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;', 'SELECT count(*) FROM pgbench_branches;', '\\endpipeline', ''].join('\n'));
  pgbench(pg, ['-M', 'extended', '-t', '2', '-c', '1', '-f', script], dir);
}
