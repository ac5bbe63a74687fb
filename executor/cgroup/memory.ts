// memory: a hard ceiling with swap disabled, a soft ceiling, peak usage and OOM-kill detection.
import type { JobLimits } from '../../shared/job.ts';
import { keyedValue, type FileWrite, type VersionedStat } from './cgroup-fs.ts';
import { kernelInteger } from './units.ts';

export const V1_MEMSW_FILE = 'memory.memsw.limit_in_bytes';
export const V2_SWAP_FILE = 'memory.swap.max';

/**
 * v1: the memory+swap ceiling must stay ≥ the memory ceiling, so memory.limit_in_bytes goes first
 * and memsw gets the same value (no swap). memsw exists only with swap accounting; hasMemsw says
 * whether it does. The soft limit is v1's nearest thing to memory.high.
 */
export function v1Files(limits: JobLimits, options: { hasMemsw: boolean }): FileWrite[] {
  const writes: FileWrite[] = [];
  if (limits.memoryBytes !== undefined) {
    const max = kernelInteger('memoryBytes', limits.memoryBytes);
    writes.push(['memory.limit_in_bytes', max, 'memoryBytes']);
    if (options.hasMemsw) writes.push([V1_MEMSW_FILE, max, 'memoryBytes']);
  }
  if (limits.memoryHighBytes !== undefined) {
    const high = kernelInteger('memoryHighBytes', limits.memoryHighBytes);
    writes.push(['memory.soft_limit_in_bytes', high, 'memoryHighBytes']);
  }
  return writes;
}

/**
 * v2: swap is always off for jobs (memory.swap.max exists only with swap accounting), and
 * memory.oom.group makes an OOM kill end the whole job rather than leave it half-dead.
 */
export function v2Files(limits: JobLimits, options: { hasSwapMax: boolean }): FileWrite[] {
  const writes: FileWrite[] = [];
  if (limits.memoryBytes !== undefined) {
    writes.push(['memory.max', kernelInteger('memoryBytes', limits.memoryBytes), 'memoryBytes']);
  }
  if (limits.memoryHighBytes !== undefined) {
    const high = kernelInteger('memoryHighBytes', limits.memoryHighBytes);
    writes.push(['memory.high', high, 'memoryHighBytes']);
  }
  if (options.hasSwapMax) writes.push([V2_SWAP_FILE, '0']);
  writes.push(['memory.oom.group', '1']);
  return writes;
}

export function peakBytes(text: string): number {
  const n = Number(text.trim());
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

/** Highest usage so far; v2 memory.peak exists since Linux 5.19 (older kernels: 0). */
export const PEAK_BYTES: VersionedStat<number> = {
  v1: { file: 'memory.max_usage_in_bytes', parse: peakBytes },
  v2: { file: 'memory.peak', parse: peakBytes },
};

/** v1 memory.oom_control: `oom_kill N` counts the OOM killer's kills in this cgroup. */
export function v1OomKilled(oomControl: string): boolean {
  return keyedValue(oomControl, 'oom_kill') > 0;
}

/** v2 memory.events: oom_kill, or oom_group_kill when memory.oom.group took the whole job. */
export function v2OomKilled(memoryEvents: string): boolean {
  return keyedValue(memoryEvents, 'oom_kill') > 0 || keyedValue(memoryEvents, 'oom_group_kill') > 0;
}

/** From the kernel's OOM-kill counters, never from signals (a stop also ends in SIGKILL). */
export const OOM_KILLED: VersionedStat<boolean> = {
  v1: { file: 'memory.oom_control', parse: v1OomKilled },
  v2: { file: 'memory.events', parse: v2OomKilled },
};
