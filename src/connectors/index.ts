/** Public surface of the connectors: the engine and the host import from here. */
export * from './types.js';
export { createSource, createSink, registerSource, registerSink, unregisterSource, unregisterSink, sourceTypes, sinkTypes, createSinkRunner } from './registry.js';
export { SinkRunner, readSinkCommon, type SinkCommonOptions, type SinkMetrics, type SinkHealthFn } from './sink-runner.js';
export { SinkCache, readCacheOptions, kvPageStore, sinkCacheScope, type SinkCacheOptions, type CachePageStore } from './sink-cache.js';
export { compileTemplate, toJson, type Template } from './template.js';
export { decodeJson, decode, type Format, type DecodeResult } from './decode.js';
export { topicMatches, validateFilter, validateTopic } from './topic.js';
export { MemoryBus, memoryBus } from './memory/bus.js';
export { startEmbeddedBroker, type EmbeddedBroker, type EmbeddedBrokerOptions } from './mqtt/broker.js';
export { loadNamedConfigs, resolveMqttProps, mqttConfigFile } from './mqtt/conf.js';
export { PropReader } from './props.js';
export { namedConfigFile, readNamedConfigFile, layerNamedConfig } from './named-configs.js';
export { natsConfigFile } from './nats/conf.js';
