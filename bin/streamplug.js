#!/usr/bin/env node
// The CLI is compiled TypeScript; `npm run build` produces it.
import('../dist/src/cli/index.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/src/cli')) {
    console.error('streamplug: not built yet. Run `npm run build` in the clone first (an installed package, `npm install -g ./streamplug-*.tgz`, comes built).');
    process.exit(1);
  }
  throw err;
});
