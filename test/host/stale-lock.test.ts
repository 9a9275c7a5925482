/**
 * A crashed host's lock never blocks the next start: kill -9 and start again at once, a holder
 * that is a zombie nobody reaped, and a PID reused by an unrelated process. A live holder still refuses.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { cliPath, startHostProcess } from '../helpers/host-process.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sp-lock-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
const args = ['--mqtt-port', '0'];

function lockOf(data: string): { pid: number; procStart?: string; bootId?: string } {
  return JSON.parse(fs.readFileSync(path.join(data, 'host.lock'), 'utf8'));
}

describe('host lock', { timeout: 90_000 }, () => {
  it('records the PID, its start time and the boot id', async () => {
    const data = path.join(root, 'record');
    const h = await startHostProcess({ dataDir: data, args });
    try {
      const lock = lockOf(data);
      assert.equal(lock.pid, h.child.pid);
      const stat = fs.readFileSync(`/proc/${h.child.pid}/stat`, 'utf8');
      assert.equal(lock.procStart, stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
      assert.equal(lock.bootId, fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
    } finally {
      await h.stop();
    }
    assert.equal(fs.existsSync(path.join(data, 'host.lock')), false, 'a clean stop removes the lock');
  });

  it('a start right after kill -9 is accepted and the rules come back', async () => {
    const data = path.join(root, 'kill');
    const h1 = await startHostProcess({ dataDir: data, args });
    const s = await h1.api('POST', '/streams', { sql: 'CREATE STREAM s () WITH (TYPE="memory", DATASOURCE="t")' });
    assert.equal(s.status, 201, s.text);
    const r = await h1.api('POST', '/rules', { id: 'r1', sql: 'SELECT * FROM s', actions: [{ nop: {} }] });
    assert.equal(r.status, 201, r.text);
    h1.child.kill('SIGKILL');
    // No wait for the exit event: the restart begins in the same tick as the kill.
    const h2 = await startHostProcess({ dataDir: data, args, readyMs: 20_000 });
    try {
      assert.equal(lockOf(data).pid, h2.child.pid);
      const st = await h2.api('GET', '/rules/r1/status');
      assert.equal(st.body.status, 'running', st.text);
    } finally {
      await h2.stop();
      await h1.exited;
    }
  });

  it('a holder that died but was never reaped (a zombie) does not count', async () => {
    const data = path.join(root, 'zombie');
    fs.mkdirSync(data, { recursive: true });
    // sh starts the host in the background and becomes `sleep`, which never waits for its children:
    // once the host is killed it stays a zombie, exactly what a slow parent leaves behind.
    const shell = spawn('sh', ['-c', `"${process.execPath}" "${cliPath}" start --data "${data}" --port 0 --mqtt-port 0 >/dev/null 2>&1 & exec sleep 60`], { stdio: 'ignore' });
    try {
      let pid = 0;
      for (let i = 0; i < 400 && !pid; i++) {
        try {
          const l = lockOf(data) as { pid: number; url?: string };
          if (l.url) pid = l.pid;
        } catch {
          /* not yet */
        }
        if (!pid) await sleep(50);
      }
      assert.ok(pid > 0, 'the background host wrote its lock');
      process.kill(pid, 'SIGKILL');
      let state = '';
      for (let i = 0; i < 100 && state !== 'Z'; i++) {
        await sleep(20);
        const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
      }
      assert.equal(state, 'Z', 'the killed host is a zombie');
      const h = await startHostProcess({ dataDir: data, args });
      assert.equal(lockOf(data).pid, h.child.pid);
      await h.stop();
    } finally {
      shell.kill('SIGKILL');
    }
  });

  it('a PID reused by another process does not count, a live host still refuses', async () => {
    const data = path.join(root, 'reuse');
    fs.mkdirSync(data, { recursive: true });
    // A live process that is not a streamplug host holds the recorded PID (the start time differs).
    const other = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      fs.writeFileSync(path.join(data, 'host.lock'), JSON.stringify({ pid: other.pid, startedAt: new Date().toISOString(), procStart: '1' }));
      const h = await startHostProcess({ dataDir: data, args });
      try {
        assert.equal(lockOf(data).pid, h.child.pid);
        // The host now running refuses a second start on the same directory.
        const second = await startHostProcess({ dataDir: data, args, noWait: true });
        const exit = await second.exited;
        assert.equal(exit.code, 1);
        assert.match(second.stderr(), /E_HOST_RUNNING/);
        assert.equal(lockOf(data).pid, h.child.pid, 'the refused start left the lock alone');
      } finally {
        await h.stop();
      }
    } finally {
      other.kill('SIGKILL');
    }
  });
});
