# Sourced by init.sh (busybox sh, in the initramfs) for the systemd suite: makes the VM's root and
# hands the machine to Debian's own systemd as PID 1. The root is the host's root, read-only over
# 9p, under a writable overlay kept in the VM's memory: the host's packages (systemd, node, the
# compiler, openssl) boot unchanged, and nothing the VM writes reaches the host. The virtio disk
# holds /var/lib/jobworker, as a server's data disk would (a real block device under every job's
# /job, for io.max); the run share is at /run/jobworker-vm; the units of scripts/vm/systemd/ go to
# /etc/systemd/system, and jobworker-vm.target (named on the kernel command line) runs the suite.
lower=/host
mkdir -p $lower /overlay
mount $nine,ro hostroot $lower || die "cannot mount the host root (9p tag hostroot)"
mount -t tmpfs -o mode=0755 overlay /overlay || die "tmpfs for the overlay"
mkdir /overlay/upper /overlay/work
mount -t overlay -o lowerdir=$lower,upperdir=/overlay/upper,workdir=/overlay/work root $r ||
  die "cannot mount the overlay root"
mkdir -p $r/var/lib/jobworker
mount -t ext4 /dev/vda $r/var/lib/jobworker || die "cannot mount /dev/vda on /var/lib/jobworker"
# A fresh /tmp, as a booted server has (and not the host's, which systemd-tmpfiles would empty
# file by file in the overlay); the checkout again, in case it is below /tmp. systemd keeps a
# /run that is mounted already, and with it the run share below it.
mount -t tmpfs -o mode=1777,nosuid,nodev tmp $r/tmp || die "tmpfs on /tmp"
mkdir -p "$r$checkout" 2>/dev/null
mount $nine,ro checkout "$r$checkout" || die "cannot mount the checkout at $checkout"
mount -t tmpfs -o mode=0755,nosuid,nodev run $r/run || die "tmpfs on /run"
mkdir -p $r/run/jobworker-vm
mount $nine run $r/run/jobworker-vm || die "cannot mount the run share"
cp "$r$checkout"/scripts/vm/systemd/* $r/etc/systemd/system/ || die "cannot install the VM's units"
# The VM has no network: time synchronisation would only spend the emulated CPU.
ln -sf /dev/null $r/etc/systemd/system/systemd-timesyncd.service
mkdir -p $r/etc/systemd/system/jobworker-vm-suite.service.d
printf '[Service]\nWorkingDirectory=%s\n' "$checkout" >$r/etc/systemd/system/jobworker-vm-suite.service.d/checkout.conf
# The host's /etc/fstab names the host's disks, not the VM's. A /.dockerenv (this host may be a
# container image) would make systemd take the VM for a container and ignore the kernel command
# line: gone from the VM's view.
: >$r/etc/fstab
rm -f $r/.dockerenv

say "root ready after $(cut -d' ' -f1 /proc/uptime) s (kernel uptime); starting systemd"
umount /proc /sys
mount -o move /dev $r/dev || die "cannot move /dev"
exec switch_root $r /lib/systemd/systemd
