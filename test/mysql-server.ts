/**
 * A private MariaDB server for fixtures and live tests: a data directory made by
 * mariadb-install-db in a temporary directory, mariadbd on 127.0.0.1 and a chosen
 * port, an account with a password (real authentication, no skip-grant-tables),
 * optionally TLS with a self-signed certificate. Needs the Debian packages
 * mariadb-server and mariadb-client (scripts/setup.sh).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { waitForPort } from './net';

export const MYSQL_USER = 'pktflow';
export const MYSQL_PASSWORD = 'pktflow-secret';
export const MYSQL_DB = 'shop';

export const haveMariadb = spawnSync('mariadbd', ['--version'], { stdio: 'ignore' }).status === 0 && spawnSync('mariadb', ['--version'], { stdio: 'ignore' }).status === 0;

export interface Mariadb {
  port: number;
  dir: string;
  version: string;
  /** the CLI client with these arguments (user, password, host and port given), its stdout */
  cli(args: string[], input?: string): string;
  stop(): Promise<void>;
}

export async function startMariadb(port: number, o: { tls?: boolean } = {}): Promise<Mariadb> {
  const dir = mkdtempSync(path.join(tmpdir(), 'pktflow-mariadb-'));
  const data = path.join(dir, 'data');
  const socket = path.join(dir, 'sock');
  execFileSync('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, '--user=root', '--auth-root-authentication-method=normal', '--skip-test-db'], { stdio: 'ignore' });
  const args = [
    '--no-defaults', `--datadir=${data}`, '--user=root', '--bind-address=127.0.0.1', `--port=${port}`, `--socket=${socket}`,
    `--pid-file=${path.join(dir, 'pid')}`, `--log-error=${path.join(dir, 'error.log')}`, '--max-allowed-packet=64M', '--skip-name-resolve',
    '--innodb-buffer-pool-size=16M', '--innodb-log-file-size=16M', '--performance-schema=OFF',
  ];
  if (o.tls) {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    args.push(`--ssl-cert=${path.join(dir, 'cert.pem')}`, `--ssl-key=${path.join(dir, 'key.pem')}`);
  }
  const server: ChildProcess = spawn('mariadbd', args, { stdio: 'ignore' });
  const exited = new Promise<void>((r) => server.on('exit', () => r()));
  // a process that dies of an exception does not leave its server behind
  const kill = () => server.kill('SIGKILL');
  process.once('exit', kill);
  await waitForPort(port);
  const root = (sql: string) => execFileSync('mariadb', ['--no-defaults', '-S', socket, '-uroot', '-e', sql], { encoding: 'utf8' });
  root(`CREATE DATABASE ${MYSQL_DB}; CREATE USER '${MYSQL_USER}'@'127.0.0.1' IDENTIFIED BY '${MYSQL_PASSWORD}'; GRANT ALL ON *.* TO '${MYSQL_USER}'@'127.0.0.1';`);
  const version = root('SELECT VERSION()').split('\n')[1];
  return {
    port,
    dir,
    version,
    cli(extra, input) {
      return execFileSync('mariadb', ['--no-defaults', '-h', '127.0.0.1', '-P', String(port), '-u', MYSQL_USER, `-p${MYSQL_PASSWORD}`, ...extra], { encoding: 'utf8', input, maxBuffer: 256 * 1024 * 1024, stdio: ['pipe', 'pipe', 'pipe'] });
    },
    async stop() {
      process.removeListener('exit', kill);
      server.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
