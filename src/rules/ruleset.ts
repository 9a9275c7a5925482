/**
 * eKuiper's rule set, for POST /data/import and GET /data/export (and `streamplug fleet apply`):
 *
 *   { "streams": {name: "CREATE STREAM …"}, "tables": {}, "rules": {id: "<rule JSON>"},
 *     "nativePlugins": {"functions_echo": "{\"name\":\"echo\",\"file\":\"file:///…zip\"}"},
 *     "portablePlugins": {}, "sourceConfig": {"nats": "<etc/nats_source.json>"}, "sinkConfig": {},
 *     "connectionConfig": {} }
 *
 * Values are JSON-encoded strings, as eKuiper writes them. Export then import then export gives the
 * same text. Stream SQL is exported in the canonical form the host stores (keywords and types as the
 * parser prints them, TYPE and FORMAT explicit); rule JSON as it was given.
 *
 * Import makes the host hold exactly the rule set (streams and rules not in it are removed; with
 * `partial` they are kept). Items equal to what the host has are left alone, so applying the same set
 * again restarts nothing. Order: plugins (installed when absent, from their `file`), source configs,
 * streams, tables, rules. A table whose SQL changed is dropped and created again (refused while a
 * rule that stays joins it). Portable plugins are refused: streamplug has none.
 */
import { StreamplugError } from '../errors.js';
import { namedConfigFile, readNamedConfigFile } from '../connectors/index.js';
import { isPluginType, PLUGIN_TYPES, type PluginType } from '../manager/layout.js';
import type { RuleService } from './service.js';
import { parseRuleDef } from './definition.js';
import { parseStreamDef } from '../engine/index.js';
import fs from 'node:fs';
import path from 'node:path';

export interface RuleSet {
  streams: Record<string, string>;
  tables: Record<string, string>;
  rules: Record<string, string>;
  nativePlugins: Record<string, string>;
  portablePlugins: Record<string, string>;
  sourceConfig: Record<string, string>;
  sinkConfig: Record<string, string>;
  connectionConfig: Record<string, string>;
}

const SECTIONS = ['streams', 'tables', 'rules', 'nativePlugins', 'portablePlugins', 'sourceConfig', 'sinkConfig', 'connectionConfig'] as const;
/** Sections eKuiper writes that carry nothing streamplug has; accepted when empty. */
const IGNORED_EMPTY = ['Service', 'Schema', 'uploads', 'sourceYamlConfig'];
/** Connectors whose named configs live in etc/<type>_source.json. */
export const CONFIG_CONNECTORS = ['mqtt', 'nats'] as const;

/** What the rule set needs of the plugin manager. */
export interface PluginCatalog {
  list(type: PluginType): string[];
  record(type: PluginType, name: string): { origin?: string; functions?: string[] } | undefined;
  install(req: { type: PluginType; name: string; source: { file: string }; functions?: string[] }): Promise<{ state: string }>;
}

/** One plugin reference: `<type>_<name>` → {name, file, functions?}. */
export interface PluginRef {
  type: PluginType;
  name: string;
  file: string;
  functions?: string[];
}

export type ItemOutcome = 'created' | 'updated' | 'unchanged' | 'deleted' | 'installed' | 'present' | 'written';

export interface ImportReport {
  /** Every item of the set (and every removal) with what happened to it. */
  applied: { section: string; name: string; outcome: ItemOutcome; status?: string }[];
  failed: { section: string; name: string; code: string; message: string }[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function bad(message: string): StreamplugError {
  return new StreamplugError('E_BAD_REQUEST', message);
}

/** Checks the shape of a rule set (an object, or its JSON text). Throws E_BAD_REQUEST naming the first problem. */
export function parseRuleSet(input: unknown): RuleSet {
  if (typeof input === 'string') {
    try {
      input = JSON.parse(input);
    } catch (e) {
      throw bad(`the rule set is not valid JSON (${(e as Error).message}); export one with GET /data/export to see the format`);
    }
  }
  if (!isObject(input)) throw bad('the rule set must be a JSON object like {"streams": {…}, "rules": {…}}');
  const unknown = Object.keys(input).filter((k) => !(SECTIONS as readonly string[]).includes(k) && !IGNORED_EMPTY.includes(k));
  if (unknown.length) throw bad(`the rule set has unknown section(s) ${unknown.join(', ')}; expected ${SECTIONS.join(', ')}`);
  for (const k of IGNORED_EMPTY) {
    const v = input[k];
    if (v !== undefined && !(isObject(v) && Object.keys(v).length === 0))
      throw bad(`the rule set's "${k}" section is not empty, but streamplug has no ${k}; remove it`);
  }
  const out = {} as RuleSet;
  for (const s of SECTIONS) {
    const v = input[s] ?? {};
    if (!isObject(v)) throw bad(`the rule set's "${s}" must be an object of strings`);
    for (const [k, x] of Object.entries(v))
      if (typeof x !== 'string') throw bad(`the rule set's ${s}.${k} must be a string (eKuiper keeps each item as JSON or SQL text), found ${typeof x}`);
    out[s] = v as Record<string, string>;
  }
  return out;
}

/** nativePlugins entries, checked. */
export function pluginRefs(set: RuleSet): PluginRef[] {
  return Object.entries(set.nativePlugins).map(([key, text]) => {
    const m = /^(sources|sinks|functions)_([A-Za-z0-9_-]+)$/.exec(key);
    if (!m) throw bad(`nativePlugins key "${key}" must be <type>_<name> with type sources, sinks or functions`);
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      throw bad(`nativePlugins.${key} is not JSON; expected {"name": "${m[2]}", "file": "<zip URL or path>"}`);
    }
    if (!isObject(v) || (v.name !== undefined && v.name !== m[2]) || typeof v.file !== 'string')
      throw bad(`nativePlugins.${key} must be {"name": "${m[2]}", "file": "<zip URL or path>"}`);
    const functions = Array.isArray(v.functions) ? (v.functions as unknown[]).map(String) : undefined;
    return { type: m[1] as PluginType, name: m[2], file: v.file, ...(functions ? { functions } : {}) };
  });
}

export function exportRuleSet(rules: RuleService, plugins: PluginCatalog | undefined, dataDir: string): RuleSet {
  const set: RuleSet = { streams: {}, tables: {}, rules: {}, nativePlugins: {}, portablePlugins: {}, sourceConfig: {}, sinkConfig: {}, connectionConfig: {} };
  for (const name of rules.listStreams()) set.streams[name] = rules.describeStream(name).sql;
  for (const name of rules.listTables()) set.tables[name] = rules.describeTable(name).sql;
  for (const r of rules.listRules()) set.rules[r.id] = JSON.stringify(rules.describeRule(r.id));
  for (const type of plugins ? PLUGIN_TYPES : []) {
    for (const name of plugins!.list(type)) {
      const rec = plugins!.record(type, name);
      set.nativePlugins[`${type}_${name}`] = JSON.stringify({ name, file: rec?.origin ?? '', ...(rec?.functions?.length ? { functions: rec.functions } : {}) });
    }
  }
  for (const c of CONFIG_CONNECTORS) {
    const file = namedConfigFile(dataDir, c);
    if (fs.existsSync(file)) set.sourceConfig[c] = JSON.stringify(readNamedConfigFile(file));
  }
  return set;
}

export async function importRuleSet(
  rules: RuleService,
  plugins: PluginCatalog | undefined,
  dataDir: string,
  input: unknown,
  opts: { partial?: boolean } = {},
): Promise<ImportReport> {
  const set = parseRuleSet(input);
  const refs = pluginRefs(set);
  const report: ImportReport = { applied: [], failed: [] };
  const fail = (section: string, name: string, e: unknown) => {
    const err = e as { code?: string; message?: string };
    report.failed.push({ section, name, code: err?.code ?? 'E_INTERNAL', message: err?.message ?? String(e) });
  };
  const done = (section: string, name: string, outcome: ItemOutcome, status?: string) => report.applied.push({ section, name, outcome, ...(status ? { status } : {}) });

  for (const name of Object.keys(set.portablePlugins))
    fail('portablePlugins', name, new StreamplugError('E_BAD_REQUEST', `portable plugin ${name}: streamplug runs native (.so/.node) plugins only; list it under nativePlugins`));
  for (const s of ['sinkConfig', 'connectionConfig'] as const)
    for (const name of Object.keys(set[s]))
      fail(s, name, new StreamplugError('E_BAD_REQUEST', `${s}.${name}: streamplug keeps connection settings in sourceConfig (etc/<type>_source.json) and in the actions; move it there`));

  // plugins: installed when absent
  for (const ref of refs) {
    const key = `${ref.type}_${ref.name}`;
    try {
      if (!plugins) throw new StreamplugError('E_BAD_REQUEST', `this host has no plugin manager; ${key} cannot be installed`);
      if (plugins.list(ref.type).includes(ref.name)) {
        done('nativePlugins', key, 'present');
        continue;
      }
      if (!ref.file || ref.file === 'upload')
        throw new StreamplugError('E_BAD_REQUEST', `plugin ${key} is not installed here and its reference names no zip ("file": ${JSON.stringify(ref.file)}); install it first or give its zip URL`);
      const r = await plugins.install({ type: ref.type, name: ref.name, source: { file: ref.file }, ...(ref.functions ? { functions: ref.functions } : {}) });
      done('nativePlugins', key, 'installed', r.state);
    } catch (e) {
      fail('nativePlugins', key, e);
    }
  }

  // source configs: etc/<type>_source.json
  for (const [type, text] of Object.entries(set.sourceConfig)) {
    try {
      if (!(CONFIG_CONNECTORS as readonly string[]).includes(type))
        throw new StreamplugError('E_BAD_REQUEST', `sourceConfig.${type}: no connector "${type}" reads named configs here (have: ${CONFIG_CONNECTORS.join(', ')})`);
      const file = namedConfigFile(dataDir, type);
      const tmp = `${file}.import-${process.pid}`;
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(tmp, text);
      try {
        readNamedConfigFile(tmp); // same checks as when a connector reads it
        const before = fs.existsSync(file) ? JSON.stringify(readNamedConfigFile(file)) : undefined;
        fs.renameSync(tmp, file);
        done('sourceConfig', type, before === JSON.stringify(JSON.parse(text)) ? 'unchanged' : 'written');
      } finally {
        fs.rmSync(tmp, { force: true });
      }
    } catch (e) {
      fail('sourceConfig', type, e);
    }
  }

  // removals first (rules, then the streams they read), unless partial
  if (!opts.partial) {
    for (const r of rules.listRules()) {
      if (r.id in set.rules) continue;
      try {
        await rules.deleteRule(r.id);
        done('rules', r.id, 'deleted');
      } catch (e) {
        fail('rules', r.id, e);
      }
    }
    for (const name of rules.listStreams()) {
      if (name in set.streams) continue;
      try {
        rules.dropStream(name);
        done('streams', name, 'deleted');
      } catch (e) {
        fail('streams', name, e);
      }
    }
    for (const name of rules.listTables()) {
      if (name in set.tables) continue;
      try {
        rules.dropTable(name);
        done('tables', name, 'deleted');
      } catch (e) {
        fail('tables', name, e);
      }
    }
  }

  const have = new Set(rules.listStreams());
  for (const [name, sql] of Object.entries(set.streams)) {
    try {
      if (!have.has(name)) {
        const r = rules.createStream(sql);
        if (r.stream.name !== name) {
          rules.dropStream(r.stream.name);
          throw new StreamplugError('E_BAD_REQUEST', `streams.${name} holds the SQL of stream ${r.stream.name}; the key must be the stream's name`);
        }
        done('streams', name, 'created');
      } else if (rules.describeStream(name).sql !== parseStreamDef(sql).sql) {
        // compared in the canonical form the host stores, so a re-apply of hand-written SQL restarts nothing
        await rules.replaceStream(name, sql);
        done('streams', name, 'updated');
      } else done('streams', name, 'unchanged');
    } catch (e) {
      fail('streams', name, e);
    }
  }

  const haveTables = new Set(rules.listTables());
  for (const [name, sql] of Object.entries(set.tables)) {
    try {
      const def = parseStreamDef(sql);
      if (def.name !== name || !def.table) throw new StreamplugError('E_BAD_REQUEST', `tables.${name} must hold CREATE TABLE ${name} …; the key must be the table's name`);
      if (!haveTables.has(name)) {
        rules.createTable(sql);
        done('tables', name, 'created');
      } else if (rules.describeTable(name).sql !== def.sql) {
        rules.dropTable(name);
        rules.createTable(sql);
        done('tables', name, 'updated');
      } else done('tables', name, 'unchanged');
    } catch (e) {
      fail('tables', name, e);
    }
  }

  const existing = new Set(rules.listRules().map((r) => r.id));
  for (const [id, text] of Object.entries(set.rules)) {
    try {
      const def = parseRuleDef(text);
      if (def.id !== id) throw new StreamplugError('E_BAD_REQUEST', `rules.${id} holds rule ${def.id}; the key must be the rule's id`);
      let outcome: ItemOutcome;
      if (!existing.has(id)) {
        await rules.createRule(def);
        outcome = 'created';
      } else if (JSON.stringify(rules.describeRule(id)) !== JSON.stringify(def)) {
        await rules.updateRule(id, def);
        outcome = 'updated';
      } else outcome = 'unchanged';
      const st = rules.listRules().find((r) => r.id === id);
      done('rules', id, outcome, st?.status);
    } catch (e) {
      fail('rules', id, e);
    }
  }
  return report;
}
