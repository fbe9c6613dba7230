import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';

export interface KafkaConnection {
  /** host:port of the bootstrap brokers (default 127.0.0.1:9092) */
  brokers?: string[];
  clientId?: string;
}

/** a kafkajs client that logs nothing of its own (errors reach the user as one line) */
export function kafkaClient(c: KafkaConnection, extra: Partial<KafkaConfig> = {}): Kafka {
  return new Kafka({
    clientId: c.clientId ?? 'pktflow',
    brokers: c.brokers ?? ['127.0.0.1:9092'],
    logLevel: logLevel.NOTHING,
    retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5000 },
    ...extra,
  });
}
