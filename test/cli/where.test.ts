/**
 * `streamplug plugin where NAME`: the file a real running host has mapped (its /proc/PID/maps),
 * including a library deleted on disk while the host still runs it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cliPath, startHostProcess, type HostProcess } from '../helpers/host-process.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'streamplug-where-'));
const data = path.join(root, 'data');
const where = (...args: string[]) => spawnSync(process.execPath, [cliPath, 'plugin', 'where', ...args], { encoding: 'utf8' });

describe('streamplug plugin where', () => {
  let host: HostProcess;
  before(async () => {
    host = await startHostProcess({ dataDir: data, args: ['--demo', '--mqtt-port', '0'] });
  });
  after(async () => {
    await host?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('prints the library the host has mapped', () => {
    const r = where('echo', '--data', data);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${path.join(data, 'plugins/functions/echo.so')}\n`);
    const j = JSON.parse(where('echo', '--pid', String(host.child.pid), '--json').stdout) as { pid: number; files: { file: string; deleted: boolean }[] };
    assert.deepEqual(j, { pid: host.child.pid, files: [{ file: path.join(data, 'plugins/functions/echo.so'), deleted: false }] });
  });

  it('says when the mapped file was deleted on disk (the host still runs that copy)', () => {
    fs.rmSync(path.join(data, 'plugins/functions/countPlusOne.so'));
    const r = where('countPlusOne', '--data', data);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /plugins\/functions\/countPlusOne\.so \(deleted: replaced on disk; the host still runs this copy\)/);
  });

  it('refuses with a code: a plugin not mapped, no host on the folder, a bad pid', () => {
    const none = where('nosuch', '--data', data);
    assert.equal(none.status, 1);
    assert.match(none.stderr, /E_NOT_FOUND: process \d+ has no library of plugin nosuch mapped/);
    const empty = where('echo', '--data', path.join(root, 'empty'));
    assert.equal(empty.status, 1);
    assert.match(empty.stderr, /E_NOT_FOUND: no host is running on/);
    assert.equal(where('echo', '--pid', 'abc').status, 2);
  });
});
