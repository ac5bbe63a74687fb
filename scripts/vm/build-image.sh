#!/usr/bin/env bash
# Builds what the test VMs boot, into .vm/ (gitignored), and rebuilds only when an input changed:
# a copy of a Debian kernel (linux-image-amd64, not -cloud: that one lacks 9p) and a busybox
# initramfs holding scripts/vm/init.sh as /init, systemd-root.sh beside it, and the modules they
# load (virtio, 9p, ext4, overlay, loop: jobs' disk storage). Prints the kernel version it used.
# Needs root (the kernel
# image is readable by root only).
#
#   bash scripts/vm/build-image.sh            # JOBWORKER_VM_KERNEL=6.1.0-… picks a kernel
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.vm
modules_wanted=(virtio_pci virtio_blk 9pnet_virtio 9p ext4 overlay loop)

fail() {
  echo "build-image.sh: $*" >&2
  exit 1
}

for tool in busybox cpio gzip modprobe readelf sha256sum; do
  command -v "$tool" >/dev/null || fail "$tool is missing (bash scripts/setup-debian.sh installs it)"
done
busybox_path=$(command -v busybox)
# The initramfs has no libraries: only a static busybox works there.
if ! file_info=$(LC_ALL=C readelf -d "$busybox_path" 2>&1) || grep -q NEEDED <<<"$file_info"; then
  fail "$busybox_path is not statically linked (install busybox-static)"
fi

# The newest installed kernel that has 9p, unless one is named.
kernel=${JOBWORKER_VM_KERNEL:-}
if [[ -z "$kernel" ]]; then
  for image in $(ls /boot/vmlinuz-* 2>/dev/null | sort -V -r); do
    version=${image#/boot/vmlinuz-}
    if [[ -e /lib/modules/$version/kernel/fs/9p/9p.ko ]]; then
      kernel=$version
      break
    fi
  done
fi
[[ -n "$kernel" ]] || fail "no kernel with 9p under /boot (install linux-image-amd64)"
[[ -r /boot/vmlinuz-$kernel ]] || fail "cannot read /boot/vmlinuz-$kernel (run as root)"

# Module files in load order, dependencies first, each once ("builtin …" lines need nothing).
mapfile -t module_files < <(
  for module in "${modules_wanted[@]}"; do
    modprobe -S "$kernel" --show-depends "$module" || fail "modprobe cannot resolve $module for $kernel"
  done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }'
)

stamp=$(
  {
    echo "kernel $kernel"
    sha256sum "/boot/vmlinuz-$kernel" "$busybox_path" scripts/vm/init.sh scripts/vm/systemd-root.sh \
      scripts/vm/build-image.sh
    printf '%s\n' "${module_files[@]}"
  } | sha256sum | cut -d' ' -f1
)
if [[ -f $out/stamp && "$(cat $out/stamp)" == "$stamp" && -f $out/vmlinuz && -f $out/initramfs.cpio.gz ]]; then
  echo "$kernel"
  exit 0
fi

mkdir -p "$out"
work=$(mktemp -d "$out/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,newroot,lib/modules}
cp "$busybox_path" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
mknod -m 600 "$root/dev/console" c 5 1
install -m 755 scripts/vm/init.sh "$root/init"
install -m 644 scripts/vm/systemd-root.sh "$root/systemd-root.sh"
: >"$root/lib/modules/load-order"
for file in "${module_files[@]}"; do
  name=$(basename "$file")
  case "$file" in
  *.ko) cp "$file" "$root/lib/modules/$name" ;;
  *.ko.xz) xz -dc "$file" >"$root/lib/modules/${name%.xz}" ;;
  *.ko.zst) zstd -qdc "$file" >"$root/lib/modules/${name%.zst}" ;;
  *.ko.gz) gzip -dc "$file" >"$root/lib/modules/${name%.gz}" ;;
  *) fail "unexpected module file $file" ;;
  esac
  name=${name%.xz}
  name=${name%.zst}
  name=${name%.gz}
  echo "$name" >>"$root/lib/modules/load-order"
done
(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --quiet -o -0 -H newc -R 0:0) | gzip -1 >"$work/initramfs.cpio.gz"
cp "/boot/vmlinuz-$kernel" "$work/vmlinuz"
mv -f "$work/vmlinuz" "$work/initramfs.cpio.gz" "$out/"
echo "$stamp" >"$out/stamp"
echo "built $out/initramfs.cpio.gz and $out/vmlinuz from $kernel (${#module_files[@]} modules)" >&2
echo "$kernel"
