// What a job really gets: its requested limits, with the executor's defaults filling the gaps and
// its maxima as a hard ceiling. Where there is no default but a maximum, the maximum applies, so
// "no limit asked" never means "more than the operator allows".
import { NUMERIC_LIMIT_FIELDS } from '../../shared/job.ts';
import type { JobLimits, JobSpec } from '../../shared/job.ts';
import { invalid } from '../../shared/schema.ts';
import type { ExecutorConfig } from '../config.ts';

export function effectiveLimits(
  requested: JobLimits,
  config: Pick<ExecutorConfig, 'limits'>,
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
  return limits;
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
