/**
 * Named MQTT connection configs, eKuiper style: `<dataDir>/etc/mqtt_source.json` (or
 * ctx.mqttConfigs) maps names to property sets; `default` is the base every other entry and every
 * connector's own properties are laid over. A connector picks an entry with `CONF_KEY`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { StreamplugError } from '../../errors.js';
import { PropReader } from '../props.js';
import type { ConnectorContext, NamedConfigs, Props } from '../types.js';

export function mqttConfigFile(dataDir: string): string {
  return path.join(dataDir, 'etc', 'mqtt_source.json');
}

export function loadNamedConfigs(ctx: ConnectorContext): NamedConfigs {
  if (ctx.mqttConfigs) return ctx.mqttConfigs;
  if (!ctx.dataDir) return {};
  const file = mqttConfigFile(ctx.dataDir);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw e;
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new StreamplugError('E_CONNECTOR_CONFIG', `${file} is not valid JSON (${(e as Error).message}); fix or remove the file`, { file });
  }
  const ok = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
  if (!ok(v) || !Object.values(v).every(ok))
    throw new StreamplugError('E_CONNECTOR_CONFIG', `${file} must be an object of named objects, like {"default": {"server": "tcp://127.0.0.1:1883"}}; fix the file`, { file });
  return v as NamedConfigs;
}

/** default ← CONF_KEY entry ← the connector's own properties (unset values do not override). */
export function resolveMqttProps(props: Props, ctx: ConnectorContext, where: string): Props {
  const p = new PropReader(where, props);
  const confs = loadNamedConfigs(ctx);
  const key = p.string('CONF_KEY');
  if (key !== undefined && key !== 'default' && !(key in confs))
    throw new StreamplugError(
      'E_CONNECTOR_CONFIG',
      `${where}: CONF_KEY ${JSON.stringify(key)} is not a named MQTT config (have: ${Object.keys(confs).join(', ') || 'none'}); add it to etc/mqtt_source.json or fix CONF_KEY`,
      { confKey: key, available: Object.keys(confs) },
    );
  const own = Object.fromEntries(Object.entries(props).filter(([, v]) => v !== undefined && v !== null && v !== ''));
  return { ...(confs.default ?? {}), ...(key ? confs[key] : {}), ...own };
}
