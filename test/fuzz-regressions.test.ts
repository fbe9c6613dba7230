/**
 * Cases the fuzzer found, kept as fixtures: each once made a stage throw or broke
 * the accounting. Each runs through all stages with the accounting checked.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeFrame, type Frame } from '../src/core/frame';
import { ether, ipv4, ipv6, ipv6FragBody, timed } from './gen/packets';
import { assertAccounting, fixture, pushThroughStages, readFile } from './helpers';
import { CaptureFileError } from '../src/sources/errors';

const frames = (datas: Buffer[]): Frame[] => timed(datas).map((g) => makeFrame(g.sec, g.nsec, 1, g.data.length, 0, g.data));

const cases: Record<string, Buffer[]> = {
  // fuzz seed -722144411: a last fragment ending before bytes already held made the reassembler copy a negative length
  'IPv6 fragment end before bytes already held': [
    ether(0x86dd, ipv6('2001:db8::1', '2001:db8::2', 17, Buffer.alloc(8, 1), [{ type: 44, body: ipv6FragBody(16, true, 1) }])),
    ether(0x86dd, ipv6('2001:db8::1', '2001:db8::2', 17, Buffer.alloc(0), [{ type: 44, body: ipv6FragBody(8, false, 1) }])),
  ],
  'IPv4 fragment past the end a last fragment set': [
    ether(0x0800, ipv4('10.4.0.1', '10.4.0.2', 17, Buffer.alloc(8), { id: 7, fragOffset: 8, mf: false })),
    ether(0x0800, ipv4('10.4.0.1', '10.4.0.2', 17, Buffer.alloc(16), { id: 7, fragOffset: 16, mf: true })),
    ether(0x0800, ipv4('10.4.0.1', '10.4.0.2', 17, Buffer.alloc(8), { id: 7, fragOffset: 0, mf: true })),
  ],
};

describe('fuzz regressions', { timeout: 600_000 }, () => {
  for (const [name, datas] of Object.entries(cases)) {
    it(name, () => {
      const { stats } = pushThroughStages(frames(datas));
      assertAccounting(stats, name);
      assert.equal((stats.decode as any).dropped.ip_fragment_beyond_end, 1, 'the offending fragment is dropped under its reason');
    });
  }

  // corpus seed 9001, variant #38 of http-dns.pcapng: a damaged interface resolution gave a
  // packet time past the year 275760, and formatting it threw out of the analyzer stage. The
  // frames are read with a repaired time (as tshark reads all 10 before the damaged block
  // that ends the file)
  it('fixtures/fuzz/pcapng-timestamp-out-of-range.pcapng: bad times repaired and counted, not an exception', async () => {
    const r = await readFile(fixture('fuzz/pcapng-timestamp-out-of-range.pcapng'));
    assert.ok(r.error instanceof CaptureFileError);
    assert.match(r.error!.message, /offset 1924: block trailing length 500 differs from leading length 408/);
    assert.equal((r.stats.decode as any).frames, 10);
    assert.equal((r.stats.decode as any).bad_timestamps, 10);
    assertAccounting(r.stats, 'timestamp out of range');
  });
});
