/**
 * The real Cassandra and the traffic pktflow's Cassandra fixtures and live test are
 * made of: a server started by scripts/cassandra.sh (Apache Cassandra 4.1 from
 * Maven Central) in a directory of its own, the npm driver (cassandra-driver, which
 * speaks v3 and v4), and the raw client (test/cql-client.ts) for v5, compression
 * and chosen stream ids.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import cassandra from 'cassandra-driver';
import { Op } from '../src/protocols/cassandra/wire';
import { batchBody, Consistency, enc, executeBody, queryBody } from './gen/cql';
import { CqlError, pagingState, RawCql } from './cql-client';

const ROOT = path.join(__dirname, '..');

/** scripts/cassandra.sh with the given environment; rejects with its output when it fails */
function script(cmd: string, env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('bash', [path.join(ROOT, 'scripts', 'cassandra.sh'), cmd], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`scripts/cassandra.sh ${cmd}: exit ${code}: ${err}`))));
  });
}

export interface Server {
  port: number;
  stop(): Promise<void>;
}

/** is Java there, and Maven to fetch the jars (or the jars already)? */
export function cassandraAvailable(): boolean {
  const java = spawnOk('java', ['-version']);
  return java && (existsSync(path.join(ROOT, '.cassandra', 'libs', '.complete')) || spawnOk('mvn', ['-v']));
}

const spawnOk = (cmd: string, args: string[]): boolean => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;

/**
 * Cassandra on 127.0.0.1:port with its data in `dir`; resolves once it answers CQL
 * (the script waits on that condition). `auth`: password authentication, the
 * superuser cassandra/cassandra.
 */
export async function startCassandra(dir: string, port: number, storagePort: number, auth = false): Promise<Server> {
  const env = { CASSANDRA_DIR: dir, CASSANDRA_PORT: String(port), CASSANDRA_STORAGE_PORT: String(storagePort), CASSANDRA_AUTH: auth ? '1' : '0' };
  await script('start', env);
  return { port, stop: () => script('stop', env) };
}

export function driverClient(port: number, o: { version?: number; auth?: [string, string] } = {}): cassandra.Client {
  return new cassandra.Client({
    contactPoints: [`127.0.0.1:${port}`],
    localDataCenter: 'datacenter1',
    protocolOptions: o.version !== undefined ? { port, maxVersion: o.version } : { port },
    // one connection to the node: every request shares it, stream ids tell them apart
    pooling: { coreConnectionsPerHost: { [cassandra.types.distance.local]: 1 } },
    authProvider: o.auth !== undefined ? new cassandra.auth.PlainTextAuthProvider(o.auth[0], o.auth[1]) : undefined,
  });
}

const ignoreCqlError = async (p: Promise<unknown>): Promise<void> => {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof CqlError) && !(err instanceof cassandra.errors.ResponseError)) throw err;
  }
};

/**
 * What an application does through the driver: schema changes (the control
 * connection gets them pushed as EVENTs), inserts plain and prepared, a logged
 * batch large enough for a server warning, paging, a traced query, errors, and
 * `concurrent` requests at once on the one connection.
 */
export async function driverSession(port: number, keyspace: string, o: { version?: number; concurrent?: number } = {}): Promise<void> {
  const c = driverClient(port, o);
  await c.connect();
  try {
    await c.execute(`CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`);
    await c.execute(`USE ${keyspace}`);
    await c.execute('CREATE TABLE users (id int PRIMARY KEY, name text, email text, tags set<text>, prefs map<text, int>)');
    await c.execute('CREATE TABLE events (day text, seq int, body blob, PRIMARY KEY (day, seq))');
    for (let i = 0; i < 5; i++) await c.execute(`INSERT INTO users (id, name, email) VALUES (${i}, 'user${i}', 'u${i}@example.test')`);
    const insert = 'INSERT INTO users (id, name, email, tags, prefs) VALUES (?, ?, ?, ?, ?)';
    for (let i = 5; i < 10; i++) await c.execute(insert, [i, `user${i}`, `u${i}@example.test`, ['a', 'b'], { x: i }], { prepare: true });
    // a logged batch over the warning threshold (5 KiB): the response carries a warning
    const pad = 'p'.repeat(700);
    await c.batch(
      Array.from({ length: 10 }, (_, i) => ({ query: insert, params: [100 + i, `${pad}${i}`, `b${i}@example.test`, null, null] })),
      { prepare: true },
    );
    await c.batch([{ query: `UPDATE users SET name = 'renamed' WHERE id = 1` }, { query: `DELETE FROM users WHERE id = 2` }], { logged: false });
    // paging: three rows a page
    let page = await c.execute('SELECT id, name FROM users', [], { fetchSize: 3 });
    while (page.pageState) page = await c.execute('SELECT id, name FROM users', [], { fetchSize: 3, pageState: page.pageState });
    await c.execute('SELECT * FROM users WHERE id = ?', [3], { prepare: true, traceQuery: true });
    await ignoreCqlError(c.execute('SELEC * FROM users'));
    await ignoreCqlError(c.execute('SELECT * FROM no_such_table'));
    await ignoreCqlError(c.execute(`CREATE TABLE users (id int PRIMARY KEY)`));
    const n = o.concurrent ?? 0;
    if (n > 0) {
      await Promise.all(Array.from({ length: n }, (_, i) => c.execute(i % 2 === 0 ? 'INSERT INTO events (day, seq, body) VALUES (?, ?, ?)' : 'SELECT * FROM users WHERE id = ?', i % 2 === 0 ? ['d1', i, Buffer.alloc(i * 50, i)] : [i % 10], { prepare: true })));
    }
    await c.execute(`DROP KEYSPACE ${keyspace}`);
  } finally {
    await c.shutdown();
  }
}

/**
 * The raw client: one connection of `version`, compressed or not: a keyspace and a
 * table, inserts, a prepared statement executed, a batch, requests written together
 * (in v5 they share a frame), a result larger than a frame, an envelope larger than a
 * frame (v5: frames that are not self-contained), REGISTER, and an error.
 */
export async function rawSession(port: number, keyspace: string, version: 3 | 4 | 5, compression?: 'lz4' | 'snappy', auth?: { user: string; pass: string }): Promise<void> {
  const c = await RawCql.connect({ port, version, compression, options: true, auth });
  try {
    await c.query(`CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`);
    await c.query(`CREATE TABLE ${keyspace}.kv (k int PRIMARY KEY, v text)`);
    await c.request(Op.REGISTER, enc.stringList(['SCHEMA_CHANGE', 'STATUS_CHANGE']));
    for (let i = 0; i < 4; i++) await c.query(`INSERT INTO ${keyspace}.kv (k, v) VALUES (${i}, 'value ${i}')`);
    const p = await c.prepare(`INSERT INTO ${keyspace}.kv (k, v) VALUES (?, ?)`);
    const int = (n: number) => enc.int(n);
    await c.request(Op.EXECUTE, executeBody(version, p.id, { values: [int(10), Buffer.from('prepared')] }, p.resultMetadataId));
    await c.request(Op.BATCH, batchBody(version, 1, [{ cql: `INSERT INTO ${keyspace}.kv (k, v) VALUES (20, 'batched')` }, { id: p.id, values: [int(21), Buffer.from('batched too')] }]));
    // written together: the server may answer in any order
    await Promise.all(
      c.requests([
        { op: Op.QUERY, body: queryBody(version, `SELECT * FROM ${keyspace}.kv WHERE k = 1`) },
        { op: Op.QUERY, body: queryBody(version, `SELECT * FROM ${keyspace}.kv`, { pageSize: 2 }) },
        { op: Op.QUERY, body: queryBody(version, `SELECT count(*) FROM ${keyspace}.kv`) },
        { op: Op.OPTIONS, body: Buffer.alloc(0) },
      ]),
    );
    // a value of 200 KB: the request is larger than a v5 frame, and so is the result
    const big = 'x'.repeat(200_000);
    await c.request(Op.EXECUTE, executeBody(version, p.id, { values: [int(99), Buffer.from(big)] }, p.resultMetadataId));
    let r = await c.query(`SELECT * FROM ${keyspace}.kv`, { pageSize: 4 });
    for (let ps = pagingState(r); ps !== null; ps = pagingState(r)) r = await c.query(`SELECT * FROM ${keyspace}.kv`, { pageSize: 4, pagingState: ps });
    await ignoreCqlError(c.query(`INSERT INTO ${keyspace}.kv (k, nope) VALUES (1, 'x')`));
    await c.query(`SELECT * FROM ${keyspace}.kv WHERE k = 1`, { consistency: Consistency.QUORUM });
    await c.query(`DROP KEYSPACE ${keyspace}`);
  } finally {
    await c.close();
  }
}

/** authentication: a driver session with the right password, one with a wrong one (AUTHENTICATE, AUTH_RESPONSE, AUTH_SUCCESS or ERROR) */
export async function authSession(port: number): Promise<void> {
  const ok = driverClient(port, { auth: ['cassandra', 'cassandra'] });
  await ok.connect();
  await ok.execute('SELECT release_version FROM system.local');
  await ok.shutdown();
  const bad = driverClient(port, { auth: ['cassandra', 'wrong'] });
  await ignoreCqlError(bad.connect().catch((e: unknown) => (e instanceof cassandra.errors.NoHostAvailableError ? undefined : Promise.reject(e))));
  await bad.shutdown();
}
