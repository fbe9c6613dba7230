/** Benchmark pipeline: raw frames replayed from Kafka (PKTFLOW_BENCH_TOPIC) and discarded: the source alone. */
import { definePipeline, discard, kafkaSource, type Frame } from '../src';

export default definePipeline({
  source: kafkaSource({ topic: process.env.PKTFLOW_BENCH_TOPIC ?? 'pktflow.frames', brokers: [process.env.PKTFLOW_BENCH_BROKERS ?? '127.0.0.1:9092'] }),
  stages: [],
  sink: discard<Frame>(),
});
