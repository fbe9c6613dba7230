/**
 * A custom sink: HTTP transactions as CSV on stdout, one row each. docs/pipelines.md
 * walks through it.
 *
 *   pktflow run pipelines/examples/http-csv.ts [--input trace.pcap] > http.csv
 */
import type { Writable } from 'node:stream';
import { captureFile, definePipeline, eventStages, type Event, type Sink, type Stats } from '../../src';

const HEADER = 'time,client,server,method,url,status,duration_ms,response_bytes\n';

export class HttpCsvSink implements Sink<Event> {
  readonly name = 'http-csv';
  // for the run-time check of a pipeline loaded without type-checking (optional)
  readonly takes = 'Event';
  closed = false;
  private rows = 0;
  private headerWritten = false;

  constructor(private readonly out: Writable = process.stdout) {
    // a reader that went away (| head) ends the run quietly
    out.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      this.closed = true;
    });
  }

  /** one write per batch; false (wait for drained()) when the stream's buffer is full */
  write(batch: Event[]): boolean {
    let text = this.headerWritten ? '' : HEADER;
    this.headerWritten = true;
    for (const e of batch) {
      if (e.type !== 'http' || e.url === undefined) continue;
      const r = e.http.response;
      text += [e['@timestamp'], e.client.ip, e.server.ip, e.method ?? '', e.url.full, r?.status_code ?? '', (e.event.duration / 1e6).toFixed(3), r?.bytes ?? ''].map(csv).join(',') + '\n';
      this.rows++;
    }
    return text === '' || this.out.write(text);
  }

  drained(): Promise<void> {
    if (this.closed || !this.out.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => this.out.once('drain', resolve));
  }

  /** stdout is never ended: wait until what was written is handed to the OS */
  end(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.out.write(this.headerWritten ? '' : HEADER, () => resolve()));
  }

  stats(): Stats {
    return { rows: this.rows };
  }
}

/** a CSV field: quoted when it holds a comma, a quote or a line break */
function csv(v: string | number): string {
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export default definePipeline({
  source: captureFile({ path: 'fixtures/http-dns.pcap' }),
  stages: [...eventStages({ protocols: ['http'] })],
  sink: new HttpCsvSink(),
});
