import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import type { Frame } from '../src/core/frame';
import { PcapDump } from '../src/sinks/pcap-dump';
import { captureFile } from '../src/sources/file';
import { fixture } from './helpers';

async function frames(f: string): Promise<Frame[]> {
  const out: Frame[] = [];
  for await (const b of captureFile({ path: f }).batches()) out.push(...b);
  return out;
}

describe('pcap dump', { timeout: 600_000 }, () => {
  it('writes every frame back with its exact nanosecond time, and passes frames on', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pktflow-dump-'));
    const input = await frames(fixture('http-dns.pcapng'));
    const dump = new PcapDump({ path: path.join(dir, 'out.pcap') });
    assert.equal(dump.push(input.slice(0, 50)).length, 50);
    dump.push(input.slice(50));
    dump.flush();
    const back = await frames(path.join(dir, 'out.pcap'));
    assert.equal(back.length, input.length);
    back.forEach((f, i) => {
      assert.deepEqual([f.tsSec, f.tsNsec, f.origLen, f.linkType], [input[i].tsSec, input[i].tsNsec, input[i].origLen, input[i].linkType]);
      assert.deepEqual(f.data, input[i].data);
    });
  });

  it('rotates by size: out.pcap, out.1.pcap, ... together hold every frame', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pktflow-dump-'));
    const input = await frames(fixture('http-dns.pcap'));
    const dump = new PcapDump({ path: path.join(dir, 'out.pcap'), rotateBytes: 4000 });
    for (let i = 0; i < input.length; i += 7) dump.push(input.slice(i, i + 7));
    dump.flush();
    const files = [];
    for (let i = 0; existsSync(dump.fileName(i)); i++) files.push(dump.fileName(i));
    assert.ok(files.length >= 4, `${files.length} files`);
    let total = 0;
    for (const f of files) {
      const got = await frames(f);
      total += got.length;
    }
    assert.equal(total, input.length);
    assert.equal((dump.stats() as any).files, files.length);
  });
});
