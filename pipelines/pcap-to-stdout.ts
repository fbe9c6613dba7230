/**
 * The default pipeline: a capture file (or stdin with `--input -`) through the
 * decoders, the TCP reorderer and the HTTP and DNS analyzers, to NDJSON on stdout.
 *
 *   pktflow run pipelines/pcap-to-stdout.ts --input trace.pcap
 */
import { analyze, captureFile, decode, definePipeline, stdoutNdjson, tcpReorder } from '../src';

const analyzers = analyze({ protocols: ['http', 'dns'] });

export default definePipeline({
  source: captureFile({ path: 'fixtures/http-dns.pcap' }),
  stages: [decode(), tcpReorder({ isServerPort: analyzers.isServerPort }), analyzers],
  sink: stdoutNdjson(),
  options: { statsIntervalSec: 0 },
});
