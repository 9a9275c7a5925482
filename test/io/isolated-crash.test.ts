/**
 * Sources and sinks of an isolated plugin whose worker dies (SIGSEGV on a plugin thread, outside
 * any request): the host stays up, the instance reports the crash by name (E_PLUGIN_CRASHED with
 * the plugin, the source/sink, the rule and the signal), the supervisor restarts the worker and a
 * new instance runs there, and the third crash quarantines the plugin.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { createSink, createSource } from '../../src/connectors/index.js';
import type { ConnectorStatus, Row } from '../../src/connectors/types.js';
import { PluginRegistry } from '../../src/plugins/index.js';
import type { NativeSinkConnector, NativeSourceConnector } from '../../src/plugins/native-io.js';
import { buildIoFx, ioTmp, until } from './fixtures.js';

describe('isolated sources and sinks: a worker crash', () => {
  it('is named in the instance status, the worker restarts, a new instance runs, the third crash quarantines', async () => {
    const reports: string[] = [];
    const registry = new PluginRegistry({ onLog: () => undefined, isolation: { backoffMs: 20, report: (l) => reports.push(l) } });
    await registry.load(buildIoFx(), { isolation: 'process' });
    try {
      const pid0 = registry.status('iofx')!.worker!.pid;
      // 1. A source whose run thread raises SIGSEGV after 5 rows.
      const rows: Row[] = [];
      const statuses: ConnectorStatus[] = [];
      const src = createSource('fx_seq', '', { CONFIG: JSON.stringify({ count: 100, crashafter: 5 }) }, { ruleId: 'r_src' }) as NativeSourceConnector;
      // The crash may come before start() saw the open succeed (start rejects) or after (status error).
      const early = await src.start((r) => rows.push(...r), (s) => statuses.push(s)).then(() => '', (e: Error) => e.message);
      await until(() => early !== '' || statuses.some((s) => s.state === 'error'), 'the source to report the crash');
      const err = early || statuses.find((s) => s.state === 'error')!.error!;
      // Before the exit event: the failed request's E_PLUGIN_CRASHED; after it: the supervisor's line.
      assert.match(err, /E_PLUGIN_CRASHED(: plugin iofx crashed in hook source fx_seq, rule r_src| plugin=iofx hook=source fx_seq rule=r_src signal=SIGSEGV)/, err);
      assert.ok(rows.length <= 5, 'nothing after the crash');
      assert.equal(src.stats()!.finished, true);
      await src.stop(); // a dead instance stops at once
      await until(() => reports.some((l) => l.startsWith('E_PLUGIN_CRASHED plugin=iofx hook=source fx_seq rule=r_src signal=SIGSEGV')), `the crash line (have: ${reports.join(' | ')})`);
      assert.match(src.stats()!.failure, /^E_PLUGIN_CRASHED plugin=iofx hook=source fx_seq rule=r_src signal=SIGSEGV/, 'once the exit is seen, the status carries the signal');

      // 2. The worker comes back (backoff) and a new source runs there, every row in order.
      await until(() => registry.status('iofx')!.worker!.state === 'ready', 'the restart');
      assert.notEqual(registry.status('iofx')!.worker!.pid, pid0);
      const again: Row[] = [];
      const ok = createSource('fx_seq', '', { CONFIG: JSON.stringify({ count: 20 }) }) as NativeSourceConnector;
      await ok.start((r) => again.push(...r), () => undefined);
      await until(() => again.length >= 20, '20 rows from the restarted worker');
      await ok.stop();
      assert.deepEqual(again.map((r) => r.seq), Array.from({ length: 20 }, (_, i) => i));

      // 3. A sink that crashes in its first collect: the next collect fails with the crash named.
      const file = path.join(ioTmp, 'crash-sink.txt');
      const sink = createSink('fx_sink', { path: file, crashat: 1 }, { ruleId: 'r_sink' }) as NativeSinkConnector;
      await sink.open();
      await sink.collect([{ a: 1 }]);
      const named = /^E_PLUGIN_CRASHED plugin=iofx hook=sink fx_sink rule=r_sink signal=SIGSEGV/;
      await until(() => named.test(sink.status().error ?? ''), 'the sink to report the crash by name');
      assert.equal(sink.status().state, 'error');
      assert.deepEqual([sink.stats()!.in, sink.stats()!.out, sink.stats()!.dropped], [1, 0, 1], 'the row in flight counts as dropped');
      await assert.rejects(() => sink.collect([{ a: 2 }]), { code: 'E_SINK_FAILED', message: /E_PLUGIN_CRASHED plugin=iofx/ });
      await sink.close();
      assert.equal(fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '', '', 'the crashing batch was never written');

      // 4. A third crash within the window: quarantined, no restart, new instances refused.
      await until(() => registry.status('iofx')!.worker!.state === 'ready', 'the second restart');
      const third = createSource('fx_seq', '', { CONFIG: JSON.stringify({ count: 10, crashafter: 1 }) }) as NativeSourceConnector;
      await third.start(() => undefined, () => undefined).catch(() => undefined); // may die before or after open
      await until(() => registry.status('iofx')!.worker!.state === 'quarantined', 'quarantine');
      await third.stop().catch(() => undefined);
      assert.ok(reports.some((l) => l.startsWith('E_QUARANTINED plugin=iofx')), reports.join('\n'));
      const refused = createSource('fx_seq', '', { CONFIG: JSON.stringify({ count: 1 }) }) as NativeSourceConnector;
      await assert.rejects(() => refused.start(() => undefined, () => undefined), { code: 'E_QUARANTINED' });
    } finally {
      registry.unloadAll();
    }
  });
});
