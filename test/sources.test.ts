import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LinkType, type Frame } from '../src/core/frame';
import { CaptureFileError } from '../src/sources/errors';
import { captureFile } from '../src/sources/file';
import { PcapReader } from '../src/sources/pcap';
import { fixture, readFile, summary } from './helpers';
import { ether, timed, writePcap, writePcapng, type GenFrame } from './gen/packets';

const tmp = mkdtempSync(path.join(tmpdir(), 'pktflow-src-'));

async function frames(file: string | string[], chunkBytes?: number): Promise<{ frames: Frame[]; error: Error | null }> {
  const out: Frame[] = [];
  try {
    for await (const b of captureFile({ path: file, chunkBytes }).batches()) out.push(...b);
  } catch (err) {
    return { frames: out, error: err as Error };
  }
  return { frames: out, error: null };
}

function write(name: string, data: Buffer): string {
  const f = path.join(tmp, name);
  writeFileSync(f, data);
  return f;
}

const sample: GenFrame[] = [
  { sec: 1_700_000_000, nsec: 123_456_789, data: ether(0x0806, Buffer.alloc(28)) },
  { sec: 1_700_000_001, nsec: 999_999_999, data: ether(0x0806, Buffer.alloc(46)), origLen: 1500 },
];

describe('pcap files', { timeout: 600_000 }, () => {
  for (const nano of [false, true]) {
    for (const bigEndian of [false, true]) {
      it(`reads ${nano ? 'nanosecond' : 'microsecond'} ${bigEndian ? 'big' : 'little'}-endian pcap exactly`, async () => {
        const f = write(`s-${nano}-${bigEndian}.pcap`, writePcap(sample, { nano, bigEndian }));
        const { frames: got, error } = await frames(f);
        assert.equal(error, null);
        assert.equal(got.length, 2);
        assert.equal(got[0].tsSec, 1_700_000_000);
        assert.equal(got[0].tsNsec, nano ? 123_456_789 : 123_456_000);
        assert.equal(got[1].tsNsec, nano ? 999_999_999 : 999_999_000);
        assert.equal(got[1].origLen, 1500);
        assert.equal(got[1].capLen, 60);
        assert.equal(got[0].linkType, LinkType.ETHERNET);
        assert.deepEqual(got[1].data, sample[1].data);
      });
    }
  }

  it('gives the same frames whatever the read size', async () => {
    const whole = await frames(fixture('http-dns.pcap'));
    for (const chunk of [7, 100, 4096]) {
      const split = await frames(fixture('http-dns.pcap'), chunk);
      assert.equal(split.error, null);
      assert.equal(split.frames.length, whole.frames.length);
      split.frames.forEach((f, i) => assert.deepEqual(f.data, whole.frames[i].data));
    }
  });
});

describe('pcap records across chunks', { timeout: 600_000 }, () => {
  /** what a reader makes of bytes fed in chunks of the sizes given (the first holds the file header) */
  function read(bytes: Buffer, sizes: number[]): { frames: string[]; error: string | null } {
    const reader = new PcapReader('f');
    const out: string[] = [];
    const keep = (fs: Frame[]) => fs.forEach((f) => out.push(`${f.tsSec}.${f.tsNsec} ${f.linkType} ${f.origLen} ${f.data.toString('hex')}`));
    try {
      for (let o = 0, i = 0; o < bytes.length; i++) {
        const end = o === 0 ? Math.max(sizes[0], 24) : o + sizes[i % sizes.length];
        keep(reader.push(bytes.subarray(o, end)));
        o = end;
      }
      reader.end();
    } catch (err) {
      if (!(err instanceof CaptureFileError)) throw err;
      return { frames: out, error: err.message };
    }
    return { frames: out, error: null };
  }

  it('any chunking, and any cut of the file, gives the frames and the error of the whole (property)', () => {
    const files = ['http-dns.pcap', 'http-dns-nsec.pcap', 'edge/big-endian-nsec.pcap', 'edge/truncated.pcap'].map((f) => readFileSync(fixture(f)));
    fc.assert(
      fc.property(fc.nat(files.length - 1), fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 6 }), fc.option(fc.nat()), (which, sizes, cut) => {
        let bytes = files[which];
        if (cut !== null) bytes = bytes.subarray(0, 24 + (cut % (bytes.length - 24)));
        const whole = read(bytes, [bytes.length]);
        assert.deepEqual(read(bytes, sizes), whole);
        // edge/truncated.pcap ends inside a record: its error is the one to agree on
        if (cut === null && which < 3) assert.equal(whole.error, null);
      }),
      { numRuns: 300 },
    );
  });
});

describe('pcapng files', { timeout: 600_000 }, () => {
  it('keeps each interface its link type and timestamp resolution; reads simple packet blocks; skips unknown blocks', async () => {
    const { frames: got, error } = await frames(fixture('edge/multi-iface.pcapng'));
    assert.equal(error, null);
    assert.equal(got.length, 19);
    const raw = got.filter((f) => f.iface === 1);
    assert.equal(raw.length, 2);
    assert.ok(raw.every((f) => f.linkType === LinkType.RAW));
    // if_tsresol 9: the second frame is 123457 ns after the first, exactly
    assert.equal(raw[1].tsNsec - raw[0].tsNsec, 123_457);
    const simple = got[got.length - 1];
    assert.equal(simple.linkType, LinkType.ETHERNET);
    assert.equal(simple.tsSec, got[got.length - 2].tsSec, 'a simple packet block takes the last timestamp');
  });

  it('reads big-endian sections with a binary timestamp resolution', async () => {
    const { frames: got, error } = await frames(fixture('edge/big-endian.pcapng'));
    assert.equal(error, null);
    assert.equal(got.length, 16);
    assert.equal(got[1].tsSec, 1_700_000_000);
    // 2^-20 s units: 1 ms is 1048.576 units, stored rounded down, read back within a microsecond
    assert.ok(Math.abs(got[1].tsNsec - 1_000_000) < 1000, `${got[1].tsNsec}`);
  });

  it('gives the same events as the pcap it was converted from', async () => {
    const a = await readFile(fixture('http-dns-nsec.pcap'));
    const b = await readFile(fixture('http-dns.pcapng'));
    assert.deepEqual(b.events.map(summary), a.events.map(summary));
    for (const chunk of [13, 512]) {
      const split = await frames(fixture('http-dns.pcapng'), chunk);
      assert.equal(split.error, null);
      assert.equal(split.frames.length, 102);
    }
  });
});

describe('several files', { timeout: 600_000 }, () => {
  /** http-dns.pcap cut in two at frame 50 (inside TCP connections): a nanosecond pcap, then a pcapng */
  async function parts(): Promise<{ whole: Frame[]; files: string[] }> {
    const whole = (await frames(fixture('http-dns.pcap'))).frames;
    const gen = (fs: Frame[]) => fs.map((f) => ({ sec: f.tsSec, nsec: f.tsNsec, data: f.data, origLen: f.origLen }));
    return {
      whole,
      files: [write('part.pcap', writePcap(gen(whole.slice(0, 50)), { nano: true })), write('part.1.pcapng', writePcapng([{ linkType: LinkType.ETHERNET, tsresol: 9 }], gen(whole.slice(50))))],
    };
  }

  it('reads them in the order given as one capture, pcap and pcapng mixed; progress covers all of them', async () => {
    const { whole, files } = await parts();
    const source = captureFile({ path: files, chunkBytes: 700 });
    const got: Frame[] = [];
    for await (const b of source.batches()) got.push(...b);
    assert.deepEqual(
      got.map((f) => [f.tsSec, f.tsNsec, f.origLen, f.data]),
      whole.map((f) => [f.tsSec, f.tsNsec, f.origLen, f.data]),
    );
    const size = files.reduce((n, f) => n + readFileSync(f).length, 0);
    assert.deepEqual(source.progress!(), { done: size, total: size });
    assert.deepEqual(source.stats(), { bytes_read: size, frames: 102, frame_bytes: whole.reduce((n, f) => n + f.data.length, 0), skipped_blocks: 0 });
  });

  it('checks every file before reading the first', async () => {
    const { frames: got, error } = await frames([fixture('http-dns.pcap'), path.join(tmp, 'missing.pcap')]);
    assert.equal(got.length, 0);
    assert.match(error!.message, /missing\.pcap: offset 0: cannot open: ENOENT/);
  });

  it('names the damaged file and its offset, after the frames of the files before it', async () => {
    const { frames: got, error } = await frames([fixture('http-dns.pcap'), fixture('edge/truncated.pcap')]);
    assert.equal(got.length, 102 + 8);
    assert.ok(error instanceof CaptureFileError);
    assert.equal(error.file, fixture('edge/truncated.pcap'));
    assert.equal(error.offset, 749);
  });
});

describe('reading', { timeout: 600_000 }, () => {
  it('turns the event loop between the chunks of a regular file (signals and timers are not held up)', async () => {
    let turns = 0;
    let spinning = true;
    const spin = () => {
      turns++;
      if (spinning) setImmediate(spin);
    };
    setImmediate(spin);
    let batches = 0;
    // the loop below awaits only the source: without turns of its own, the spin would wait for its end
    for await (const b of captureFile({ path: fixture('http-dns.pcap'), chunkBytes: 512 }).batches()) batches += b.length > 0 ? 1 : 0;
    spinning = false;
    assert.ok(batches >= 20, `${batches} batches`);
    assert.ok(turns >= batches - 1, `${turns} turns of the event loop for ${batches} batches`);
  });

  it('refuses a chunk size that is not a positive whole number', () => {
    for (const chunkBytes of [0, -1, 1.5, Number.NaN]) assert.throws(() => captureFile({ path: fixture('http-dns.pcap'), chunkBytes }), /chunkBytes must be a whole number of bytes, at least 1/);
  });

  it('stops reading at close(), after the batch it gave', async () => {
    const source = captureFile({ path: fixture('http-dns.pcap'), chunkBytes: 512 });
    let batches = 0;
    for await (const b of source.batches()) {
      batches += b.length > 0 ? 1 : 0;
      if (batches === 3) source.close();
    }
    assert.equal(batches, 3);
    assert.ok((source.stats().bytes_read as number) < readFileSync(fixture('http-dns.pcap')).length);
  });

  it('reads a named pipe without holding up the event loop (the writer here is this process)', async () => {
    const fifo = path.join(tmp, 'capture.fifo');
    execFileSync('mkfifo', [fifo]);
    const bytes = readFileSync(fixture('http-dns.pcap'));
    const reading = frames(fifo);
    // written once the reader runs: a read that blocked this thread would never see it
    await new Promise<void>((resolve, reject) => createWriteStream(fifo).on('error', reject).end(bytes, resolve));
    const { frames: got, error } = await reading;
    assert.equal(error, null);
    assert.equal(got.length, 102);
  });
});

describe('damaged input', { timeout: 600_000 }, () => {
  it('names the file and the offset of a cut-short record, after the frames before it', async () => {
    const { frames: got, error } = await frames(fixture('edge/truncated.pcap'));
    assert.equal(got.length, 8);
    assert.ok(error instanceof CaptureFileError);
    assert.equal((error as CaptureFileError).offset, 749);
    assert.match(error!.message, /truncated\.pcap: offset 749: file ends inside a packet record/);
  });

  it('rejects a file that is not a capture at offset 0', async () => {
    const f = write('text.pcap', Buffer.from('this is not a capture file at all\n'));
    const { error } = await frames(f);
    assert.match(error!.message, /text\.pcap: offset 0: not a pcap or pcapng capture \(magic 0x74686973\)/);
  });

  it('rejects an empty file and a file shorter than a header', async () => {
    assert.match((await frames(write('empty.pcap', Buffer.alloc(0)))).error!.message, /offset 0: empty file/);
    assert.match((await frames(write('short.pcap', writePcap([]).subarray(0, 10)))).error!.message, /offset 10: file ends inside the file header/);
  });

  it('stops at a record length no capture can have instead of buffering the rest', async () => {
    const data = writePcap(sample);
    data.writeUInt32LE(0x7fffffff, 24 + 8);
    const { frames: got, error } = await frames(write('huge.pcap', data));
    assert.equal(got.length, 0);
    assert.match(error!.message, /offset 24: packet record length 2147483647 exceeds the maximum 262144/);
  });

  it('reports a pcapng block whose trailing length disagrees', async () => {
    const data = writePcapng([{ linkType: 1 }], timed([ether(0x0806, Buffer.alloc(28))]));
    data.writeUInt32LE(999, data.length - 4);
    const { error } = await frames(write('bad.pcapng', data));
    assert.match(error!.message, /bad\.pcapng: offset \d+: block trailing length 999 differs/);
  });

  it('reports a pcapng cut inside a block', async () => {
    const data = readFileSync(fixture('http-dns.pcapng'));
    const { frames: got, error } = await frames(write('cut.pcapng', data.subarray(0, 1000)));
    assert.ok(got.length > 0);
    assert.match(error!.message, /cut\.pcapng: offset \d+: file ends inside a block/);
  });
});
