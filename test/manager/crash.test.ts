import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { startHost } from '../../src/host/host.js';
import { clientHeaders } from '../helpers/host-process.js';
import { repoRoot } from '../helpers/paths.js';
import { makeZip, pluginState, sample, tmpDir } from './zips.js';

async function waitFor<T>(what: string, probe: () => T | undefined, ms = 15000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('a host killed -9 in the middle of an install', () => {
  const root = tmpDir('crash');
  const data = path.join(root, 'data');
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('leaves a data directory that the next start makes consistent', async () => {
    const zip = path.join(root, 'vector.zip');
    const bytes = await makeZip(zip, [{ name: 'vector.so', file: sample('vector.so'), store: true }]);
    // Serves half the zip, then stalls: the host is caught mid-download with a partial file on disk.
    let sent = false;
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/zip', 'content-length': String(bytes.length) });
      res.write(bytes.subarray(0, bytes.length >> 1));
      sent = true;
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const zipUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/vector.zip`;

    const child = spawn(process.execPath, [path.join(repoRoot, 'bin/streamplug.js'), 'start', '--data', data, '--port', '0', '--mqtt-port', '0', '--allow-private-urls'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, STREAMPLUG_LOG_LEVEL: 'warn' },
    });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_code, sig) => r(sig)));
    try {
      const url = await waitFor('the child host', () => {
        try {
          return (JSON.parse(fs.readFileSync(path.join(data, 'host.lock'), 'utf8')) as { url?: string }).url;
        } catch {
          return undefined;
        }
      });
      const pending = fetch(`${url}/plugins/functions`, {
        method: 'POST',
        headers: { ...clientHeaders(data), 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'vector', file: zipUrl }),
      }).catch((e: Error) => e);
      await waitFor('a partial download on disk', () => {
        if (!sent) return undefined;
        const tmp = path.join(data, 'tmp');
        return fs.readdirSync(tmp).some((d) => {
          const f = path.join(tmp, d, 'plugin.zip');
          return fs.existsSync(f) && fs.statSync(f).size > 0;
        });
      });
      child.kill('SIGKILL');
      assert.equal(await exited, 'SIGKILL', stderr);
      assert.ok((await pending) instanceof Error, 'the client saw the host die');
      assert.ok(pluginState(data).some((f) => f.startsWith('tmp/install-')), 'the crash left a half-finished install');
      assert.ok(fs.existsSync(path.join(data, 'host.lock')), 'and a stale lock');
    } finally {
      child.kill('SIGKILL');
      server.closeAllConnections();
      server.close();
    }

    // The next start takes over the stale lock, sweeps the leftovers, and installs normally.
    const host = await startHost({ dataDir: data, port: 0, logger: pino({ level: 'silent' }) });
    try {
      assert.deepEqual(pluginState(data), []);
      assert.deepEqual(host.startup.cleaned.length, 1);
      assert.deepEqual(host.manager.list('functions'), []);
      await host.manager.install({ type: 'functions', name: 'vector', source: { file: zip } });
      assert.deepEqual(host.manager.list('functions'), ['vector']);
    } finally {
      await host.close();
    }
  });
});
