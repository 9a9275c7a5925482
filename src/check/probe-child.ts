/**
 * Child process of the trial load (probe.ts): loads one file with the host's own registry, prints
 * `{"probe": …}` on one line, unloads and exits. Never run in the host process.
 */
import { isStreamplugError } from '../errors.js';
import { PluginRegistry } from '../plugins/registry.js';
import type { ProbeResult } from './probe.js';

function report(r: ProbeResult): void {
  process.stdout.write(`${JSON.stringify({ probe: r })}\n`);
}

const file = process.argv[2];
const timeout = Number(process.env.STREAMPLUG_LOAD_TIMEOUT_MS);
const registry = new PluginRegistry({ onLog: () => {}, ...(timeout > 0 ? { loadTimeoutMs: timeout } : {}) });
try {
  const info = await registry.load(file);
  const io = registry.connectors(info.name);
  report({ status: 'loaded', name: info.name, functions: [...info.functions], sources: io.sources, sinks: io.sinks });
  try {
    registry.unloadAll();
  } catch {
    // the verdict is given; an unload problem is not the load's
  }
} catch (e) {
  const code = isStreamplugError(e) ? e.code : ((e as { code?: unknown })?.code as string | undefined) ?? 'E_INTERNAL';
  report({ status: 'refused', code: /^E_[A-Z0-9_]+$/.test(code) ? code : 'E_INTERNAL', message: (e as Error)?.message ?? String(e) });
}
process.exit(0);
