/**
 * A filtering stage: only the DNS lookups that failed (NXDOMAIN, SERVFAIL,
 * REFUSED, ...) or got no answer, as NDJSON. docs/pipelines.md walks through it.
 *
 *   pktflow run pipelines/examples/dns-failures.ts [--input trace.pcap]
 */
import { captureFile, definePipeline, eventStages, stdoutNdjson, type DnsEvent, type Event, type Stage } from '../../src';

export function dnsFailures(): Stage<Event, DnsEvent> {
  let lookups = 0;
  let failed = 0;
  return {
    name: 'dnsFailures',
    // for the run-time check of a pipeline loaded without type-checking (optional)
    takes: 'Event',
    outputs: 'Event',
    push(batch) {
      const out: DnsEvent[] = [];
      for (const e of batch) {
        if (e.type !== 'dns') continue;
        // e is a DnsEvent here: e.dns needs no cast; no response_code means no answer came
        lookups++;
        if (e.dns.response_code !== 'NOERROR') {
          failed++;
          out.push(e);
        }
      }
      return out;
    },
    // nothing held back between batches
    flush: () => [],
    stats: () => ({ lookups, failed }),
  };
}

export default definePipeline({
  source: captureFile({ path: 'fixtures/http-dns.pcap' }),
  stages: [...eventStages({ protocols: ['dns'] }), dnsFailures()],
  sink: stdoutNdjson<DnsEvent>(),
});
