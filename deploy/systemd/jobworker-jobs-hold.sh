#!/bin/sh
# The one process of jobworker-jobs.service, the unit whose cgroup holds every job's cgroups
# (the executor's config names it: jobsCgroup). On cgroup v2 a cgroup whose controllers are
# enabled for its children may hold no process itself, so this first moves into a leaf of the
# unit's cgroup; the executor then enables the controllers there and makes each job's cgroup
# beside the leaf. Then it only waits: the unit, and with it every job, ends when it is stopped.
set -eu
own=$(sed -n 's/^0:://p' /proc/self/cgroup)
if [ -f /sys/fs/cgroup/cgroup.controllers ] && [ -n "$own" ] && [ "$own" != / ]; then
  mkdir -p "/sys/fs/cgroup$own/holder"
  echo $$ >"/sys/fs/cgroup$own/holder/cgroup.procs"
fi
exec sleep infinity
