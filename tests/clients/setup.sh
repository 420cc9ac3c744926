#!/usr/bin/env bash
# Installs the real client SDKs the ingest tests drive, from their
# registries, into $CACHE (default ./.clients), once: Braintrust's Python
# SDK and the OpenTelemetry Python SDK with its OTLP exporters (HTTP
# protobuf, HTTP JSON, gRPC) in a venv, and Braintrust's TypeScript SDK
# with npm. Versions are pinned here; bump them together with the tests.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${CACHE:-$here/.clients}"
mkdir -p "$cache"
python_packages=(
  "braintrust==0.48.1"
  "opentelemetry-sdk==1.45.1"
  "opentelemetry-exporter-otlp-proto-http==1.45.1"
  "opentelemetry-exporter-otlp-proto-grpc==1.45.1"
  "opentelemetry-exporter-otlp-json-http==0.66b1"
)
stamp="$cache/py/.installed"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${python_packages[*]}" ]; then
  rm -rf "$cache/py"
  python3 -m venv "$cache/py"
  "$cache/py/bin/pip" install --quiet --disable-pip-version-check "${python_packages[@]}"
  echo "${python_packages[*]}" > "$stamp"
fi
node_package="braintrust@3.35.0"
stamp="$cache/node/.installed"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$node_package" ]; then
  rm -rf "$cache/node"
  mkdir -p "$cache/node"
  (cd "$cache/node" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund "$node_package" >/dev/null)
  echo "$node_package" > "$stamp"
fi
echo "$cache"
