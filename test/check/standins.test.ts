/**
 * The corpus on a machine without the optional cross tools: test/fixtures/build-corpus.mjs writes
 * aarch64.so with a generator and links musl.so against a stand-in libc.so. The check must judge
 * the stand-ins exactly as it judges the tool-built files (same rows, same codes), so the check
 * tests mean the same on a fresh machine as in CI.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { checkPluginFile, hostEnv } from '../../src/check/index.js';
import type { CheckReport } from '../../src/check/types.js';
import { repoRoot } from '../helpers/paths.js';
import { hasTool } from '../helpers/optional-tools.js';
import { corpus, ensureCorpus, tempDir } from './corpus.js';

const rows = (r: CheckReport) => r.rows.map((row) => `${row.check} ${row.status} ${row.code ?? ''}`);

describe('corpus stand-ins made without musl-gcc and aarch64 binutils', () => {
  let dir = '';
  const standIn = (name: string) => path.join(dir, name);
  before(() => {
    dir = tempDir('standins');
    execFileSync(process.execPath, [path.join(repoRoot, 'test/fixtures/build-corpus.mjs')], {
      stdio: 'pipe',
      env: { ...process.env, STREAMPLUG_CORPUS_STANDINS: '1', STREAMPLUG_CORPUS_DIR: dir, STREAMPLUG_CORPUS_ONLY: 'good.so,aarch64.so,musl.so' },
    });
    ensureCorpus();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('aarch64.so: refused here with E_ARCH, loadable for an arm64 host', () => {
    const here = checkPluginFile(standIn('aarch64.so'));
    assert.equal(here.error?.code, 'E_ARCH');
    assert.match(here.error!.message, /built for aarch64 \(EM_AARCH64\); this process runs on x86_64/);
    const arm = checkPluginFile(standIn('aarch64.so'), { ...hostEnv(), arch: 'arm64' });
    assert.equal(arm.loadable, true, arm.error?.message);
    assert.equal(arm.manifest?.name, 'arm');
  });

  it('musl.so: refused with E_LIBC naming musl', () => {
    const r = checkPluginFile(standIn('musl.so'));
    assert.equal(r.error?.code, 'E_LIBC');
    assert.match(r.error!.message, /built against musl \(DT_NEEDED libc\.so\)/);
  });

  it('the check reads the stand-ins as it reads the tool-built files', { skip: hasTool('aarch64-linux-gnu-as') && hasTool('musl-gcc') ? false : 'the tool-built files are stand-ins here too' }, () => {
    for (const name of ['aarch64.so', 'musl.so']) {
      assert.deepEqual(rows(checkPluginFile(standIn(name))).filter((r) => !r.startsWith('file ') && !r.startsWith('structure ')),
        rows(checkPluginFile(corpus(name))).filter((r) => !r.startsWith('file ') && !r.startsWith('structure ')), name);
    }
  });
});
