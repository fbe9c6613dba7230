/**
 * Analysis of stored raw frames: replay a Kafka topic written by a capture agent
 * through the decoders, the TCP reorderer and the analyzers, events to stdout.
 * Offsets are committed (group "pktflow-analyzers") once the events are written.
 *
 *   pktflow run pipelines/kafka-replay-to-stdout.ts
 */
import { analyze, decode, definePipeline, kafkaSource, stdoutNdjson, tcpReorder } from '../src';

const analyzers = analyze({ protocols: ['http', 'dns', 'icmp'] });

export default definePipeline({
  source: kafkaSource({ brokers: (process.env.PKTFLOW_KAFKA ?? '127.0.0.1:9092').split(','), topic: 'pktflow.frames', groupId: 'pktflow-analyzers' }),
  stages: [decode(), tcpReorder({ isServerPort: analyzers.isServerPort }), analyzers],
  sink: stdoutNdjson(),
});
