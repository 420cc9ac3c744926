#!/usr/bin/env bash
# Builds {{name}}.wasm from app.py with componentize-py (installed from PyPI
# into .toolchain/ on first use).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${CACHE:-$here/.toolchain}"
version="0.25.1"
if ! "$cache/py/bin/componentize-py" --version 2>/dev/null | grep -qx "componentize-py $version"; then
  python3 -m venv "$cache/py"
  "$cache/py/bin/pip" install --quiet "componentize-py==$version"
fi
"$cache/py/bin/componentize-py" -d "$here/wit" -w alert-destination \
  componentize app -p "$here" -o "${OUT:-$here/{{name}}.wasm}"
