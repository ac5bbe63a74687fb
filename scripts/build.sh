#!/usr/bin/env bash
# `npm run build`: the JavaScript production runs, compiled by tsc from the sources into dist/
# (uncommitted; dist/<path>.js for each <path>.ts), and the executor's helper.
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
  chmod 0755 "$next" "$next/api/jobctl/jobctl.js"
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
