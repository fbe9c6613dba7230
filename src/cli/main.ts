import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { definePipeline, isPipeline, pipelineMismatch, type Pipeline, type PipelineOptions } from '../pipeline/define';
import { eventStages, type EventStagesOptions } from '../pipeline/presets';
import { workerPipeline } from '../pipeline/workers';
import { runPipeline } from '../pipeline/runner';
import { stdoutNdjson } from '../sinks/ndjson';
import { captureFile } from '../sources/file';
import { CaptureError, deviceLinkType, listDevices, liveCapture } from '../sources/live';
import type { Source } from '../sources/source';
import { BpfError, bpfFilter } from '../decode/bpf';
import { interfaceFilter } from '../decode/iface';
import { pcapDump } from '../sinks/pcap-dump';
import type { KafkaConnection } from '../kafka/client';
import { sequence, type Stage } from '../core/stage';
import type { Frame } from '../core/frame';
import { protocols as registry } from '../protocols/registry';
import { brokers, BROKERS_FLAG, BROKERS_HELP, commandList, HelpRequest, knownProtocol, list, parse, ports, positiveInt, seconds, UsageError, type Command } from './args';
import { topics } from './topics';

/** the version of package.json (bundled with it) */
const VERSION: string = (require('../../package.json') as { version: string }).version;

const COMMON_RUN_HELP = `  -w, --write <file.pcap>    also write the raw frames, before decoding, to a nanosecond pcap
  --rotate-mb <n>            start a new dump file (file.1.pcap, ...) every n MB
  --stats <seconds>          also print counters to stderr every N seconds
  --stats-event              end the output with a {"type":"stats"} event
  -q, --quiet                no counters on stderr at the end
  -h, --help                 show this help`;

const PROTOCOL_NAMES = registry.map((p) => p.name);

/** each registered protocol with its default ports, for the help texts (names in a column as wide as the longest) */
const NAME_WIDTH = Math.max(...registry.map((p) => p.name.length)) + 2;
const PROTOCOLS_HELP = `Protocols and their default ports:
${registry
  .map((p) => {
    const ports = [
      p.tcpPorts.length > 0 ? `tcp ${p.tcpPorts.join(',')}` : '',
      p.udpPorts.length > 0 ? `udp ${p.udpPorts.join(',')}` : '',
      p.ipProtocols !== undefined ? `IP protocols ${p.ipProtocols.join(',')}` : '',
    ];
    const named = ports.filter((x) => x !== '');
    // a protocol without ports of its own (http2) is found by its content, or handed on by another analyzer
    return `  ${p.name.padEnd(NAME_WIDTH)}${named.length > 0 ? named.join('  ') : 'by content'}`;
  })
  .join('\n')}`;

const ANALYZE_HELP = `  --flows                    also report flows (type: flow), as packetbeat
  --flow-period <seconds>    report active flows every N seconds of packet time (default 10)
  --flow-timeout <seconds>   a flow's final report after N idle seconds (default 30)
  --protocols <list>         analyzers to run (default: all, ${PROTOCOL_NAMES.join(',')})
  --ports <proto=ports>      ports of a protocol, replacing its defaults: a list of
                             ports and ranges, e.g. http=8080,8000-8010 (repeatable)
  --no-probe                 recognise protocols by port only, not by content
  --http-headers <list|all>  HTTP headers to put in events (default: none)
  --include-body-for <list>  content types whose HTTP bodies go into events: a
                             Content-Type containing one matches (default: none)
  --http-send-request, --http-send-response
                             the raw HTTP request, response in the event
  --http-max-message-size <bytes>  what is kept of one HTTP message (default 10 MiB)
  --http-real-ip-header <name>     network.forwarded_ip from this header (X-Forwarded-For)
  --http-redact-authorization      star Authorization values; no user.name
  --http-redact-headers <list>     captured values of these headers as REDACTED
  --http-hide-keywords <list>      these parameters' values in url.query as xxxxx
  --http-split-cookie              Cookie and Set-Cookie headers as maps
  --http-detect-mime-type          http.*.mime_type from the body's bytes
  --dns-include-authorities, --dns-include-additionals
                             the DNS authority, additional records in events (default: off)
  --thrift-idl <file>        a Thrift IDL file: names for the arguments and exceptions
                             of its services' methods, and thrift.service (repeatable)
  --tls-keylog <file>        an NSS key log (SSLKEYLOGFILE of curl, browsers, OpenSSL,
                             Go, Node): TLS connections whose secrets it holds are
                             decrypted and their HTTP reported as http events marked
                             url.scheme https and tls.* (read again as it grows: a
                             live client's log works; a pcapng Decryption Secrets
                             Block's key log is used without it)
  --workers <n>              run decode, reorderer and analyzers in n threads, the
                             frames dealt by connection (default 1: all in one thread;
                             docs/performance.md)
  --anomalies                also emit protocol violations and decode errors as
                             {"type":"anomaly"} events (per reason a burst of 10, then
                             10 per second of packet time)`;

const KAFKA_TIMEOUT_HELP = `  --kafka-timeout <seconds>  give up, with an error, after waiting this long on Kafka
                             with no progress (default 60); a broker restart within
                             it is ridden out`;

const KAFKA_OUT_HELP = `  --kafka-topic <topic>      send the raw frames to this Kafka topic instead of analyzing them
${BROKERS_HELP}
${KAFKA_TIMEOUT_HELP}
  --compression gzip         compress produce requests`;

const READ_HELP = `Usage: pktflow read <file|->... [options]

Reads pcap or pcapng captures (paths, or - for stdin) through the decoders, the
TCP reorderer and the protocol analyzers, and prints one JSON event per line.
Several files (rotated dumps: x.pcap x.1.pcap ...) are read in the order given as
one capture; pcap and pcapng may be mixed. A damaged file ends the run after the
frames before the damage, with one line: pktflow: FILE: offset N: reason (exit 1).

Options:
  -f, --filter <expr>        keep only the frames this BPF filter accepts (tcpdump's
                             filter language, compiled by libpcap through tcpdump)
  --interface-id <n>         keep only the frames of pcapng interface n (tshark's
                             frame.interface_id; pcap files are interface 0). A
                             capture made on two interfaces at once holds each
                             packet twice: the second copy is a retransmission to
                             the analyzers, but a frame to flows and counters
${KAFKA_OUT_HELP}
${ANALYZE_HELP}
${COMMON_RUN_HELP}

${PROTOCOLS_HELP}

Examples:
  pktflow read -f 'tcp port 80' trace.pcap
  pktflow read dump.pcap dump.1.pcap dump.2.pcap
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

${PROTOCOLS_HELP}

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
${BROKERS_HELP}
  --group <id>               consumer group (default: a new one for this replay)
  --from-beginning           a group without offsets starts at the beginning (default)
  --from-latest              ... or at new frames only
  --from-time <time>         start at the first frame at or after this time (ISO 8601 or ms)
  --follow                   keep following new frames as a group member
  --events-topic <topic>     write the events to this Kafka topic instead of stdout
${KAFKA_TIMEOUT_HELP}
${ANALYZE_HELP}
${COMMON_RUN_HELP}

${PROTOCOLS_HELP}
`;

const DEVICES_HELP = `Usage: pktflow devices [options]

Lists the interfaces libpcap can capture on, with their addresses and the link
type a capture on each will have.

Options:
  -h, --help                 show this help
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

const HELP_HELP = `Usage: pktflow help [command [subcommand]]

Shows a command's help (the same as 'pktflow <command> --help'), or without a
command the list of commands.
`;

/** every command: dispatch, the command list and `help` all come from this table */
const COMMANDS: readonly Command[] = [
  { name: 'read', args: '<file|->...', summary: 'analyze pcap/pcapng captures, print JSON events (one per line)', help: READ_HELP, run: read },
  { name: 'capture', args: '', summary: 'capture on a network interface, print JSON events', help: CAPTURE_HELP, run: capture },
  { name: 'replay', args: '--topic <t>', summary: 'analyze raw frames stored in a Kafka topic', help: REPLAY_HELP, run: replay },
  topics,
  { name: 'devices', args: '', summary: 'list the interfaces pktflow can capture on', help: DEVICES_HELP, run: devices },
  { name: 'run', args: '<pipeline.ts>', summary: 'run a pipeline file (export default definePipeline({...}))', help: RUN_HELP, run },
  { name: 'help', args: '[command]', summary: 'show help for a command', help: HELP_HELP, run: help },
];

function mainHelp(): string {
  return `pktflow ${VERSION}: network traffic analyzer (packetbeat's packet path as a stream pipeline)

Usage: pktflow <command> [options]

Commands:
${commandList(COMMANDS)}

Options for every command:
  -h, --help           show help

Run 'pktflow <command> --help' for a command's options.
`;
}

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
    switch (argv[0]) {
      case undefined:
      case '--help':
      case '-h':
        process.stdout.write(mainHelp());
        return 0;
      case '--version':
      case '-v':
        process.stdout.write(`${VERSION}\n`);
        return 0;
      default:
        return await dispatch(COMMANDS, argv, '');
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`pktflow: ${err.message}\nTry 'pktflow ${err.command ? `${err.command} ` : ''}--help'.\n`);
      return 2;
    }
    process.stderr.write(`pktflow: ${(err as Error).message}\n`);
    return 1;
  }
}

/** the command named by argv[0] in the table (a group passes the rest on), run with the rest */
async function dispatch(commands: readonly Command[], argv: string[], group: string): Promise<number> {
  const [name, ...rest] = argv;
  const cmd = lookup(commands, name, group);
  const full = group === '' ? cmd.name : `${group} ${cmd.name}`;
  try {
    if (cmd.subcommands === undefined) return await cmd.run!(rest);
    if (rest[0] === '--help' || rest[0] === '-h') throw new HelpRequest();
    return await dispatch(cmd.subcommands, rest, full);
  } catch (err) {
    if (err instanceof HelpRequest) {
      process.stdout.write(cmd.help);
      return 0;
    }
    // a filter libpcap cannot compile is a bad command line, whenever it is found
    const e = err instanceof BpfError ? new UsageError(err.message) : err;
    if (e instanceof UsageError) e.command ??= full;
    throw e;
  }
}

/** the command `name` in a table (of the group, '' for the top level), else a usage error listing the table */
function lookup(commands: readonly Command[], name: string | undefined, group: string): Command {
  const cmd = commands.find((c) => c.name === name);
  if (cmd !== undefined) return cmd;
  const names = commands.map((c) => c.name).join(', ');
  const where = group === '' ? '' : `${group} `;
  throw usage(name === undefined ? `${group} needs a command (${names})` : `unknown command "${where}${name}" (${where}commands: ${names})`, group);
}

function usage(message: string, command: string): UsageError {
  const e = new UsageError(message);
  e.command = command;
  return e;
}

/** help [command [subcommand]]: the help of a command in the table */
function help(args: string[]): number {
  if (args[0] === '--help' || args[0] === '-h') throw new HelpRequest();
  let text = mainHelp();
  let commands: readonly Command[] | undefined = COMMANDS;
  let group = '';
  for (const name of args) {
    if (commands === undefined) throw usage(`${group} has no subcommands`, group);
    const cmd = lookup(commands, name, group);
    text = cmd.help;
    commands = cmd.subcommands;
    group = group === '' ? name : `${group} ${name}`;
  }
  process.stdout.write(text);
  return 0;
}

export { CaptureError };
/** the entry of a --workers thread (bin/worker.js), in the same bundle */
export { workerMain } from '../pipeline/worker';
/** for the bin: a failed capture handle must never be collected (cap crashes) */
export { captureFailed } from '../sources/live';

const KAFKA_OUT_FLAGS = {
  ...BROKERS_FLAG,
  'kafka-topic': { type: 'string' },
  compression: { type: 'string' },
  'kafka-timeout': { type: 'string' },
} as const;

/** Kafka's sink and source, loaded (with kafkajs) by the commands that use them, not at every start */
function kafka(): typeof import('../sinks/kafka') & typeof import('../sources/kafka') {
  return { ...(require('../sinks/kafka') as typeof import('../sinks/kafka')), ...(require('../sources/kafka') as typeof import('../sources/kafka')) };
}

/** --brokers and --kafka-timeout */
function kafkaConnection(values: Record<string, unknown>): KafkaConnection {
  const timeout = seconds(values['kafka-timeout'], '--kafka-timeout');
  if (timeout === 0) throw new UsageError('--kafka-timeout takes a number of seconds above 0');
  return { brokers: brokers(values), timeoutMs: timeout !== undefined ? timeout * 1000 : undefined };
}

/**
 * read and capture: the frames through the frame stages (filter, dump), then through
 * the analyzer stages to stdout, or with --kafka-topic as raw frames to that topic,
 * not analyzed (a capture agent, or loading a file)
 */
function framesOrEvents(source: Source, frameStages: Stage<Frame, Frame>[], stages: AnalysisStages, values: Record<string, unknown>): Promise<number> {
  const frames = sequence('frames', frameStages);
  const options = runOptions(values);
  const topic = values['kafka-topic'] as string | undefined;
  if (topic === undefined) {
    if (stages.workers > 1) return execute(workerPipeline({ source, frames, stages: stages.options, options }, { workers: stages.workers }));
    return execute(definePipeline({ source, stages: [frames, ...analysis(stages)], sink: stdoutNdjson(), options }));
  }
  if (stages.workers > 1) throw new UsageError('--workers goes with analysis, not with --kafka-topic (frames are sent as read)');
  const c = values.compression;
  if (c !== undefined && c !== 'gzip' && c !== 'none') throw new UsageError(`--compression takes gzip or none, not "${c}"`);
  const sink = kafka().kafkaFrames({ topic, ...kafkaConnection(values), compression: c as 'gzip' | 'none' | undefined });
  return execute(definePipeline({ source, stages: [frames], sink, options }));
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
  'http-send-request': { type: 'boolean' },
  'http-send-response': { type: 'boolean' },
  'http-max-message-size': { type: 'string' },
  'http-real-ip-header': { type: 'string' },
  'http-redact-authorization': { type: 'boolean' },
  'http-redact-headers': { type: 'string' },
  'http-hide-keywords': { type: 'string' },
  'http-split-cookie': { type: 'boolean' },
  'http-detect-mime-type': { type: 'boolean' },
  'dns-include-authorities': { type: 'boolean' },
  'dns-include-additionals': { type: 'boolean' },
  'thrift-idl': { type: 'string', multiple: true },
  'tls-keylog': { type: 'string' },
  anomalies: { type: 'boolean' },
  workers: { type: 'string' },
} as const;

/** the default stages, configured by the analyzer flags: made here, or (--workers) the options for the worker threads */
interface AnalysisStages {
  options: EventStagesOptions;
  /** 1: the stages run here */
  workers: number;
}

function stagesFrom(values: Record<string, unknown>): AnalysisStages {
  const options = stageOptions(values);
  const workers = positiveInt(values.workers, '--workers') ?? 1;
  try {
    // made once here in every case: options the stages refuse are a bad command line
    eventStages(options);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return { options, workers };
}

/** the analyzer stages in this thread */
function analysis(s: AnalysisStages) {
  return eventStages(s.options);
}

function stageOptions(values: Record<string, unknown>): EventStagesOptions {
  const headers = values['http-headers'] === 'all' ? 'all' : list(values['http-headers']);
  try {
    const http = definedOnly({
      sendHeaders: headers,
      includeBodyFor: list(values['include-body-for']),
      sendRequest: values['http-send-request'],
      sendResponse: values['http-send-response'],
      maxMessageSize: positiveInt(values['http-max-message-size'], '--http-max-message-size'),
      realIpHeader: values['http-real-ip-header'],
      redactAuthorization: values['http-redact-authorization'],
      redactHeaders: list(values['http-redact-headers']),
      hideKeywords: list(values['http-hide-keywords']),
      splitCookie: values['http-split-cookie'],
      detectMimeType: values['http-detect-mime-type'],
    });
    const period = seconds(values['flow-period'], '--flow-period');
    const timeout = seconds(values['flow-timeout'], '--flow-timeout');
    if ((period !== undefined || timeout !== undefined) && values.flows !== true) throw new UsageError('--flow-period and --flow-timeout go with --flows');
    return {
      tcp: { flows: values.flows === true ? { periodSec: period, timeoutSec: timeout } : false },
      // default: every protocol in the registry
      protocols: list(values.protocols)?.map((p) => knownProtocol(p, PROTOCOL_NAMES, '--protocols')),
      ports: ports(values.ports, PROTOCOL_NAMES),
      probe: values['no-probe'] !== true,
      anomalies: values.anomalies === true,
      options: {
        http,
        // HTTP/2's streams are http events under the same options
        http2: http,
        dns: definedOnly({ includeAuthorities: values['dns-include-authorities'], includeAdditionals: values['dns-include-additionals'] }),
        thrift: definedOnly({ idlFiles: values['thrift-idl'] as string[] | undefined }),
        tls: definedOnly({ keylogFile: values['tls-keylog'] }),
      },
    };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function nonNegativeInt(v: unknown, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} takes a whole number from 0, not "${v}"`);
  return n;
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

async function read(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { ...RUN_FLAGS, ...ANALYZE_FLAGS, ...KAFKA_OUT_FLAGS, filter: { type: 'string', short: 'f' }, 'interface-id': { type: 'string' } }, Infinity);
  if (positionals.length === 0) throw new UsageError('read needs a capture file (or - for stdin)');
  if (positionals.filter((p) => p === '-').length > 1) throw new UsageError('standard input (-) can be read only once');
  const frameStages: Stage<Frame, Frame>[] = [];
  if (values['interface-id'] !== undefined) frameStages.push(interfaceFilter(nonNegativeInt(values['interface-id'], '--interface-id')));
  if (values.filter !== undefined) frameStages.push(bpfFilter(values.filter as string));
  frameStages.push(...dumpStage(values));
  return framesOrEvents(captureFile({ path: positionals }), frameStages, stagesFrom(values), values);
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
  const snaplen = positiveInt(values.snaplen, '--snaplen');
  const bufferKiB = positiveInt(values['buffer-size'], '--buffer-size');
  const count = positiveInt(values.count, '--count');
  const stages = stagesFrom(values);
  const dump = dumpStage(values);
  const live = liveCapture({
    device: values.interface as string | undefined,
    filter: values.filter as string | undefined,
    snaplen,
    bufferBytes: bufferKiB !== undefined ? bufferKiB * 1024 : undefined,
  });
  // open now: a missing device, bad filter or missing permission is one line, before any output
  live.open();
  process.stderr.write(`pktflow: capturing on ${live.device}${values.filter ? ` (filter: ${values.filter})` : ''}\n`);
  return framesOrEvents(count !== undefined ? firstFrames(live, count) : live, dump, stages, values);
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
      ...BROKERS_FLAG,
      topic: { type: 'string' },
      'kafka-timeout': { type: 'string' },
      group: { type: 'string' },
      'from-beginning': { type: 'boolean' },
      'from-latest': { type: 'boolean' },
      'from-time': { type: 'string' },
      follow: { type: 'boolean' },
      'events-topic': { type: 'string' },
    },
    0,
  );
  if (values.topic === undefined) throw new UsageError('replay needs --topic');
  if (values['from-beginning'] && values['from-latest']) throw new UsageError('--from-beginning and --from-latest exclude each other');
  let fromTimestamp: number | undefined;
  if (values['from-time'] !== undefined) {
    const t = values['from-time'] as string;
    fromTimestamp = /^\d+$/.test(t) ? Number(t) : Date.parse(t);
    if (!Number.isFinite(fromTimestamp)) throw new UsageError(`--from-time takes an ISO 8601 time or milliseconds, not "${t}"`);
  }
  const stages = stagesFrom(values);
  const source = kafka().kafkaSource({
    topic: values.topic as string,
    ...kafkaConnection(values),
    groupId: values.group as string | undefined,
    from: values['from-latest'] ? 'latest' : 'beginning',
    fromTimestamp,
    follow: values.follow === true,
  });
  const frames = sequence('frames', dumpStage(values));
  if (stages.workers > 1) {
    // the workers' state is not yet held against commits nor dropped on a rebalance (docs/kafka.md): a one-off replay only
    if (values.follow === true || values.group !== undefined || values['events-topic'] !== undefined) throw new UsageError('--workers does not yet go with --follow, --group or --events-topic');
    return execute(workerPipeline({ source, frames, stages: stages.options, options: runOptions(values) }, { workers: stages.workers }));
  }
  return execute(
    definePipeline({
      source,
      stages: [frames, ...analysis(stages)],
      sink: values['events-topic'] !== undefined ? kafka().kafkaEvents({ topic: values['events-topic'] as string, ...kafkaConnection(values) }) : stdoutNdjson(),
      options: runOptions(values),
    }),
  );
}

function devices(args: string[]): number {
  parse(args, {}, 0);
  for (const d of listDevices()) {
    const addrs = d.addresses.map((a) => a.addr).join(', ');
    const flags = d.flags ? ` [${d.flags.replace(/PCAP_IF_/g, '').toLowerCase()}]` : '';
    process.stdout.write(`${d.name}\t${deviceLinkType(d.name)}\t${addrs || '-'}${flags}${d.description ? `\t${d.description}` : ''}\n`);
  }
  return 0;
}

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { ...RUN_FLAGS, input: { type: 'string' }, 'no-typecheck': { type: 'boolean' } }, 1);
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

function definedOnly<T extends object>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== false) out[k] = v;
  if ((o as PipelineOptions).printStats === false) out.printStats = false;
  return out as T;
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
