// The shape and hard bounds of a JobSpec, independent of any configuration. The API checks
// requests with it to answer early; the executor checks again (it trusts nothing it receives)
// and then applies its configured defaults and maxima (executor/runtime/effective-limits.ts).
import { STORAGE_KINDS } from './job.ts';
import type { JobLimits, JobSpec } from './job.ts';
import {
  array,
  integer,
  number,
  object,
  oneOf,
  optional,
  record,
  string,
  invalid,
} from './schema.ts';
import type { Check } from './schema.ts';

/** The kernel's limit for one argv/env string (MAX_ARG_STRLEN), less the terminating NUL. */
export const MAX_ARG_BYTES = 128 * 1024 - 1;
/** argv and env together; well inside the kernel's ARG_MAX and one executor frame. */
export const MAX_ARGV_ENV_BYTES = 256 * 1024;
export const MAX_ARGS = 4096;
export const MAX_ENV = 1024;
export const MAX_PATH_BYTES = 4095;
/** Below this the helper's own setup (mounts, fork) cannot fit; Docker's floor is 6 MiB. */
export const MIN_MEMORY_BYTES = 4 * 1024 * 1024;
/** The smallest /job: room for a few files (and for ext4's own metadata on disk). */
export const MIN_STORAGE_BYTES = 1024 * 1024;
const MAX_BYTES = Number.MAX_SAFE_INTEGER;

export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** The kernel's cpu list syntax: "0", "0-3", "0,2-3". */
export const CPU_LIST = /^\d{1,4}(-\d{1,4})?(,\d{1,4}(-\d{1,4})?)*$/;

/** Absolute, normalised: no empty, "." or ".." components (so no client path can walk out). */
export const absolutePath: Check<string> = (value, field) => {
  const path = string({ minLength: 1, maxBytes: MAX_PATH_BYTES })(value, field);
  if (!path.startsWith('/')) throw invalid(field, 'must be an absolute path');
  if (
    path !== '/' &&
    path
      .split('/')
      .slice(1)
      .some((part) => part === '' || part === '.' || part === '..')
  ) {
    throw invalid(
      field,
      'must be a normalised path (no empty, "." or ".." components, no trailing /)',
    );
  }
  return path;
};

/**
 * Why /job in memory may not be larger than the memory limit: its pages count against it, and a
 * job filling it would be OOM-killed instead of getting ENOSPC.
 */
export function storageAboveMemory(memoryBytes: number): string {
  return `must be at most limits.memoryBytes, ${memoryBytes} bytes, for storage in memory: its pages count against the memory limit (disk storage may be larger)`;
}

const bytes = (min: number) => integer({ min, max: MAX_BYTES, unit: 'bytes' });
const perSecond = (unit: string) => integer({ min: 1, max: MAX_BYTES, unit });

export const jobLimitsSchema: Check<JobLimits> = object({
  cpus: optional(number({ min: 0.01, max: 4096, unit: 'cores' })),
  memoryBytes: optional(bytes(MIN_MEMORY_BYTES)),
  memoryHighBytes: optional(bytes(MIN_MEMORY_BYTES)),
  pids: optional(integer({ min: 1, max: 4_194_304 })),
  ioReadBps: optional(perSecond('bytes/s')),
  ioWriteBps: optional(perSecond('bytes/s')),
  ioReadIops: optional(perSecond('ops/s')),
  ioWriteIops: optional(perSecond('ops/s')),
  cpusetCpus: optional(
    string({
      minLength: 1,
      maxBytes: 256,
      pattern: CPU_LIST,
      patternRule: 'a cpu list such as 0-1,3',
    }),
  ),
  storageBytes: optional(bytes(MIN_STORAGE_BYTES)),
});

const jobSpecShape = object({
  argv: array(string({ minLength: 0, maxBytes: MAX_ARG_BYTES }), {
    minItems: 1,
    maxItems: MAX_ARGS,
  }),
  env: optional(
    record(
      string({
        minLength: 1,
        maxBytes: 256,
        pattern: ENV_NAME,
        patternRule: 'a name of letters, digits and _, not starting with a digit',
      }),
      string({ maxBytes: MAX_ARG_BYTES }),
      { maxEntries: MAX_ENV },
    ),
  ),
  workingDir: optional(absolutePath),
  limits: optional(jobLimitsSchema),
  storageKind: optional(oneOf(STORAGE_KINDS)),
  timeoutMs: optional(integer({ min: 1, max: 366 * 24 * 3600 * 1000, unit: 'ms' })),
});

export const jobSpecSchema: Check<JobSpec> = (value, field) => {
  const spec = jobSpecShape(value, field);
  if (spec.argv[0] === '')
    throw invalid(`${field}.argv[0]`, 'must not be empty (it names the program)');
  let total = 0;
  for (const arg of spec.argv) total += Buffer.byteLength(arg) + 1;
  for (const [name, val] of Object.entries(spec.env ?? {}))
    total += Buffer.byteLength(name) + Buffer.byteLength(val) + 2;
  if (total > MAX_ARGV_ENV_BYTES) {
    throw invalid(
      `${field}.argv`,
      `argv and env together must be at most ${MAX_ARGV_ENV_BYTES} bytes, not ${total}`,
    );
  }
  const limits = spec.limits;
  if (
    limits?.memoryHighBytes !== undefined &&
    limits.memoryBytes !== undefined &&
    limits.memoryHighBytes > limits.memoryBytes
  ) {
    throw invalid(`${field}.limits.memoryHighBytes`, 'must not be above limits.memoryBytes');
  }
  if (
    (spec.storageKind ?? 'memory') === 'memory' &&
    limits?.storageBytes !== undefined &&
    limits.memoryBytes !== undefined &&
    limits.storageBytes > limits.memoryBytes
  ) {
    throw invalid(`${field}.limits.storageBytes`, storageAboveMemory(limits.memoryBytes));
  }
  return spec;
};
