#!/usr/bin/env bash
# `npm run build`: the JavaScript production runs, compiled by tsc from the sources into dist/
# (uncommitted; dist/<path>.js for each <path>.ts), jobctl bundled from that output into one
# CommonJS file, dist/jobctl/jobctl.cjs (it starts faster than a tree of ES modules, and its
# modules that need gRPC, with gRPC itself, are still loaded only when a command needs them), and
# the executor's helper.
#
#   build.sh [--force]
#
# dist/.fingerprint is a hash of every input; a build whose inputs are unchanged does nothing. A
# new build is made beside dist/ and swapped in whole, so no process ever loads a mix of two
# builds, and no file of an earlier build (one whose source was removed) survives.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 022
# One build at a time in a checkout: the lock is on this script itself.
exec 9<"$0"
flock 9

inputs() {
  find api executor shared scripts -name '*.ts' -type f -print0 | sort -z
  printf '%s\0' tsconfig.json tsconfig.build.json package.json package-lock.json
}
fingerprint=$(inputs | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
if [[ -f dist/.fingerprint && $(<dist/.fingerprint) == "$fingerprint" && ${1:-} != --force ]]; then
  :
else
  next=$(mktemp -d dist.new.XXXXXX)
  trap 'rm -rf "$next"' EXIT
  node_modules/.bin/tsc -p tsconfig.build.json --outDir "$next"
  # Our modules only: the packages stay in node_modules, required from there when first needed.
  # import.meta has no CommonJS form: it is defined from the bundle's own file name (and any other
  # use of it fails the build).
  node_modules/.bin/esbuild "$next/api/jobctl/jobctl.js" --bundle --format=cjs --platform=node \
    --target=node20 --packages=external --outfile="$next/jobctl/jobctl.cjs" --log-level=warning \
    --define:import.meta.dirname=__dirname --define:import.meta.url=import_meta_url \
    --banner:js='"use strict"; const import_meta_url = require("node:url").pathToFileURL(__filename).href;' \
    --log-override:empty-import-meta=error
  chmod 0755 "$next" "$next/jobctl/jobctl.cjs"
  echo "$fingerprint" >"$next/.fingerprint"
  if [[ -d dist ]]; then
    old=$(mktemp -d dist.old.XXXXXX)
    mv dist "$old/"
    mv "$next" dist
    rm -rf "$old"
  else
    mv "$next" dist
  fi
  trap - EXIT
  echo "built dist/"
fi
bash scripts/build-helper.sh
