import { CompressionTypes, type Message, type Producer } from 'kafkajs';
import type { Frame } from '../core/frame';
import type { Stats } from '../core/stage';
import type { Event } from '../events/transaction';
import { kafkaClient, type KafkaConnection } from '../kafka/client';
import { frameToMessage } from '../kafka/frames';
import type { Sink } from './sink';

export interface KafkaSinkOptions extends KafkaConnection {
  topic: string;
  /** produce requests waiting for their acknowledgements; more makes the pipeline wait (default 8) */
  maxInFlight?: number;
  compression?: 'none' | 'gzip';
}

/**
 * A Kafka producer as a sink: each batch is one produce request acknowledged by
 * all in-sync replicas (acks=-1); kafkajs retries failed requests. At most
 * maxInFlight requests wait for acknowledgement; past that the pipeline waits
 * (write returns false), so a slow broker slows a file or Kafka source. A request
 * that fails after its retries fails the run.
 */
abstract class KafkaSink<T> implements Sink<T> {
  abstract readonly name: string;
  private readonly producer: Producer;
  private readonly ready: Promise<void>;
  private readonly max: number;
  private readonly compression: CompressionTypes;
  private inFlight = 0;
  private waiters: (() => void)[] = [];
  private error: Error | null = null;
  private connected = false;
  closed = false;
  sent = 0;
  acked = 0;
  requests = 0;

  constructor(private readonly options: KafkaSinkOptions) {
    this.producer = kafkaClient(options).producer({ allowAutoTopicCreation: false });
    this.ready = this.producer.connect().then(() => {
      this.connected = true;
    });
    this.ready.catch(() => {});
    this.max = options.maxInFlight ?? 8;
    this.compression = options.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
  }

  protected abstract message(item: T): Message;

  write(batch: T[]): boolean {
    if (this.error !== null) return false;
    const messages = batch.map((x) => this.message(x));
    this.inFlight++;
    this.requests++;
    this.sent += messages.length;
    this.ready
      .then(() => this.producer.send({ topic: this.options.topic, messages, acks: -1, compression: this.compression }))
      .then(
        () => {
          this.acked += messages.length;
        },
        (err: Error) => {
          this.error ??= new Error(`kafka topic ${this.options.topic}: ${err.message}`);
        },
      )
      .finally(() => {
        this.inFlight--;
        const w = this.waiters;
        this.waiters = [];
        for (const f of w) f();
      });
    return this.inFlight < this.max;
  }

  /** resolves when fewer than maxInFlight requests wait; rejects once a request failed */
  async drained(): Promise<void> {
    while (this.error === null && this.inFlight >= this.max) await new Promise<void>((r) => this.waiters.push(r));
    if (this.error !== null) throw this.error;
  }

  /** resolves when everything written so far is acknowledged */
  async allAcked(): Promise<void> {
    while (this.error === null && this.inFlight > 0) await new Promise<void>((r) => this.waiters.push(r));
    if (this.error !== null) throw this.error;
  }

  async end(): Promise<void> {
    try {
      await this.allAcked();
    } finally {
      if (this.connected) await this.producer.disconnect();
    }
  }

  stats(): Stats {
    return { messages: this.sent, acknowledged: this.acked, requests: this.requests, in_flight: this.inFlight };
  }
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
    const net = e.network as { community_id?: string } | undefined;
    const flow = e.flow as { id?: string } | undefined;
    return { key: net?.community_id ?? flow?.id ?? null, value: JSON.stringify(e) };
  }
}

export const kafkaFrames = (o: KafkaSinkOptions) => new KafkaFrameSink(o);
export const kafkaEvents = (o: KafkaSinkOptions) => new KafkaEventSink(o);
