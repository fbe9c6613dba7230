import type { Frame } from '../core/frame';
import type { Stage } from '../core/stage';
import type { Sink } from '../sinks/sink';
import type { Source } from '../sources/source';

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

type Spec<Stages, Out> = { source: Source; stages: Stages; sink: Sink<Out>; options?: PipelineOptions };

/**
 * Declare a pipeline: a source of Frames, stages whose output type feeds the next
 * stage's input, and a sink for the last stage's output. A mismatch is a type
 * error in the pipeline file.
 */
export function definePipeline(spec: Spec<[], Frame>): Pipeline;
export function definePipeline<A>(spec: Spec<[Stage<Frame, A>], A>): Pipeline;
export function definePipeline<A, B>(spec: Spec<[Stage<Frame, A>, Stage<A, B>], B>): Pipeline;
export function definePipeline<A, B, C>(spec: Spec<[Stage<Frame, A>, Stage<A, B>, Stage<B, C>], C>): Pipeline;
export function definePipeline<A, B, C, D>(spec: Spec<[Stage<Frame, A>, Stage<A, B>, Stage<B, C>, Stage<C, D>], D>): Pipeline;
export function definePipeline<A, B, C, D, E>(spec: Spec<[Stage<Frame, A>, Stage<A, B>, Stage<B, C>, Stage<C, D>, Stage<D, E>], E>): Pipeline;
export function definePipeline<A, B, C, D, E, F>(spec: Spec<[Stage<Frame, A>, Stage<A, B>, Stage<B, C>, Stage<C, D>, Stage<D, E>, Stage<E, F>], F>): Pipeline;
export function definePipeline(spec: Spec<Stage<any, any>[], any>): Pipeline {
  return { source: spec.source, stages: spec.stages, sink: spec.sink, options: spec.options ?? {} };
}

export function isPipeline(x: unknown): x is Pipeline {
  const p = x as Pipeline;
  return typeof p === 'object' && p !== null && typeof p.source?.batches === 'function' && Array.isArray(p.stages) && typeof p.sink?.write === 'function';
}
