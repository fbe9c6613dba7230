import type { CompressionTypes as Compression, Kafka, Message, PartitionMetadata, Producer } from 'kafkajs';
import type { Frame } from '../core/frame';
import type { Stats } from '../core/stage';
import type { EventObject } from '../events/transaction';
import type { Event } from '../events/types';
import { bounded, DEFAULT_TIMEOUT_MS, isRetriable, kafkaClient, kafkajs, kafkajsFast, KafkaTimeoutError, NoSuchTopicError, requireTopic, type KafkaConnection } from '../kafka/client';
import { frameToMessage } from '../kafka/frames';
import type { Sink } from './sink';

export interface KafkaSinkOptions extends KafkaConnection {
  topic: string;
  /** bytes of messages waiting to be sent or acknowledged; more makes the pipeline wait (default 16 MiB) */
  maxBufferedBytes?: number;
  /** bytes of message values per produce request (default 512 KiB, under the broker's 1 MB batch limit) */
  maxRequestBytes?: number;
  /** producers, each with its own partitions and one request in flight (default: one per partition, at most 8) */
  maxProducers?: number;
  compression?: 'none' | 'gzip';
}

/** the partitions one producer sends to, with what waits for it */
class Lane {
  queue: Message[] = [];
  sending = false;
  constructor(readonly producer: Producer) {}
}

/**
 * A Kafka producer as a sink. Each partition goes through one idempotent kafkajs
 * producer (a lane; with more partitions than lanes, partition p goes through lane
 * p mod lanes), which has one produce request in flight at a time, acknowledged by all
 * in-sync replicas (acks=-1); what is written meanwhile queues and goes out as the
 * lane's next request. So every partition keeps the order frames were written in (one
 * request at a time, retried as it was before anything after it), while the lanes'
 * requests are in flight together. One producer for all partitions could not do that:
 * kafkajs's idempotent producer holds a lock per broker for the whole of a request, and
 * does not keep concurrent send() calls in order.
 *
 * The sink picks each message's partition itself, with kafkajs's DefaultPartitioner
 * (murmur2 of the key, as the Java client), from the partition count the topic had
 * when the sink connected. Past maxBufferedBytes the pipeline waits (write returns
 * false), so a slow broker slows a file or Kafka source. A request that fails with a
 * retriable error (the broker went away, a leader election) is sent again, as it was
 * and before anything written after it to its lane, until `timeoutMs` pass without an
 * acknowledgement; then, or at once for an error that is not retriable, the run fails.
 * No wait in the sink (drained, allAcked, end) outlives that bound.
 */
abstract class KafkaSink<T> implements Sink<T> {
  abstract readonly name: string;
  private lanes: Lane[] = [];
  private readonly ready: Promise<void>;
  private readonly maxBuffered: number;
  private readonly maxRequest: number;
  private readonly compression: Compression;
  /** messages written before the lanes exist (the topic's partitions are not known yet) */
  private early: Message[] = [];
  private partitionOf: ((m: Message) => number) | null = null;
  private buffered = 0;
  private waiters: (() => void)[] = [];
  private error: Error | null = null;
  private connected = false;
  private readonly timeoutMs: number;
  /** Date.now() of the last acknowledgement (or of the start) */
  private lastAck = Date.now();
  closed = false;
  sent = 0;
  acked = 0;
  requests = 0;
  retries = 0;

  constructor(private readonly options: KafkaSinkOptions) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.ready = this.connect(kafkaClient(options));
    this.ready.catch((err: Error) => {
      this.error ??= new Error(`kafka topic ${this.options.topic}: ${err.message}`);
      this.wakeAll();
    });
    this.maxBuffered = options.maxBufferedBytes ?? 16 * 1024 * 1024;
    this.maxRequest = options.maxRequestBytes ?? 512 * 1024;
    this.compression = options.compression === 'gzip' ? kafkajs().CompressionTypes.GZIP : kafkajs().CompressionTypes.None;
  }

  /**
   * the topic's partitions, then a connected producer per lane. A failure (the broker
   * went away meanwhile) starts it all again, 200 ms doubling to 2 s later, until
   * timeoutMs have passed; a topic that does not exist fails at once.
   */
  private async connect(client: Kafka): Promise<void> {
    const deadline = Date.now() + this.timeoutMs;
    for (let wait = 200; ; wait = Math.min(2000, wait * 2)) {
      try {
        return await bounded(this.connectOnce(client), Math.max(1, deadline - Date.now()), 'connect');
      } catch (err) {
        if (err instanceof NoSuchTopicError || Date.now() + wait >= deadline) throw err;
        this.retries++;
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  private async connectOnce(client: Kafka): Promise<void> {
    const topic = this.options.topic;
    const admin = client.admin();
    let partitionMetadata: PartitionMetadata[];
    try {
      await admin.connect();
      await requireTopic(admin, topic);
      partitionMetadata = (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0].partitions;
    } finally {
      await admin.disconnect().catch(() => {});
    }
    const { cachedPartitioner } = kafkajsFast();
    const partitioner = cachedPartitioner();
    const n = Math.max(1, Math.min(partitionMetadata.length, this.options.maxProducers ?? 8));
    // idempotent: a request retried after a lost acknowledgement is not written twice
    const lanes = Array.from({ length: n }, () => new Lane(client.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1, createPartitioner: cachedPartitioner })));
    try {
      await Promise.all(lanes.map((l) => l.producer.connect()));
    } catch (err) {
      await Promise.all(lanes.map((l) => l.producer.disconnect().catch(() => {})));
      throw err;
    }
    this.partitionOf = (message) => partitioner({ topic, partitionMetadata, message });
    this.lanes = lanes;
    this.connected = true;
    const early = this.early;
    this.early = [];
    this.route(early);
  }

  protected abstract message(item: T): Message;

  write(batch: T[]): boolean {
    if (this.error !== null) return false;
    const messages: Message[] = new Array(batch.length);
    for (let i = 0; i < batch.length; i++) {
      const m = (messages[i] = this.message(batch[i]));
      this.buffered += size(m);
    }
    this.sent += batch.length;
    if (this.lanes.length === 0) for (const m of messages) this.early.push(m);
    else this.route(messages);
    return this.buffered < this.maxBuffered;
  }

  /** each message to its partition's lane, then every lane that is free sends */
  private route(messages: Message[]): void {
    const partitionOf = this.partitionOf!;
    const lanes = this.lanes;
    for (const m of messages) {
      const p = partitionOf(m);
      m.partition = p;
      lanes[p % lanes.length].queue.push(m);
    }
    for (const lane of lanes) this.next(lane);
  }

  /** send what queued in the lane, up to maxRequestBytes, once its previous request is acknowledged */
  private next(lane: Lane): void {
    if (lane.sending || this.error !== null || lane.queue.length === 0) return;
    let bytes = 0;
    let end = 0;
    while (end < lane.queue.length && (end === 0 || bytes + size(lane.queue[end]) <= this.maxRequest)) bytes += size(lane.queue[end++]);
    // taken out of the queue: what was sent is referenced by nothing here once acknowledged
    const messages = lane.queue.splice(0, end);
    lane.sending = true;
    this.send(lane, messages, bytes, 200);
  }

  private send(lane: Lane, messages: Message[], bytes: number, backoff: number): void {
    this.requests++;
    let retry = false;
    bounded(lane.producer.send({ topic: this.options.topic, messages, acks: -1, compression: this.compression }), this.timeoutMs, 'a produce request')
      .then(
        () => {
          this.acked += messages.length;
          this.lastAck = Date.now();
        },
        (err: Error) => {
          // the idempotent producer makes sending the same request again safe: the broker drops
          // what it already wrote. It goes out before anything queued after it, keeping the order.
          retry = isRetriable(err) && Date.now() - this.lastAck + backoff < this.timeoutMs;
          if (retry) {
            this.retries++;
            setTimeout(() => this.send(lane, messages, bytes, Math.min(2000, backoff * 2)), backoff);
            return;
          }
          const waited = !(err instanceof KafkaTimeoutError) && Date.now() - this.lastAck >= this.timeoutMs ? ` (nothing acknowledged for ${Math.round((Date.now() - this.lastAck) / 1000)} s)` : '';
          this.error ??= new Error(`kafka topic ${this.options.topic}: ${err.message}${waited}`);
        },
      )
      .finally(() => {
        if (retry) return;
        lane.sending = false;
        this.buffered -= bytes;
        this.wakeAll();
        this.next(lane);
      });
  }

  private wakeAll(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private get pending(): boolean {
    return this.early.length > 0 || this.lanes.some((l) => l.sending || l.queue.length > 0);
  }

  /** resolves when fewer than maxBufferedBytes wait; rejects once a request failed */
  async drained(): Promise<void> {
    while (this.error === null && this.buffered >= this.maxBuffered) await new Promise<void>((r) => this.waiters.push(r));
    if (this.error !== null) throw this.error;
  }

  /** resolves when everything written so far is acknowledged */
  async allAcked(): Promise<void> {
    while (this.error === null && this.pending) await new Promise<void>((r) => this.waiters.push(r));
    if (this.error !== null) throw this.error;
  }

  async end(): Promise<void> {
    try {
      await this.allAcked();
    } finally {
      if (this.connected) await Promise.all(this.lanes.map((l) => bounded(l.producer.disconnect(), this.timeoutMs, 'disconnect').catch(() => {})));
    }
  }

  stats(): Stats {
    return { messages: this.sent, acknowledged: this.acked, requests: this.requests, retries: this.retries, producers: this.lanes.length, buffered_bytes: this.buffered };
  }
}

function size(m: Message): number {
  const v = m.value;
  return (v === null ? 0 : v.length) + 64;
}

/** Raw frames to a topic, in the format of docs/kafka.md: a capture agent's sink. */
export class KafkaFrameSink extends KafkaSink<Frame> {
  readonly name = 'kafka-frames';
  protected message(f: Frame): Message {
    return frameToMessage(f);
  }
}

/** JSON events to a topic, keyed by community id (or flow id) so a conversation's events stay in order. */
export class KafkaEventSink extends KafkaSink<Event> {
  readonly name = 'kafka-events';
  protected message(e: Event): Message {
    const o = e as EventObject;
    const net = o.network as { community_id?: string } | undefined;
    const flow = o.flow as { id?: string } | undefined;
    return { key: net?.community_id ?? flow?.id ?? null, value: JSON.stringify(e) };
  }
}

export const kafkaFrames = (o: KafkaSinkOptions) => new KafkaFrameSink(o);
export const kafkaEvents = (o: KafkaSinkOptions) => new KafkaEventSink(o);
