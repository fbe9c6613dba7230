/** pktflow's public API: what pipeline files import. */
export { definePipeline, type Pipeline, type PipelineOptions } from './pipeline/define';
export { runPipeline, type RunResult } from './pipeline/runner';
export { toOperator, toTransform, type Stage, type Batch, type Stats } from './core/stage';
export { LinkType, type Frame } from './core/frame';
export { captureFile, type CaptureFileOptions } from './sources/file';
export type { Source } from './sources/source';
export { decode, DecodeStage, type DecodeOptions } from './decode/stage';
export { Packet } from './decode/packet';
export { tcpReorder, TcpReorderer, type TcpOptions } from './tcp/reorderer';
export { StreamItem, ItemKind } from './tcp/items';
export { analyze, AnalyzeStage, type AnalyzeOptions } from './protocols/analyze';
export { protocols } from './protocols/registry';
export type { Event } from './events/transaction';
export { stdoutNdjson, NdjsonSink } from './sinks/ndjson';
export { collect, CollectSink } from './sinks/collect';
export { discard, DiscardSink } from './sinks/discard';
export type { Sink } from './sinks/sink';
