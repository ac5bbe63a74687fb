#!/bin/sh
# Runs inside the systemd test VM as jobworker-vm-suite.service (scripts/vm/systemd/), in the
# checkout: each test file in its own uvu process, in name order. The files act on this machine
# as an operator would on a server (install, systemctl, jobctl), so they run here and nowhere else.
#
#   sh scripts/vm/guest-systemd-suite.sh NODE DIR FILE...     (FILE: a name in DIR)
node=$1
dir=$2
shift 2

echo "jobworker-vm: booted in $(cut -d' ' -f1 /proc/uptime) s (kernel uptime); $(nproc) cpus;" \
  "PID 1: $(systemctl --version | head -1); cgroup controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
now() { date +%s%N; }
status=0
for file in "$@"; do
  echo
  echo "── $dir/$file (systemd VM)"
  started=$(now)
  "$node" --import tsx node_modules/uvu/bin.js "$dir" "^$file\$" || status=1
  echo "   $file: $((($(now) - started) / 1000000)) ms in the VM"
done
exit $status
