/** Cut and corrupted copies of good.so never make the check throw: there is always a report. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkPluginFile } from '../../src/check/index.js';
import { ERROR_CODES, StreamplugError } from '../../src/errors.js';
import { corpus, ensureCorpus, tempDir } from './corpus.js';

/** Deterministic PRNG (mulberry32) so a failure can be reproduced. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('checkPluginFile on damaged files', () => {
  let dir: string;
  let good: Buffer;
  before(() => {
    ensureCorpus();
    dir = tempDir('fuzz');
    good = fs.readFileSync(corpus('good.so'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const checkBytes = (bytes: Buffer, what: string) => {
    const file = path.join(dir, 'damaged.so');
    fs.writeFileSync(file, bytes);
    let report;
    try {
      report = checkPluginFile(file);
    } catch (err) {
      assert.fail(`${what}: checkPluginFile threw ${(err as Error).stack}`);
    }
    assert.ok(report.rows.length > 0, what);
    if (!report.loadable) {
      assert.ok(report.error instanceof StreamplugError, what);
      assert.ok(report.error.code in ERROR_CODES, `${what}: ${report.error.code}`);
      assert.ok(report.error.message.length > 0, what);
    }
    return report;
  };

  it('refuses every truncation (600 random lengths and the first 128)', () => {
    const rand = prng(42);
    const lengths = [...Array(128).keys()].slice(1);
    for (let i = 0; i < 600; i++) lengths.push(1 + Math.floor(rand() * (good.length - 1)));
    for (const n of lengths) {
      const report = checkBytes(good.subarray(0, n), `cut at ${n}`);
      assert.equal(report.loadable, false, `cut at ${n} bytes must be refused`);
      assert.ok(['E_TRUNCATED', 'E_NOT_ELF'].includes(report.error!.code), `cut at ${n}: ${report.error!.code}`);
    }
  });

  it('always reports on byte flips (1500 corrupted copies, most in the headers)', () => {
    const rand = prng(7);
    for (let i = 0; i < 1500; i++) {
      const bytes = Buffer.from(good);
      const flips = 1 + Math.floor(rand() * 8);
      // Two thirds of the damage lands in the first 1 KiB (headers, dynamic data), the rest anywhere.
      const span = i % 3 === 2 ? bytes.length : Math.min(1024, bytes.length);
      const where: number[] = [];
      for (let k = 0; k < flips; k++) {
        const at = Math.floor(rand() * span);
        bytes[at] = Math.floor(rand() * 256);
        where.push(at);
      }
      checkBytes(bytes, `seed 7 iteration ${i}, bytes changed at ${where.join(',')}`);
    }
  });

  it('always reports on damaged copies of every corpus ELF file', () => {
    const rand = prng(99);
    const files = fs.readdirSync(path.dirname(corpus('good.so'))).filter((f) => !f.endsWith('.tmp'));
    for (const f of files) {
      const original = fs.readFileSync(corpus(f));
      if (original.length < 64) continue;
      for (let i = 0; i < 40; i++) {
        const bytes = Buffer.from(original);
        for (let k = 0; k < 4; k++) bytes[Math.floor(rand() * Math.min(2048, bytes.length))] = Math.floor(rand() * 256);
        checkBytes(bytes, `${f} iteration ${i}`);
      }
    }
  });
});
