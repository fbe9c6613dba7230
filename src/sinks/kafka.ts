import type { CompressionTypes as Compression, Message, Producer } from 'kafkajs';
import type { Frame } from '../core/frame';
import type { Stats } from '../core/stage';
import type { EventObject } from '../events/transaction';
import type { Event } from '../events/types';
import { bounded, CompressionTypes, DEFAULT_TIMEOUT_MS, isRetriable, kafkaClient, KafkaTimeoutError, requireTopic, type KafkaConnection } from '../kafka/client';
import { frameToMessage } from '../kafka/frames';
import { cachedPartitioner } from '../kafka/produce-encoder';
import type { Sink } from './sink';

export interface KafkaSinkOptions extends KafkaConnection {
  topic: string;
  /** bytes of messages waiting to be sent or acknowledged; more makes the pipeline wait (default 16 MiB) */
  maxBufferedBytes?: number;
  /** bytes of message values per produce request (default 512 KiB, under the broker's 1 MB batch limit) */
  maxRequestBytes?: number;
  compression?: 'none' | 'gzip';
}

/**
 * A Kafka producer as a sink. One produce request is in flight at a time, acknowledged
 * by all in-sync replicas (acks=-1) and retried by kafkajs as an idempotent producer
 * (the broker drops a retried request it already wrote); what is written meanwhile
 * queues and goes out as the next request. One request at a time keeps every
 * partition in the order frames were written: kafkajs does not keep concurrent
 * send() calls in order. Past maxBufferedBytes the pipeline waits (write returns
 * false), so a slow broker slows a file or Kafka source. A request that fails with a
 * retriable error (the broker went away, a leader election) is sent again, as it was
 * and before anything written after it, until `timeoutMs` pass without an
 * acknowledgement; then, or at once for an error that is not retriable, the run fails.
 * No wait in the sink (drained, allAcked, end) outlives that bound.
 */
abstract class KafkaSink<T> implements Sink<T> {
  abstract readonly name: string;
  private readonly producer: Producer;
  private readonly ready: Promise<void>;
  private readonly maxBuffered: number;
  private readonly maxRequest: number;
  private readonly compression: Compression;
  private queue: Message[] = [];
  private buffered = 0;
  private sending = false;
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
    // idempotent: a request retried after a lost acknowledgement is not written twice
    const client = kafkaClient(options);
    this.producer = client.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1, createPartitioner: cachedPartitioner });
    const admin = client.admin();
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.ready = bounded(
      admin
        .connect()
        .then(() => requireTopic(admin, options.topic))
        .finally(() => admin.disconnect())
        .then(() => this.producer.connect())
        .then(() => {
          this.connected = true;
        }),
      this.timeoutMs,
      'connect',
    );
    this.ready.catch(() => {});
    this.maxBuffered = options.maxBufferedBytes ?? 16 * 1024 * 1024;
    this.maxRequest = options.maxRequestBytes ?? 512 * 1024;
    this.compression = options.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
  }

  protected abstract message(item: T): Message;

  write(batch: T[]): boolean {
    if (this.error !== null) return false;
    for (let i = 0; i < batch.length; i++) {
      const m = this.message(batch[i]);
      this.queue.push(m);
      this.buffered += size(m);
    }
    this.sent += batch.length;
    this.next();
    return this.buffered < this.maxBuffered;
  }

  /** send what queued, up to maxRequestBytes, once the previous request is acknowledged */
  private next(): void {
    if (this.sending || this.error !== null || this.queue.length === 0) return;
    let bytes = 0;
    let end = 0;
    while (end < this.queue.length && (end === 0 || bytes + size(this.queue[end]) <= this.maxRequest)) bytes += size(this.queue[end++]);
    // taken out of the queue: what was sent is referenced by nothing here once acknowledged
    const messages = this.queue.splice(0, end);
    this.sending = true;
    this.send(messages, bytes, 200);
  }

  private send(messages: Message[], bytes: number, backoff: number): void {
    this.requests++;
    let retry = false;
    this.ready
      .then(() => bounded(this.producer.send({ topic: this.options.topic, messages, acks: -1, compression: this.compression }), this.timeoutMs, 'a produce request'))
      .then(
        () => {
          this.acked += messages.length;
          this.lastAck = Date.now();
        },
        (err: Error) => {
          // the idempotent producer makes sending the same request again safe: the broker drops
          // what it already wrote. It goes out before anything queued after it, keeping the order.
          retry = this.connected && isRetriable(err) && Date.now() - this.lastAck + backoff < this.timeoutMs;
          if (retry) {
            this.retries++;
            setTimeout(() => this.send(messages, bytes, Math.min(2000, backoff * 2)), backoff);
            return;
          }
          const waited = !(err instanceof KafkaTimeoutError) && Date.now() - this.lastAck >= this.timeoutMs ? ` (nothing acknowledged for ${Math.round((Date.now() - this.lastAck) / 1000)} s)` : '';
          this.error ??= new Error(`kafka topic ${this.options.topic}: ${err.message}${waited}`);
        },
      )
      .finally(() => {
        if (retry) return;
        this.sending = false;
        this.buffered -= bytes;
        const w = this.waiters;
        this.waiters = [];
        for (const f of w) f();
        this.next();
      });
  }

  private get pending(): boolean {
    return this.sending || this.queue.length > 0;
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
      if (this.connected) await bounded(this.producer.disconnect(), this.timeoutMs, 'disconnect').catch(() => {});
    }
  }

  stats(): Stats {
    return { messages: this.sent, acknowledged: this.acked, requests: this.requests, retries: this.retries, buffered_bytes: this.buffered };
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
