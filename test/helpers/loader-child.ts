/**
 * Child process for tests: asks the host's loader itself (the registry with the pre-load check
 * switched off) to load a file, so a test sees what the loader does with a file the check would
 * have stopped, without risking the test process. Prints one JSON line: {"loaded": …} or
 * {"code", "message"}. With `reload`: load, unload, load again (what an update does).
 *   node dist/test/helpers/loader-child.js FILE [reload]
 */
import { PluginRegistry } from '../../src/plugins/registry.js';

const [file, mode] = process.argv.slice(2);
const registry = new PluginRegistry({
  onLog: () => undefined,
  check: (f) => ({ file: f, flavour: f.endsWith('.node') ? 'node' : 'so', loadable: true, rows: [] }),
});
try {
  let info = await registry.load(file);
  if (mode === 'reload') {
    registry.unload(info.name);
    info = await registry.load(file);
  }
  process.stdout.write(`${JSON.stringify({ loaded: info.name, functions: info.functions })}\n`);
} catch (e) {
  const err = e as { code?: string; message?: string };
  process.stdout.write(`${JSON.stringify({ code: err.code, message: err.message })}\n`);
}
