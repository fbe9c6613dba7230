import { decode, type DecodeOptions } from '../decode/stage';
import { analyze, type AnalyzeOptions } from '../protocols/analyze';
import { tcpReorder, type TcpOptions } from '../tcp/reorderer';
import { AnomalyReporter, type AnomalyOptions } from '../events/anomaly';

export interface EventStagesOptions extends Omit<AnalyzeOptions, 'anomalies'> {
  decode?: Omit<DecodeOptions, 'anomalies'>;
  tcp?: Omit<TcpOptions, 'isServerPort' | 'anomalies'>;
  /** protocol violations and decode errors as rate-limited `type: anomaly` events (default off) */
  anomalies?: boolean | AnomalyOptions;
}


/**
 * decode → TCP reorderer → analyzers: the packet path from frames to transaction
 * events. The reorderer takes the analyzers' ports to tell the server side of a
 * connection whose handshake it missed.
 */
export function eventStages(options: EventStagesOptions = {}) {
  const a = options.anomalies;
  const anomalies = a === undefined || a === false ? undefined : new AnomalyReporter(a === true ? {} : a);
  const analyzers = analyze({ ...options, anomalies });
  return [decode({ ...options.decode, anomalies }), tcpReorder({ ...options.tcp, isServerPort: analyzers.isServerPort, anomalies }), analyzers] as const;
}
