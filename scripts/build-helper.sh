#!/usr/bin/env bash
# Builds the executor's native helper: one C file, libc only, warnings are errors.
set -euo pipefail
cd "$(dirname "$0")/.."
src=executor/helper/jobworker-helper.c
out=executor/helper/build/jobworker-helper
mkdir -p "$(dirname "$out")"
if [[ "$out" -nt "$src" && "${1:-}" != "--force" ]]; then
  exit 0
fi
"${CC:-cc}" -std=gnu11 -O2 -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wconversion -Wno-sign-conversion \
  -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE -pie -Wl,-z,relro,-z,now \
  -o "$out.tmp" "$src"
mv "$out.tmp" "$out"
echo "built $out"
