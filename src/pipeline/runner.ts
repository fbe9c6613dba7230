import { Observable, tap, type OperatorFunction } from 'rxjs';
import type { Frame } from '../core/frame';
import { asStageError, toOperator, type Stats } from '../core/stage';
import { formatStats } from './stats';
import { pipelineMismatch, type Pipeline } from './define';

export interface RunResult {
  /** the source's error (e.g. a damaged capture), after everything before it was processed */
  error: Error | null;
  /** the reader of the output went away */
  readerClosed: boolean;
  stats: Record<string, Stats>;
}

export interface RunHandle {
  done: Promise<RunResult>;
  /** stop reading; pending state is flushed through the stages and the sink */
  stop(): void;
}

export interface RunIO {
  stderr?: NodeJS.WritableStream & { isTTY?: boolean };
}

/**
 * Run a pipeline: the source's batches flow through the stages (each lifted into
 * an RxJS operator) into the sink. RxJS has no backpressure, so the runner
 * provides it: the source is asked for its next batch only once the sink has
 * taken the previous one (and drained, when it said it was full). Memory is then
 * bounded by one batch per stage plus the sink's buffer. Throws at once when two
 * neighbours say they disagree on what passes between them (`pipelineMismatch`).
 * An exception in a stage's or the sink's code ends the run with a StageError that
 * names it (`stage "myFilter": ...`), after the source is told to commit nothing more.
 */
export function runPipeline(p: Pipeline, io: RunIO = {}): RunHandle {
  const mismatch = pipelineMismatch(p);
  if (mismatch !== null) throw new Error(mismatch);
  const stderr = io.stderr ?? process.stderr;
  /** nobody subscribes any more (a stage failed): the source is not read further */
  let unsubscribed = false;
  let sourceError: Error | null = null;
  let timer: NodeJS.Timeout | null = null;

  p.source.setStateDiscarder?.(() => {
    for (const s of p.stages) call(s.name, () => s.discard?.());
  });
  const frames$ = new Observable<Frame[]>((subscriber) => {
    (async () => {
      try {
        for await (const batch of p.source.batches()) {
          subscriber.next(batch);
          if (p.sink.closed || unsubscribed) break;
          await p.sink.drained();
          if (p.source.acknowledge) {
            // at-least-once: the source may commit this batch once its events are acknowledged
            if (p.sink.allAcked) await p.sink.allAcked();
            p.source.acknowledge();
          }
          if (p.sink.closed || unsubscribed) break;
        }
      } catch (err) {
        sourceError = err as Error;
      }
      // complete (never error) so every stage flushes what it holds
      subscriber.complete();
    })();
    return () => {
      unsubscribed = true;
    };
  });

  const ops = p.stages.map((s) => toOperator(s) as OperatorFunction<unknown[], unknown[]>);
  const out$ = ops.reduce<Observable<unknown[]>>((o, op) => o.pipe(op), frames$ as Observable<unknown[]>);
  // the sink's write is called in the chain, so that its exception ends the run as a stage's does
  const written$ = out$.pipe(
    tap((batch) => {
      if (batch.length === 0) return;
      try {
        p.sink.write(batch);
      } catch (err) {
        throw asStageError(p.sink.name, err, 'sink');
      }
    }),
  );

  const collectStats = (): Record<string, Stats> => {
    const all: Record<string, Stats> = { source: p.source.stats() };
    for (const s of p.stages) all[s.name] = call(s.name, () => s.stats());
    all.sink = call(p.sink.name, () => p.sink.stats(), 'sink');
    return all;
  };
  const printStats = (final: boolean) => {
    // a stage with nothing to report (no frames reached it, or a missing file) gets no line
    const lines: string[] = [];
    for (const [k, v] of Object.entries(collectStats())) {
      const line = formatStats(k, v);
      if (line !== null) lines.push(`pktflow: ${final ? '' : '[progress] '}${line}\n`);
    }
    if (lines.length > 0) stderr.write(lines.join(''));
  };

  const interval = p.options.statsIntervalSec ?? 0;
  if (interval > 0) {
    timer = setInterval(() => {
      try {
        printStats(false);
      } catch {
        // a stage whose stats() throws is reported at the end
      }
    }, interval * 1000);
    timer.unref();
  }
  // a progress line for long replays, only where a person watches (a TTY), redrawn in place
  let progressTimer: NodeJS.Timeout | null = null;
  const started = Date.now();
  if (stderr.isTTY && p.source.progress && interval === 0) {
    progressTimer = setInterval(() => {
      const pr = p.source.progress!();
      if (pr === null || pr.total === 0) return;
      const sec = (Date.now() - started) / 1000;
      const mb = (n: number) => (n / 1e6).toFixed(1);
      stderr.write(`\rpktflow: ${((100 * pr.done) / pr.total).toFixed(0).padStart(3)}%  ${mb(pr.done)}/${mb(pr.total)} MB  ${sec.toFixed(0)} s `);
    }, 1000);
    progressTimer.unref();
  }
  const stopTimers = () => {
    if (timer) clearInterval(timer);
    if (progressTimer) {
      clearInterval(progressTimer);
      stderr.write('\r\x1b[K');
    }
  };

  const done = new Promise<RunResult>((resolve, reject) => {
    written$.subscribe({
      error(err) {
        stopTimers();
        // a committing source commits nothing more: what follows the last commit is read again
        void (p.source.finish?.(false) ?? Promise.resolve()).catch(() => {}).then(() => reject(err));
      },
      async complete() {
        stopTimers();
        try {
          if (p.options.statsEvent && !p.sink.closed) {
            const stats = collectStats();
            call(p.sink.name, () => p.sink.write([{ type: 'stats', stats }]), 'sink');
          }
          await p.sink.end();
        } catch (err) {
          await p.source.finish?.(false).catch(() => {});
          reject(err);
          return;
        }
        // everything is flushed and acknowledged, unless the reader of the output went away
        await p.source.finish?.(!p.sink.closed).catch((err: Error) => {
          sourceError ??= err;
        });
        try {
          if (p.options.printStats !== false) printStats(true);
          resolve({ error: sourceError, readerClosed: p.sink.closed, stats: collectStats() });
        } catch (err) {
          reject(err);
        }
      },
    });
  });

  return {
    done,
    stop() {
      // the source ends after what it already holds (a live capture's queued frames)
      p.source.close();
    },
  };
}

/** call a stage's or the sink's code; its exception comes out named after it */
function call<T>(name: string, f: () => T, role: 'stage' | 'sink' = 'stage'): T {
  try {
    return f();
  } catch (err) {
    throw asStageError(name, err, role);
  }
}
