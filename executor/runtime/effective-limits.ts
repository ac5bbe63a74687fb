// What a job really gets: its requested limits, with the executor's defaults filling the gaps and
// its maxima as a hard ceiling. Where there is no default but a maximum, the maximum applies, so
// "no limit asked" never means "more than the operator allows".
import { NUMERIC_LIMIT_FIELDS } from '../../shared/job.ts';
import type { JobLimits, JobSpec, StorageKind } from '../../shared/job.ts';
import { storageAboveMemory } from '../../shared/job-spec-schema.ts';
import { invalid } from '../../shared/schema.ts';
import { EXECUTOR_DEFAULTS } from '../config.ts';
import type { ExecutorConfig } from '../config.ts';

/** Every job's /job has a cap: where the configuration names none, the built-in default. */
const FALLBACK_STORAGE_BYTES = EXECUTOR_DEFAULTS.limits.defaults.storageBytes ?? 256 * 1024 ** 2;

export function effectiveLimits(
  requested: JobLimits,
  config: Pick<ExecutorConfig, 'limits'>,
  storageKind: StorageKind = 'memory',
): JobLimits {
  const { defaults, max } = config.limits;
  const limits: JobLimits = {};
  for (const field of NUMERIC_LIMIT_FIELDS) {
    const asked = requested[field];
    const ceiling = max[field];
    if (asked !== undefined && ceiling !== undefined && asked > ceiling) {
      throw invalid(
        `spec.limits.${field}`,
        `${asked} is above this executor's maximum of ${ceiling}`,
      );
    }
    const value = asked ?? defaults[field] ?? ceiling;
    if (value !== undefined) limits[field] = value;
  }
  const cpusetCpus = requested.cpusetCpus ?? defaults.cpusetCpus;
  if (cpusetCpus !== undefined) limits.cpusetCpus = cpusetCpus;
  // A soft ceiling at or above the hard one does nothing; a default must not contradict a request.
  if (
    limits.memoryHighBytes !== undefined &&
    limits.memoryBytes !== undefined &&
    limits.memoryHighBytes >= limits.memoryBytes
  ) {
    if (requested.memoryHighBytes !== undefined && requested.memoryBytes !== undefined) {
      throw invalid('spec.limits.memoryHighBytes', 'must be below limits.memoryBytes');
    }
    delete limits.memoryHighBytes;
  }
  limits.storageBytes = storageCap(limits, requested, storageKind);
  return limits;
}

/**
 * In memory, /job's pages count against the memory limit: a cap above it would end a job that
 * fills /job in an OOM kill instead of ENOSPC, so it is refused; a cap not asked for is at most
 * half the memory limit, leaving the job's own processes the other half.
 */
function storageCap(limits: JobLimits, requested: JobLimits, storageKind: StorageKind): number {
  const cap = limits.storageBytes ?? FALLBACK_STORAGE_BYTES;
  const memory = limits.memoryBytes;
  if (storageKind !== 'memory' || memory === undefined) return cap;
  if (requested.storageBytes === undefined) return Math.min(cap, Math.floor(memory / 2));
  if (requested.storageBytes > memory)
    throw invalid('spec.limits.storageBytes', storageAboveMemory(memory));
  return cap;
}

export function effectiveTimeout(
  spec: JobSpec,
  config: Pick<ExecutorConfig, 'defaultTimeoutMs' | 'maxTimeoutMs'>,
): number | null {
  const asked = spec.timeoutMs;
  if (asked !== undefined && config.maxTimeoutMs !== null && asked > config.maxTimeoutMs) {
    throw invalid(
      'spec.timeoutMs',
      `${asked} is above this executor's maximum of ${config.maxTimeoutMs} ms`,
    );
  }
  return asked ?? config.defaultTimeoutMs ?? config.maxTimeoutMs;
}
