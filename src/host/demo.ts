import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { apiTokenFile } from '../api/security/token.js';
import { dataLayout } from '../manager/layout.js';
import { readAllRecords } from '../manager/records.js';
import { checkPluginFile } from '../check/index.js';
import type { DemoHandle } from '../rules/index.js';
import type { Host } from './host.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** dist/src/host → repository root → build/plugins (built by `npm run build:plugins`). */
export const defaultSamplesDir = process.env.STREAMPLUG_SAMPLES ?? path.resolve(here, '../../..', 'build/plugins');

type PluginType = 'functions' | 'sources' | 'sinks';

/** The folder a sample belongs in, from the extensions its manifest note declares. */
function sampleType(file: string): PluginType {
  const ext = checkPluginFile(file).manifest?.extensions ?? [];
  if (ext.some((e) => e.startsWith('source:'))) return 'sources';
  if (ext.some((e) => e.startsWith('sink:'))) return 'sinks';
  return 'functions';
}

/**
 * `--demo`: when the data directory has no plugins yet, copy the sample libraries into
 * plugins/{functions,sources,sinks}/. The startup scan then adopts and loads them like any library
 * put there by hand.
 */
export function seedSamples(dataDir: string, samplesDir = defaultSamplesDir): string[] {
  const layout = dataLayout(dataDir);
  const types: PluginType[] = ['functions', 'sources', 'sinks'];
  const hasRecords = readAllRecords(layout).records.length > 0;
  const hasFiles = types.some((t) => {
    const dir = layout.pluginDir(t);
    return fs.existsSync(dir) && fs.readdirSync(dir).some((f) => /\.(so|node)$/.test(f));
  });
  if (hasRecords || hasFiles || !fs.existsSync(samplesDir)) return [];
  const copied: string[] = [];
  for (const f of fs.readdirSync(samplesDir).sort()) {
    if (!/^[A-Za-z0-9_-]+\.(so|node)$/.test(f)) continue;
    const file = path.join(samplesDir, f);
    const type = sampleType(file);
    fs.copyFileSync(file, path.join(layout.pluginDir(type), f));
    copied.push(`${type}/${f}`);
  }
  return copied;
}

/** What an operator reads after `npm start`. */
export function demoSummary(host: Host, seeded: string[], demo?: DemoHandle, samplesDir = defaultSamplesDir): string {
  const lines: string[] = [];
  lines.push(`streamplug is running on ${host.url} (data directory ${host.dataDir})`);
  if (seeded.length) lines.push(`installed the sample plugins from ${samplesDir}: ${seeded.join(', ')}`);
  else if (!fs.existsSync(samplesDir)) lines.push(`no samples at ${samplesDir}: run \`npm run build:plugins\` to build them`);
  for (const p of host.startup.loaded) {
    const io = host.registry.connectors(p.name);
    const provides = [
      ...p.functions.map((f) => `${f}()`),
      ...io.sources.map((n) => `source ${n}`),
      ...io.sinks.map((n) => `sink ${n}`),
    ];
    lines.push(`  loaded   ${p.type}/${p.name}: ${provides.join(', ') || '(nothing declared)'}`);
  }
  for (const p of host.startup.failed) lines.push(`  FAILED   ${p.type}/${p.name}: ${p.code} ${p.message}`);
  if (host.mqttUrl) lines.push(`MQTT broker: ${host.mqttUrl}`);
  for (const n of demo?.notes ?? []) lines.push(`demo: ${n}`);
  if (host.security.auth === 'token') {
    lines.push(`the REST API needs the token in ${apiTokenFile(host.dataDir)}, e.g.`);
    lines.push(`  curl -H "Authorization: Bearer $(cat ${apiTokenFile(host.dataDir)})" ${host.url}/plugins/functions`);
  }
  lines.push('look here:');
  if (demo) {
    lines.push(`  ${host.url}/rules/${demo.rule}/status   the demo rule's counters`);
    lines.push(`  ${demo.resultsFile}   its results (5 s windows), also on MQTT topic ${demo.resultsTopic}`);
  }
  lines.push(`  ${host.url}/plugins/functions     installed function plugins`);
  lines.push(`  ${host.url}/plugins/udfs          every function a plugin provides`);
  const first = host.startup.loaded[0];
  if (first) lines.push(`  ${host.url}/plugins/${first.type}/${first.name}   one plugin: version, build, check results`);
  lines.push(`  streamplug plugin list --host ${host.url} --data ${host.dataDir}`);
  return lines.join('\n');
}
