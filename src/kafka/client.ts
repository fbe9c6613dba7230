import type { Admin, Kafka, KafkaConfig } from 'kafkajs';

/* eslint-disable @typescript-eslint/no-require-imports */
/**
 * pktflow's faster paths inside kafkajs (src/kafka/kafkajs-fast.ts), loaded at the first
 * use like kafkajs: they load some of kafkajs's own modules (25 ms of a short run's
 * start-up when they were loaded with pktflow's index)
 */
export function kafkajsFast(): typeof import('./kafkajs-fast') {
  return require('./kafkajs-fast') as typeof import('./kafkajs-fast');
}

/**
 * kafkajs itself, loaded at the first use: 140 modules that a run without Kafka (a
 * pipeline file's import of pktflow's index brings this file) does not load.
 */
export function kafkajs(): typeof import('kafkajs') {
  // first: it replaces some of kafkajs's modules before kafkajs loads them
  kafkajsFast();
  return require('kafkajs') as typeof import('kafkajs');
}
/* eslint-enable @typescript-eslint/no-require-imports */

export interface KafkaConnection {
  /** host:port of the bootstrap brokers (default 127.0.0.1:9092) */
  brokers?: string[];
  clientId?: string;
  /**
   * how long pktflow waits on Kafka without progress (no fetch, no acknowledgement,
   * no answer) before it gives up with an error (default 60 s). Retriable failures,
   * a broker restart included, are retried until then.
   */
  timeoutMs?: number;
}

export const DEFAULT_TIMEOUT_MS = 60_000;

/** kafkajs's retries of a request: 8, 200 ms to 5 s apart (about 20 s) */
export const RETRY = { retries: 8, initialRetryTime: 200, maxRetryTime: 5000 };

/**
 * a kafkajs client that logs nothing of its own (errors reach the user as one line);
 * PKTFLOW_KAFKA_LOG=error|warn|info|debug turns kafkajs's own log on, to stderr
 */
export function kafkaClient(c: KafkaConnection, extra: Partial<KafkaConfig> = {}): Kafka {
  // produce requests encoded in one pass, with a native CRC-32C, and responses read whole
  // into buffers of their size (src/kafka/kafkajs-fast.ts)
  const fast = kafkajsFast();
  fast.installProduceEncoder();
  const { Kafka, logLevel } = kafkajs();
  const levels: Record<string, number> = { error: logLevel.ERROR, warn: logLevel.WARN, info: logLevel.INFO, debug: logLevel.DEBUG };
  return new Kafka({
    clientId: c.clientId ?? 'pktflow',
    brokers: c.brokers ?? ['127.0.0.1:9092'],
    logLevel: levels[process.env.PKTFLOW_KAFKA_LOG ?? ''] ?? logLevel.NOTHING,
    // stdout carries the events: kafkajs's log, when on, goes to stderr
    logCreator: () => (e) => process.stderr.write(`kafkajs ${new Date().toISOString()} ${e.namespace} ${e.log.message} ${JSON.stringify({ ...e.log, message: undefined, timestamp: undefined, logger: undefined })}\n`),
    retry: RETRY,
    socketFactory: fast.framedSocketFactory(),
    ...extra,
  });
}

/** the topic does not exist: no retry makes it appear */
export class NoSuchTopicError extends Error {}

/** fail at once, not after kafkajs's metadata retries (~20 s), when the topic does not exist */
export async function requireTopic(admin: Admin, topic: string): Promise<void> {
  const topics = await admin.listTopics();
  if (!topics.includes(topic)) throw new NoSuchTopicError(`no such topic (create it first: pktflow topics create ${topic} --partitions 8)`);
}

/** A wait on Kafka that ran out of time (KafkaConnection.timeoutMs). */
export class KafkaTimeoutError extends Error {}

/** `p`, or a KafkaTimeoutError naming `what` once `ms` have passed */
export function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new KafkaTimeoutError(`no answer to ${what} within ${Math.round(ms / 1000)} s`)), ms);
  });
  // the loser's rejection is not left unhandled
  p.catch(() => {});
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The group-coordinator errors Kafka documents as retriable: the coordinator moved,
 * is being elected, or is still loading the group's offsets (a broker that just
 * started or restarted answers so for a while).
 */
const COORDINATOR_ERRORS = new Set(['NOT_COORDINATOR_FOR_GROUP', 'GROUP_COORDINATOR_NOT_AVAILABLE', 'GROUP_LOAD_IN_PROGRESS']);

export function isCoordinatorError(err: unknown): boolean {
  for (let e = err as { type?: string; cause?: unknown; name?: string } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.type === 'string' && COORDINATOR_ERRORS.has(e.type)) return true;
    if (e.name === 'KafkaJSGroupCoordinatorNotFound') return true;
  }
  return false;
}

/**
 * kafkajs's own verdict: a failure it marks retriable, or its retries running out on
 * one (the broker away longer than its backoff), or a wait of ours that ran out
 */
export function isRetriable(err: unknown): boolean {
  if (err instanceof KafkaTimeoutError) return true;
  for (let e = err as { retriable?: boolean; cause?: unknown; name?: string } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (e.retriable === true || e.name === 'KafkaJSNumberOfRetriesExceeded') return true;
  }
  return false;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * `call()`, retried with backoff (100 ms doubling to 2 s) while it fails with an
 * error `retry` accepts (by default a group-coordinator error), until `ms` have
 * passed; `onRetry` counts the retries.
 */
export async function retryCoordinator<T>(call: () => Promise<T>, ms: number, what: string, onRetry?: () => void, retry: (err: unknown) => boolean = isCoordinatorError): Promise<T> {
  const deadline = Date.now() + ms;
  for (let wait = 100; ; wait = Math.min(2000, wait * 2)) {
    const left = deadline - Date.now();
    try {
      return await bounded(call(), Math.max(1, left), what);
    } catch (err) {
      if (!retry(err) || Date.now() + wait >= deadline) throw err;
      onRetry?.();
      await sleep(wait);
    }
  }
}
