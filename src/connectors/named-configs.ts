/**
 * Named connection configs, eKuiper style, for every connector that has them:
 * `<dataDir>/etc/<connector>_source.json` (mqtt_source.json, nats_source.json, later kafka_source.json)
 * maps names to property sets; `default` is the base every other entry and every connector's own
 * properties are laid over. A connector picks an entry with `CONF_KEY`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { StreamplugError } from '../errors.js';
import { PropReader } from './props.js';
import type { NamedConfigs, Props } from './types.js';

/** `<dataDir>/etc/<connector>_source.json` */
export function namedConfigFile(dataDir: string, connector: string): string {
  return path.join(dataDir, 'etc', `${connector}_source.json`);
}

/** The file's named configs; {} when it does not exist. Throws E_CONNECTOR_CONFIG when it is malformed. */
export function readNamedConfigFile(file: string): NamedConfigs {
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
    throw new StreamplugError('E_CONNECTOR_CONFIG', `${file} must be an object of named objects, like {"default": {"server": "…"}}; fix the file`, { file });
  return v as NamedConfigs;
}

/** default ← CONF_KEY entry ← the connector's own properties (unset values do not override). */
export function layerNamedConfig(props: Props, confs: NamedConfigs, where: string, fileLabel: string): Props {
  const p = new PropReader(where, props);
  const key = p.string('CONF_KEY');
  if (key !== undefined && key !== 'default' && !(key in confs))
    throw new StreamplugError(
      'E_CONNECTOR_CONFIG',
      `${where}: CONF_KEY ${JSON.stringify(key)} is not a named config in ${fileLabel} (have: ${Object.keys(confs).join(', ') || 'none'}); add it to ${fileLabel} or fix CONF_KEY`,
      { confKey: key, available: Object.keys(confs) },
    );
  const own = Object.fromEntries(Object.entries(props).filter(([, v]) => v !== undefined && v !== null && v !== ''));
  return layer(layer(layer({}, confs.default ?? {}), key ? (confs[key] ?? {}) : {}), own);
}

/**
 * `over` laid on `base`. Names match case-insensitively (as PropReader reads them), so a stream's
 * `STREAM="B"` replaces the file's `"stream": "A"` instead of sitting beside it.
 */
function layer(base: Props, over: Props): Props {
  const out: Props = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const lower = k.toLowerCase();
    for (const old of Object.keys(out)) if (old.toLowerCase() === lower) delete out[old];
    out[k] = v;
  }
  return out;
}
