#!/usr/bin/env bash
# Builds {{name}}.wasm from plugin.js with componentize-js (installed from
# npm into .toolchain/ on first use).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${CACHE:-$here/.toolchain}"
version="0.23.0"
pkg="$cache/js/node_modules/@bytecodealliance/componentize-js/package.json"
if ! [ -f "$pkg" ] || ! grep -q "\"version\": \"$version\"" "$pkg"; then
  npm install --prefix "$cache/js" --no-audit --no-fund "@bytecodealliance/componentize-js@$version"
fi
COMPONENTIZE_JS_PREFIX="$cache/js" node "$here/build.mjs" "${OUT:-$here/{{name}}.wasm}"
