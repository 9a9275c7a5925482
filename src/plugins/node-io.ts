/**
 * Sources and sinks of a `.node` plugin (contract 1.1). Besides `functions`, the exports may hold
 *
 *   sources: [{ name, validate?(config): string | void,
 *               open(config, push: (rows: object[]) => void, status: (state, message?) => void): handle,
 *               close(handle): void | Promise<void> }]
 *   sinks:   [{ name, validate?(config): string | void,
 *               open(config): handle,
 *               collect(handle, rows: object[]): void | Promise<void>,   throw: not delivered (SinkRunner retries)
 *               close(handle): void | Promise<void> }]
 *
 * `config` is the parsed configuration object (io-connectors.ts says how properties map to it).
 * A `.node` plugin runs on the JS thread: it does its own threading (e.g. a thread-safe
 * function) if it needs any. plugins/jsonlines is the sample.
 */
import os from 'node:os';
import type { ConnectorStatus, EmitFn, Row, SinkConnector, SourceConnector, SinkFactory, SourceFactory, StatusFn } from '../connectors/types.js';
import { StreamplugError } from '../errors.js';
import { PluginIo, sinkConfig, sourceConfig } from './io-connectors.js';

interface NodeSourceDef {
  name: string;
  validate?(config: unknown): string | void;
  open(config: unknown, push: (rows: Row[]) => void, status: (state: string, message?: string) => void): unknown;
  close(handle: unknown): void | Promise<void>;
}

interface NodeSinkDef {
  name: string;
  validate?(config: unknown): string | void;
  open(config: unknown): unknown;
  collect(handle: unknown, rows: Row[]): void | Promise<void>;
  close(handle: unknown): void | Promise<void>;
}

/** The source:/sink: entries of a manifest's extensions. */
export function nodeIoExtensions(extensions: readonly string[]): string[] {
  return extensions.filter((e) => e.startsWith('source:') || e.startsWith('sink:'));
}

function fail(file: string, what: string): StreamplugError {
  return new StreamplugError('E_BAD_DESCRIPTOR', `${file}: ${what}; see src/plugins/node-io.ts for the shape of sources and sinks`, { file });
}

function validated(plugin: string, kind: string, def: { name: string; validate?(c: unknown): string | void }, config: string): unknown {
  const parsed: unknown = JSON.parse(config);
  const reason = def.validate?.(parsed);
  if (typeof reason === 'string') {
    throw new StreamplugError('E_CONNECTOR_CONFIG', `${kind} ${def.name} (plugin ${plugin}) refused its configuration: ${reason}`, { plugin });
  }
  return parsed;
}

class NodeSource implements SourceConnector {
  private handle: unknown;
  private open = false;
  constructor(
    private readonly def: NodeSourceDef,
    private readonly plugin: string,
    private readonly config: unknown,
  ) {}

  async start(emit: EmitFn, onStatus: StatusFn): Promise<void> {
    if (this.open) return;
    try {
      this.handle = this.def.open(
        this.config,
        (rows) => emit(rows, { ts: Date.now() }),
        (state, message) => onStatus({ state: state as ConnectorStatus['state'], ...(message ? { error: message } : {}) }),
      );
    } catch (err) {
      throw new StreamplugError('E_SOURCE_FAILED', `source ${this.def.name} (plugin ${this.plugin}) open failed: ${(err as Error)?.message ?? err}`);
    }
    this.open = true;
    onStatus({ state: 'connected' });
  }

  async stop(): Promise<void> {
    if (!this.open) return;
    this.open = false;
    await this.def.close(this.handle);
  }
}

class NodeSink implements SinkConnector {
  private handle: unknown;
  private opened = false;
  constructor(
    private readonly def: NodeSinkDef,
    private readonly plugin: string,
    private readonly config: unknown,
  ) {}

  async open(): Promise<void> {
    try {
      this.handle = this.def.open(this.config);
    } catch (err) {
      throw new StreamplugError('E_SINK_FAILED', `sink ${this.def.name} (plugin ${this.plugin}) open failed: ${(err as Error)?.message ?? err}`);
    }
    this.opened = true;
  }

  async collect(rows: Row[]): Promise<void> {
    if (!this.opened) throw new StreamplugError('E_SINK_FAILED', `sink ${this.def.name} is not open`);
    try {
      await this.def.collect(this.handle, rows);
    } catch (err) {
      throw new StreamplugError('E_SINK_FAILED', `sink ${this.def.name} (plugin ${this.plugin}) collect failed: ${(err as Error)?.message ?? err}`);
    }
  }

  async close(): Promise<void> {
    if (!this.opened) return;
    this.opened = false;
    await this.def.close(this.handle);
  }
}

/**
 * Reads the `.node` file's sources and sinks (a second process.dlopen returns fresh exports of
 * the same module) and registers them. `declared`: the manifest's source:/sink: entries, which
 * must match.
 */
export function registerNodeIo(plugin: string, file: string, declared: string[] | undefined): PluginIo {
  const module = { exports: {} as { sources?: unknown; sinks?: unknown } };
  process.dlopen(module, file, os.constants.dlopen.RTLD_NOW);
  const sources = (module.exports.sources ?? []) as NodeSourceDef[];
  const sinks = (module.exports.sinks ?? []) as NodeSinkDef[];
  if (!Array.isArray(sources) || !Array.isArray(sinks)) throw fail(file, 'sources and sinks must be arrays');
  for (const d of [...sources, ...sinks]) {
    if (typeof d !== 'object' || d === null || typeof d.name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(d.name)) throw fail(file, 'a source or sink has no valid name');
    if (typeof d.open !== 'function' || typeof d.close !== 'function') throw fail(file, `${d.name}: open and close must be functions`);
  }
  for (const d of sinks) if (typeof d.collect !== 'function') throw fail(file, `sink ${d.name}: collect must be a function`);
  const actual = [...sources.map((s) => `source:${s.name}`), ...sinks.map((s) => `sink:${s.name}`)].sort().join(',');
  if (declared !== undefined && [...declared].sort().join(',') !== actual) {
    throw new StreamplugError('E_MANIFEST_MISMATCH', `${file}: manifest declares sources/sinks ${declared.join(',') || '(none)'}, the plugin exports ${actual || '(none)'}; make them agree`, { file });
  }
  const io = new PluginIo(plugin);
  const track = <T extends SourceConnector | SinkConnector>(c: T): T => {
    io.live.add(c);
    return c;
  };
  io.register(
    sources.map((def): [string, SourceFactory] => [
      def.name,
      (datasource, props) => {
        const s = new NodeSource(def, plugin, validated(plugin, 'source', def, sourceConfig(def.name, datasource, props)));
        const stop = s.stop.bind(s);
        s.stop = () => stop().finally(() => io.live.delete(s));
        return track(s);
      },
    ]),
    sinks.map((def): [string, SinkFactory] => [
      def.name,
      (props) => {
        const k = new NodeSink(def, plugin, validated(plugin, 'sink', def, sinkConfig(props)));
        const close = k.close.bind(k);
        k.close = () => close().finally(() => io.live.delete(k));
        return track(k);
      },
    ]),
  );
  return io;
}
