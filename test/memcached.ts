/**
 * A real memcached on loopback, and the clients that drive it: the `memcached` npm
 * driver (text protocol), `memjs` (binary protocol), libmemcached's tools (text and
 * binary, quiet multi-gets), and raw TCP and UDP sockets for what drivers do not
 * send (noreply, pipelining, errors, the UDP frame header). Shared by the fixture
 * script (scripts/fixtures/memcache.ts) and the live test (test/memcache.test.ts).
 * Each exchange waits for its answers, never for a time.
 */
import { spawn, spawnSync, execFile, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import Memcached from 'memcached';
import { waitForPort } from './net';
// memjs ships no types
// eslint-disable-next-line @typescript-eslint/no-var-requires
const memjs: any = require('memjs');

const run = promisify(execFile);

export const haveMemcached = spawnSync('memcached', ['-V'], { stdio: 'ignore' }).status === 0;
export const haveLibmemcachedTools = spawnSync('memcstat', ['--version'], { stdio: 'ignore' }).status === 0;

export interface Server {
  port: number;
  stop(): Promise<void>;
}

/** memcached on 127.0.0.1:port, TCP and UDP (as nobody when root) */
export async function startMemcached(port: number): Promise<Server> {
  // one worker thread: with more, datagrams from different client ports go to different
  // threads, and a `set ... noreply` could be stored after the `get` sent just after it
  // (seen once: the get answered with a miss, a first datagram of none, and the session hung)
  const args = ['-l', '127.0.0.1', '-p', String(port), '-U', String(port), '-m', '64', '-t', '1'];
  if (process.getuid?.() === 0) args.push('-u', 'nobody');
  const child: ChildProcess = spawn('memcached', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<void>((r) => child.on('close', () => r()));
  await Promise.race([waitForPort(port), exited.then(() => Promise.reject(new Error(`memcached exited: ${err}`)))]);
  return {
    port,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** bytes to a TCP connection, in the pieces given (each its own write), until `done` says the answers are all there */
export function rawTcp(port: number, pieces: (string | Buffer)[], done: (got: Buffer) => boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let got = Buffer.alloc(0);
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      s.end();
      resolve(got);
    };
    s.on('connect', async () => {
      for (const p of pieces) await new Promise<void>((r) => s.write(p, () => r()));
      if (done(got)) finish();
    });
    s.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (done(got)) finish();
    });
    s.on('error', reject);
    s.on('close', () => (finished ? undefined : resolve(got)));
  });
}

/** the answer ends with this line */
export const endsWith = (line: string) => (got: Buffer) => got.toString('latin1').endsWith(line);
/** n lines ending in CR LF have come */
export const lines = (n: number) => (got: Buffer) => got.toString('latin1').split('\r\n').length - 1 >= n;

/** one UDP request (frame header: id, sequence 0 of 1) and, unless noreply, its response's datagrams */
export function udpRequest(port: number, id: number, body: string | Buffer, expectResponse = true): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const sock = createSocket('udp4');
    const header = Buffer.alloc(8);
    header.writeUInt16BE(id, 0);
    header.writeUInt16BE(0, 2);
    header.writeUInt16BE(1, 4);
    const parts: Buffer[] = [];
    let total = -1;
    // a lost datagram is a failure that says so, not a test that waits out its timeout
    const guard = setTimeout(() => {
      sock.close();
      reject(new Error(`memcached UDP request ${id}: no complete answer in 60 s (datagrams: ${parts.map((d) => `seq ${d.readUInt16BE(2)} of ${d.readUInt16BE(4)}, ${d.length} bytes`).join('; ') || 'none'})`));
    }, 60_000);
    sock.on('message', (d) => {
      if (d.readUInt16BE(0) !== id) return;
      parts.push(d);
      total = d.readUInt16BE(4);
      if (parts.length === total) {
        clearTimeout(guard);
        sock.close();
        resolve(parts);
      }
    });
    sock.on('error', (err) => {
      clearTimeout(guard);
      reject(err);
    });
    sock.send(Buffer.concat([header, Buffer.from(body as string)]), port, '127.0.0.1', (err) => {
      if (err) {
        clearTimeout(guard);
        reject(err);
      }
      else if (!expectResponse) {
        clearTimeout(guard);
        sock.close();
        resolve([]);
      }
    });
  });
}

/** a binary protocol request */
export function binaryRequest(opcode: number, key: string, extras: Buffer, value: Buffer, opaque: number): Buffer {
  const h = Buffer.alloc(24);
  h[0] = 0x80;
  h[1] = opcode;
  h.writeUInt16BE(Buffer.byteLength(key), 2);
  h[4] = extras.length;
  h.writeUInt32BE(extras.length + Buffer.byteLength(key) + value.length, 8);
  h.writeUInt32BE(opaque, 12);
  return Buffer.concat([h, extras, Buffer.from(key), value]);
}

/** binary responses are complete up to one with this opcode */
export const binaryUntil = (opcode: number) => (got: Buffer) => {
  for (let o = 0; o + 24 <= got.length; ) {
    const end = o + 24 + got.readUInt32BE(o + 8);
    if (end > got.length) return false;
    if (got[o + 1] === opcode) return true;
    o = end;
  }
  return false;
};

const text = (port: number) => {
  const c = new Memcached(`127.0.0.1:${port}`, { retries: 0, timeout: 5000, poolSize: 1 });
  const call = <T>(f: (cb: (err: unknown, v: T) => void) => void) =>
    new Promise<T>((resolve, reject) => f((err, v) => (err ? reject(err) : resolve(v))));
  return { c, call };
};

/**
 * The text protocol through the `memcached` npm driver: every storage command, a
 * multi-key get, gets and cas (a success and a conflict), incr/decr, delete (a hit
 * and a miss), touch, stats, version, flush_all; a value of 100 KB.
 */
export async function textDriverSession(port: number): Promise<void> {
  const { c, call } = text(port);
  try {
    await call((cb) => c.flush(cb));
    await call((cb) => c.set('user:1', 'alice', 60, cb));
    await call((cb) => c.set('user:2', 'bob', 0, cb));
    await call<boolean>((cb) => c.add('user:1', 'again', 0, (err: unknown, v: boolean) => cb(null, v && !err))); // NOT_STORED
    await call((cb) => c.add('user:3', 'carol', 0, cb));
    await call((cb) => c.replace('user:2', 'bobby', 0, cb));
    await call((cb) => c.append('user:2', '-jr', cb));
    await call((cb) => c.prepend('user:2', 'mr-', cb));
    await call((cb) => c.getMulti(['user:1', 'user:2', 'user:3', 'user:404'], cb));
    await call((cb) => c.get('user:404', cb));
    const g = await call<{ cas: string }>((cb) => c.gets('user:1', cb));
    await call((cb) => c.cas('user:1', 'alice2', g.cas, 0, cb));
    await call<boolean>((cb) => c.cas('user:1', 'alice3', g.cas, 0, (err: unknown, v: boolean) => cb(null, v && !err))); // EXISTS
    await call((cb) => c.set('hits', '10', 0, cb));
    await call((cb) => c.incr('hits', 5, cb));
    await call((cb) => c.decr('hits', 3, cb));
    await call<unknown>((cb) => c.incr('nocounter', 1, (err: unknown, v: number | boolean) => cb(null, v))); // NOT_FOUND
    await call<unknown>((cb) => c.touch('user:3', 120, (err: unknown) => cb(err, true)));
    await call((cb) => c.del('user:3', cb));
    await call<boolean>((cb) => c.del('user:3', (err: unknown, v: boolean) => cb(null, v && !err))); // NOT_FOUND
    await call((cb) => c.set('big', 'x'.repeat(100_000), 0, cb));
    await call((cb) => c.get('big', cb));
    await call((cb) => c.stats(cb));
    await call((cb) => c.version(cb));
  } finally {
    c.end();
  }
}

/** What drivers do not send, over one raw connection each: pipelining, noreply, gat, verbosity, errors. */
export async function textRawSession(port: number): Promise<void> {
  // pipelined: several commands in one write, one value split over two writes
  await rawTcp(port, ['set p1 1 0 5\r\nhello\r\nset p2 2 0 5\r\nwor', 'ld\r\nget p1 p2\r\ngets p1\r\nappend p1 0 0 1\r\n!\r\n'], lines(10));
  // noreply: no answers, then one command that answers
  await rawTcp(port, ['set q1 0 0 2 noreply\r\nhi\r\nincr q1 1 noreply\r\ndelete q9 noreply\r\nflush_all noreply\r\nversion\r\n'], endsWith('\r\n'));
  // gat, touch miss, verbosity, a counter on a non-number, unknown command, bad data chunk
  await rawTcp(port, ['set g1 0 0 3\r\nabc\r\ngat 300 g1 g2\r\ngats 300 g1\r\ntouch missing 10\r\nverbosity 1\r\nincr g1 1\r\nbogus command\r\n'], (b) => b.toString('latin1').includes('\r\nERROR\r\n') || b.toString('latin1').startsWith('ERROR'));
  await rawTcp(port, ['set bad 0 0 2\r\ntoo long\r\n'], (b) => (b.toString('latin1').match(/\r\n/g) ?? []).length >= 2);
  // stats sub-commands: settings (STAT lines), items, cachedump (ITEM lines)
  await rawTcp(port, ['stats settings\r\nstats items\r\nstats cachedump 1 2\r\nquit\r\n'], () => false);
}

/** libmemcached's tools over text: memccp (set), memccat (get), memcstat (stats) */
export async function textToolsSession(port: number, file: string): Promise<void> {
  const s = `--servers=127.0.0.1:${port}`;
  await run('memccp', [s, file]);
  await run('memccat', [s, file.split('/').pop()!]);
  await run('memcstat', [s]);
}

/**
 * The binary protocol through memjs (set, get hit and miss, add conflict, replace,
 * append, prepend, increment/decrement, touch, delete, stats, version, flush, quit)
 * and libmemcached's tools with --binary: memccat with several keys sends a quiet
 * GetKQ per key and one No-op.
 */
export async function binarySession(port: number, file: string): Promise<void> {
  const c = memjs.Client.create(`127.0.0.1:${port}`, { retries: 0, timeout: 5, logger: { log() {} } });
  try {
    await c.set('bin:1', 'one', { expires: 60 });
    await c.set('bin:2', 'two', {});
    await c.get('bin:1');
    await c.get('bin:404');
    await c.add('bin:1', 'again', {}).catch(() => undefined);
    await c.replace('bin:2', 'TWO', {});
    await c.append('bin:2', '!');
    await c.prepend('bin:2', '<');
    await c.set('bin:n', '41', {});
    await c.increment('bin:n', 1, {});
    await c.decrement('bin:n', 2, {});
    await c.touch('bin:1', 100);
    await c.delete('bin:2');
    await c.delete('bin:2');
    await c.set('bin:big', Buffer.alloc(50_000, 0x62), {});
    await c.get('bin:big');
    await c.stats();
    await c.statsWithKey('settings');
  } finally {
    c.close();
  }
  const s = `--servers=127.0.0.1:${port}`;
  await run('memccp', ['--binary', s, file]);
  // a key is missing: memccat says so in its exit status
  await run('memccat', ['--binary', s, file.split('/').pop()!, 'bin:1', 'bin:missing', 'bin:n']).catch(() => undefined);
  await run('memcstat', ['--binary', s]);
  // raw: quiet sets and gets (GetQ, GetKQ: a hit and a miss each) and a quiet delete miss (which does answer: an error), then No-op; QuitQ
  const none = Buffer.alloc(0);
  const setExtras = Buffer.alloc(8);
  await rawTcp(
    port,
    [
      Buffer.concat([
        binaryRequest(0x11, 'bq:1', setExtras, Buffer.from('v1'), 1),
        binaryRequest(0x09, 'bq:1', none, none, 2),
        binaryRequest(0x09, 'bq:none', none, none, 3),
        binaryRequest(0x14, 'bq:none', none, none, 4),
        binaryRequest(0x0d, 'bq:1', none, none, 5),
        binaryRequest(0x0d, 'bq:none', none, none, 5),
        binaryRequest(0x0a, '', none, none, 5),
      ]),
    ],
    binaryUntil(0x0a),
  );
  await rawTcp(port, [binaryRequest(0x0b, '', none, none, 6), binaryRequest(0x17, '', none, none, 7)], () => false);
}

/**
 * UDP: gets and sets with the frame header; a value of 10,000 bytes comes back in
 * several datagrams; noreply; a binary get.
 */
export async function udpSession(port: number, file: string): Promise<void> {
  await udpRequest(port, 1, 'set u:1 0 0 5\r\nhello\r\n');
  await udpRequest(port, 2, 'get u:1\r\n');
  await udpRequest(port, 3, `set u:big 0 0 10000\r\n${'z'.repeat(10_000)}\r\n`);
  const parts = await udpRequest(port, 4, 'get u:big u:1\r\n');
  if (parts.length < 2) throw new Error(`expected a response in several datagrams, got ${parts.length}`);
  await udpRequest(port, 5, 'set u:2 0 0 3 noreply\r\nabc\r\n', false);
  await udpRequest(port, 6, 'get u:2 u:none\r\n');
  await udpRequest(port, 7, 'stats\r\n');
  await udpRequest(port, 8, binaryRequest(0x00, 'u:1', Buffer.alloc(0), Buffer.alloc(0), 8));
  // libmemcached over UDP: its sets are noreply
  await run('memccp', ['--udp', `--servers=127.0.0.1:${port}`, file]);
  await udpRequest(port, 9, `get ${file.split('/').pop()}\r\n`);
}
