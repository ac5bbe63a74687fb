#!/usr/bin/env bash
# Prepares a Debian 12 machine to build, run and test jobworker (as root; idempotent).
# Node.js 20 or newer must already be installed (Debian 12's own nodejs is 18).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
  echo "setup-debian.sh: run as root (it installs packages)" >&2
  exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if (( node_major < 20 )); then
  echo "setup-debian.sh: Node.js 20 or newer is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# The helper is built with cc; jobs in the tests use python3, ps, ip, ss, setsid and dd from the
# host's view (read-only) of these packages.
packages=(build-essential python3 procps iproute2 util-linux coreutils)
# The API tests: an independent gRPC client (gRPC's C core), two TLS scanners, openssl for the
# PKI and s_client; the deploy test checks the systemd units with systemd-analyze.
packages+=(python3-grpcio python3-protobuf sslscan testssl.sh openssl systemd)
# The cgroup v2 suite boots a VM (scripts/vm/): QEMU, a Debian kernel with 9p (not the -cloud
# one), and what builds its busybox initramfs and its ext4 disk.
packages+=(qemu-system-x86 linux-image-amd64 busybox-static cpio kmod e2fsprogs)
# The systemd suite boots this host's own systemd in that VM, where systemd-analyze security
# reads the units from systemd over the system bus.
packages+=(dbus)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if (( ${#missing[@]} > 0 )); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [[ ! -d node_modules || package-lock.json -nt node_modules ]]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
