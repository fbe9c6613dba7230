import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { definePipeline, isPipeline, type Pipeline, type PipelineOptions } from '../pipeline/define';
import { eventStages } from '../pipeline/presets';
import { runPipeline } from '../pipeline/runner';
import { stdoutNdjson } from '../sinks/ndjson';
import { captureFile } from '../sources/file';
import { list, parse, ports, seconds, UsageError } from './args';

const VERSION = '0.1.0';

const HELP = `pktflow ${VERSION}: network traffic analyzer (packetbeat's packet path as a stream pipeline)

Usage: pktflow <command> [options]

Commands:
  read <file|->        analyze a pcap/pcapng capture, print JSON events (one per line)
  run <pipeline.ts>    run a pipeline file (export default definePipeline({...}))
  help [command]       show help for a command

Options for every command:
  -h, --help           show help

Run 'pktflow <command> --help' for a command's options.
`;

const COMMON_RUN_HELP = `  --stats <seconds>          also print counters to stderr every N seconds
  --stats-event              end the output with a {"type":"stats"} event
  -q, --quiet                no counters on stderr at the end
  -h, --help                 show this help`;

const READ_HELP = `Usage: pktflow read <file|-> [options]

Reads a pcap or pcapng capture (a path, or - for stdin) through the decoders, the
TCP reorderer and the protocol analyzers, and prints one JSON event per line.

Options:
  --protocols <list>         analyzers to run (default: http,dns)
  --ports <proto=p1,p2>      ports of a protocol, replacing its defaults (repeatable)
  --no-probe                 recognise protocols by port only, not by content
  --http-headers <list|all>  HTTP headers to put in events (default: none)
  --include-body-for <list>  content types whose HTTP bodies go into events
${COMMON_RUN_HELP}

Examples:
  pktflow read trace.pcap | jq -c 'select(.type=="http") | .http.response.status_code'
  tcpdump -w - -i lo | pktflow read - --ports http=8080
`;

const RUN_HELP = `Usage: pktflow run <pipeline.ts> [options]

Loads a pipeline file, type-checks it, and runs it. The file's default export
is a pipeline: export default definePipeline({ source, stages, sink, options }).

Options:
  --input <path|->           read this capture instead of the pipeline's own source
  --no-typecheck             load the file without type-checking it first
${COMMON_RUN_HELP}
`;

const RUN_FLAGS = {
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
        if (rest[0] === 'read') process.stdout.write(READ_HELP);
        else if (rest[0] === 'run') process.stdout.write(RUN_HELP);
        else process.stdout.write(HELP);
        return 0;
      case '--version':
      case '-v':
        process.stdout.write(`${VERSION}\n`);
        return 0;
      case 'read':
        return await read(rest);
      case 'run':
        return await run(rest);
      default:
        throw new UsageError(`unknown command "${cmd}" (commands: read, run, help)`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`pktflow: ${err.message}\nTry 'pktflow ${argv[0] && ['read', 'run'].includes(argv[0]) ? argv[0] + ' ' : ''}--help'.\n`);
      return 2;
    }
    process.stderr.write(`pktflow: ${(err as Error).message}\n`);
    return 1;
  }
}

async function read(args: string[]): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      ...RUN_FLAGS,
      protocols: { type: 'string' },
      ports: { type: 'string', multiple: true },
      'no-probe': { type: 'boolean' },
      'http-headers': { type: 'string' },
      'include-body-for': { type: 'string' },
    },
    1,
  );
  if (values.help) {
    process.stdout.write(READ_HELP);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('read needs a capture file (or - for stdin)');
  const headers = values['http-headers'] === 'all' ? 'all' : list(values['http-headers']);
  const stagesOpts = {
    protocols: list(values.protocols) ?? ['http', 'dns'],
    ports: ports(values.ports),
    probe: values['no-probe'] !== true,
    options: {
      http: {
        ...(headers !== undefined ? { sendHeaders: headers } : {}),
        ...(values['include-body-for'] !== undefined ? { includeBodyFor: list(values['include-body-for']) } : {}),
      },
    },
  };
  let stages;
  try {
    stages = eventStages(stagesOpts);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const pipeline = definePipeline({
    source: captureFile({ path: positionals[0] }),
    stages: [...stages],
    sink: stdoutNdjson(),
    options: runOptions(values),
  });
  return execute(pipeline);
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
    process.stderr.write(`pktflow: cannot load ${positionals[0]}: ${(err as Error).message.split('\n')[0]}\n`);
    return 2;
  }
  const pipeline = mod.default;
  if (!isPipeline(pipeline)) {
    process.stderr.write(`pktflow: ${positionals[0]} does not export a pipeline (export default definePipeline({ source, stages, sink }))\n`);
    return 2;
  }
  const p: Pipeline = pipeline;
  const input = values.input as string | undefined;
  return execute({
    ...p,
    source: input !== undefined ? captureFile({ path: input }) : p.source,
    options: { ...p.options, ...definedOnly(runOptions(values)) },
  });
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
