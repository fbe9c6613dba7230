/** Benchmark pipeline: raw frames replayed from Kafka (PKTFLOW_BENCH_TOPIC) and discarded: the source alone. */
import { definePipeline, discard, kafkaSource, type Frame } from '../src';

export default definePipeline({
  source: kafkaSource({ topic: process.env.PKTFLOW_BENCH_TOPIC ?? 'pktflow.frames' }),
  stages: [],
  sink: discard<Frame>(),
});
