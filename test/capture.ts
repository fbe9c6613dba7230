/**
 * Real traffic on loopback (or an interface of a test's own network namespace), recorded with tcpdump, with an end that does not depend
 * on timing: after the clients are done, a sentinel datagram is sent, and the
 * recording stops once tcpdump has written it (lo delivers in order, so every packet
 * before it is in the file). Used by live tests and by the fixture scripts.
 * Needs root (or CAP_NET_RAW) and tcpdump.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { freePort } from './net';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface RecordOptions {
  /** BPF filter for the traffic (the sentinel's port is added to it) */
  filter: string;
  /** the pcap to write (nanosecond timestamps) */
  file: string;
  /** the interface (default lo) */
  iface?: string;
  /** where the sentinel goes: an address routed through `iface` (default 127.0.0.1) */
  sentinelHost?: string;
  /**
   * tcpdump's kernel buffer (-B, KiB). In immediate mode each slot of the ring holds
   * one frame of the snapshot length (256 KiB with -s 0): tcpdump's default 2 MiB
   * holds 8 frames, which a busy machine overruns while tcpdump waits for a core.
   * Default 65536 (256 frames).
   */
  bufferKiB?: number;
  /** a network namespace to record in: tcpdump runs there, and the sentinel is sent from there (with bash's /dev/udp) */
  netns?: string;
}

/**
 * Record what `run` makes on lo into `file`; returns once the file holds it all. The
 * sentinel (one UDP datagram to a port nothing listens on) is dropped from nothing: a
 * reader that minds it filters `udp port <sentinelPort>` out, or ignores an
 * unrecognised datagram, as pktflow does.
 */
export async function recordLoopback(o: RecordOptions, run: () => Promise<void>): Promise<{ sentinelPort: number }> {
  const sentinelPort = await freePort();
  const ns = o.netns !== undefined ? ['ip', 'netns', 'exec', o.netns] : [];
  const td = spawn(ns.length > 0 ? 'ip' : 'tcpdump', [...ns.slice(1), ...(ns.length > 0 ? ['tcpdump'] : []), '-i', o.iface ?? 'lo', '-U', '--immediate-mode', '-B', String(o.bufferKiB ?? 65536), '-s', '0', '--time-stamp-precision=nano', '-w', o.file, `(${o.filter}) or udp port ${sentinelPort}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  let gone = false;
  const exited = new Promise<number | null>((r) =>
    td.on('close', (c) => {
      gone = true;
      r(c);
    }),
  );
  await new Promise<void>((resolve, reject) => {
    td.stderr.on('data', (d) => {
      err += d;
      if (/listening on/.test(err)) resolve();
    });
    td.on('close', (c) => reject(new Error(`tcpdump exited (${c}): ${err}`)));
  });
  try {
    await run();
    // in a namespace, a mark in hex text: the shell there sends it
    const mark = o.netns !== undefined ? Buffer.from(randomBytes(16).toString('hex')) : randomBytes(16);
    if (o.netns !== undefined) {
      const sent = spawn('ip', ['netns', 'exec', o.netns, 'bash', '-c', `printf %s ${mark} > /dev/udp/${o.sentinelHost ?? '127.0.0.1'}/${sentinelPort}`], { stdio: 'ignore' });
      await new Promise<void>((r) => sent.on('close', () => r()));
    } else {
      const sock = createSocket('udp4');
      await new Promise<void>((r) => sock.send(mark, sentinelPort, o.sentinelHost ?? '127.0.0.1', () => r()));
      sock.close();
    }
    // a tcpdump that died, or a sentinel never written, is a failure that says so, not a wait until the test's timeout
    const deadline = Date.now() + 120_000;
    while (!(existsSync(o.file) && readFileSync(o.file).includes(mark))) {
      if (gone) throw new Error(`tcpdump exited before it wrote the sentinel: ${err}`);
      if (Date.now() > deadline) throw new Error(`tcpdump did not write the sentinel (udp port ${sentinelPort}) to ${o.file} in 120 s: ${err}`);
      await sleep(50);
    }
  } finally {
    td.kill('SIGINT');
    await exited;
  }
  // a capture that lost frames would make a test of the analyzers fail for the recorder's fault
  const dropped = /(\d+) packets? dropped by kernel/.exec(err);
  if (dropped !== null && +dropped[1] > 0) throw new Error(`tcpdump: ${dropped[1]} packets dropped by the kernel, ${o.file} is incomplete (raise bufferKiB)`);
  return { sentinelPort };
}

/**
 * A fixture script's main: the scenarios named on the command line (all without
 * names), each recorded into `<dir>/<name>.pcap` (or $FIXTURES_OUT) while it runs
 * against one server started on `port` for all of them.
 */
export async function recordScenarios(
  dir: string,
  port: number,
  start: (port: number) => Promise<{ stop(): Promise<void> | void }>,
  scenarios: Record<string, { about: string; run: (port: number) => Promise<void> }>,
): Promise<void> {
  const out = process.env.FIXTURES_OUT ?? dir;
  const wanted = process.argv.slice(2);
  mkdirSync(out, { recursive: true });
  const server = await start(port);
  try {
    for (const [name, s] of Object.entries(scenarios)) {
      if (wanted.length > 0 && !wanted.includes(name)) continue;
      const file = path.join(out, `${name}.pcap`);
      await recordLoopback({ filter: `tcp port ${port}`, file }, () => s.run(port));
      console.log(`${file}: ${s.about}`);
    }
  } finally {
    await server.stop();
  }
}
