/**
 * Real traffic on loopback, recorded with tcpdump, with an end that does not depend
 * on timing: after the clients are done, a sentinel datagram is sent, and the
 * recording stops once tcpdump has written it (lo delivers in order, so every packet
 * before it is in the file). Used by live tests and by the fixture scripts.
 * Needs root (or CAP_NET_RAW) and tcpdump.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { existsSync, readFileSync } from 'node:fs';
import { freePort } from './net';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface RecordOptions {
  /** BPF filter for the traffic (the sentinel's port is added to it) */
  filter: string;
  /** the pcap to write (nanosecond timestamps) */
  file: string;
  /** tcpdump's kernel buffer (-B, KiB), for bursts of large loopback frames (default: tcpdump's) */
  bufferKiB?: number;
}

/**
 * Record what `run` makes on lo into `file`; returns once the file holds it all. The
 * sentinel (one UDP datagram to a port nothing listens on) is dropped from nothing: a
 * reader that minds it filters `udp port <sentinelPort>` out, or ignores an
 * unrecognised datagram, as pktflow does.
 */
export async function recordLoopback(o: RecordOptions, run: () => Promise<void>): Promise<{ sentinelPort: number }> {
  const sentinelPort = await freePort();
  const buffer = o.bufferKiB !== undefined ? ['-B', String(o.bufferKiB)] : [];
  const td = spawn('tcpdump', ['-i', 'lo', '-U', '--immediate-mode', ...buffer, '-s', '0', '--time-stamp-precision=nano', '-w', o.file, `(${o.filter}) or udp port ${sentinelPort}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const exited = new Promise<number | null>((r) => td.on('close', (c) => r(c)));
  await new Promise<void>((resolve, reject) => {
    td.stderr.on('data', (d) => {
      err += d;
      if (/listening on/.test(err)) resolve();
    });
    td.on('close', (c) => reject(new Error(`tcpdump exited (${c}): ${err}`)));
  });
  try {
    await run();
    const mark = randomBytes(16);
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.send(mark, sentinelPort, '127.0.0.1', () => r()));
    sock.close();
    while (!(existsSync(o.file) && readFileSync(o.file).includes(mark))) await sleep(50);
  } finally {
    td.kill('SIGINT');
    await exited;
  }
  return { sentinelPort };
}
