/**
 * Agreement: for every file of the project's corpora and samples, `streamplug check` (the real
 * CLI, in its own process) says "loadable" exactly when a real host loads the file, and otherwise
 * refuses with the code the host reports. The host side is a real `streamplug start` on a data
 * directory into which the files were copied by hand (startup adoption: the path that loads
 * whatever it finds). It must stay up through all of them.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { cliPath, startHostProcess, type HostProcess } from '../helpers/host-process.js';
import { buildDir, corpusDir, samplesDir } from '../helpers/paths.js';
import { ensureCorpus, tempDir } from './corpus.js';

const run = promisify(execFile);

interface Verdict {
  file: string;
  loadable: boolean;
  code?: string;
  message?: string;
  /** Names the file claims (plugin, extensions): files sharing one go to different hosts. */
  names: string[];
}

const LIBRARY = /\.(so|node)$/;
const listDir = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => LIBRARY.test(f)).map((f) => path.join(dir, f)) : []);

/** The adoption name of a copied file: what the host records it under (no dots). */
const stem = (file: string) => path.basename(file).replace(LIBRARY, '').replace(/[^A-Za-z0-9_-]/g, '_');

describe('streamplug check agrees with the host on every corpus and sample file', () => {
  const hosts: HostProcess[] = [];
  const dirs: string[] = [];
  let files: string[] = [];
  let verdicts: Verdict[] = [];

  before(async () => {
    ensureCorpus();
    files = [...listDir(corpusDir), ...listDir(samplesDir), ...listDir(path.join(buildDir, 'corpus-xv'))];
    assert.ok(files.length > 40, `expected the corpus and samples under ${buildDir}; run npm run build:plugins and build:corpus`);
    const { stdout } = await run(process.execPath, [cliPath, 'check', '--json', ...files], { maxBuffer: 64 * 1024 * 1024 }).catch(
      (e: { stdout: string }) => ({ stdout: e.stdout }), // exit 1: some are refused
    );
    const reports = JSON.parse(stdout) as {
      file: string;
      loadable: boolean;
      error?: { code: string; message: string };
      manifest?: { name: string; extensions: string[] };
      provides?: { name: string; functions: string[]; sources: string[]; sinks: string[] };
    }[];
    verdicts = reports.map((r) => ({
      file: r.file,
      loadable: r.loadable,
      code: r.error?.code,
      message: r.error?.message,
      names: [
        ...(r.manifest ? [`plugin:${r.manifest.name}`, ...r.manifest.extensions.map((e) => e.split(':')[1].toLowerCase())] : []),
        ...(r.provides ? [`plugin:${r.provides.name}`, ...r.provides.functions, ...r.provides.sources, ...r.provides.sinks].map((n) => n.toLowerCase()) : []),
        `file:${stem(r.file)}`,
      ],
    }));
  });

  after(async () => {
    for (const h of hosts) await h.stop();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('gets the same verdict from a real host, which stays up', async () => {
    // Spread the files over as few hosts as possible so that no two in one host claim one name
    // (two plugins may not provide the same function: that is a clash between files, not a verdict).
    const batches: Verdict[][] = [];
    for (const v of verdicts) {
      const batch = batches.find((b) => !b.some((o) => o.names.some((n) => v.names.includes(n))));
      if (batch) batch.push(v);
      else batches.push([v]);
    }
    // Libraries some plugins find through RUNPATH $ORIGIN travel with every batch.
    const helpers = files.filter((f) => /^libsp/.test(path.basename(f)));

    const disagreements: string[] = [];
    let compared = 0;
    for (const batch of batches) {
      const data = tempDir('agree');
      dirs.push(data);
      const dest = path.join(data, 'plugins', 'functions');
      fs.mkdirSync(dest, { recursive: true });
      for (const f of new Set([...batch.map((v) => v.file), ...helpers])) {
        fs.copyFileSync(f, path.join(dest, path.basename(f).replace(/^(.*)(\.so|\.node)$/, (_, b: string, e: string) => `${b.replace(/[^A-Za-z0-9_-]/g, '_')}${e}`)));
      }
      const host = await startHostProcess({ dataDir: data, args: ['--mqtt-port', '0'], readyMs: 60_000 });
      hosts.push(host);
      for (const v of batch) {
        const r = await host.api('GET', `/plugins/functions/${stem(v.file)}`);
        assert.equal(r.status, 200, `${v.file}: ${r.text}`);
        const state: string = r.body.state;
        const code: string | undefined = r.body.lastError?.code;
        compared++;
        if (v.loadable !== (state === 'loaded') || (!v.loadable && code !== v.code)) {
          disagreements.push(`${path.basename(v.file)}: check says ${v.loadable ? 'loadable' : v.code}, the host ${state}${code ? ` ${code}` : ''} (${r.body.lastError?.message ?? ''})`);
        }
      }
      const ping = await fetch(`${host.url}/ping`);
      assert.equal(ping.status, 200, 'the host must stay up through every file');
      await host.stop();
    }
    assert.equal(compared, verdicts.length);
    assert.deepEqual(disagreements, []);
    // The corpus holds both kinds, so agreement is not trivially "all loadable" or "all refused".
    assert.ok(verdicts.filter((v) => v.loadable).length >= 10);
    assert.ok(verdicts.filter((v) => !v.loadable).length >= 25);
  });
});
