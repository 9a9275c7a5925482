/**
 * The connector contract the rules engine talks to. Built-in connectors (mqtt, memory, log, file,
 * rest, nop) and, later, native plugin sources/sinks all sit behind these shapes, created by name
 * through the registry (registry.ts).
 */
import type { Logger } from 'pino';

/** A row as it travels between connectors and the engine. */
export type Row = Record<string, unknown>;

export type ConnectorState = 'connecting' | 'connected' | 'reconnecting' | 'error' | 'stopped';
export type ConnectorStatus = { state: ConnectorState; error?: string };

export interface EmitMeta {
  topic?: string;
  /** Milliseconds since the epoch when the message arrived. */
  ts: number;
  /**
   * The delivery hook, for sources that acknowledge upstream (NATS JetStream; later Kafka offsets).
   * When set, the rules layer calls it exactly once for these rows: `true` once every rule reading
   * the stream has handed them to its sinks and each sink confirmed them (SinkRunner.settled(): sent,
   * and for buffering sinks such as file, written), `false` when that cannot be confirmed (a sink
   * dropped a message, the rule stopped). Sources without it cost nothing.
   */
  onDelivered?: (delivered: boolean) => void;
}

export type EmitFn = (rows: Row[], meta?: EmitMeta) => void;
export type StatusFn = (s: ConnectorStatus) => void;

/**
 * Rows still in their encoded form (the pass-through fast path): `count` JSON objects, each exactly
 * as JSON.stringify writes it and followed by "\n". A consumer that needs no field access forwards
 * `lines` as they are; anything else calls rows(), which decodes once and caches.
 */
export interface EncodedBatch {
  readonly count: number;
  readonly lines: Uint8Array;
  rows(): Row[];
}

export type EncodedEmitFn = (batch: EncodedBatch, meta?: EmitMeta) => void;

export interface SourceMetrics {
  messagesIn: number;
  rowsOut: number;
  /** Messages that were not a JSON object or array of objects, or were too large: counted, never thrown. */
  decodeErrors: number;
  /** Of those, messages over the source's maxMessageSize. */
  tooLarge?: number;
  lastDecodeError?: string;
  /** Sources that read through a shared consumer (JetStream durable, later a Kafka group) report it here. */
  consumer?: ConsumerReport;
}

/** A shared consumer as the broker sees it (refreshed every few seconds) and as this host saw it. */
export interface ConsumerReport {
  /** e.g. "jetstream" or "queue" (core NATS queue group) */
  kind: string;
  name: string;
  stream?: string;
  /** Messages the broker has not yet delivered to any member. */
  pending?: number;
  /** Delivered to some member and not acknowledged yet. */
  ackPending?: number;
  /** Messages the broker redelivered (to any member) that are not acknowledged yet. */
  redelivered?: number;
  /** This host: messages received that were redeliveries, acks and naks sent. */
  receivedRedelivered: number;
  acked: number;
  nacked: number;
  /** When the broker-side figures were read (ms since the epoch); absent before the first read. */
  infoAt?: number;
  infoError?: string;
}

export interface SourceConnector {
  /**
   * Resolves once the source is receiving, or once its first connection attempt failed (it keeps retrying).
   * `emitEncoded`, when given, may receive batches still encoded instead of `emit` (same counters).
   */
  /** `flow` is backpressure from the rules' sinks; a source that pulls (native sources) honours it. */
  start(emit: EmitFn, onStatus: StatusFn, emitEncoded?: EncodedEmitFn, flow?: FlowControl): Promise<void>;
  stop(): Promise<void>;
  metrics?(): SourceMetrics;
}

/**
 * One outgoing message as sink-runner.ts hands it over: the data (a row when sendSingle, the batch
 * otherwise) and, when a dataTemplate is set, its rendered text, which the sink sends verbatim.
 */
export interface SinkMessage {
  data: Row | Row[];
  text?: string;
}

export interface SinkConnector {
  open(): Promise<void>;
  /** Delivers rows as one message. Throws on failure (the runner retries and counts). */
  collect(rows: Row[]): Promise<void>;
  close(): Promise<void>;
  /**
   * Optional: deliver a message shaped by the runner (sendSingle / dataTemplate). A sink without it
   * receives `collect([row])` for single rows, and templated text parsed as JSON.
   */
  send?(msg: SinkMessage): Promise<void>;
  /** Optional: present on sinks that write JSON lines as they are (EncodedBatch), no decoding. */
  collectEncoded?(batch: EncodedBatch): Promise<void>;
  /**
   * Optional, for sinks that buffer after send() returns (file): resolves once everything sent so far
   * is where the sink puts it. SinkRunner.settled() calls it only when a source asked to learn of delivery.
   */
  flush?(): Promise<void>;
  /**
   * Optional, for sinks that can die while running (a native sink whose collect returned SP_ERROR):
   * `fn` is called once with the reason when the sink will deliver nothing more. The runner then
   * stops retrying and reports the rule as failed (restartStrategy may start it again).
   */
  watchFatal?(fn: (reason: string) => void): void;
}

/** Named connection configs, eKuiper style: `{ default: {...}, other: {...} }`. */
export type NamedConfigs = Record<string, Record<string, unknown>>;

export interface ConnectorContext {
  /** Rule that owns the connector, for logs and client ids. */
  ruleId?: string;
  /** Stream a source feeds (stable MQTT client ids for persistent sessions). */
  stream?: string;
  /** Data directory: `<dataDir>/etc/mqtt_source.json` holds named MQTT connection configs. */
  dataDir?: string;
  /** Named MQTT configs passed directly (take precedence over the file). */
  mqttConfigs?: NamedConfigs;
  logger?: Logger;
  /**
   * The store's key/value table, for state a connector keeps across restarts (the sink cache's
   * disk pages). Without it a sink cache is memory only.
   */
  kv?: {
    kvKeys(scope: string): string[];
    kvGet(scope: string, key: string): unknown;
    kvPut(scope: string, key: string, value: unknown): void;
    kvDelete(scope: string, key: string): boolean;
    kvClear(scope: string): number;
  };
}

export type Props = Record<string, unknown>;

export type SourceFactory = (datasource: string, props: Props, ctx: ConnectorContext) => SourceConnector;
export type SinkFactory = (props: Props, ctx: ConnectorContext) => SinkConnector;

/**
 * Backpressure from the sinks of the rules reading a source. A source that can hold back (one that
 * pulls, like a native source draining its bounded queue) stops pulling while `saturated()` and
 * resumes on `whenRoom()`; its own overflow policy then applies (block the plugin, or drop and count).
 * Sources that cannot hold back (MQTT, NATS push) ignore it and the sink's bufferFullPolicy applies.
 */
export interface FlowControl {
  saturated(): boolean;
  whenRoom(): Promise<void>;
}
