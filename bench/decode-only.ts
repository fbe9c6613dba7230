/** Benchmark pipeline: source and decoders only, packets discarded. */
import { captureFile, decode, definePipeline, discard, type Packet } from '../src';

export default definePipeline({
  source: captureFile({ path: 'bench/out/http-keepalive.pcap' }),
  stages: [decode()],
  sink: discard<Packet>(),
});
