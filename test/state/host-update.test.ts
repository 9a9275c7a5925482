/**
 * Through real host processes and REST: state versioning across an update and a restart, and a
 * pending update applied once no rule uses the plugin. Builds of one stateful plugin (tally, from
 * plugin.h in the setup) differ in state version, migrate hook and step (what each row adds, which
 * tells which build runs):
 *   v1 state 1 step 1 -> v2 state 2 + migrate_state step 1 -> v3 state 3 step 100 -> v4 step 1000
 *   -> v5 whose init refuses to load once a file exists (after its install passed).
 * The stream is the random sample source: 5 rows of {"v": 1} each time a rule starts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { freePort, tempDir } from '../connectors/helpers.js';
import { startHostProcess, type HostProcess } from '../helpers/host-process.js';
import { makeZip, sample } from '../manager/zips.js';
import { buildTally, type TallyBuild } from './tally.js';

const work = tempDir('host-update');
const blocker = path.join(work, 'device-missing');
const BUILDS: Record<string, TallyBuild> = {
  v1: { state: 1, version: '1.0.0' },
  v2: { state: 2, migrate: true, version: '2.0.0' },
  v3: { state: 3, step: 100, version: '3.0.0' },
  v4: { state: 3, step: 1000, version: '4.0.0' },
  v5: { state: 3, failIfExists: blocker, version: '5.0.0' },
};

describe('a stateful plugin updated through a real host', { timeout: 180_000 }, () => {
  const data = path.join(work, 'data');
  const zips: Record<string, string> = {};
  let host: HostProcess | undefined;

  before(async () => {
    for (const [v, b] of Object.entries(BUILDS)) {
      const so = buildTally(work, `tally-${v}`, b);
      zips[v] = path.join(work, `tally-${v}.zip`);
      await makeZip(zips[v], [{ name: 'tally.so', file: so }]);
    }
    zips.random = path.join(work, 'random.zip');
    await makeZip(zips.random, [{ name: 'random.so', file: sample('random.so') }]);
  });
  after(async () => {
    await host?.kill();
    fs.rmSync(work, { recursive: true, force: true });
  });

  const start = async () => (host = await startHostProcess({ dataDir: data, args: ['--mqtt-port', String(await freePort())] }));
  const api = async (method: string, url: string, body?: unknown) => {
    const r = await host!.api(method, url, body);
    return r;
  };
  const ok = async (method: string, url: string, body?: unknown, status = [200, 201]) => {
    const r = await api(method, url, body);
    assert.ok(status.includes(r.status), `${method} ${url}: ${r.status} ${r.text}`);
    return r;
  };
  const describePlugin = async () => (await ok('GET', '/plugins/functions/tally')).body;
  const out = (rule: string) => path.join(work, `${rule}.jsonl`);
  /** The values of n the rule wrote, in order. */
  const written = (rule: string): number[] => {
    if (!fs.existsSync(out(rule))) return [];
    const rows = fs.readFileSync(out(rule), 'utf8').split('\n').filter(Boolean).flatMap((l) => [JSON.parse(l)].flat());
    return rows.map((r: { n: number }) => r.n);
  };
  const waitRows = async (rule: string, count: number) => {
    const end = Date.now() + 20_000;
    while (written(rule).length < count) {
      if (Date.now() > end) throw new Error(`rule ${rule} wrote ${JSON.stringify(written(rule))}, waited for ${count} rows; host log:\n${host!.stdout()}${host!.stderr()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return written(rule);
  };
  const rule = (id: string, triggered = true) => ({
    id,
    sql: 'SELECT tally(v) AS n FROM s',
    actions: [{ file: { path: out(id) } }],
    ...(triggered ? {} : { triggered: false }),
  });
  const put = (v: string) => api('PUT', '/plugins/functions/tally', { file: pathToFileURL(zips[v]).href });
  const logs = () => host!.stdout() + host!.stderr();
  /** The host's log reaches its stdout asynchronously: wait for the line. */
  const logged = async (re: RegExp) => {
    const end = Date.now() + 10_000;
    while (!re.test(logs())) {
      if (Date.now() > end) assert.match(logs(), re);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  it('v1 -> v2 over a restart: the checkpoint is migrated by migrate_state and the count continues', async () => {
    await start();
    await ok('POST', '/plugins/sources', { name: 'random', file: pathToFileURL(zips.random).href });
    await ok('POST', '/plugins/functions', { name: 'tally', file: pathToFileURL(zips.v1).href });
    await ok('POST', '/streams', { sql: 'CREATE STREAM s () WITH (TYPE="random", CONFIG=\'{"interval": 5, "count": 5, "seed": 1, "pattern": {"v": 1}}\')' });
    await ok('POST', '/rules', rule('r1'));
    assert.deepEqual(await waitRows('r1', 5), [1, 2, 3, 4, 5]);

    const pending = await put('v2');
    assert.equal(pending.status, 200, pending.text);
    assert.match(pending.text, /takes effect at restart \(rules r1 use tally/);
    const d = await describePlugin();
    assert.equal(d.state, 'pending-restart');
    assert.equal(d.running.version, '1.0.0');

    await host!.stop(); // SIGTERM: rules stop, their state is checkpointed (stamped version 1)
    await start();
    assert.equal((await describePlugin()).running.version, '2.0.0');
    assert.deepEqual(await waitRows('r1', 10), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'v2 continued from v1\'s count');
    await logged(/function tally \(plugin tally, rule r1\): checkpoint state migrated from version 1 to 2/);
  });

  it('v2 -> v3 (no migrate_state) over a restart: the checkpoint is dropped with a log line naming both versions', async () => {
    const pending = await put('v3');
    assert.match(pending.text, /takes effect at restart/);
    await host!.stop();
    await start();
    assert.deepEqual((await waitRows('r1', 15)).slice(10), [100, 200, 300, 400, 500], 'v3 started from no state (step 100)');
    await logged(/function tally \(plugin tally, rule r1\): checkpoint state of version 2 dropped: the plugin declares state version 3 and has no migrate_state hook/);
  });

  it('a pending update is applied when the last rule using the plugin is deleted; a stopped rule still blocks it', async () => {
    await ok('POST', '/rules', rule('r2', false)); // stopped, but its SQL names tally
    const v3File = (await describePlugin()).running.file;
    const pending = await put('v4');
    assert.match(pending.text, /takes effect at restart \(rules r1, r2 use tally/);

    await ok('DELETE', '/rules/r1');
    let d = await describePlugin();
    assert.equal(d.state, 'pending-restart', 'r2 (stopped) still uses tally');
    assert.match(d.pendingRestart, /^rules r2 use tally/);
    assert.equal(d.running.version, '3.0.0');

    await ok('DELETE', '/rules/r2');
    d = await describePlugin();
    assert.equal(d.state, 'loaded', JSON.stringify(d));
    assert.equal(d.pendingRestart, null);
    assert.equal(d.running.version, '4.0.0');
    assert.equal(d.running.file, d.installed.file);
    assert.equal(fs.existsSync(v3File), false, 'the library that ran is removed');
    await logged(/pending update of function plugin tally applied: no rule uses it any more; version 3\.0\.0 unloaded, version 4\.0\.0 loaded/);

    await ok('POST', '/rules', rule('r3'));
    assert.deepEqual(await waitRows('r3', 5), [1000, 2000, 3000, 4000, 5000], 'a new rule runs the new code');
  });

  it('a pending update whose library fails to load is reported, and the running version stays', async () => {
    const pending = await put('v5');
    assert.match(pending.text, /takes effect at restart \(rules r3 use tally/);
    fs.writeFileSync(blocker, ''); // the install's trial load passed; now v5's init will refuse
    await ok('DELETE', '/rules/r3');
    const d = await describePlugin();
    assert.equal(d.state, 'pending-restart');
    assert.match(d.pendingRestart, /the new version failed to load \(E_\w+: .*tally: this build refuses to start.*\); the previous version 4\.0\.0 keeps running/);
    assert.equal(d.running.version, '4.0.0');
    await ok('POST', '/rules', rule('r4'));
    assert.deepEqual(await waitRows('r4', 5), [1000, 2000, 3000, 4000, 5000], 'the previous version still serves new rules');
  });
});
