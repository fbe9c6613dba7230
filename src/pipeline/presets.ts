import { decode, type DecodeOptions } from '../decode/stage';
import { analyze, type AnalyzeOptions } from '../protocols/analyze';
import { tcpReorder, type TcpOptions } from '../tcp/reorderer';

export interface EventStagesOptions extends AnalyzeOptions {
  decode?: DecodeOptions;
  tcp?: Omit<TcpOptions, 'isServerPort'>;
}


/**
 * decode → TCP reorderer → analyzers: the packet path from frames to transaction
 * events. The reorderer takes the analyzers' ports to tell the server side of a
 * connection whose handshake it missed.
 */
export function eventStages(options: EventStagesOptions = {}) {
  const analyzers = analyze(options);
  return [decode(options.decode), tcpReorder({ ...options.tcp, isServerPort: analyzers.isServerPort }), analyzers] as const;
}
