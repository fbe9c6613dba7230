/** Writing pipelines: the stage chain's checks, at type-check time and at run time. */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { typecheck } from '../src/cli/typecheck';
import type { Stage } from '../src/core/stage';
import { decode } from '../src/decode/stage';
import { pipelineMismatch } from '../src/pipeline/define';
import { eventStages } from '../src/pipeline/presets';
import { runPipeline } from '../src/pipeline/runner';
import { analyze } from '../src/protocols/analyze';
import { collect } from '../src/sinks/collect';
import { stdoutNdjson } from '../src/sinks/ndjson';
import { captureFile } from '../src/sources/file';
import { cli, fixture, ROOT } from './helpers';

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
