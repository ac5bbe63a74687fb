// Every conversion between JobLimits' units and the kernel's cgroup file units lives here, so the
// controller files only decide which file gets which value.
//
//   JobLimits field          unit                kernel file unit
//   cpus                     fraction of cores   quota and period in microseconds (cfs / cpu.max)
//   memoryBytes, …Bytes      bytes               bytes (v1 rounds down to the page size)
//   pids                     processes           processes (+ HELPER_PROCESSES, see pids.ts)
//   io*Bps / io*Iops         bytes or IOs / s    bytes or IOs per second
//   (usage) cpu.stat         microseconds        seconds
//   (usage) cpuacct.usage    nanoseconds         seconds
import type { JobLimits } from '../../shared/job.ts';
import { JobError } from '../../shared/errors.ts';

/** The CFS period the executor always uses: 100 ms, the kernel's default. */
export const CPU_PERIOD_US = 100_000;
/** The kernel refuses quotas below 1 ms (cfs_quota_us and cpu.max alike). */
export const MIN_CPU_QUOTA_US = 1_000;

export interface CpuQuota {
  quotaUs: number;
  periodUs: number;
}

/** cpus 0.5 → 50000 µs of CPU time per 100000 µs period; never below the kernel's 1000 µs. */
export function cpusToQuota(cpus: number): CpuQuota {
  if (!Number.isFinite(cpus) || cpus <= 0) {
    throw new JobError('invalid-argument', `limits.cpus: must be a number above 0, got ${cpus}`);
  }
  const quotaUs = Math.max(MIN_CPU_QUOTA_US, Math.round(cpus * CPU_PERIOD_US));
  if (!Number.isSafeInteger(quotaUs)) {
    throw new JobError('invalid-argument', `limits.cpus: ${cpus} is too large`);
  }
  return { quotaUs, periodUs: CPU_PERIOD_US };
}

/**
 * A count or byte value as the kernel's decimal text. Refuses anything but a positive safe
 * integer, because String() of 1e21 or 0.5 is not something a cgroup file parses as meant.
 */
export function kernelInteger(field: keyof JobLimits, value: number): string {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new JobError(
      'invalid-argument',
      `limits.${field}: must be a whole number above 0, got ${value}`,
    );
  }
  return String(value);
}

/** v2 cpu.stat usage_usec → seconds. */
export function microsecondsToSeconds(us: number): number {
  return us / 1e6;
}

/** v1 cpuacct.usage (nanoseconds) → seconds. */
export function nanosecondsToSeconds(ns: number): number {
  return ns / 1e9;
}
