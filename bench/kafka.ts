/**
 * npm run bench:kafka: produce and replay throughput against the local broker
 * (scripts/kafka.sh), each beside the Java client's own perf tools on the same
 * volume, and end-to-end replay-to-events against reading the capture file and
 * against tshark. Then memory under a slow reader: the replay's peak RSS with its
 * stdout drained at 20 MB/s against an unthrottled replay.
 * Results go to stdout (markdown) and bench/out/kafka.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { benchCapture, flag, machine, measure, median, range, ROOT, target, type Measure } from './common';

const runs = Number(flag('--runs', '3'));
// KAFKA_PORT (and KAFKA_CONTROLLER_PORT, KAFKA_DIR) move the broker, as for scripts/kafka.sh
const brokers = `127.0.0.1:${process.env.KAFKA_PORT ?? '9092'}`;
const { file, frames, bytes } = benchCapture();
const node = process.execPath;
const pktflow = `${node} bin/pktflow.js`;
process.env.PKTFLOW_BENCH_BROKERS = brokers;
const java = `java -Xmx1g -Dlog4j.configuration=file:/dev/null -cp '.kafka/libs/*'`;
// the frames' own bytes, without the pcap record headers: what goes into the messages
const frameBytes = bytes - 24 - 16 * frames;
const recordSize = Math.round(frameBytes / frames);

execFileSync('bash', ['scripts/kafka.sh', 'start'], { cwd: ROOT, stdio: 'inherit' });
mkdirSync(path.join(ROOT, 'bench/out'), { recursive: true });
const stamp = Date.now();
const topics: string[] = [];
function newTopic(name: string): string {
  const t = `bench-${name}-${stamp}-${topics.length}`;
  execFileSync('java', ['-Dlog4j.configuration=file:/dev/null', '-cp', '.kafka/libs/*', 'org.apache.kafka.tools.TopicCommand', '--bootstrap-server', brokers, '--create', '--topic', t, '--partitions', '4'], { cwd: ROOT, stdio: 'ignore' });
  topics.push(t);
  return t;
}

// production: a topic per run, so every run writes the same volume into an empty topic
let frameTopic = '';
const produce = measure('pktflow read FILE --kafka-topic T (frames → Kafka)', `${pktflow} read -q ${file} --kafka-topic "$T" --brokers ${brokers}`, {
  runs,
  before: () => (process.env.T = frameTopic = newTopic('frames')),
});
const produceJava = measure(`Java ProducerPerformance (${frames} records of ${recordSize} B, acks=all)`, `${java} org.apache.kafka.tools.ProducerPerformance --topic "$T" --num-records ${frames} --record-size ${recordSize} --throughput -1 --producer-props bootstrap.servers=${brokers} acks=all`, {
  runs,
  before: () => (process.env.T = newTopic('java')),
});

// consumption of the last frame topic: raw frames only, then the whole pipeline
process.env.T = frameTopic;
process.env.PKTFLOW_BENCH_TOPIC = frameTopic;
const consume = measure('pktflow replay, frames only (kafka source → discard)', `${pktflow} run bench/kafka-frames-only.ts --no-typecheck -q`, { runs });
// fetch.max.wait.ms=10: with its default (500) the Java consumer waits out long polls on partitions
// that are already at their end (the capture's 4 connections fill 3 of 4 partitions) and takes 10x longer
const props = path.join(ROOT, 'bench/out/consumer.properties');
writeFileSync(props, 'fetch.max.wait.ms=10\n');
const consumeJava = measure('Java ConsumerPerformance (same topic, fetch.max.wait.ms=10)', `${java} org.apache.kafka.tools.ConsumerPerformance --bootstrap-server ${brokers} --topic "$T" --messages ${frames} --timeout 60000 --consumer.config ${props}`, { runs });
const replay = measure('pktflow replay --topic T → /dev/null (all stages, events)', `${pktflow} replay -q --topic "$T" --brokers ${brokers}`, { runs });
const read = measure('pktflow read FILE → /dev/null (the same, from the file)', `${pktflow} read -q ${file}`, { runs });
const tshark = measure('tshark -r FILE -Y http.response -T fields', `tshark -r ${file} -Y http.response -T fields -e http.response.code`, { runs });
const slow = measure('pktflow replay --topic T | reader at 20 MB/s', `${pktflow} replay -q --topic "$T" --brokers ${brokers}`, { runs: 1, after: ` | ${node} bench/throttle.js 20` });
// a short replay: what joining the group, the first fetch and leaving cost (the topic holds fixtures/http-dns.pcap)
process.env.T = newTopic('short');
execFileSync(node, ['bin/pktflow.js', 'read', '-q', 'fixtures/http-dns.pcap', '--kafka-topic', process.env.T, '--brokers', brokers], { cwd: ROOT, stdio: 'ignore' });
const short = measure('pktflow replay of fixtures/http-dns.pcap (102 frames)', `${pktflow} replay -q --topic "$T" --brokers ${brokers}`, { runs: Math.max(runs, 9) });

const row = (m: Measure, ref?: Measure) => {
  const s = median(m.seconds);
  const ratio = ref ? `${(median(ref.seconds) / s).toFixed(2)}x` : '';
  return { name: m.name, seconds: s, spread: range(m.seconds), cpuSeconds: +median(m.cpu).toFixed(2), framesPerSec: Math.round(frames / s), mbPerSec: +(frameBytes / s / 1e6).toFixed(1), peakRssMiB: Math.round(median(m.rssKiB) / 1024), ratio };
};
const rows = [
  row(produce, produceJava),
  row(produceJava),
  row(consume, consumeJava),
  row(consumeJava),
  row(replay, tshark),
  row(read, tshark),
  row(tshark),
  row(slow),
];
const out = { date: new Date().toISOString(), machine: machine(), file: path.relative(ROOT, file), frames, frameBytes, runs, rows, shortReplay: { seconds: median(short.seconds), spread: range(short.seconds) } };
mkdirSync(path.join(ROOT, 'bench/out'), { recursive: true });
writeFileSync(path.join(ROOT, 'bench/out/kafka.json'), JSON.stringify(out, null, 2) + '\n');
console.log(`${out.machine}; Kafka 3.9.1, one broker on 127.0.0.1, 4 partitions\n${frames} frames, ${(frameBytes / 1e6).toFixed(1)} MB of frame bytes, median of ${runs} runs (wall time includes start-up)\n`);
console.log('| run | seconds (range) | CPU s | frames/s | MB/s | peak RSS MiB | ratio |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.name} | ${r.seconds.toFixed(2)} (${r.spread}) | ${r.cpuSeconds.toFixed(2)} | ${r.framesPerSec.toLocaleString('en')} | ${r.mbPerSec} | ${r.peakRssMiB} | ${r.ratio} |`);
console.log('\nratio: pktflow against the Java client for production and consumption, against tshark for analysis (higher is faster)');
console.log(`\n${short.name}: ${median(short.seconds).toFixed(2)} s (${range(short.seconds)}), median of ${short.seconds.length}`);
// issue 10's targets, on the wall-time medians of this run
target('production against Java ProducerPerformance', parseFloat(rows[0].ratio), 0.8, 'x');
target('replay analysis against tshark', parseFloat(rows[4].ratio), 3.5, 'x');
// the topics are the benchmark's own: leave the broker as it was
execFileSync('java', ['-Dlog4j.configuration=file:/dev/null', '-cp', '.kafka/libs/*', 'org.apache.kafka.tools.TopicCommand', '--bootstrap-server', brokers, '--delete', '--topic', topics.join('|')], { cwd: ROOT, stdio: 'ignore' });
