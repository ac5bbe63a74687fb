#!/bin/sh
# /init of the test VMs (busybox sh, in the initramfs built by build-image.sh). Loads the virtio,
# 9p, ext4, overlay and loop modules. For the cgroup v2 suite it builds the test root from the
# host's root over 9p (read-only) with fresh /proc, /sys, /dev, cgroup2 at /sys/fs/cgroup, tmpfs
# where a system writes, the virtio disk at /var/tmp and the checkout (read-only) at its host
# path; chroots to run the command the harness left in the run share; records its exit status
# there and powers off. Any failure powers off too: the harness reads the missing status as a
# failed run. For the systemd suite, systemd-root.sh takes over once the modules are loaded.
#
# Kernel command line: jobworker.checkout=<host path of the checkout>, and jobworker.boot=systemd
# for the systemd suite.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys

say() { echo "jobworker-vm: $*"; }
off() {
  sync
  umount /newroot/run/jobworker-vm 2>/dev/null
  poweroff -f
  echo o >/proc/sysrq-trigger
}
die() {
  say "init failed: $*"
  off
}

checkout=
boot=v2
for word in $(cat /proc/cmdline); do
  case "$word" in
  jobworker.checkout=*) checkout=${word#jobworker.checkout=} ;;
  jobworker.boot=*) boot=${word#jobworker.boot=} ;;
  esac
done
[ -n "$checkout" ] || die "no jobworker.checkout= on the kernel command line"

for module in $(cat /lib/modules/load-order); do
  # crc32c-intel needs SSE4.2, which an emulated CPU may lack; crc32c_generic stands in.
  insmod "/lib/modules/$module" 2>/dev/null || say "module $module not loaded"
done

nine='-t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose'
r=/newroot
[ "$boot" = systemd ] && . /systemd-root.sh
mount $nine,ro hostroot $r || die "cannot mount the host root (9p tag hostroot)"
mount -t proc proc $r/proc || die "proc"
mount -t sysfs sys $r/sys || die "sysfs"
mount -t cgroup2 -o nsdelegate cgroup2 $r/sys/fs/cgroup || die "cgroup2"
mount -t devtmpfs dev $r/dev || die "devtmpfs"
mkdir -p $r/dev/pts $r/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts $r/dev/pts || die "devpts"
mount -t tmpfs -o mode=1777 shm $r/dev/shm || die "/dev/shm"
for dir in /tmp /run; do
  mode=0755
  [ "$dir" = /tmp ] && mode=1777
  mount -t tmpfs -o mode=$mode tmpfs $r$dir || die "tmpfs on $dir"
done
# The virtio disk: a real block device under the executors' state directories (io.max).
mount -t ext4 /dev/vda $r/var/tmp || die "cannot mount /dev/vda on /var/tmp"
chmod 1777 $r/var/tmp
# The checkout may be under a host path replaced above (/tmp in a CI clone): mount it again.
mkdir -p "$r$checkout" 2>/dev/null
mount $nine,ro checkout "$r$checkout" || die "cannot mount the checkout at $checkout"
mkdir -p $r/run/jobworker-vm
mount $nine run $r/run/jobworker-vm || die "cannot mount the run share"

say "booted in $(cut -d' ' -f1 /proc/uptime) s (kernel uptime); $(nproc) cpus, cgroup controllers: $(cat $r/sys/fs/cgroup/cgroup.controllers)"
env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=linux \
  chroot $r /bin/sh -c "cd '$checkout' && exec /bin/sh /run/jobworker-vm/command"
status=$?
echo "$status" >$r/run/jobworker-vm/status
say "command exited $status after $(cut -d' ' -f1 /proc/uptime) s of uptime"
off
