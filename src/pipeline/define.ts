import type { Frame } from '../core/frame';
import type { DataKind, Stage } from '../core/stage';
import type { Packet } from '../decode/packet';
import type { Event } from '../events/types';
import type { Sink } from '../sinks/sink';
import type { Source } from '../sources/source';
import type { StreamItem } from '../tcp/items';

export interface PipelineOptions {
  /** print per-stage counters to stderr every N seconds (0: only at the end) */
  statsIntervalSec?: number;
  /** also write a final `type: stats` event to the sink */
  statsEvent?: boolean;
  /** print the final counters to stderr (default true) */
  printStats?: boolean;
}

/** A pipeline as the runner takes it: stage types already checked by definePipeline. */
export interface Pipeline {
  readonly source: Source;
  readonly stages: readonly Stage<any, any>[];
  readonly sink: Sink<any>;
  readonly options: PipelineOptions;
}

/**
 * Declare a pipeline: a source of Frames, stages whose output type feeds the next
 * stage's input, and a sink for the last stage's output. A stage that does not take
 * what the one before it outputs is a type error on that stage, whose message names
 * both: `stage 2 (decode) outputs Packet, but stage 3 (analyze) takes StreamItem`.
 * (Stages given as an array of unknown length are checked at run time only.)
 */
export function definePipeline<const S extends readonly Stage<any, any>[], K extends Sink<any>>(spec: {
  source: Source;
  stages: CheckedStages<S>;
  sink: CheckedSink<S, K>;
  options?: PipelineOptions;
}): Pipeline {
  return { source: spec.source, stages: spec.stages as S, sink: spec.sink as K, options: spec.options ?? {} };
}

export function isPipeline(x: unknown): x is Pipeline {
  const p = x as Pipeline;
  return typeof p === 'object' && p !== null && typeof p.source?.batches === 'function' && Array.isArray(p.stages) && typeof p.sink?.write === 'function';
}

/**
 * The run-time form of definePipeline's check, for a pipeline that was not
 * type-checked: the first two neighbours that say what they take and output
 * (`takes`, `outputs`) and disagree, as one line; null when none do. A stage that
 * does not say is trusted.
 */
export function pipelineMismatch(p: Pick<Pipeline, 'stages' | 'sink'>): string | null {
  let before: DataKind | undefined = 'Frame';
  let beforeLabel = 'the source';
  for (let i = 0; i < p.stages.length; i++) {
    const s = p.stages[i];
    const label = `stage ${i + 1} (${s.name})`;
    if (before !== undefined && s.takes !== undefined && s.takes !== before) return `${beforeLabel} outputs ${before}, but ${label} takes ${s.takes}`;
    before = s.outputs;
    beforeLabel = label;
  }
  const takes = p.sink.takes;
  if (before !== undefined && takes !== undefined && takes !== before) return `${beforeLabel} outputs ${before}, but the sink (${p.sink.name}) takes ${takes}`;
  return null;
}

// ---- the type-level check -------------------------------------------------------------
// `stages` is a mapped type over the inferred tuple S: TypeScript infers S through it,
// then checks each element against its mapped type, which is the stage itself when it
// takes what the one before outputs, else a string literal saying why. The error then
// sits on the offending stage: "Type 'AnalyzeStage' is not assignable to type
// '"stage 1 (decode) outputs Packet, but stage 2 (analyze) takes StreamItem"'".

type In<S> = S extends { push(batch: infer B): any } ? (B extends readonly (infer I)[] ? I : never) : never;
type Out<S> = S extends { push(batch: any): infer B } ? (B extends readonly (infer O)[] ? O : never) : never;
type SinkIn<K> = K extends { write(batch: infer B): any } ? (B extends readonly (infer I)[] ? I : never) : never;

type IsOne<U> = [U] extends [UnionToIntersection<U>] ? true : false;
type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;

/** how a message names an item type */
type Name<T> = 0 extends 1 & T
  ? 'anything'
  : [T] extends [never]
    ? 'nothing'
    : unknown extends T
      ? 'anything'
      : [T] extends [Frame]
        ? 'Frame'
        : [T] extends [Packet]
          ? 'Packet'
          : [T] extends [StreamItem]
            ? 'StreamItem'
            : [T] extends [Event]
              ? [Event] extends [T]
                ? 'Event'
                : IsOne<T['type']> extends true
                  ? `Event (type ${T['type'] & string})`
                  : 'Event (some types)'
              : 'its own type';

/** `stage N (name)`: N counts from 1 */
type Label<S, N> = S extends { readonly name: infer L extends string } ? (string extends L ? `stage ${N & number}` : `stage ${N & number} (${L})`) : `stage ${N & number}`;

/** a tuple of N zeros: arithmetic on stage positions */
type Zeros<N extends number, A extends 0[] = []> = A['length'] extends N ? A : Zeros<N, [...A, 0]>;
/** what reaches stage index N, and who sends it */
type Before<S extends readonly unknown[], N extends number> = Zeros<N> extends [0, ...infer R] ? Out<S[R['length']]> : Frame;
type BeforeLabel<S extends readonly unknown[], N extends number> = Zeros<N> extends [0, ...infer R] ? Label<S[R['length']], N> : 'the source';

type CheckStage<S extends readonly unknown[], N extends number> = [Before<S, N>] extends [In<S[N]>]
  ? S[N]
  : `${BeforeLabel<S, N>} outputs ${Name<Before<S, N>>}, but ${Label<S[N], [...Zeros<N>, 0]['length']>} takes ${Name<In<S[N]>>}`;
type CheckedStages<S extends readonly unknown[]> = { [I in keyof S]: I extends `${infer N extends number}` ? CheckStage<S, N> : S[I] };

type LastOut<S extends readonly unknown[]> = S extends readonly [...unknown[], infer L] ? Out<L> : S extends readonly [] ? Frame : Out<S[number]>;
type LastLabel<S extends readonly unknown[]> = S extends readonly [...unknown[], infer L] ? Label<L, S['length']> : S extends readonly [] ? 'the source' : 'the last stage';
type SinkLabel<K> = K extends { readonly name: infer L extends string } ? (string extends L ? 'the sink' : `the sink (${L})`) : 'the sink';
type CheckedSink<S extends readonly unknown[], K> = [LastOut<S>] extends [SinkIn<K>] ? K : `${LastLabel<S>} outputs ${Name<LastOut<S>>}, but ${SinkLabel<K>} takes ${Name<SinkIn<K>>}`;
