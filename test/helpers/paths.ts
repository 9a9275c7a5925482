import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** Tests run compiled from dist/test/…; these point back at the repository and its build outputs. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const buildDir = path.join(repoRoot, 'build');
/** Sample plugins built by scripts/build-plugins.mjs (CMake). */
export const samplesDir = path.join(buildDir, 'plugins');
/** Broken plugins built by test/fixtures/build-corpus.mjs. */
export const corpusDir = path.join(buildDir, 'corpus');
