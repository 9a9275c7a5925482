/** `streamplug check`: rows per check, --json, exit codes 0 / 1 / 2. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { repoRoot } from '../helpers/paths.js';
import { corpus, ensureCorpus } from './corpus.js';

const cli = (...args: string[]) =>
  spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'streamplug.js'), 'check', ...args], { encoding: 'utf8' });

describe('streamplug check', () => {
  before(ensureCorpus);

  it('exits 0 and prints one row per check for a loadable file', () => {
    const r = cli(corpus('good.so'));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /good\.so: loadable \[so\]/);
    for (const check of ['elf-header', 'machine', 'structure', 'needed-libraries', 'manifest', 'contract', 'entry']) {
      assert.match(r.stdout, new RegExp(`\\n  ok +${check} `));
    }
  });

  it('exits 1 when any file is refused and says why', () => {
    const r = cli(corpus('good.so'), corpus('truncated.so'), corpus('aarch64.so'));
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stdout, /truncated\.so: refused \(E_TRUNCATED\)/);
    assert.match(r.stdout, /REFUSED +machine +E_ARCH: aarch64\.so is built for aarch64/);
  });

  it('prints warnings without refusing', () => {
    const r = cli(corpus('gnu-unique.so'));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /warn +gnu-unique +W_GNU_UNIQUE: /);
  });

  it('--json prints the reports', () => {
    const r = cli('--json', corpus('good.so'), corpus('napi-newer.node'));
    assert.equal(r.status, 1, r.stderr);
    const reports = JSON.parse(r.stdout) as {
      file: string;
      loadable: boolean;
      flavour: string;
      rows: { check: string; status: string }[];
      error?: { code: string; message: string; details: { file: string } };
    }[];
    assert.equal(reports.length, 2);
    assert.equal(reports[0].loadable, true);
    assert.equal(reports[0].error, undefined);
    assert.ok(reports[0].rows.some((row) => row.check === 'entry' && row.status === 'ok'));
    assert.equal(reports[1].flavour, 'node');
    assert.equal(reports[1].error?.code, 'E_NAPI_VERSION');
    assert.equal(reports[1].error?.details.file, corpus('napi-newer.node'));
  });

  it('exits 2 without files', () => {
    const r = cli();
    assert.equal(r.status, 2);
    assert.match(r.stderr, /missing required argument/);
  });
});
