import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Event } from '../src/events/types';
import { definePipeline } from '../src/pipeline/define';
import { eventStages } from '../src/pipeline/presets';
import { runPipeline } from '../src/pipeline/runner';
import type { Sink } from '../src/sinks/sink';
import { captureFile } from '../src/sources/file';
import type { Source } from '../src/sources/source';
import { fixture } from './helpers';

/** a sink that is always full: after every batch the pipeline must wait 2 ms for it */
class SlowSink implements Sink<Event> {
  readonly name = 'slow';
  readonly closed = false;
  events = 0;
  gatesPassed = 0;
  write(batch: Event[]): boolean {
    this.events += batch.length;
    return false;
  }
  drained(): Promise<void> {
    return new Promise((r) =>
      setTimeout(() => {
        this.gatesPassed++;
        r();
      }, 2),
    );
  }
  end(): Promise<void> {
    return Promise.resolve();
  }
  stats() {
    return { events: this.events };
  }
}

/** counts the batches a source has handed out */
function counting(source: Source): Source & { yielded: number } {
  const c = {
    ...source,
    name: source.name,
    yielded: 0,
    async *batches() {
      for await (const b of source.batches()) {
        c.yielded++;
        yield b;
      }
    },
    stats: () => source.stats(),
    close: () => source.close(),
  };
  return c;
}

describe('runner flow control', { timeout: 600_000 }, () => {
  it('hands out the next batch only after the sink drained the previous one', async () => {
    const source = counting(captureFile({ path: fixture('http-dns.pcap'), chunkBytes: 1024 }));
    const sink = new SlowSink();
    const ahead: number[] = [];
    const origWrite = sink.write.bind(sink);
    sink.write = (b) => {
      ahead.push(source.yielded - sink.gatesPassed);
      return origWrite(b);
    };
    const r = await runPipeline(definePipeline({ source, stages: [...eventStages()], sink, options: { printStats: false } })).done;
    assert.equal(r.error, null);
    assert.equal(sink.events, 21);
    assert.ok(source.yielded > 10);
    // every batch waited for the gate: at any write, exactly one batch is past the last gate
    assert.ok(ahead.length > 0);
    assert.ok(ahead.every((n) => n === 1), `batches ahead of the sink: ${ahead.join(',')}`);
    assert.equal(sink.gatesPassed, source.yielded);
  });

  it('stop() ends the run early and still flushes what the stages hold', async () => {
    const source = captureFile({ path: fixture('http-dns.pcap'), chunkBytes: 512 });
    const events: Event[] = [];
    const sink: Sink<Event> = {
      name: 'stopper',
      closed: false,
      write: (b) => {
        events.push(...b);
        handle.stop();
        return true;
      },
      drained: () => Promise.resolve(),
      end: () => Promise.resolve(),
      stats: () => ({}),
    };
    const handle = runPipeline(definePipeline({ source, stages: [...eventStages()], sink, options: { printStats: false } }));
    const r = await handle.done;
    assert.equal(r.error, null);
    assert.ok(events.length >= 1 && events.length < 21, `${events.length} events`);
    assert.ok((r.stats.source.bytes_read as number) < 16149);
  });
});

describe('runner reporting', { timeout: 600_000 }, () => {
  it('prints counters every --stats interval while running, and at the end', async () => {
    const source = captureFile({ path: fixture('http-dns.pcap'), chunkBytes: 512 });
    let text = '';
    const stderr = Object.assign(new (require('node:stream').Writable)({ write: (c: Buffer, _e: string, cb: () => void) => ((text += c), cb()) }), { isTTY: false });
    const sink = new SlowSink();
    sink.drained = () => new Promise((r) => setTimeout(r, 30)); // ~30 batches x 30 ms
    const r = await runPipeline(definePipeline({ source, stages: [...eventStages()], sink, options: { statsIntervalSec: 0.2 } }), { stderr }).done;
    assert.equal(r.error, null);
    assert.match(text, /^pktflow: \[progress\] decode: frames=\d+/m);
    assert.match(text, /^pktflow: decode: frames=102 /m);
  });

  it('prints no counter line for a stage with nothing to report, and none at all when nothing was read', async () => {
    const { sequence } = require('../src/core/stage');
    const run = async (file: string) => {
      let text = '';
      const stderr = Object.assign(new (require('node:stream').Writable)({ write: (c: Buffer, _e: string, cb: () => void) => ((text += c), cb()) }), { isTTY: false });
      const r = await runPipeline(definePipeline({ source: captureFile({ path: file }), stages: [sequence('frames', []), ...eventStages()], sink: new SlowSink() }), { stderr }).done;
      return { text, error: r.error };
    };
    const ok = await run(fixture('http-dns.pcap'));
    assert.match(ok.text, /^pktflow: decode: frames=102 /m);
    assert.doesNotMatch(ok.text, /^pktflow: frames:/m);
    assert.doesNotMatch(ok.text, /: -$/m);
    const missing = await run(fixture('missing.pcap'));
    assert.match(missing.error!.message, /cannot open: ENOENT/);
    assert.equal(missing.text, '');
  });

  it('shows progress only on a TTY', async () => {
    for (const isTTY of [true, false]) {
      let text = '';
      const stderr = Object.assign(new (require('node:stream').Writable)({ write: (c: Buffer, _e: string, cb: () => void) => ((text += c), cb()) }), { isTTY });
      const sink = new SlowSink();
      sink.drained = () => new Promise((r) => setTimeout(r, 40));
      const source = captureFile({ path: fixture('http-dns.pcap'), chunkBytes: 512 });
      await runPipeline(definePipeline({ source, stages: [...eventStages()], sink, options: { printStats: false } }), { stderr }).done;
      if (isTTY) assert.match(text, /\rpktflow: +\d+% +[\d.]+\/0\.0 MB/);
      else assert.equal(text, '');
    }
  });

  it('an idle tick from the source times out what waits, while the run goes on', async () => {
    const { ipv4, udp, dnsMessage } = require('./gen/packets');
    const { LinkType, makeFrame } = require('../src/core/frame');
    const q = ipv4('10.0.0.1', '10.0.0.53', 17, udp(1111, 53, dnsMessage(1, 'quiet.test', 1, false)));
    const seenBeforeEnd: number[] = [];
    const written: Event[] = [];
    const source: Source = {
      name: 'ticking',
      async *batches() {
        yield [makeFrame(1000, 0, LinkType.RAW, q.length, 0, q)];
        yield []; // idle: wall time is decades past packet time
        seenBeforeEnd.push(written.length);
      },
      stats: () => ({}),
      close() {},
    };
    const sink: Sink<Event> = { name: 's', closed: false, write: (b) => (written.push(...b), true), drained: () => Promise.resolve(), end: () => Promise.resolve(), stats: () => ({}) };
    await runPipeline(definePipeline({ source, stages: [...eventStages()], sink, options: { printStats: false } })).done;
    assert.deepEqual(seenBeforeEnd, [1], 'the unanswered query came out on the tick');
    assert.equal((written[0] as any).error.message, 'Unmatched request');
  });
});
