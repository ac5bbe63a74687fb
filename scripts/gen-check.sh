#!/usr/bin/env bash
# Fails when the committed generated code (api/generated) is not what proto/ generates now, or
# when the protos break buf's lint rules. Never rewrites anything: run `npm run gen` to update.
set -euo pipefail
cd "$(dirname "$0")/.."
npx --no-install buf lint
fresh=$(mktemp -d)
trap 'rm -rf "$fresh"' EXIT
npx --no-install buf generate --output "$fresh"
if ! diff -r "$fresh/api/generated" api/generated; then
  echo "gen-check: api/generated is stale; run: npm run gen" >&2
  exit 1
fi
echo "generated code is current"
