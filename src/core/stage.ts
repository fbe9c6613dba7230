import { Observable, type OperatorFunction } from 'rxjs';
import { Transform } from 'node:stream';

/** A batch is the unit that moves between stages: an array, never a single item. */
export type Batch<T> = T[];

export type StatValue = number | { [k: string]: StatValue };
export type Stats = { [k: string]: StatValue };

/**
 * What moves between stages, by the name of its type: a stage may say what it takes
 * and outputs (`takes`, `outputs`), so that a pipeline that was not type-checked
 * (`pktflow run --no-typecheck`, plain JavaScript) is still refused when two
 * neighbours disagree. A stage that does not say is trusted.
 */
export type DataKind = 'Frame' | 'Packet' | 'StreamItem' | 'Event';

/**
 * A stage's logic. It knows nothing of RxJS, Node streams, files or Kafka, so it is
 * driven directly with arrays in tests; the adapters below lift it into either world.
 */
export interface Stage<I, O> {
  readonly name: string;
  /** what `push` takes, for the run-time check (optional: custom stages are trusted) */
  readonly takes?: DataKind;
  /** what `push` and `flush` return, for the run-time check */
  readonly outputs?: DataKind;
  /** process one batch; return what it produced (possibly empty) */
  push(batch: Batch<I>): Batch<O>;
  /** end of input or shutdown: emit everything still pending */
  flush(): Batch<O>;
  /** counters, read at any time */
  stats(): Stats;
  /**
   * the clock moved on with no packet (a live source's idle tick, wall time):
   * time out what waited too long. An empty batch reaching an adapter is a tick.
   */
  tick?(sec: number, nsec: number): Batch<O>;
  /**
   * drop all state without emitting anything: the frames it was made from will be
   * read again (a Kafka consumer whose partitions were reassigned restarts from its
   * committed offsets)
   */
  discard?(): void;
}

/**
 * An error a stage throws on purpose, whose message already says all a user needs
 * (a bad filter expression, found when the first frame shows the link type): the
 * adapters pass it on as it is.
 */
export class ExplainedError extends Error {}

/**
 * An exception from a stage's (or a sink's) code, with its name in the message:
 * `stage "myFilter": boom`. The exception itself is the `cause`.
 */
export class StageError extends ExplainedError {
  constructor(
    readonly stage: string,
    cause: unknown,
    role: 'stage' | 'sink' = 'stage',
  ) {
    super(`${role} "${stage}": ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'StageError';
  }
}

/** an exception out of a stage's or sink's code, named after it (once: the innermost is the one that threw) */
export function asStageError(name: string, err: unknown, role: 'stage' | 'sink' = 'stage'): ExplainedError {
  return err instanceof ExplainedError ? err : new StageError(name, err, role);
}

const named = (stage: Stage<any, any>, err: unknown) => asStageError(stage.name, err);

/** wall-clock now as (seconds, nanoseconds), for ticks */
export function wallClock(): [number, number] {
  const t = performance.timeOrigin + performance.now();
  const sec = Math.floor(t / 1000);
  return [sec, Math.min(999_999_999, Math.round((t - sec * 1000) * 1e6))];
}

/** one batch through a stage: an empty batch is a clock tick, and its result goes on even when empty */
function step<I, O>(stage: Stage<I, O>, batch: Batch<I>): Batch<O> | null {
  if (batch.length > 0) return stage.push(batch);
  if (stage.tick === undefined) return [];
  const [sec, nsec] = wallClock();
  return stage.tick(sec, nsec);
}

/**
 * What a stage's flush returns goes on in batches of at most this many items: a
 * flush that closes every connection still held (65,536 by default) would otherwise
 * send all their events down the chain at once, and every stage after it, the sink
 * included, would hold them all together.
 */
export const FLUSH_BATCH = 1024;

/** Lift a stage into an RxJS operator over batches. */
export function toOperator<I, O>(stage: Stage<I, O>): OperatorFunction<Batch<I>, Batch<O>> {
  return (source) =>
    new Observable<Batch<O>>((subscriber) =>
      source.subscribe({
        next(batch) {
          let out: Batch<O> | null;
          try {
            out = step(stage, batch);
          } catch (err) {
            subscriber.error(named(stage, err));
            return;
          }
          if (out !== null && (out.length > 0 || batch.length === 0)) subscriber.next(out);
        },
        error(err) {
          subscriber.error(err);
        },
        complete() {
          let out: Batch<O>;
          try {
            out = stage.flush();
          } catch (err) {
            subscriber.error(named(stage, err));
            return;
          }
          if (out.length <= FLUSH_BATCH) {
            if (out.length > 0) subscriber.next(out);
          } else for (let i = 0; i < out.length && !subscriber.closed; i += FLUSH_BATCH) subscriber.next(out.slice(i, i + FLUSH_BATCH));
          subscriber.complete();
        },
      }),
    );
}

/** Lift a stage into an object-mode Node Transform over batches. */
export function toTransform<I, O>(stage: Stage<I, O>): Transform {
  return new Transform({
    objectMode: true,
    // a few batches in flight are enough: each already holds many items
    highWaterMark: 4,
    transform(batch: Batch<I>, _enc, callback) {
      let out: Batch<O> | null;
      try {
        out = step(stage, batch);
      } catch (err) {
        callback(named(stage, err));
        return;
      }
      if (out !== null && (out.length > 0 || batch.length === 0)) this.push(out);
      callback();
    },
    flush(callback) {
      let out: Batch<O>;
      try {
        out = stage.flush();
      } catch (err) {
        callback(named(stage, err));
        return;
      }
      for (let i = 0; i < out.length; i += FLUSH_BATCH) this.push(out.length <= FLUSH_BATCH ? out : out.slice(i, i + FLUSH_BATCH));
      callback();
    },
  });
}

/** Run a batch through stages in order, synchronously (what both adapters amount to). */
export function pushThrough(stages: readonly Stage<any, any>[], batch: Batch<any>): Batch<any> {
  let b = batch;
  let i = 0;
  try {
    for (; i < stages.length && b.length > 0; i++) b = stages[i].push(b);
  } catch (err) {
    throw named(stages[i], err);
  }
  return b;
}

/** Flush stages in order: what stage i flushes still goes through stages i+1.. */
export function flushThrough(stages: readonly Stage<any, any>[]): Batch<any> {
  let carried: Batch<any> = [];
  let i = 0;
  try {
    for (; i < stages.length; i++) {
      const pushed = carried.length > 0 ? stages[i].push(carried) : [];
      const flushed = stages[i].flush();
      carried = flushed.length === 0 ? pushed : pushed.length === 0 ? flushed : pushed.concat(flushed);
    }
  } catch (err) {
    throw named(stages[i], err);
  }
  return carried;
}

/**
 * Several stages of one item type run in order as one stage (e.g. a filter and a
 * tee in front of the decoders). With no stages it passes batches through.
 */
export function sequence<T>(name: string, stages: readonly Stage<T, T>[]): Stage<T, T> {
  return {
    name,
    takes: stages[0]?.takes,
    outputs: stages[stages.length - 1]?.outputs,
    push: (batch) => pushThrough(stages, batch),
    flush: () => flushThrough(stages),
    tick(sec, nsec) {
      let carried: Batch<T> = [];
      for (const s of stages) {
        try {
          const pushed = carried.length > 0 ? s.push(carried) : [];
          const ticked = s.tick ? s.tick(sec, nsec) : [];
          carried = pushed.concat(ticked);
        } catch (err) {
          throw named(s, err);
        }
      }
      return carried;
    },
    stats() {
      const out: Stats = {};
      for (const s of stages) out[s.name] = s.stats();
      return out;
    },
  };
}
