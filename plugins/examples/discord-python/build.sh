#!/usr/bin/env bash
# Builds discord.wasm (Herald alert-destination component) from app.py.
# Toolchain: componentize-py from PyPI in a venv under $CACHE (default ../cache).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${CACHE:-$here/.toolchain}"
version="${COMPONENTIZE_PY_VERSION:-0.25.1}"
if ! "$cache/py/bin/componentize-py" --version 2>/dev/null | grep -qx "componentize-py $version"; then
  python3 -m venv "$cache/py"
  "$cache/py/bin/pip" install --quiet "componentize-py==$version"
fi
cd "$here/src"
# -d: WIT dir (the repo's wit/), -w: world; `componentize <module>` names the
# module holding the Plugin/Alerting classes; -p adds dirs to the module path
# (here: src/, so discord_plugin.py is bundled; only the Python path is bundled, keep tests out of it).
"$cache/py/bin/componentize-py" -d "${WIT_DIR:-$here/../../../wit}" -w alert-destination \
  componentize app -p "$here/src" -o "${OUT:-$here/discord.wasm}"
