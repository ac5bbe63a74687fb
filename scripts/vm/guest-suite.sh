#!/bin/sh
# Runs inside the cgroup v2 test VM, in the chroot init.sh built (the host's root, read-only, with
# the checkout as the working directory): each test file in its own uvu process, started alone in
# a cgroup of its own below a slice that has every controller delegated, as systemd's Delegate=yes
# gives a service. So the executor code under test starts in a non-root cgroup and must move
# itself to a leaf and enable controllers for its jobs, as in production.
#
#   sh scripts/vm/guest-suite.sh NODE DIR FILE...     (FILE: a name in DIR, e.g. limits.test.ts)
node=$1
dir=$2
shift 2
root=/sys/fs/cgroup
slice=$root/jobworker-v2.slice
controllers="+cpu +memory +io +pids +cpuset"

echo "$controllers" >$root/cgroup.subtree_control || exit 1
mkdir $slice && echo "$controllers" >$slice/cgroup.subtree_control || exit 1

now() { date +%s%N; }
status=0
for file in "$@"; do
  echo
  echo "── $dir/$file (cgroup v2 VM)"
  service=$slice/${file%.test.ts}.service
  mkdir "$service" || exit 1
  started=$(now)
  # The shell moves itself into the service's cgroup, then becomes the test process there.
  sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' - "$service" \
    "$node" --import tsx node_modules/uvu/bin.js "$dir" "^$file\$" || status=1
  echo "   $file: $(((($(now) - started) / 1000000))) ms in the VM"
  # What the service manager does once a service has ended: remove its cgroup. Below it only
  # leaves that held an executor (<name>-executor) or a test process, and services a test
  # started, are expected; anything else stays, for the leftovers check to name.
  find "$service" -mindepth 1 -depth -type d \( -name '*-executor' -o -name '*.service' \
    -o -name test-process \) -exec rmdir {} + 2>/dev/null
  rmdir "$service" 2>/dev/null || echo "   cgroups left below $service:" "$(cd "$service" && find . -mindepth 1 -type d)"
done
exit $status
