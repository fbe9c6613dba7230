/**
 * A private PostgreSQL cluster for fixtures, tests and the benchmark: initdb in a
 * temporary directory, the server on 127.0.0.1 and a chosen port (no SSL, so an
 * SSLRequest is refused), run as the `postgres` user (the server refuses to run as
 * root), stopped and removed afterwards. Needs root and Debian's postgresql package.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { waitForPort } from './net';

/** the newest server's bin directory, or null */
export function pgBin(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root).filter((v) => existsSync(path.join(root, v, 'bin', 'postgres'))).sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? path.join(root, versions[0], 'bin') : null;
}

/** why a real server cannot be run here, or null when it can */
export function pgUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'not root (the server runs as the postgres user)';
  if (pgBin() === null) return 'PostgreSQL is not installed (apt-get install postgresql)';
  if (spawnSync('id', ['postgres'], { stdio: 'ignore' }).status !== 0) return 'no postgres user';
  return null;
}

export interface PgServer {
  port: number;
  bin: string;
  /** the socket directory (for set-up over the Unix socket: not on the wire) */
  socketDir: string;
  /** run SQL over the Unix socket as the superuser */
  sql(text: string): string;
  stop(): void;
}

const uid = () => Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
const gid = () => Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());

/**
 * Start a cluster. `hba` lines go before the catch-all `trust` for 127.0.0.1, so a
 * fixture can ask for SCRAM, md5 or cleartext passwords per user.
 */
export async function startPg(port: number, hba: string[] = []): Promise<PgServer> {
  const bin = pgBin()!;
  const dir = mkdtempSync(path.join(tmpdir(), 'pktflow-pg-'));
  chmodSync(dir, 0o755);
  chownSync(dir, uid(), gid());
  const data = path.join(dir, 'data');
  const as = (cmd: string, args: string[], input?: string) =>
    execFileSync('runuser', ['-u', 'postgres', '--', path.join(bin, cmd), ...args], { cwd: dir, encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  try {
    as('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C']);
    writeFileSync(path.join(data, 'pg_hba.conf'), [...hba, 'local all all trust', 'host all all 127.0.0.1/32 trust', ''].join('\n'));
    as('pg_ctl', ['-D', data, '-l', path.join(dir, 'log'), '-w', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c ssl=off -c fsync=off -c max_connections=50`, 'start']);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  await waitForPort(port);
  const sql = (text: string) => as('psql', ['-h', dir, '-p', String(port), '-U', 'postgres', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'postgres', '-At'], text);
  return {
    port,
    bin,
    socketDir: dir,
    sql,
    stop() {
      try {
        as('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
