/**
 * A capture agent: frames from a live interface go, undecoded, to a Kafka topic of
 * raw frames (docs/kafka.md), keyed so both directions of a connection share a
 * partition. Analysis happens later, on as many consumers as needed:
 *
 *   pktflow run pipelines/live-to-kafka.ts
 *   pktflow replay --topic pktflow.frames --group analyzers --follow
 */
import { definePipeline, kafkaFrames, liveCapture } from '../src';

export default definePipeline({
  source: liveCapture({ device: process.env.PKTFLOW_DEVICE ?? 'lo', filter: process.env.PKTFLOW_FILTER ?? '' }),
  stages: [],
  sink: kafkaFrames({ brokers: (process.env.PKTFLOW_KAFKA ?? '127.0.0.1:9092').split(','), topic: 'pktflow.frames', compression: 'gzip' }),
});
