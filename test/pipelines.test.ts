/** Writing pipelines: the stage chain's checks, at type-check time and at run time; a stage that throws. */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { from, lastValueFrom } from 'rxjs';
import { typecheck } from '../src/cli/typecheck';
import { dnsFailures } from '../pipelines/examples/dns-failures';
import { HttpCsvSink } from '../pipelines/examples/http-csv';
import { LinkType, makeFrame, type Frame } from '../src/core/frame';
import { ExplainedError, flushThrough, pushThrough, sequence, StageError, toOperator, toTransform, type Stage } from '../src/core/stage';
import { decode } from '../src/decode/stage';
import type { DnsEvent, Event, HttpEvent } from '../src/events/types';
import { pipelineMismatch } from '../src/pipeline/define';
import { eventStages } from '../src/pipeline/presets';
import { runPipeline } from '../src/pipeline/runner';
import { analyze } from '../src/protocols/analyze';
import { collect } from '../src/sinks/collect';
import { stdoutNdjson } from '../src/sinks/ndjson';
import type { Sink } from '../src/sinks/sink';
import { captureFile } from '../src/sources/file';
import { dnsMessage, ipv4, udp } from './gen/packets';
import { cli, fixture, ndjson, ROOT } from './helpers';

/** a pipeline file next to the shipped ones (so `../src` resolves), removed after `fn` */
async function withPipelineFile<T>(name: string, text: string, fn: (file: string) => Promise<T> | T): Promise<T> {
  const file = path.join(ROOT, 'pipelines', name);
  writeFileSync(file, text);
  try {
    return await fn(file);
  } finally {
    rmSync(file, { force: true });
  }
}

describe('the stage chain, type-checked', { timeout: 120_000 }, () => {
  it('names the two stages that disagree and what each wants, on the line of the stage', async () => {
    const lines = [
      `import { analyze, captureFile, collect, decode, definePipeline, stdoutNdjson, tcpReorder, type DnsEvent, type Event, type Frame, type Stage } from '../src';`,
      `const source = captureFile({ path: 'x' });`,
      `// narrowing on type: no cast`,
      `const onlyDns: Stage<Event, DnsEvent> = { name: 'onlyDns', push: (b) => b.filter((e): e is DnsEvent => e.type === 'dns' && e.dns.question?.name !== ''), flush: () => [], stats: () => ({}) };`,
      `export const fine = definePipeline({ source, stages: [decode(), tcpReorder(), analyze(), onlyDns], sink: stdoutNdjson<DnsEvent>() });`,
      `export const noReorderer = definePipeline({ source, stages: [decode(), analyze()], sink: stdoutNdjson() });`,
      `export const noDecoder = definePipeline({ source, stages: [tcpReorder(), analyze()], sink: stdoutNdjson() });`,
      `export const frameSink = definePipeline({ source, stages: [decode(), tcpReorder(), analyze()], sink: collect<Frame>() });`,
      `export const dnsFirst = definePipeline({ source, stages: [decode(), tcpReorder(), analyze(), { name: 'nx', push: (b: DnsEvent[]) => b, flush: () => [], stats: () => ({}) }], sink: stdoutNdjson() });`,
    ];
    const errors = await withPipelineFile('.test-chain.ts', lines.join('\n') + '\n', (file) => typecheck(file).map((e) => e.replace(/^.*\.test-chain\.ts:/, '')));
    // line:column of the stage at fault (of `sink:` for the sink)
    const at = (line: number, what: string) => `${line}:${lines[line - 1].indexOf(what) + 1}`;
    assert.deepEqual(errors, [
      `${at(6, 'analyze()')}: stage 1 (decode) outputs Packet, but stage 2 (analyze) takes StreamItem`,
      `${at(7, 'tcpReorder()')}: the source outputs Frame, but stage 1 (tcp) takes Packet`,
      `${at(8, 'sink:')}: stage 3 (analyze) outputs Event, but the sink takes Frame`,
      `${at(9, "{ name: 'nx'")}: stage 3 (analyze) outputs Event, but stage 4 (nx) takes Event (type dns)`,
    ]);
  });
});

describe('the stage chain, at run time', { timeout: 120_000 }, () => {
  const source = () => captureFile({ path: fixture('http-dns.pcap') });
  const [d, t, a] = eventStages();

  it('finds the first two neighbours that say what they take and output and disagree', () => {
    assert.equal(pipelineMismatch({ stages: [d, t, a], sink: stdoutNdjson() }), null);
    assert.equal(pipelineMismatch({ stages: [d, a], sink: stdoutNdjson() }), 'stage 1 (decode) outputs Packet, but stage 2 (analyze) takes StreamItem');
    assert.equal(pipelineMismatch({ stages: [t, a], sink: stdoutNdjson() }), 'the source outputs Frame, but stage 1 (tcp) takes Packet');
    assert.equal(pipelineMismatch({ stages: [d], sink: stdoutNdjson() }), 'stage 1 (decode) outputs Packet, but the sink (ndjson) takes Event');
    assert.equal(pipelineMismatch({ stages: [], sink: stdoutNdjson() }), 'the source outputs Frame, but the sink (ndjson) takes Event');
    // a stage that does not say is trusted, on both sides
    const mine: Stage<unknown, unknown> = { name: 'mine', push: (b) => b, flush: () => [], stats: () => ({}) };
    assert.equal(pipelineMismatch({ stages: [d, mine, a], sink: collect() }), null);
    assert.equal(pipelineMismatch({ stages: [d, t, a, mine], sink: collect() }), null);
  });

  it('runPipeline refuses such a pipeline before reading anything', () => {
    assert.throws(() => runPipeline({ source: source(), stages: [decode(), analyze()], sink: collect(), options: {} }), {
      message: 'stage 1 (decode) outputs Packet, but stage 2 (analyze) takes StreamItem',
    });
  });

  it('pktflow run --no-typecheck: one line naming the two stages, exit 2, no events', async () => {
    const text =
      `import { analyze, captureFile, decode, definePipeline, stdoutNdjson } from '../src';\n` +
      `export default definePipeline({ source: captureFile({ path: 'fixtures/http-dns.pcap' }), stages: [decode(), analyze()] as any, sink: stdoutNdjson() });\n`;
    const r = await withPipelineFile('.test-mismatch.ts', text, (file) => cli(['run', file, '--no-typecheck']));
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^pktflow: \S+\.test-mismatch\.ts: stage 1 \(decode\) outputs Packet, but stage 2 \(analyze\) takes StreamItem\n$/);
  });
});

describe('a stage that throws', { timeout: 120_000 }, () => {
  const boom = (when: 'push' | 'flush'): Stage<Event, Event> => ({
    name: 'myFilter',
    push: (b) => {
      if (when === 'push') throw new Error('boom');
      return b;
    },
    flush: () => {
      if (when === 'flush') throw new Error('boom at the end');
      return [];
    },
    stats: () => ({}),
  });
  const frames = async () => {
    const out: Frame[][] = [];
    for await (const b of captureFile({ path: fixture('http-dns.pcap') }).batches()) out.push(b);
    return out;
  };

  it('is named in the RxJS operator and in the Node Transform, push or flush', async () => {
    for (const when of ['push', 'flush'] as const) {
      const message = `stage "myFilter": ${when === 'push' ? 'boom' : 'boom at the end'}`;
      const [d, t, a] = eventStages();
      const rx = lastValueFrom(from(await frames()).pipe(toOperator(d), toOperator(t), toOperator(a), toOperator(boom(when))));
      await assert.rejects(rx, (err: Error) => err instanceof StageError && err.message === message && (err.cause as Error).message.startsWith('boom'));
      const s = eventStages();
      const node = pipeline(Readable.from(await frames()), toTransform(s[0]), toTransform(s[1]), toTransform(s[2]), toTransform(boom(when)), new Writable({ objectMode: true, write: (_b, _e, cb) => cb() }));
      await assert.rejects(node, { name: 'StageError', message });
    }
  });

  it('says an ExplainedError as it is', async () => {
    const bad: Stage<Frame, Frame> = { name: 'filter', push: () => { throw new ExplainedError('bad filter "tcp port"'); }, flush: () => [], stats: () => ({}) };
    await assert.rejects(lastValueFrom(from(await frames()).pipe(toOperator(bad))), { message: 'bad filter "tcp port"' });
  });

  it('is named inside a sequence of stages', () => {
    const inner = sequence('events', [boom('push')]);
    assert.throws(() => inner.push([{ type: 'stats', stats: {} }]), { message: 'stage "myFilter": boom' });
  });

  it('ends a run, as does a sink that throws, named', async () => {
    const run = (stages: Stage<any, any>[], sink: Sink<Event>) => runPipeline({ source: captureFile({ path: fixture('http-dns.pcap') }), stages, sink, options: { printStats: false } }).done;
    await assert.rejects(run([...eventStages(), boom('push')], collect()), { message: 'stage "myFilter": boom' });
    const sink: Sink<Event> = { name: 'csv', closed: false, write: () => assert.fail('disk full'), drained: async () => {}, end: async () => {}, stats: () => ({}) };
    await assert.rejects(run([...eventStages()], sink), { message: 'sink "csv": disk full' });
  });

  it('pktflow run: one line "pktflow: stage "myFilter": ...", exit 1; the stack with PKTFLOW_DEBUG=1', async () => {
    const text =
      `import { captureFile, definePipeline, eventStages, stdoutNdjson, type Event, type Stage } from '../src';\n` +
      `const myFilter: Stage<Event, Event> = { name: 'myFilter', push: (b) => { if (b.some((e) => e.type === 'dns')) throw new TypeError('no DNS here'); return b; }, flush: () => [], stats: () => ({}) };\n` +
      `export default definePipeline({ source: captureFile({ path: 'fixtures/http-dns.pcap' }), stages: [...eventStages(), myFilter], sink: stdoutNdjson() });\n`;
    await withPipelineFile('.test-throws.ts', text, async (file) => {
      const r = await cli(['run', file, '-q', '--no-typecheck']);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, 'pktflow: stage "myFilter": no DNS here\n');
      const debug = await cli(['run', file, '-q', '--no-typecheck'], { env: { PKTFLOW_DEBUG: '1' } });
      assert.equal(debug.code, 1);
      assert.match(debug.stderr, /^pktflow: stage "myFilter": no DNS here\nStageError: stage "myFilter": no DNS here\n {4}at /);
      // the cause's stack points into the pipeline file, at the line that threw
      assert.match(debug.stderr, /caused by: TypeError: no DNS here\n {4}at .*\.test-throws\.ts:2:\d+/);
    });
  });

  it('pktflow run: an ExplainedError from the pipeline file is said as it is (its class is the runner\'s: one copy of pktflow, the bundle\'s)', async () => {
    const text =
      `import { captureFile, definePipeline, eventStages, ExplainedError, stdoutNdjson, type Event, type Stage } from '../src';\n` +
      `const strict: Stage<Event, Event> = { name: 'strict', push: (b) => { if (b.length > 0) throw new ExplainedError('strict: events where none were wanted'); return b; }, flush: () => [], stats: () => ({}) };\n` +
      `export default definePipeline({ source: captureFile({ path: 'fixtures/http-dns.pcap' }), stages: [...eventStages(), strict], sink: stdoutNdjson() });\n`;
    await withPipelineFile('.test-explained.ts', text, async (file) => {
      const r = await cli(['run', file, '-q', '--no-typecheck']);
      assert.equal(r.code, 1);
      // a second copy of pktflow's modules (src/ compiled again for the pipeline) would make it `stage "strict": ...`
      assert.equal(r.stderr, 'pktflow: strict: events where none were wanted\n');
    });
  });
});

describe('worked examples (docs/pipelines.md), on fixtures/http-dns.pcap', { timeout: 120_000 }, () => {
  it('pipelines/examples/dns-failures.ts: a filtering stage keeps the lookups that failed', async () => {
    const r = await cli(['run', 'pipelines/examples/dns-failures.ts', '-q']);
    assert.equal(r.code, 0, r.stderr);
    const events = ndjson(r.stdout) as DnsEvent[];
    assert.deepEqual(
      events.map((e) => [e.type, e.status, e.dns.question?.name, e.dns.response_code]),
      [['dns', 'Error', 'nothing.example.test', 'NXDOMAIN']],
    );
  });

  it('dnsFailures() also keeps a query that got no answer, and counts', () => {
    const query = ipv4('10.0.0.1', '10.0.0.53', 17, udp(1111, 53, dnsMessage(1, 'quiet.test', 1, false)));
    const answered = [ipv4('10.0.0.1', '10.0.0.53', 17, udp(1112, 53, dnsMessage(2, 'ok.test', 1, false))), ipv4('10.0.0.53', '10.0.0.1', 17, udp(53, 1112, dnsMessage(2, 'ok.test', 1, true, ['192.0.2.1'])))];
    const frames = [query, ...answered].map((b, i) => makeFrame(1000 + i, 0, LinkType.RAW, b.length, 0, b));
    const stages = [...eventStages(), dnsFailures()];
    const events = [...pushThrough(stages, frames), ...flushThrough(stages)] as DnsEvent[];
    assert.deepEqual(events.map((e) => [e.dns.question?.name, e.dns.type, e.dns.response_code]), [['quiet.test', 'query', undefined]]);
    assert.deepEqual(stages[3].stats(), { lookups: 2, failed: 1 });
  });

  it('pipelines/examples/http-csv.ts: a custom sink writes a CSV row per HTTP transaction', async () => {
    const r = await cli(['run', 'pipelines/examples/http-csv.ts', '-q']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], 'time,client,server,method,url,status,duration_ms,response_bytes');
    assert.equal(lines.length, 1 + 10 + 1, r.stdout);
    assert.equal(lines[1], '2026-11-24T22:58:00.382721000Z,127.0.0.1,127.0.0.1,GET,http://127.0.0.1:8080/,200,0.209,253');
    assert.equal(lines[3], '2026-11-24T22:58:00.383446000Z,127.0.0.1,127.0.0.1,GET,http://127.0.0.1:8080/missing,404,0.172,308');
    assert.deepEqual(
      lines.slice(1, -1).map((l) => l.split(',')[5]),
      ['200', '200', '404', '200', '200', '304', '201', '200', '404', '200'],
    );
    // a capture without HTTP: the header alone
    const none = await cli(['run', 'pipelines/examples/http-csv.ts', '-q', '--input', fixture('edge/dns-tcp.pcap')]);
    assert.equal(none.stdout, lines[0] + '\n');
  });

  it('HttpCsvSink quotes what needs quoting', () => {
    let text = '';
    const sink = new HttpCsvSink(new Writable({ write: (c, _e, cb) => ((text += c), cb()) }));
    const [e] = ndjson(readFileSync(path.join(ROOT, 'test', 'golden', 'fixtures__http-dns.pcap.ndjson'), 'utf8')) as HttpEvent[];
    sink.write([{ ...e, url: { ...e.url!, full: 'http://x/a,"b"' } }]);
    assert.equal(text.split('\n')[1], '2026-11-24T22:58:00.382721000Z,127.0.0.1,127.0.0.1,GET,"http://x/a,""b""",200,0.209,253');
  });
});
