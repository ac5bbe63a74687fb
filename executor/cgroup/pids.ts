// pids: the ceiling on processes and threads.
import type { JobLimits } from '../../shared/job.ts';
import type { FileWrite } from './cgroup-fs.ts';
import { kernelInteger } from './units.ts';

/**
 * The job's PID-1 init (the helper's) lives in the job's cgroup too and counts against
 * pids.max, so the kernel value is the user's limit plus one. (The job's keeper stays outside the
 * job's cgroups.) A user's `pids` means the job's own processes.
 */
export const HELPER_PROCESSES = 1;

/** The file has the same name and syntax in v1 and v2. */
export function v1Files(limits: JobLimits): FileWrite[] {
  if (limits.pids === undefined) return [];
  const own = Number(kernelInteger('pids', limits.pids)); // validated before the +1 hides a -1
  return [['pids.max', String(own + HELPER_PROCESSES), 'pids']];
}

export const v2Files = v1Files;
