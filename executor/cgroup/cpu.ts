// cpu: a CFS bandwidth quota per period (v1 cpu.cfs_*, v2 cpu.max), and CPU time used.
import type { JobLimits } from '../../shared/job.ts';
import { keyedValue, type FileWrite, type VersionedStat } from './cgroup-fs.ts';
import { cpusToQuota, microsecondsToSeconds, nanosecondsToSeconds } from './units.ts';

/** Period before quota, so the quota is checked against the period it is meant for. */
export function v1Files(limits: JobLimits): FileWrite[] {
  if (limits.cpus === undefined) return [];
  const { quotaUs, periodUs } = cpusToQuota(limits.cpus);
  return [
    ['cpu.cfs_period_us', String(periodUs), 'cpus'],
    ['cpu.cfs_quota_us', String(quotaUs), 'cpus'],
  ];
}

export function v2Files(limits: JobLimits): FileWrite[] {
  if (limits.cpus === undefined) return [];
  const { quotaUs, periodUs } = cpusToQuota(limits.cpus);
  return [['cpu.max', `${quotaUs} ${periodUs}`, 'cpus']];
}

/** Seconds of CPU time from v2 cpu.stat (`usage_usec N`); 0 when the line is missing. */
export function v2UsageSeconds(cpuStat: string): number {
  return microsecondsToSeconds(keyedValue(cpuStat, 'usage_usec'));
}

/** Seconds of CPU time from v1 cpuacct.usage (one number, nanoseconds). */
export function v1UsageSeconds(cpuacctUsage: string): number {
  const ns = Number(cpuacctUsage.trim());
  return Number.isFinite(ns) ? nanosecondsToSeconds(ns) : 0;
}

/**
 * CPU time: v1 from the cpuacct controller; v2 from cpu.stat, which every non-root v2 cgroup
 * has with or without the cpu controller (so the hybrid tracking cgroup counts it too).
 */
export const USAGE_SECONDS: VersionedStat<number> = {
  v1: { file: 'cpuacct.usage', parse: v1UsageSeconds },
  v2: { file: 'cpu.stat', parse: v2UsageSeconds },
};
