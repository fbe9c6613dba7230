import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { definePipeline, isPipeline, pipelineMismatch, type Pipeline, type PipelineOptions } from '../pipeline/define';
import { eventStages } from '../pipeline/presets';
import { runPipeline } from '../pipeline/runner';
import { stdoutNdjson } from '../sinks/ndjson';
import { captureFile } from '../sources/file';
import { CaptureError, deviceLinkType, listDevices, liveCapture } from '../sources/live';
import type { Source } from '../sources/source';
import { bpfFilter } from '../decode/bpf';
import { pcapDump } from '../sinks/pcap-dump';
import { kafkaEvents, kafkaFrames } from '../sinks/kafka';
import { kafkaSource } from '../sources/kafka';
import { sequence, type Stage } from '../core/stage';
import type { Frame } from '../core/frame';
import { list, parse, ports, seconds, UsageError } from './args';

const VERSION = '0.1.0';

const HELP = `pktflow ${VERSION}: network traffic analyzer (packetbeat's packet path as a stream pipeline)

Usage: pktflow <command> [options]

Commands:
  read <file|->        analyze a pcap/pcapng capture, print JSON events (one per line)
  capture              capture on a network interface, print JSON events
  replay --topic <t>   analyze raw frames stored in a Kafka topic
  devices              list the interfaces pktflow can capture on
  run <pipeline.ts>    run a pipeline file (export default definePipeline({...}))
  help [command]       show help for a command

Options for every command:
  -h, --help           show help

Run 'pktflow <command> --help' for a command's options.
`;

const COMMON_RUN_HELP = `  -w, --write <file.pcap>    also write the raw frames, before decoding, to a nanosecond pcap
  --rotate-mb <n>            start a new dump file (file.1.pcap, ...) every n MB
  --stats <seconds>          also print counters to stderr every N seconds
  --stats-event              end the output with a {"type":"stats"} event
  -q, --quiet                no counters on stderr at the end
  -h, --help                 show this help`;

const ANALYZE_HELP = `  --flows                    also report flows (type: flow), as packetbeat
  --flow-period <seconds>    report active flows every N seconds of packet time (default 10)
  --flow-timeout <seconds>   a flow's final report after N idle seconds (default 30)
  --protocols <list>         analyzers to run (default: http,dns,icmp)
  --ports <proto=p1,p2>      ports of a protocol, replacing its defaults (repeatable)
  --no-probe                 recognise protocols by port only, not by content
  --http-headers <list|all>  HTTP headers to put in events (default: none)
  --include-body-for <list>  content types whose HTTP bodies go into events
  --anomalies                also emit protocol violations and decode errors as
                             {"type":"anomaly"} events (10/s per reason, packet time)`;

const KAFKA_OUT_HELP = `  --kafka-topic <topic>      send the raw frames to this Kafka topic instead of analyzing them
  --brokers <host:port,...>  Kafka bootstrap brokers (default 127.0.0.1:9092)
  --compression gzip         compress produce requests`;

const READ_HELP = `Usage: pktflow read <file|-> [options]

Reads a pcap or pcapng capture (a path, or - for stdin) through the decoders, the
TCP reorderer and the protocol analyzers, and prints one JSON event per line.

Options:
  -f, --filter <expr>        keep only the frames this BPF filter accepts (tcpdump's
                             filter language, compiled by libpcap through tcpdump)
${KAFKA_OUT_HELP}
${ANALYZE_HELP}
${COMMON_RUN_HELP}

Examples:
  pktflow read -f 'tcp port 80' trace.pcap
  pktflow read trace.pcap | jq -c 'select(.type=="http") | .http.response.status_code'
  tcpdump -w - -i lo | pktflow read - --ports http=8080
`;

const CAPTURE_HELP = `Usage: pktflow capture [options]

Captures on a network interface (libpcap, through cap) and runs the default
pipeline: decoders, TCP reorderer, analyzers, JSON events on stdout. Stops on
SIGINT/SIGTERM (or after --count frames), flushes what is pending, prints the
counters and exits 0; a second signal exits at once. Needs root or CAP_NET_RAW.

Options:
  -i, --interface <name>     device to capture on, or "any" (default: the first usable one)
  -f, --filter <expr>        BPF filter, e.g. 'tcp port 8080' (compiled by libpcap)
  -s, --snaplen <bytes>      bytes kept of each frame (default 65535)
  -B, --buffer-size <KiB>    kernel capture buffer (default 16384)
  -c, --count <n>            stop after n frames
${KAFKA_OUT_HELP}
${ANALYZE_HELP}
${COMMON_RUN_HELP}

Example:
  pktflow capture -i lo -f 'tcp port 8080'
`;

const REPLAY_HELP = `Usage: pktflow replay --topic <topic> [options]

Reads raw frames from a Kafka topic (written by 'capture --kafka-topic' or a
pipeline with a kafkaFrames sink) and runs the default pipeline on them. Offsets
are committed, per consumer group, only after the events made from the frames
were written. Without --follow the replay ends at the offsets the topic had when
it started. Processes started with the same --group share the topic's partitions;
together they emit the events one process would (docs/kafka.md).

Options:
  --topic <topic>            the raw-frame topic (required)
  --brokers <host:port,...>  Kafka bootstrap brokers (default 127.0.0.1:9092)
  --group <id>               consumer group (default: a new one for this replay)
  --from-beginning           a group without offsets starts at the beginning (default)
  --from-latest              ... or at new frames only
  --from-time <time>         start at the first frame at or after this time (ISO 8601 or ms)
  --follow                   keep following new frames as a group member
  --events-topic <topic>     write the events to this Kafka topic instead of stdout
${ANALYZE_HELP}
${COMMON_RUN_HELP}
`;

const DEVICES_HELP = `Usage: pktflow devices

Lists the interfaces libpcap can capture on, with their addresses and the link
type a capture on each will have.
`;

const RUN_HELP = `Usage: pktflow run <pipeline.ts> [options]

Loads a pipeline file, type-checks it, and runs it. The file's default export
is a pipeline: export default definePipeline({ source, stages, sink, options }).

Options:
  --input <path|->           read this capture instead of the pipeline's own source
  --no-typecheck             load the file without type-checking it first
${COMMON_RUN_HELP}

The type check's result is cached in $PKTFLOW_CACHE_DIR (default
$XDG_CACHE_HOME/pktflow, or ~/.cache/pktflow). An exception in a stage is one
line naming the stage; PKTFLOW_DEBUG=1 adds its stack. Writing pipelines:
docs/pipelines.md.
`;

const HELPS: Record<string, string> = { read: READ_HELP, capture: CAPTURE_HELP, replay: REPLAY_HELP, devices: DEVICES_HELP, run: RUN_HELP };

const RUN_FLAGS = {
  write: { type: 'string', short: 'w' },
  'rotate-mb': { type: 'string' },
  stats: { type: 'string' },
  'stats-event': { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
} as const;

function runOptions(values: Record<string, unknown>): PipelineOptions {
  return {
    statsIntervalSec: seconds(values.stats, '--stats'),
    statsEvent: values['stats-event'] === true,
    printStats: values.quiet !== true,
  };
}

export async function main(argv: string[]): Promise<number> {
  try {
    const [cmd, ...rest] = argv;
    switch (cmd) {
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(HELPS[rest[0]] ?? HELP);
        return 0;
      case '--version':
      case '-v':
        process.stdout.write(`${VERSION}\n`);
        return 0;
      case 'read':
        return await read(rest);
      case 'run':
        return await run(rest);
      case 'capture':
        return await capture(rest);
      case 'devices':
        return devices(rest);
      case 'replay':
        return await replay(rest);
      default:
        throw new UsageError(`unknown command "${cmd}" (commands: read, capture, devices, run, help)`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`pktflow: ${err.message}\nTry 'pktflow ${argv[0] && argv[0] in HELPS ? argv[0] + ' ' : ''}--help'.\n`);
      return 2;
    }
    process.stderr.write(`pktflow: ${(err as Error).message}\n`);
    return 1;
  }
}

export { CaptureError };

const KAFKA_OUT_FLAGS = {
  'kafka-topic': { type: 'string' },
  brokers: { type: 'string' },
  compression: { type: 'string' },
} as const;

function brokers(values: Record<string, unknown>): string[] | undefined {
  return list(values.brokers);
}

/** --kafka-topic: raw frames to a topic, no analysis (a capture agent, or loading a file) */
function kafkaOut(source: Source, frameStages: Stage<Frame, Frame>[], values: Record<string, unknown>): number | Promise<number> | null {
  const topic = values['kafka-topic'] as string | undefined;
  if (topic === undefined) return null;
  const c = values.compression;
  if (c !== undefined && c !== 'gzip' && c !== 'none') throw new UsageError(`--compression takes gzip or none, not "${c}"`);
  return execute(
    definePipeline({
      source,
      stages: [sequence('frames', frameStages)],
      sink: kafkaFrames({ topic, brokers: brokers(values), compression: c as 'gzip' | 'none' | undefined }),
      options: runOptions(values),
    }),
  );
}

const ANALYZE_FLAGS = {
  flows: { type: 'boolean' },
  'flow-period': { type: 'string' },
  'flow-timeout': { type: 'string' },
  protocols: { type: 'string' },
  ports: { type: 'string', multiple: true },
  'no-probe': { type: 'boolean' },
  'http-headers': { type: 'string' },
  'include-body-for': { type: 'string' },
  anomalies: { type: 'boolean' },
} as const;

/** the default stages, configured by the analyzer flags */
function stagesFrom(values: Record<string, unknown>) {
  const headers = values['http-headers'] === 'all' ? 'all' : list(values['http-headers']);
  try {
    const period = seconds(values['flow-period'], '--flow-period');
    const timeout = seconds(values['flow-timeout'], '--flow-timeout');
    if ((period !== undefined || timeout !== undefined) && values.flows !== true) throw new UsageError('--flow-period and --flow-timeout go with --flows');
    return eventStages({
      tcp: { flows: values.flows === true ? { periodSec: period, timeoutSec: timeout } : false },
      protocols: list(values.protocols) ?? ['http', 'dns', 'icmp'],
      ports: ports(values.ports),
      probe: values['no-probe'] !== true,
      anomalies: values.anomalies === true,
      options: {
        http: {
          ...(headers !== undefined ? { sendHeaders: headers } : {}),
          ...(values['include-body-for'] !== undefined ? { includeBodyFor: list(values['include-body-for']) } : {}),
        },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** --write FILE [--rotate-mb N]: the raw-frame tee, first in the chain */
function dumpStage(values: Record<string, unknown>): Stage<Frame, Frame>[] {
  const rotate = positiveInt(values['rotate-mb'], '--rotate-mb');
  if (values.write === undefined) {
    if (rotate !== undefined) throw new UsageError('--rotate-mb goes with --write');
    return [];
  }
  return [pcapDump({ path: values.write as string, rotateBytes: rotate !== undefined ? rotate * 1_000_000 : undefined })];
}

function positiveInt(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag} takes a positive whole number, not "${v}"`);
  return n;
}

async function read(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { ...RUN_FLAGS, ...ANALYZE_FLAGS, ...KAFKA_OUT_FLAGS, filter: { type: 'string', short: 'f' } }, 1);
  if (values.help) {
    process.stdout.write(READ_HELP);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('read needs a capture file (or - for stdin)');
  const frameStages: Stage<Frame, Frame>[] = [];
  if (values.filter !== undefined) frameStages.push(bpfFilter(values.filter as string));
  frameStages.push(...dumpStage(values));
  const toKafka = kafkaOut(captureFile({ path: positionals[0] }), frameStages, values);
  if (toKafka !== null) return toKafka;
  const pipeline = definePipeline({
    source: captureFile({ path: positionals[0] }),
    stages: [sequence('frames', frameStages), ...stagesFrom(values)],
    sink: stdoutNdjson(),
    options: runOptions(values),
  });
  return execute(pipeline);
}

async function capture(args: string[]): Promise<number> {
  const { values } = parse(
    args,
    {
      ...RUN_FLAGS,
      ...ANALYZE_FLAGS,
      ...KAFKA_OUT_FLAGS,
      interface: { type: 'string', short: 'i' },
      filter: { type: 'string', short: 'f' },
      snaplen: { type: 'string', short: 's' },
      'buffer-size': { type: 'string', short: 'B' },
      count: { type: 'string', short: 'c' },
    },
    0,
  );
  if (values.help) {
    process.stdout.write(CAPTURE_HELP);
    return 0;
  }
  const snaplen = positiveInt(values.snaplen, '--snaplen');
  const bufferKiB = positiveInt(values['buffer-size'], '--buffer-size');
  const count = positiveInt(values.count, '--count');
  const stages = stagesFrom(values);
  const source = liveCapture({
    device: values.interface as string | undefined,
    filter: values.filter as string | undefined,
    snaplen,
    bufferBytes: bufferKiB !== undefined ? bufferKiB * 1024 : undefined,
  });
  // open now: a missing device, bad filter or missing permission is one line, before any output
  source.open();
  process.stderr.write(`pktflow: capturing on ${source.device}${values.filter ? ` (filter: ${values.filter})` : ''}\n`);
  const toKafka = kafkaOut(count !== undefined ? firstFrames(source, count) : source, dumpStage(values), values);
  if (toKafka !== null) return toKafka;
  const pipeline = definePipeline({
    source: count !== undefined ? firstFrames(source, count) : source,
    stages: [sequence('frames', dumpStage(values)), ...stages],
    sink: stdoutNdjson(),
    options: runOptions(values),
  });
  return execute(pipeline);
}

/** a source that ends after n frames */
function firstFrames(source: Source, n: number): Source {
  let left = n;
  return {
    name: source.name,
    async *batches() {
      for await (const b of source.batches()) {
        if (b.length >= left) {
          yield b.slice(0, left);
          break;
        }
        left -= b.length;
        yield b;
      }
      source.close();
    },
    stats: () => source.stats(),
    close: () => source.close(),
  };
}

async function replay(args: string[]): Promise<number> {
  const { values } = parse(
    args,
    {
      ...RUN_FLAGS,
      ...ANALYZE_FLAGS,
      topic: { type: 'string' },
      brokers: { type: 'string' },
      group: { type: 'string' },
      'from-beginning': { type: 'boolean' },
      'from-latest': { type: 'boolean' },
      'from-time': { type: 'string' },
      follow: { type: 'boolean' },
      'events-topic': { type: 'string' },
    },
    0,
  );
  if (values.help) {
    process.stdout.write(REPLAY_HELP);
    return 0;
  }
  if (values.topic === undefined) throw new UsageError('replay needs --topic');
  if (values['from-beginning'] && values['from-latest']) throw new UsageError('--from-beginning and --from-latest exclude each other');
  let fromTimestamp: number | undefined;
  if (values['from-time'] !== undefined) {
    const t = values['from-time'] as string;
    fromTimestamp = /^\d+$/.test(t) ? Number(t) : Date.parse(t);
    if (!Number.isFinite(fromTimestamp)) throw new UsageError(`--from-time takes an ISO 8601 time or milliseconds, not "${t}"`);
  }
  const stages = stagesFrom(values);
  return execute(
    definePipeline({
      source: kafkaSource({
        topic: values.topic as string,
        brokers: brokers(values),
        groupId: values.group as string | undefined,
        from: values['from-latest'] ? 'latest' : 'beginning',
        fromTimestamp,
        follow: values.follow === true,
      }),
      stages: [sequence('frames', dumpStage(values)), ...stages],
      sink: values['events-topic'] !== undefined ? kafkaEvents({ topic: values['events-topic'] as string, brokers: brokers(values) }) : stdoutNdjson(),
      options: runOptions(values),
    }),
  );
}

function devices(args: string[]): number {
  const { values } = parse(args, {}, 0);
  if (values.help) {
    process.stdout.write(DEVICES_HELP);
    return 0;
  }
  for (const d of listDevices()) {
    const addrs = d.addresses.map((a) => a.addr).join(', ');
    const flags = d.flags ? ` [${d.flags.replace(/PCAP_IF_/g, '').toLowerCase()}]` : '';
    process.stdout.write(`${d.name}\t${deviceLinkType(d.name)}\t${addrs || '-'}${flags}${d.description ? `\t${d.description}` : ''}\n`);
  }
  return 0;
}

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { ...RUN_FLAGS, input: { type: 'string' }, 'no-typecheck': { type: 'boolean' } }, 1);
  if (values.help) {
    process.stdout.write(RUN_HELP);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('run needs a pipeline file');
  const file = path.resolve(positionals[0]);
  if (!existsSync(file)) throw new UsageError(`pipeline file ${positionals[0]} does not exist`);
  if (values['no-typecheck'] !== true) {
    // loaded only here: the TypeScript compiler is large
    const { typecheck } = require('./typecheck') as typeof import('./typecheck');
    const errors = typecheck(file);
    if (errors.length > 0) {
      process.stderr.write(`pktflow: ${positionals[0]} does not type-check:\n${errors.slice(0, 10).map((e) => `  ${e}`).join('\n')}\n`);
      return 2;
    }
  }
  let mod: { default?: unknown };
  try {
    mod = require(file);
  } catch (err) {
    process.stderr.write(`pktflow: cannot load ${positionals[0]}: ${(err as Error).message.split('\n')[0]}\n${debugTrace(err)}`);
    return 2;
  }
  const pipeline = mod.default;
  if (!isPipeline(pipeline)) {
    process.stderr.write(`pktflow: ${positionals[0]} does not export a pipeline (export default definePipeline({ source, stages, sink }))\n`);
    return 2;
  }
  const p: Pipeline = pipeline;
  // what the type check would have said, for a file loaded without it
  const mismatch = pipelineMismatch(p);
  if (mismatch !== null) {
    process.stderr.write(`pktflow: ${positionals[0]}: ${mismatch}\n`);
    return 2;
  }
  const input = values.input as string | undefined;
  try {
    return await execute({
      ...p,
      source: input !== undefined ? captureFile({ path: input }) : p.source,
      options: { ...p.options, ...definedOnly(runOptions(values)) },
    });
  } catch (err) {
    // a user's stage or sink threw: one line naming it (StageError), the stack only when asked
    process.stderr.write(`pktflow: ${(err as Error).message}\n${debugTrace(err)}`);
    return 1;
  }
}

/** with PKTFLOW_DEBUG set: the stack of an error and of each cause, for stderr; else nothing */
function debugTrace(err: unknown): string {
  if (!process.env.PKTFLOW_DEBUG) return '';
  let text = '';
  for (let e = err; e instanceof Error; e = e.cause) text += `${text === '' ? '' : 'caused by: '}${e.stack ?? e.message}\n`;
  return text;
}

function definedOnly(o: PipelineOptions): PipelineOptions {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== false) out[k] = v;
  if (o.printStats === false) out.printStats = false;
  return out as PipelineOptions;
}

/** run to the end; SIGINT/SIGTERM stop reading and flush, a second signal exits at once */
async function execute(p: Pipeline): Promise<number> {
  const handle = runPipeline(p);
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) process.exit(sig === 'SIGINT' ? 130 : 143);
    handle.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const result = await handle.done;
    if (result.error !== null) {
      process.stderr.write(`pktflow: ${result.error.message}\n`);
      return 1;
    }
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
