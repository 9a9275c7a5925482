#!/bin/sh
# Memory-safety proof for native/host and the sample plugins under valgrind memcheck:
#   default  10,000 load/call/unload cycles of function plugins (scripts/valgrind-cycles.mjs)
#   --io     10,000 open/push/close cycles of native sources and 10,000 open/collect/close cycles
#            of native sinks, threads included (scripts/valgrind-io-cycles.mjs)
# Fails (exit 9) on any invalid read or write, use of uninitialised memory, bad free, or definite
# leak not in scripts/valgrind-node.supp (which holds Node/V8's own noise only). Needs
# `npm run build`, the addon, build/plugins and build/corpus (functions) or a C compiler (--io).
# About 2 minutes each on 2 cores.
#
#   scripts/valgrind-cycles.sh [--cycles N] [--samples-only]
#   scripts/valgrind-cycles.sh --io [--cycles N]
#   CI: apt-get install -y valgrind, then this script (or `node --test dist/test/native/`).
#
# Node runs --jitless: valgrind then translates only Node's own code once, instead of every
# JIT-generated function (2x faster here, same native coverage).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
script="$root/scripts/valgrind-cycles.mjs"
if [ "${1:-}" = "--io" ]; then
  shift
  script="$root/scripts/valgrind-io-cycles.mjs"
fi
exec valgrind --tool=memcheck --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite \
  --show-leak-kinds=definite --num-callers=40 --suppressions="$root/scripts/valgrind-node.supp" \
  node --jitless --expose-gc "$script" "$@"
