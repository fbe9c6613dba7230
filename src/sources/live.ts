import { readFileSync } from 'node:fs';
import type Highland from 'highland';
import type { Readable } from 'node:stream';
import { LinkType, makeFrame, type Frame } from '../core/frame';
import type { Stats } from '../core/stage';
import { BpfError } from '../decode/bpf';
import type { Source } from './source';

export interface LiveOptions {
  /** interface name, 'any', or undefined for the first usable device */
  device?: string;
  /** BPF filter expression, compiled by libpcap */
  filter?: string;
  /** bytes kept of each frame (default 65535, cap's own ceiling) */
  snaplen?: number;
  /** kernel capture buffer, bytes (default 16 MiB) */
  bufferBytes?: number;
  /** a batch closes at this many frames ... (default 1024) */
  batchFrames?: number;
  /** ... or after this many milliseconds, whichever first (default 100) */
  batchMs?: number;
  /** frames waiting for the pipeline; past this the source drops and counts (default 262144) */
  maxQueuedFrames?: number;
  /** an empty batch (a clock tick) after this many idle milliseconds (default 1000) */
  tickMs?: number;
}

/** A capture that could not start: one line for the user. */
export class CaptureError extends Error {
  override name = 'CaptureError';
}

interface CapDevice {
  name: string;
  description?: string;
  addresses: { addr: string; netmask?: string }[];
  flags?: string;
}

// cap's native object crashes when a failed handle is closed or collected: failed
// handles are kept here, untouched, until the process exits
const failedHandles: unknown[] = [];

function capModule(): { Cap: any } {
  return require('cap');
}

export function listDevices(): CapDevice[] {
  return capModule().Cap.deviceList() as CapDevice[];
}

/** a capture was attempted and failed: cap's handle must not be collected, so exit without waiting */
export function captureFailed(): boolean {
  return failedHandles.length > 0;
}

/** ARPHRD_* (from /sys/class/net/DEV/type) → the link type libpcap gives that device on Linux */
const ARPHRD_LINKTYPE: Record<number, [number, string]> = {
  1: [LinkType.ETHERNET, 'EN10MB (Ethernet)'],
  772: [LinkType.ETHERNET, 'EN10MB (Ethernet)'], // loopback
  65534: [LinkType.RAW, 'RAW (raw IP)'], // tun and other headerless devices
  776: [LinkType.RAW, 'RAW (raw IP)'], // sit
  823: [LinkType.RAW, 'RAW (raw IP)'], // ip6gre
  801: [105, 'IEEE802_11 (Wi-Fi)'],
  803: [127, 'IEEE802_11_RADIO (radiotap)'],
};

/** the link type a capture on this device will have, without opening it */
export function deviceLinkType(name: string): string {
  if (name === 'any') return 'LINUX_SLL (Linux cooked)';
  try {
    const arphrd = Number(readFileSync(`/sys/class/net/${name}/type`, 'utf8').trim());
    return ARPHRD_LINKTYPE[arphrd]?.[1] ?? `ARPHRD ${arphrd}`;
  } catch {
    return '-';
  }
}

/** cap reports link types by name, others as "Unknown linktype N" */
function linkTypeOf(name: string): number {
  switch (name) {
    case 'ETHERNET':
      return LinkType.ETHERNET;
    case 'NULL':
      return LinkType.NULL;
    case 'LINKTYPE_LINUX_SLL':
      return LinkType.LINUX_SLL;
    case 'RAW':
      return LinkType.RAW;
    case 'IEEE802_11_RADIO':
      return 127;
  }
  const m = /(\d+)/.exec(name);
  return m ? Number(m[1]) : -1;
}

/** CAP_NET_RAW (bit 13) in the effective capability set, or root */
function canCapture(): boolean {
  if (process.getuid?.() === 0) return true;
  try {
    const hex = /CapEff:\s*([0-9a-f]+)/i.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    return hex !== undefined && (BigInt('0x' + hex) & (1n << 13n)) !== 0n;
  } catch {
    return false;
  }
}

/**
 * Live capture through cap (libpcap). cap hands each packet in one shared buffer
 * that the next packet overwrites, so each frame is copied once, here, into the
 * batch being built; highland closes batches on count or time. The wire cannot be
 * slowed: when the pipeline falls behind by maxQueuedFrames, frames are dropped and
 * counted. cap passes no libpcap timestamps, so frames are stamped on arrival
 * (microsecond precision), and it does not expose pcap_stats, so kernel drops are
 * not visible here.
 */
export class LiveSource implements Source {
  readonly name = 'live';
  private cap: any = null;
  /** bursts of frames (one libuv poll's worth each) on their way to the batcher */
  private stream: Highland.Stream<Frame[]> | null = null;
  private burst: Frame[] = [];
  private readonly endBurst = () => {
    const b = this.burst;
    this.burst = [];
    if (b.length > 0 && this.stream !== null) this.stream.write(b);
  };
  private queued = 0;
  private closed = false;
  device = '';
  linkType = -1;
  frames = 0;
  bytes = 0;
  truncated = 0;
  droppedBehind = 0;
  ticks = 0;

  constructor(private readonly options: LiveOptions = {}) {}

  /** open the device now: errors surface before the pipeline starts */
  open(): void {
    if (this.cap !== null) return;
    const devices = listDevices();
    let device = this.options.device;
    if (device === undefined) {
      const first = devices.find((d) => d.name !== 'any' && d.addresses.length > 0 && !(d.flags ?? '').includes('LOOPBACK')) ?? devices.find((d) => d.name !== 'any');
      if (first === undefined) throw new CaptureError('no capture device found');
      device = first.name;
    } else if (!devices.some((d) => d.name === device)) {
      throw new CaptureError(`no such device "${device}" (devices: ${devices.map((d) => d.name).join(', ')})`);
    }
    if (!canCapture()) throw new CaptureError(`capturing on ${device} needs root or CAP_NET_RAW (e.g. setcap cap_net_raw,cap_net_admin=eip ${process.execPath})`);
    const { Cap } = capModule();
    const cap = new Cap();
    const buffer = Buffer.alloc(Math.min(this.options.snaplen ?? 65535, 65535));
    let name: string;
    try {
      name = cap.open(device, this.options.filter ?? '', this.options.bufferBytes ?? 16 * 1024 * 1024, buffer);
    } catch (err) {
      failedHandles.push(cap);
      const msg = (err as Error).message;
      // a bad filter is the command line's fault, as for files (exit status 2 in the CLI)
      if (/filter/i.test(msg)) throw new BpfError(`bad filter "${this.options.filter}": ${msg.replace(/^can't parse filter expression: /, '')}`);
      if (/permitted|permission/i.test(msg)) throw new CaptureError(`capturing on ${device} needs root or CAP_NET_RAW: ${msg}`);
      throw new CaptureError(`cannot capture on ${device}: ${msg}`);
    }
    this.cap = cap;
    this.device = device;
    this.linkType = linkTypeOf(name);
    const max = this.options.maxQueuedFrames ?? 262_144;
    const burstMax = this.options.batchFrames ?? 1024;
    // highland is loaded by live capture only, not at every start
    const _ = require('highland') as typeof import('highland');
    this.stream = _<Frame[]>();
    cap.on('packet', (n: number, truncated: boolean) => {
      if (this.queued >= max) {
        this.droppedBehind++;
        return;
      }
      // wall-clock arrival time, split exactly into seconds and nanoseconds
      const t = performance.timeOrigin + performance.now();
      const sec = Math.floor(t / 1000);
      const nsec = Math.min(999_999_999, Math.round((t - sec * 1000) * 1e6));
      const data = Buffer.from(buffer.subarray(0, n)); // the one copy
      if (truncated) this.truncated++;
      this.frames++;
      this.bytes += n;
      this.queued++;
      // cap delivers a poll's packets in one synchronous burst: hand them on together
      if (this.burst.length === 0) setImmediate(this.endBurst);
      this.burst.push(makeFrame(sec, nsec, this.linkType, n, 0, data));
      if (this.burst.length >= burstMax) this.endBurst();
    });
  }

  async *batches(): AsyncIterable<Frame[]> {
    this.open();
    // highland gathers bursts into batches, closed on time or count (of bursts), then flattened
    const perBatch = Math.max(1, Math.ceil((this.options.batchFrames ?? 1024) / 64));
    const batched = this.stream!.batchWithTimeOrCount(this.options.batchMs ?? 100, perBatch).map((bursts: Frame[][]) => (bursts.length === 1 ? bursts[0] : ([] as Frame[]).concat(...bursts)));
    const reader = batched.toNodeStream({ objectMode: true }) as unknown as Readable;
    const tickMs = this.options.tickMs ?? 1000;
    const it = reader[Symbol.asyncIterator]() as AsyncIterator<Frame[]>;
    let pending: Promise<IteratorResult<Frame[]>> | null = null;
    for (;;) {
      pending ??= it.next();
      let r: IteratorResult<Frame[]> | 'tick';
      if (this.closed) {
        // stopped: what was captured before the stop still goes through (the stream ends after it)
        r = await pending;
      } else {
        let timer: NodeJS.Timeout | undefined;
        const tick = new Promise<'tick'>((res) => (timer = setTimeout(() => res('tick'), tickMs)));
        r = await Promise.race([pending, tick]);
        clearTimeout(timer);
      }
      if (r === 'tick') {
        // nothing arrived: an empty batch lets the pipeline advance its clock
        this.ticks++;
        yield [];
        continue;
      }
      pending = null;
      if (r.done) break;
      this.queued -= r.value.length;
      yield r.value;
    }
  }

  stats(): Stats {
    return {
      frames: this.frames,
      bytes: this.bytes,
      truncated_to_snaplen: this.truncated,
      dropped: { pipeline_behind: this.droppedBehind },
      queued: this.queued,
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.cap !== null) {
      this.cap.removeAllListeners('packet');
      this.cap.close();
      this.cap = null;
    }
    this.endBurst();
    this.stream?.end();
  }
}

export function liveCapture(options: LiveOptions = {}): LiveSource {
  return new LiveSource(options);
}
