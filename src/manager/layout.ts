import fs from 'node:fs';
import path from 'node:path';

export const PLUGIN_TYPES = ['sources', 'sinks', 'functions'] as const;
export type PluginType = (typeof PLUGIN_TYPES)[number];

export const PLUGIN_NAME_RE = /^[A-Za-z0-9_-]+$/;

export function isPluginType(t: string): t is PluginType {
  return (PLUGIN_TYPES as readonly string[]).includes(t);
}

/** eKuiper's singular in messages: "function plugin echo is created". */
export function singular(t: PluginType): string {
  return t === 'functions' ? 'function' : t === 'sources' ? 'source' : 'sink';
}

/** Where everything of one data directory lives. Nothing at runtime writes outside it. */
export interface DataLayout {
  root: string;
  plugins: string;
  pluginDir(type: PluginType): string;
  /** One JSON record per installed plugin: the commit point of an install. */
  recordsDir: string;
  recordFile(type: PluginType, name: string): string;
  etc: string;
  /** Files a zip's etc/ folder brought, per plugin. */
  pluginEtcDir(type: PluginType, name: string): string;
  /** A source's default configuration (NAME.yaml), eKuiper's etc/sources/NAME.yaml. */
  sourceYaml(name: string): string;
  trustedKeysDir: string;
  tmp: string;
  lockFile: string;
  /** The crash journal (native/host/journal.cc): which plugin each thread is in, memory-mapped. */
  crashJournal: string;
  /** Operator settings of the host (isolation defaults), `etc/host.json`. */
  hostConfig: string;
}

export function dataLayout(root: string): DataLayout {
  const abs = path.resolve(root);
  const plugins = path.join(abs, 'plugins');
  const etc = path.join(abs, 'etc');
  const recordsDir = path.join(plugins, 'records');
  return {
    root: abs,
    plugins,
    pluginDir: (type) => path.join(plugins, type),
    recordsDir,
    recordFile: (type, name) => path.join(recordsDir, `${type}.${name}.json`),
    etc,
    pluginEtcDir: (type, name) => path.join(etc, 'plugins', type, name),
    sourceYaml: (name) => path.join(etc, 'sources', `${name}.yaml`),
    trustedKeysDir: path.join(etc, 'trusted-keys'),
    tmp: path.join(abs, 'tmp'),
    lockFile: path.join(abs, 'host.lock'),
    crashJournal: path.join(abs, 'run', 'crash-journal'),
    hostConfig: path.join(etc, 'host.json'),
  };
}

export function ensureLayout(layout: DataLayout): void {
  for (const t of PLUGIN_TYPES) fs.mkdirSync(layout.pluginDir(t), { recursive: true });
  fs.mkdirSync(layout.recordsDir, { recursive: true });
  fs.mkdirSync(path.join(layout.etc, 'sources'), { recursive: true });
  fs.mkdirSync(layout.tmp, { recursive: true });
  fs.mkdirSync(path.dirname(layout.crashJournal), { recursive: true });
}
