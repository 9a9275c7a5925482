/** Real plugins, a real store and the real service for the rules tests. */
import fs from 'node:fs';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { PluginRegistry } from '../../src/plugins/registry.js';
import { openStore, type Store } from '../../src/store/index.js';
import { memoryBus, type Row } from '../../src/connectors/index.js';
import { createRuleService, type RuleService } from '../../src/rules/index.js';
import type { FunctionResolver } from '../../src/engine/index.js';
import { registerStreamRoutes } from '../../src/api/routes/streams.js';
import { registerRuleRoutes } from '../../src/api/routes/rules.js';
import { samplesDir } from '../helpers/paths.js';
import { loadIn, type IsolationMode } from '../helpers/isolation.js';

export { tempDir, waitFor, freePort } from '../connectors/helpers.js';

export const SAMPLES = ['echo', 'countPlusOne', 'accumulateWordCount', 'vector'] as const;

/** A registry with the native sample plugins loaded (build them with `npm run build:plugins`). */
export async function sampleRegistry(): Promise<PluginRegistry> {
  const reg = new PluginRegistry({ onLog: () => undefined });
  for (const name of SAMPLES) {
    const file = path.join(samplesDir, `${name}.so`);
    if (!fs.existsSync(file)) throw new Error(`${file} is missing; run \`npm run build:plugins\` first`);
    await reg.load(file);
  }
  return reg;
}

/** sampleRegistry, with the samples loaded in `mode` (test/helpers/isolation.ts). */
export async function sampleRegistryIn(mode: IsolationMode): Promise<PluginRegistry> {
  const reg = new PluginRegistry({ onLog: () => undefined });
  for (const name of SAMPLES) {
    const file = path.join(samplesDir, `${name}.so`);
    if (!fs.existsSync(file)) throw new Error(`${file} is missing; run \`npm run build:plugins\` first`);
    await loadIn(reg, file, mode);
  }
  return reg;
}

export interface Opened {
  service: RuleService;
  store: Store;
  close(): Promise<void>;
}

export function openService(dataDir: string, functions: FunctionResolver, broker?: { url: string }): Opened {
  const store = openStore(dataDir);
  const service = createRuleService({ dataDir, store, functions, broker });
  return {
    service,
    store,
    async close() {
      await service.close();
      store.close();
    },
  };
}

/** Collects what arrives on a memory-bus topic. */
export function collect(topic: string): { rows: Row[]; batches: Row[][]; stop(): void } {
  const rows: Row[] = [];
  const batches: Row[][] = [];
  const stop = memoryBus.subscribe(topic, (r) => {
    batches.push(r);
    rows.push(...r);
  });
  return { rows, batches, stop };
}

/** Publishes rows on the memory bus, one message per row. */
export function publish(topic: string, rows: Row[]): void {
  for (const r of rows) memoryBus.publish(topic, [r]);
}

export async function routesApp(service: RuleService): Promise<FastifyInstance> {
  const app = Fastify();
  await registerStreamRoutes(app, service);
  await registerRuleRoutes(app, service);
  await app.ready();
  return app;
}

export const WORDS = [
  'john,alice,tom',
  'rose,bob,mary',
  'alice,tom',
  'john,alice,tom,rose,bob,mary,alice,tom',
  'rose,bob,mary,alice',
  'tom,john,alice,tom,rose',
  'bob,mary',
  'alice,tom,rose',
];
export const WORD_COUNTS = [3, 6, 8, 16, 20, 25, 27, 30];
