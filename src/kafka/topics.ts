import type { Admin, Kafka } from 'kafkajs';
import { kafkaClient, requireTopic, type KafkaConnection } from './client';
import { messageToFrame } from './frames';

/**
 * Topic administration for `pktflow topics`: create, list, describe. One admin
 * connection per command; a broker that does not answer fails within a few seconds
 * (not after the producer's ~20 s of retries), as one line naming the brokers.
 */

export interface PartitionInfo {
  partition: number;
  leader: number;
  replicas: number[];
  isr: number[];
  /** the first offset still stored, and the offset the next frame will get */
  low: number;
  high: number;
  /** capture time (ns since the epoch) of the frame at `low` and at `high - 1`; null when empty or unreadable */
  first: bigint | null;
  last: bigint | null;
}

export interface TopicInfo {
  name: string;
  partitions: PartitionInfo[];
}

const ADMIN_RETRY = { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 };

/** an error of the request itself (the topic exists, ...): passed on as it is */
class TopicError extends Error {}

function brokersOf(c: KafkaConnection): string {
  return (c.brokers ?? ['127.0.0.1:9092']).join(',');
}

/** run f with a connected admin client; kafkajs's errors become one line naming the brokers */
async function withAdmin<T>(c: KafkaConnection, f: (admin: Admin, kafka: Kafka) => Promise<T>): Promise<T> {
  const kafka = kafkaClient(c, { retry: ADMIN_RETRY, connectionTimeout: 3000 });
  const admin = kafka.admin();
  try {
    await admin.connect();
    return await f(admin, kafka);
  } catch (err) {
    if (err instanceof TopicError) throw err;
    // kafkajs's aggregate errors ("Topic creation errors") say what went wrong in their parts
    const parts = (err as { errors?: Error[] }).errors;
    const msg = Array.isArray(parts) && parts.length > 0 ? parts.map((e) => e.message).join('; ') : (err as Error).message;
    throw new Error(`kafka at ${brokersOf(c)}: ${msg}`);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** create a topic; an existing one is an error. Returns the partition count it got. */
export function createTopic(c: KafkaConnection, topic: string, options: { partitions?: number; replicationFactor?: number } = {}): Promise<number> {
  return withAdmin(c, async (admin) => {
    const rf = options.replicationFactor;
    if (rf !== undefined) {
      // kafkajs reports only "Replication-factor is invalid": say why
      const n = (await admin.describeCluster()).brokers.length;
      if (rf > n) throw new TopicError(`replication factor ${rf} needs ${rf} brokers; the cluster has ${n}`);
    }
    const created = await admin.createTopics({
      topics: [{ topic, numPartitions: options.partitions ?? -1, replicationFactor: options.replicationFactor ?? -1 }],
      waitForLeaders: true,
    });
    if (!created) throw new TopicError(`topic ${topic} already exists (pktflow topics describe ${topic})`);
    const md = await admin.fetchTopicMetadata({ topics: [topic] });
    return md.topics[0].partitions.length;
  });
}

/** every topic but Kafka's internal ones, by name, with its partition count */
export function listTopics(c: KafkaConnection): Promise<{ name: string; partitions: number }[]> {
  return withAdmin(c, async (admin) => {
    const names = (await admin.listTopics()).filter((t) => !t.startsWith('__'));
    if (names.length === 0) return [];
    const md = await admin.fetchTopicMetadata({ topics: names });
    return md.topics.map((t) => ({ name: t.name, partitions: t.partitions.length })).sort((a, b) => (a.name < b.name ? -1 : 1));
  });
}

/**
 * A topic's partitions: leader, replicas, offsets, and the capture times of the
 * first and the last frame stored in each (read from those two messages' headers).
 */
export function describeTopic(c: KafkaConnection, topic: string): Promise<TopicInfo> {
  return withAdmin(c, async (admin, kafka) => {
    await requireTopic(admin, topic);
    const md = await admin.fetchTopicMetadata({ topics: [topic] });
    const offsets = new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, o]));
    const partitions: PartitionInfo[] = md.topics[0].partitions
      .map((p) => ({
        partition: p.partitionId,
        leader: p.leader,
        replicas: p.replicas,
        isr: p.isr,
        low: Number(offsets.get(p.partitionId)?.low ?? 0),
        high: Number(offsets.get(p.partitionId)?.high ?? 0),
        first: null,
        last: null,
      }))
      .sort((a, b) => a.partition - b.partition);
    await readEnds(kafka, admin, topic, partitions);
    return { name: topic, partitions };
  });
}

/**
 * Fill in each non-empty partition's first and last frame time. kafkajs reads only as a
 * group member, so a throwaway group (deleted afterwards, nothing committed) reads the
 * message at `low`, then seeks to `high - 1` and reads that one: two small fetches per
 * partition whatever the topic's size. A partition that gives nothing within
 * `waitMs` (e.g. a frame deleted by retention meanwhile) keeps null.
 */
async function readEnds(kafka: Kafka, admin: Admin, topic: string, partitions: PartitionInfo[], waitMs = 10_000): Promise<void> {
  const todo = new Map(partitions.filter((p) => p.high > p.low).map((p) => [p.partition, p]));
  if (todo.size === 0) return;
  const firstRead = new Set<number>();
  const groupId = `pktflow-describe-${process.pid}-${Date.now()}`;
  // maxBytesPerPartition is a floor the broker exceeds for one whole record batch: one batch per fetch
  const consumer = kafka.consumer({ groupId, maxBytesPerPartition: 1024, maxWaitTimeInMs: 100 });
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const timer = setTimeout(done, waitMs);
  try {
    await consumer.connect();
    await consumer.subscribe({ topic });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch }) => {
        const p = todo.get(batch.partition);
        if (p === undefined) return;
        const readingFirst = !firstRead.has(p.partition);
        const target = readingFirst ? p.low : p.high - 1;
        const m = batch.messages.find((x) => Number(x.offset) >= target);
        if (m === undefined) return;
        const ts = frameTime(m.value, m.headers);
        if (readingFirst) {
          p.first = ts;
          firstRead.add(p.partition);
          if (Number(m.offset) < p.high - 1) {
            consumer.seek({ topic, partition: p.partition, offset: String(p.high - 1) });
            return;
          }
        }
        p.last = ts;
        todo.delete(p.partition);
        consumer.pause([{ topic, partitions: [p.partition] }]);
        if (todo.size === 0) done();
      },
    });
    for (const p of todo.values()) consumer.seek({ topic, partition: p.partition, offset: String(p.low) });
    await finished;
  } finally {
    clearTimeout(timer);
    await consumer.disconnect().catch(() => {});
    await admin.deleteGroups([groupId]).catch(() => {});
  }
}

/** a message's capture time, or null when it is not a pktflow frame (an event topic, say) */
function frameTime(value: Buffer | null, headers: Parameters<typeof messageToFrame>[1]): bigint | null {
  try {
    const f = messageToFrame(value, headers);
    return BigInt(f.tsSec) * 1_000_000_000n + BigInt(f.tsNsec);
  } catch {
    return null;
  }
}
