#!/usr/bin/env bash
# Builds pagerduty.wasm (Herald alert-destination component) from src/plugin.js.
# Toolchain: @bytecodealliance/componentize-js from npm under $CACHE/js (default ../cache/js).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${CACHE:-$here/.toolchain}"
version="${COMPONENTIZE_JS_VERSION:-0.23.0}"
pkg="$cache/js/node_modules/@bytecodealliance/componentize-js/package.json"
if ! [ -f "$pkg" ] || ! grep -q "\"version\": \"$version\"" "$pkg"; then
  npm install --prefix "$cache/js" --no-audit --no-fund "@bytecodealliance/componentize-js@$version"
fi
COMPONENTIZE_JS_PREFIX="$cache/js" node "$here/build.mjs" "${OUT:-$here/pagerduty.wasm}"
