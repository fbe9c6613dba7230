import type { PartitionInfo } from '../kafka/topics';

/** kafkajs is loaded by these commands only, not at every start of pktflow */
const admin = () => require('../kafka/topics') as typeof import('../kafka/topics');
import { brokers, BROKERS_FLAG, BROKERS_HELP, commandList, parse, positiveInt, UsageError, type Command } from './args';

/** Kafka's rule for topic names (kafka.common.Topic): 1-249 of [a-zA-Z0-9._-], not "." or ".." */
function topicName(positionals: string[], cmd: string): string {
  const t = positionals[0];
  if (t === undefined) throw new UsageError(`topics ${cmd} needs a topic name`);
  if (!/^[a-zA-Z0-9._-]{1,249}$/.test(t) || t === '.' || t === '..') {
    throw new UsageError(`"${t}" is not a Kafka topic name (1-249 letters, digits, '.', '_', '-')`);
  }
  return t;
}

const create: Command = {
  name: 'create',
  args: '<topic>',
  summary: 'create a topic for raw frames or events',
  help: `Usage: pktflow topics create <topic> [options]

Creates a Kafka topic. Its partition count is how many analyzers (replay --group)
can share it; a connection's frames always stay in one partition. Creating a topic
that exists is an error.

Options:
  --partitions <n>           partitions (default: the broker's num.partitions)
  --replication-factor <n>   copies of each partition (default: the broker's
                             default.replication.factor)
${BROKERS_HELP}
  -h, --help                 show this help

Example:
  pktflow topics create pktflow.frames --partitions 8
`,
  async run(args) {
    const { values, positionals } = parse(args, { ...BROKERS_FLAG, partitions: { type: 'string' }, 'replication-factor': { type: 'string' } }, 1);
    const topic = topicName(positionals, 'create');
    const partitions = positiveInt(values.partitions, '--partitions');
    const replicationFactor = positiveInt(values['replication-factor'], '--replication-factor');
    const n = await admin().createTopic({ brokers: brokers(values) }, topic, { partitions, replicationFactor });
    process.stdout.write(`created topic ${topic} (${n} partition${n === 1 ? '' : 's'})\n`);
    return 0;
  },
};

const listCommand: Command = {
  name: 'list',
  args: '',
  summary: 'list the topics, with their partition counts',
  help: `Usage: pktflow topics list [options]

Lists the broker's topics (not Kafka's internal ones), one per line: name, a tab,
the partition count.

Options:
${BROKERS_HELP}
  -h, --help                 show this help
`,
  async run(args) {
    const { values } = parse(args, BROKERS_FLAG, 0);
    for (const t of await admin().listTopics({ brokers: brokers(values) })) process.stdout.write(`${t.name}\t${t.partitions}\n`);
    return 0;
  },
};

const describe: Command = {
  name: 'describe',
  args: '<topic>',
  summary: 'partitions, offsets and the times of the first and last frame',
  help: `Usage: pktflow topics describe <topic> [options]

Shows a topic's partitions: leader and replicas, the low and high offsets (the
first stored, and the next to be written: high - low frames are stored), and the
capture times of the first and the last frame in each partition (read from those
two messages; "-" for an empty partition or a message that is not a raw frame).

Options:
${BROKERS_HELP}
  -h, --help                 show this help
`,
  async run(args) {
    const { values, positionals } = parse(args, BROKERS_FLAG, 1);
    const info = await admin().describeTopic({ brokers: brokers(values) }, topicName(positionals, 'describe'));
    const ps = info.partitions;
    const frames = ps.reduce((n, p) => n + p.high - p.low, 0);
    process.stdout.write(`topic ${info.name}: ${ps.length} partition${ps.length === 1 ? '' : 's'}, replication factor ${ps[0]?.replicas.length ?? 0}, ${frames} messages\n`);
    process.stdout.write(table(['partition', 'leader', 'replicas', 'in-sync', 'low', 'high', 'first frame', 'last frame'], ps.map(row)));
    return 0;
  },
};

function row(p: PartitionInfo): string[] {
  return [p.partition, p.leader, p.replicas.join(','), p.isr.join(','), p.low, p.high, time(p.first), time(p.last)].map(String);
}

/** nanoseconds since the epoch as ISO 8601, to the millisecond */
function time(ns: bigint | null): string {
  return ns === null ? '-' : new Date(Number(ns / 1_000_000n)).toISOString();
}

/** columns padded to their widest cell, two spaces apart */
function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ') + '\n').join('');
}

const SUBCOMMANDS: readonly Command[] = [create, listCommand, describe];

export const topics: Command = {
  name: 'topics',
  args: '<command>',
  summary: 'create, list and describe Kafka topics',
  help: `Usage: pktflow topics <command> [options]

Kafka topics for raw frames (capture/read --kafka-topic, replay --topic) and for
events (replay --events-topic), through the Kafka admin API.

Commands:
${commandList(SUBCOMMANDS)}

Run 'pktflow topics <command> --help' for a command's options.
`,
  subcommands: SUBCOMMANDS,
};
