import { Kafka, logLevel, type Admin, type KafkaConfig } from 'kafkajs';

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

/** fail at once, not after kafkajs's metadata retries (~20 s), when the topic does not exist */
export async function requireTopic(admin: Admin, topic: string): Promise<void> {
  const topics = await admin.listTopics();
  if (!topics.includes(topic)) throw new Error(`no such topic (create it first: pktflow topics create ${topic} --partitions 8)`);
}
