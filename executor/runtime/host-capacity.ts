// What this host can give one job at most, read once at start. A configured maximum above it
// would accept requests the kernel cannot honour (a pids limit above pid_max, more CPUs than
// there are, more memory than there is): such maxima, and defaults above them, are clamped to
// the host and the executor says so in its log.
import { readFile } from 'node:fs/promises';
import { availableParallelism, totalmem } from 'node:os';
import type { JobLimits } from '../../shared/job.ts';
import type { ExecutorConfig } from '../config.ts';

export interface HostCapacity {
  cpus: number;
  memoryBytes: number;
  pids: number;
}

export async function readHostCapacity(): Promise<HostCapacity> {
  const pidMax = Number((await readFile('/proc/sys/kernel/pid_max', 'utf8')).trim());
  return { cpus: availableParallelism(), memoryBytes: totalmem(), pids: pidMax };
}

/** The config with limits above the host's capacity clamped; `clamped` names each change. */
export function clampToHost(
  config: Readonly<ExecutorConfig>,
  host: HostCapacity,
): { config: Readonly<ExecutorConfig>; clamped: string[] } {
  const clamped: string[] = [];
  const clamp = (limits: JobLimits, which: 'defaults' | 'max'): JobLimits => {
    const result = { ...limits };
    for (const field of ['cpus', 'memoryBytes', 'pids'] as const) {
      const value = result[field];
      if (value !== undefined && value > host[field]) {
        result[field] = host[field];
        clamped.push(`limits.${which}.${field} ${value} → ${host[field]}`);
      }
    }
    return result;
  };
  const limits = {
    defaults: clamp(config.limits.defaults, 'defaults'),
    max: clamp(config.limits.max, 'max'),
  };
  return { config: Object.freeze({ ...config, limits }), clamped };
}
