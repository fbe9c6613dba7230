/**
 * Live capture on loopback through the default analyzers (HTTP, DNS, ICMP) and
 * flows, JSON events on stdout. Needs root or CAP_NET_RAW. Stop with Ctrl-C: pending
 * transactions and flows are flushed, the counters printed.
 *
 *   pktflow run pipelines/live-to-stdout.ts
 */
import { analyze, decode, definePipeline, liveCapture, stdoutNdjson, tcpReorder } from '../src';

const analyzers = analyze({ protocols: ['http', 'dns', 'icmp'] });

export default definePipeline({
  source: liveCapture({ device: 'lo', filter: 'tcp port 80 or tcp port 8080 or port 53 or icmp or icmp6', batchMs: 100, batchFrames: 1024 }),
  stages: [decode(), tcpReorder({ isServerPort: analyzers.isServerPort, flows: { periodSec: 10, timeoutSec: 30 } }), analyzers],
  sink: stdoutNdjson(),
});
