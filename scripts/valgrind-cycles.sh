#!/bin/sh
# Memory-safety proof for native/host and the sample plugins: 10,000 load/call/unload cycles
# (scripts/valgrind-cycles.mjs) under valgrind memcheck. Fails (exit 9) on any invalid read or
# write, use of uninitialised memory, bad free, or definite leak not in scripts/valgrind-node.supp
# (which holds Node/V8's own noise only). Needs `npm run build`, the addon, build/plugins and
# build/corpus. About 2 minutes on 2 cores.
#
#   scripts/valgrind-cycles.sh [--cycles N] [--samples-only]
#   CI: apt-get install -y valgrind, then this script (or `node --test dist/test/native/`).
#
# Node runs --jitless: valgrind then translates only Node's own code once, instead of every
# JIT-generated function (2x faster here, same native coverage).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
exec valgrind --tool=memcheck --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite \
  --show-leak-kinds=definite --num-callers=40 --suppressions="$root/scripts/valgrind-node.supp" \
  node --jitless --expose-gc "$root/scripts/valgrind-cycles.mjs" "$@"
