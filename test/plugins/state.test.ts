/** A native instance's per-rule state exported and imported (the checkpoint's building block). */
import { describe, it, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { sampleRegistryIn } from '../rules/helpers.js';
import { ISOLATION_MODES } from '../helpers/isolation.js';
import type { PluginRegistry } from '../../src/plugins/registry.js';

for (const mode of ISOLATION_MODES) describe(`isolation ${mode}`, () => {
  let reg: PluginRegistry;
  before(async () => {
    reg = await sampleRegistryIn(mode);
  });
  after(() => reg.unloadAll());

  describe('function instance state export/import', () => {
    it('moves accumulateWordCount\'s total to another instance, which continues from it', () => {
      const fn = reg.getFunction('accumulateWordCount')!;
      const a = fn.instantiate('r1');
      const b = fn.instantiate('r2');
      try {
        assert.equal(a.call('john,alice,tom', ','), 3n);
        assert.equal(a.call('rose,bob,mary', ','), 6n);
        const state = a.exportState!();
        assert.deepEqual(Object.keys(state), ['allwordcount']);
        assert.ok(state.allwordcount instanceof Uint8Array);
        assert.equal(Buffer.from(state.allwordcount).readBigInt64LE(0), 6n);
        b.importState!(state);
        assert.equal(b.call('alice,tom', ','), 8n);
        assert.equal(a.call('alice,tom', ','), 8n, 'the source instance keeps its own state');
        b.importState!({});
        assert.equal(b.call('alice,tom', ','), 2n, 'importing an empty state clears it');
        assert.throws(() => b.importState!({ allwordcount: 'x' as unknown as Uint8Array }), { code: 'E_BAD_REQUEST' });
        assert.equal(b.call('alice', ','), 3n, 'a refused import changes nothing');
      } finally {
        a.close();
        b.close();
      }
      assert.throws(() => a.exportState!(), { code: 'E_INSTANCE_CLOSED' });
      assert.throws(() => a.importState!({}), { code: 'E_INSTANCE_CLOSED' });
    });
  });
});
