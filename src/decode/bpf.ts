import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ReasonCounter } from '../core/counters';
import type { Frame } from '../core/frame';
import { ExplainedError, type Stage, type Stats } from '../core/stage';

/** A BPF program as libpcap compiled it: (code, jt, jf, k) quadruples. */
export type BpfProgram = Int32Array;

/** a filter expression libpcap does not accept (for the CLI, a bad command line; said as it is, not as a failing stage) */
export class BpfError extends ExplainedError {
  override name = 'BpfError';
}

/**
 * Compile a filter expression for a link type with libpcap's own compiler: tcpdump
 * reads an empty capture of that link type and prints the program (-ddd). The
 * filter language is therefore exactly tcpdump's.
 */
export function compileBpf(expr: string, linkType: number): BpfProgram {
  const dir = mkdtempSync(path.join(tmpdir(), 'pktflow-bpf-'));
  try {
    const file = path.join(dir, 'empty.pcap');
    const h = Buffer.alloc(24);
    h.writeUInt32LE(0xa1b2c3d4, 0);
    h.writeUInt16LE(2, 4);
    h.writeUInt16LE(4, 6);
    h.writeUInt32LE(262144, 16);
    h.writeUInt32LE(linkType, 20);
    writeFileSync(file, h);
    let out: string;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { execFileSync } = require('node:child_process') as typeof import('node:child_process');
      out = execFileSync('tcpdump', ['-ddd', '-r', file, expr], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      // not the filter's fault: a plain Error, where BpfError means a bad expression
      if (e.code === 'ENOENT') throw new Error('filters on capture files need tcpdump (libpcap\'s filter compiler): install the tcpdump package');
      const msg = (e.stderr ?? '').split('\n').find((l) => l.startsWith('tcpdump: ')) ?? e.message;
      throw new BpfError(`bad filter "${expr}": ${msg.replace(/^tcpdump: /, '')}`);
    }
    const nums = out.trim().split(/\s+/).map(Number);
    const n = nums[0];
    if (!Number.isInteger(n) || nums.length !== 1 + 4 * n) throw new BpfError(`unexpected output from tcpdump -ddd for "${expr}"`);
    return Int32Array.from(nums.slice(1));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const MEM_WORDS = 16;
const mem = new Int32Array(MEM_WORDS);

/**
 * Run a classic BPF program over a packet (the semantics of the kernel's and
 * libpcap's interpreter, bpf_filter.c): returns the accepted length, 0 to reject.
 * A load outside the packet rejects it.
 */
export function runBpf(prog: BpfProgram, p: Buffer, wireLen: number): number {
  let A = 0;
  let X = 0;
  const len = p.length;
  for (let pc = 0; pc < prog.length; pc += 4) {
    const code = prog[pc];
    const k = prog[pc + 3];
    switch (code) {
      case 0x06: return k >>> 0; // ret #k
      case 0x16: return A >>> 0; // ret a
      case 0x00: A = k; break; // ld #k
      case 0x20: // ld [k]
        if (k < 0 || k + 4 > len) return 0;
        A = p.readInt32BE(k);
        break;
      case 0x28: // ldh [k]
        if (k < 0 || k + 2 > len) return 0;
        A = p.readUInt16BE(k);
        break;
      case 0x30: // ldb [k]
        if (k < 0 || k >= len) return 0;
        A = p[k];
        break;
      case 0x40: { // ld [x + k]
        const o = X + k;
        if (o < 0 || o + 4 > len) return 0;
        A = p.readInt32BE(o);
        break;
      }
      case 0x48: { // ldh [x + k]
        const o = X + k;
        if (o < 0 || o + 2 > len) return 0;
        A = p.readUInt16BE(o);
        break;
      }
      case 0x50: { // ldb [x + k]
        const o = X + k;
        if (o < 0 || o >= len) return 0;
        A = p[o];
        break;
      }
      case 0x80: A = wireLen; break; // ld #len
      case 0x81: X = wireLen; break; // ldx #len
      case 0x60: A = mem[k & 15]; break; // ld M[k]
      case 0x01: X = k; break; // ldx #k
      case 0x61: X = mem[k & 15]; break; // ldx M[k]
      case 0xb1: // ldxb 4*([k]&0xf)
        if (k < 0 || k >= len) return 0;
        X = (p[k] & 0x0f) << 2;
        break;
      case 0x02: mem[k & 15] = A; break; // st M[k]
      case 0x03: mem[k & 15] = X; break; // stx M[k]
      case 0x04: A = (A + k) | 0; break;
      case 0x14: A = (A - k) | 0; break;
      case 0x24: A = Math.imul(A, k); break;
      case 0x34: if (k === 0) return 0; A = Math.floor((A >>> 0) / (k >>> 0)) | 0; break;
      case 0x94: if (k === 0) return 0; A = ((A >>> 0) % (k >>> 0)) | 0; break;
      case 0x44: A |= k; break;
      case 0x54: A &= k; break;
      case 0xa4: A ^= k; break;
      case 0x64: A = k >= 32 ? 0 : A << k; break;
      case 0x74: A = k >= 32 ? 0 : (A >>> k) | 0; break;
      case 0x0c: A = (A + X) | 0; break;
      case 0x1c: A = (A - X) | 0; break;
      case 0x2c: A = Math.imul(A, X); break;
      case 0x3c: if (X === 0) return 0; A = Math.floor((A >>> 0) / (X >>> 0)) | 0; break;
      case 0x9c: if (X === 0) return 0; A = ((A >>> 0) % (X >>> 0)) | 0; break;
      case 0x4c: A |= X; break;
      case 0x5c: A &= X; break;
      case 0xac: A ^= X; break;
      case 0x6c: A = (X >>> 0) >= 32 ? 0 : A << X; break;
      case 0x7c: A = (X >>> 0) >= 32 ? 0 : (A >>> X) | 0; break;
      case 0x84: A = -A | 0; break;
      case 0x05: pc += 4 * k; break; // ja
      case 0x15: pc += 4 * (A === k ? prog[pc + 1] : prog[pc + 2]); break;
      case 0x25: pc += 4 * ((A >>> 0) > (k >>> 0) ? prog[pc + 1] : prog[pc + 2]); break;
      case 0x35: pc += 4 * ((A >>> 0) >= (k >>> 0) ? prog[pc + 1] : prog[pc + 2]); break;
      case 0x45: pc += 4 * ((A & k) !== 0 ? prog[pc + 1] : prog[pc + 2]); break;
      case 0x1d: pc += 4 * (A === X ? prog[pc + 1] : prog[pc + 2]); break;
      case 0x2d: pc += 4 * ((A >>> 0) > (X >>> 0) ? prog[pc + 1] : prog[pc + 2]); break;
      case 0x3d: pc += 4 * ((A >>> 0) >= (X >>> 0) ? prog[pc + 1] : prog[pc + 2]); break;
      case 0x4d: pc += 4 * ((A & X) !== 0 ? prog[pc + 1] : prog[pc + 2]); break;
      case 0x07: X = A; break; // tax
      case 0x87: A = X; break; // txa
      default:
        return 0; // an instruction this interpreter does not know: reject, as the kernel would refuse the program
    }
  }
  return 0;
}

/**
 * Keeps the frames a BPF filter accepts; the others are counted. Programs are
 * compiled once per link type, on first sight.
 */
export class BpfFilterStage implements Stage<Frame, Frame> {
  readonly name = 'filter';
  readonly takes = 'Frame';
  readonly outputs = 'Frame';
  private readonly programs = new Map<number, BpfProgram>();
  accepted = 0;
  readonly rejected = new ReasonCounter();

  constructor(readonly expr: string) {}

  /** compile for a link type now (surfaces a bad expression before the run) */
  prepare(linkType: number): void {
    if (!this.programs.has(linkType)) this.programs.set(linkType, compileBpf(this.expr, linkType));
  }

  push(frames: Frame[]): Frame[] {
    const out: Frame[] = [];
    for (const f of frames) {
      let prog = this.programs.get(f.linkType);
      if (prog === undefined) prog = this.compileFor(f.linkType);
      if (prog.length === 0) this.rejected.add(`not_compilable_for_link_type_${f.linkType}`);
      else if (runBpf(prog, f.data, f.origLen) !== 0) {
        out.push(f);
        this.accepted++;
      } else this.rejected.add('filter');
    }
    return out;
  }

  /**
   * The first link type's compile error is the user's (a bad expression) and is
   * thrown; a later link type the expression cannot apply to (e.g. "vlan" on raw
   * IP in a mixed pcapng) rejects its frames, counted.
   */
  private compileFor(linkType: number): BpfProgram {
    if (this.programs.size === 0) {
      this.prepare(linkType);
      return this.programs.get(linkType)!;
    }
    let prog: BpfProgram;
    try {
      prog = compileBpf(this.expr, linkType);
    } catch {
      prog = new Int32Array(0);
    }
    this.programs.set(linkType, prog);
    return prog;
  }

  flush(): Frame[] {
    return [];
  }

  stats(): Stats {
    return { accepted: this.accepted, rejected: this.rejected.toJSON() };
  }
}

export function bpfFilter(expr: string): BpfFilterStage {
  return new BpfFilterStage(expr);
}
