/**
 * Streams and rules over the engine and the connectors.
 *
 *   const service = createRuleService({ dataDir, store, functions: registry, broker: { url }, log });
 *   await service.restore();                       // streams, rules and their running state from the store
 *   manager.setUsage(service);                     // PluginUsage: rulesUsing(plugin)
 *   await registerStreamRoutes(app, service); await registerRuleRoutes(app, service);
 *   …
 *   await service.close();                         // stops rules and sources; the store stays open
 */
export { createRuleService, type RuleService, type RuleServiceOptions, type RuleSummary, type RestoreReport, type StreamDescription, type StreamSqlResult } from './service.js';
export { parseRuleDef, type RuleDef, type ActionDef } from './definition.js';
export type { RuleStatus, RuleState, RuleError, SinkReport } from './status.js';
export type { SourceReport } from './source-hub.js';
export { installDemo, type DemoHandle, type DemoOptions } from './demo.js';
export { RulesClient } from './client.js';
