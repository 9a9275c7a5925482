/**
 * Sources and sinks by type name. Built-ins register here at import; native plugin sources/sinks
 * register under their own names later (registerSource / registerSink).
 */
import { StreamplugError } from '../errors.js';
import type { ConnectorContext, Props, SinkConnector, SinkFactory, SourceConnector, SourceFactory } from './types.js';
import { createMqttSource } from './mqtt/source.js';
import { createMqttSink } from './mqtt/sink.js';
import { createMemorySource } from './memory/source.js';
import { createMemorySink } from './memory/sink.js';
import { createLogSink } from './sinks/log.js';
import { createFileSink } from './sinks/file.js';
import { createRestSink } from './sinks/rest.js';
import { createNopSink } from './sinks/nop.js';
import { createNatsSource } from './nats/source.js';
import { createNatsSink } from './nats/sink.js';
import { SinkRunner } from './sink-runner.js';
import { kvPageStore, sinkCacheScope } from './sink-cache.js';

const sources = new Map<string, SourceFactory>([
  ['mqtt', createMqttSource],
  ['memory', createMemorySource],
  ['nats', createNatsSource],
]);

const sinks = new Map<string, SinkFactory>([
  ['mqtt', createMqttSink],
  ['log', createLogSink],
  ['memory', createMemorySink],
  ['file', createFileSink],
  ['rest', createRestSink],
  ['nop', createNopSink],
  ['nats', createNatsSink],
]);

function key(type: string): string {
  return type.toLowerCase();
}

function register<F>(map: Map<string, F>, what: string, type: string, factory: F, replace: boolean): void {
  if (!replace && map.has(key(type)))
    throw new StreamplugError('E_CONFLICT', `${what} type "${type}" is already registered; unregister it first or pick another name`, { type });
  map.set(key(type), factory);
}

export function registerSource(type: string, factory: SourceFactory, opts: { replace?: boolean } = {}): void {
  register(sources, 'source', type, factory, opts.replace ?? false);
}

export function registerSink(type: string, factory: SinkFactory, opts: { replace?: boolean } = {}): void {
  register(sinks, 'sink', type, factory, opts.replace ?? false);
}

export function unregisterSource(type: string): boolean {
  return sources.delete(key(type));
}

export function unregisterSink(type: string): boolean {
  return sinks.delete(key(type));
}

export function sourceTypes(): string[] {
  return [...sources.keys()].sort();
}

export function sinkTypes(): string[] {
  return [...sinks.keys()].sort();
}

/** Throws E_NOT_FOUND for an unknown type and E_CONNECTOR_CONFIG for bad properties. */
export function createSource(type: string, datasource: string, props: Props = {}, ctx: ConnectorContext = {}): SourceConnector {
  const f = sources.get(key(type));
  if (!f) throw new StreamplugError('E_NOT_FOUND', `source type "${type}" is unknown (have: ${sourceTypes().join(', ')}); fix TYPE or install the plugin that provides it`, { type });
  return f(datasource, props, ctx);
}

export function createSink(type: string, props: Props = {}, ctx: ConnectorContext = {}): SinkConnector {
  const f = sinks.get(key(type));
  if (!f) throw new StreamplugError('E_NOT_FOUND', `sink type "${type}" is unknown (have: ${sinkTypes().join(', ')}); fix the action name or install the plugin that provides it`, { type });
  return f(props, ctx);
}

/**
 * A sink of `type` wrapped in a SinkRunner reading the common properties from the same props; not
 * opened yet. Every sink, built-in or native plugin, gets the runner's queue, retries and cache here.
 * `action` (the index in the rule's actions) names the sink's cache in the store.
 */
export function createSinkRunner(type: string, props: Props = {}, ctx: ConnectorContext = {}, action = 0): SinkRunner {
  const cacheStore = ctx.kv && ctx.ruleId !== undefined ? kvPageStore(ctx.kv, sinkCacheScope(ctx.ruleId, action)) : undefined;
  return new SinkRunner(createSink(type, props, ctx), props, { name: `${type} sink`, logger: ctx.logger, cacheStore });
}
