/**
 * Puts a plugin's sources and sinks into the connector registry under their own names, so
 * `CREATE STREAM s () WITH (TYPE="random", ...)` and rule actions `{"filesink": {...}}` find them.
 *
 * Properties. A source's plugin configuration is a JSON object made of CONFIG (JSON text, e.g.
 * CONFIG='{"pattern": {"count": 50}}') plus every other stream property except the host's own
 * (TYPE, DATASOURCE, FORMAT, KEY, TIMESTAMP, TIMESTAMP_FORMAT, SHARED, CONF_KEY and the queue
 * settings below), with keys lower-cased and values parsed as JSON when they parse
 * (INTERVAL="10" -> "interval": 10); DATASOURCE, when set, becomes "datasource".
 *   Queue settings: BUFFER_LENGTH (items, default 1024), OVERFLOW (block | drop-oldest |
 *   drop-newest), BATCH_SIZE (items per JS crossing), CLOSE_TIMEOUT (ms).
 * A sink's configuration is the action's properties minus the common sink properties
 * (sendSingle, dataTemplate, omitIfEmpty, bufferLength, retryCount, retryInterval, read by
 * SinkRunner) and the native queue settings: queueLength, maxRetries, retryBackoff, maxBackoff,
 * closeTimeout.
 */
import { readFormat } from '../connectors/decode.js';
import { PropReader } from '../connectors/props.js';
import { registerSink, registerSource, unregisterSink, unregisterSource } from '../connectors/registry.js';
import type { Props, SinkConnector, SinkFactory, SourceConnector, SourceFactory } from '../connectors/types.js';
import { StreamplugError } from '../errors.js';
import { ioAddon, NativeSinkConnector, NativeSourceConnector, type IoBackend, type IoDescription, type Overflow } from './native-io.js';

const SOURCE_HOST_KEYS = new Set([
  'TYPE', 'DATASOURCE', 'FORMAT', 'KEY', 'TIMESTAMP', 'TIMESTAMP_FORMAT', 'SHARED', 'CONF_KEY', 'CONFIG',
  'BUFFER_LENGTH', 'OVERFLOW', 'BATCH_SIZE', 'CLOSE_TIMEOUT',
]);
const SINK_HOST_KEYS = new Set([
  'sendSingle', 'dataTemplate', 'omitIfEmpty', 'bufferLength', 'retryCount', 'retryInterval',
  'queueLength', 'maxRetries', 'retryBackoff', 'maxBackoff', 'closeTimeout',
]);

function jsonish(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}

function upperProps(props: Props): Props {
  const out: Props = {};
  for (const [k, v] of Object.entries(props)) out[k.toUpperCase()] = v;
  return out;
}

/** The plugin configuration (JSON text) of a source, from stream properties. */
export function sourceConfig(type: string, datasource: string, props: Props): string {
  const up = upperProps(props);
  let base: Record<string, unknown> = {};
  if (up.CONFIG !== undefined) {
    const parsed = jsonish(up.CONFIG);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new StreamplugError('E_CONNECTOR_CONFIG', `source ${type}: CONFIG is ${JSON.stringify(up.CONFIG)}, expected a JSON object such as '{"interval": 100}'`, { type });
    }
    base = parsed as Record<string, unknown>;
  }
  const config: Record<string, unknown> = { ...base };
  if (datasource) config.datasource = datasource;
  for (const [k, v] of Object.entries(up)) if (!SOURCE_HOST_KEYS.has(k)) config[k.toLowerCase()] = jsonish(v);
  return JSON.stringify(config);
}

export function sinkConfig(props: Props): string {
  const config: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(props)) if (!SINK_HOST_KEYS.has(k)) config[k] = v;
  return JSON.stringify(config);
}

/** What one loaded plugin put into the connector registry, and its live instances. */
export class PluginIo {
  readonly sources: string[] = [];
  readonly sinks: string[] = [];
  readonly live = new Set<SourceConnector | SinkConnector>();

  constructor(readonly plugin: string) {}

  /** Registers every source/sink; on a name clash nothing stays registered (E_CONFLICT). */
  register(sources: [string, SourceFactory][], sinks: [string, SinkFactory][]): void {
    try {
      for (const [name, factory] of sources) {
        registerSource(name, factory);
        this.sources.push(name);
      }
      for (const [name, factory] of sinks) {
        registerSink(name, factory);
        this.sinks.push(name);
      }
    } catch (err) {
      this.unregister();
      const e = err as StreamplugError;
      throw new StreamplugError('E_CONFLICT', `plugin ${this.plugin}: ${e.message}`, { plugin: this.plugin });
    }
  }

  unregister(): void {
    for (const name of this.sources.splice(0)) unregisterSource(name);
    for (const name of this.sinks.splice(0)) unregisterSink(name);
  }

  /** Stops every live instance (best effort: used before a forced unload). */
  async stopAll(): Promise<void> {
    const all = [...this.live];
    this.live.clear();
    await Promise.allSettled(all.map((c) => ('stop' in c ? c.stop() : c.close())));
  }
}

/**
 * Keeps `c` in io.live from creation until `onEnd` (stop/close) settles, or until `onBegin`
 * (start/open) fails: a source whose open failed is not live, and must not stay reachable until
 * the plugin is unloaded (with its native instance behind it).
 */
function track<T extends SourceConnector | SinkConnector>(io: PluginIo, c: T, onBegin: keyof T, onEnd: keyof T): T {
  io.live.add(c);
  const calls = c as Record<keyof T, unknown>;
  const begin = c[onBegin] as unknown as (...args: unknown[]) => Promise<void>;
  calls[onBegin] = (...args: unknown[]) =>
    begin.apply(c, args).catch((err: unknown) => {
      io.live.delete(c);
      throw err;
    });
  const end = c[onEnd] as unknown as () => Promise<void>;
  calls[onEnd] = () => end.call(c).finally(() => io.live.delete(c));
  return c;
}

const SP_SINK_ENCODED = 0x1; // plugin.h

/** Where a plugin's sources and sinks run when not in this process: an isolated worker (isolated/io.ts). */
export interface IoHost {
  describe(): IoDescription;
  validate(kind: 'source' | 'sink', index: number, config: string): void;
  /** Absent: this process. */
  backend?: IoBackend;
}

const inProcess = (file: string): IoHost => ({
  describe: () => ioAddon().describeIo(file),
  validate: (kind, index, config) => ioAddon().validateIo(file, kind, index, config),
});

/** Connector factories for a `.so` plugin's sources and sinks (describeIo), in this process or in `host`. */
export function registerNativeIo(plugin: string, file: string, host?: IoHost): PluginIo {
  const io = new PluginIo(plugin);
  const where = host ?? inProcess(file);
  const backend = host?.backend;
  const d = where.describe();
  const sources: [string, SourceFactory][] = d.sources.map((s, index) => [
    s.name,
    (datasource, props, ctx) => {
      const config = sourceConfig(s.name, datasource, props);
      if (s.hasValidate) where.validate('source', index, config);
      const p = new PropReader(`source ${s.name}`, upperProps(props));
      const capacity = p.count('BUFFER_LENGTH', 1024);
      const batchSize = p.count('BATCH_SIZE', 1024);
      if (capacity < 1) throw p.fail('BUFFER_LENGTH', capacity, 'at least 1');
      if (batchSize < 1) throw p.fail('BATCH_SIZE', batchSize, 'at least 1');
      const source = new NativeSourceConnector({ file, index, name: s.name, plugin, backend }, config, {
        capacity,
        batchSize,
        overflow: p.oneOf('OVERFLOW', ['block', 'drop-oldest', 'drop-newest'] as const, 'block') as Overflow,
        closeTimeoutMs: p.count('CLOSE_TIMEOUT', 5000),
        format: readFormat(p),
        ruleId: ctx.ruleId,
      });
      return track(io, source, 'start', 'stop');
    },
  ]);
  const sinks: [string, SinkFactory][] = d.sinks.map((k, index) => [
    k.name,
    (props, ctx) => {
      const config = sinkConfig(props);
      if (k.hasValidate) where.validate('sink', index, config);
      const p = new PropReader(`sink ${k.name}`, props);
      // With the sink cache the runner owns retries (retryCount, then the cache): the worker tries a
      // batch once (maxRetries 0 unless set) and says whether it was taken.
      const cached = p.bool('enableCache', false);
      const sink = new NativeSinkConnector({ file, index, name: k.name, plugin, backend }, config, {
        capacity: Math.max(1, p.count('queueLength', 16)),
        maxRetries: p.number('maxRetries', cached ? 0 : 5),
        confirm: cached,
        backoffMs: Math.max(1, p.count('retryBackoff', 100)),
        maxBackoffMs: Math.max(1, p.count('maxBackoff', 5000)),
        closeTimeoutMs: p.count('closeTimeout', 5000),
        ruleId: ctx.ruleId,
        encoded: (k.flags & SP_SINK_ENCODED) !== 0,
      });
      return track(io, sink, 'open', 'close');
    },
  ]);
  io.register(sources, sinks);
  return io;
}
