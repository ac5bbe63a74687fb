// The executor's configuration: the schema, with every default beside it. A config file holds
// only what differs from these; unknown keys are refused by name; the result is frozen.
import { join } from 'node:path';
import { APP_ROOT } from '../shared/app-layout.ts';
import { parseConfig, readConfigFile } from '../shared/config-file.ts';
import { LOG_LEVELS } from '../shared/logger.ts';
import type { LogLevel } from '../shared/logger.ts';
import type { JobLimits } from '../shared/job.ts';
import { NUMERIC_LIMIT_FIELDS } from '../shared/job.ts';
import { absolutePath, jobLimitsSchema } from '../shared/job-spec-schema.ts';
import { integer, invalid, object, oneOf, optional, string, array } from '../shared/schema.ts';
import type { Check } from '../shared/schema.ts';
import type { RetentionPolicy } from './runtime/retention.ts';

const MiB = 1024 * 1024;

export interface ExecutorConfig {
  /** Job records and output, and the images of jobs' disk-backed /job. Root-only (0700). */
  stateDir: string;
  /** The Unix socket the API connects to; its directory is created root-owned, mode 0750. */
  socketPath: string;
  /** The one group (name or number) allowed to open the socket: the API's supplementary group. */
  socketGroup: string;
  /** Name of this executor's cgroup below its own cgroup in every hierarchy. */
  cgroupName: string;
  /**
   * On cgroup v2: the cgroup (as /proc/self/cgroup names one) to hold job cgroups instead of the
   * executor's own, e.g. /system.slice/jobworker-jobs.service. A restarted service cannot be
   * placed back in a cgroup whose controllers are enabled for children (v2's no-internal-process
   * rule), so jobs that outlive an executor restart need a cgroup of their own, delegated to the
   * executor by a unit that never restarts. null: below the executor's own cgroup.
   */
  jobsCgroup: string | null;
  helperPath: string;
  /** Paths hidden inside every job besides the state and socket directories (keys, config). */
  maskPaths: string[];
  /** Each job runs as its own uid (= gid) from this range, which must hold no existing account. */
  jobUids: { first: number; count: number };
  maxRunningJobs: number;
  /** SIGTERM → this long → everything in the job's cgroup is killed. Per-stop override allowed. */
  stopGraceMs: number;
  maxStopGraceMs: number;
  /** Size of each job's private /tmp (tmpfs: its pages count against the job's memory limit). */
  tmpSizeBytes: number;
  /**
   * Open files each job process may have (RLIMIT_NOFILE, soft = hard): the host's file table is
   * shared, so a job's share of it is bounded by this times its pids limit.
   */
  jobOpenFiles: number;
  /** Output stored per job; past it the job keeps running, its output is drained and dropped. */
  maxOutputBytes: number;
  /** Ended jobs and their output are deleted after maxAgeMs and beyond maxJobs/maxOutputBytes. */
  retention: RetentionPolicy;
  /** Limits applied when a request names none, and the most a request may ask for. */
  limits: { defaults: JobLimits; max: JobLimits };
  defaultTimeoutMs: number | null;
  maxTimeoutMs: number | null;
  maxConnections: number;
  /** Unary requests one connection may have outstanding. */
  maxRequestsPerConnection: number;
  logLevel: LogLevel;
}

export const EXECUTOR_DEFAULTS: ExecutorConfig = {
  stateDir: '/var/lib/jobworker',
  socketPath: '/run/jobworker/executor.sock',
  socketGroup: 'jobworker',
  cgroupName: 'jobworker',
  jobsCgroup: null,
  helperPath: join(APP_ROOT, 'executor/helper/build/jobworker-helper'),
  maskPaths: ['/etc/jobworker'],
  jobUids: { first: 200_000, count: 10_000 },
  maxRunningJobs: 256,
  stopGraceMs: 5_000,
  maxStopGraceMs: 60_000,
  tmpSizeBytes: 256 * MiB,
  jobOpenFiles: 1024,
  maxOutputBytes: 1024 * MiB,
  retention: {
    maxAgeMs: 7 * 24 * 3600 * 1000,
    maxJobs: 10_000,
    maxOutputBytes: 20 * 1024 * MiB,
    maxRecordBytes: 256 * MiB,
  },
  limits: {
    defaults: { cpus: 1, memoryBytes: 512 * MiB, pids: 512, storageBytes: 256 * MiB },
    max: { cpus: 64, memoryBytes: 64 * 1024 * MiB, pids: 65_536, storageBytes: 16 * 1024 * MiB },
  },
  defaultTimeoutMs: null,
  maxTimeoutMs: null,
  maxConnections: 256,
  maxRequestsPerConnection: 64,
  logLevel: 'info',
};

const nullable =
  <T>(check: Check<T>): Check<T | null> =>
  (value, field) =>
    value === null ? null : check(value, field);

/** Each job's keeper listens on <stateDir>/jobs/<32 hex>/keeper.sock: 50 bytes after stateDir. */
const KEEPER_SOCKET_SUFFIX_BYTES = '/jobs/'.length + 32 + '/keeper.sock'.length;

const fileSchema = object({
  stateDir: optional((value, field) => {
    const path = absolutePath(value, field);
    if (Buffer.byteLength(path) > 107 - KEEPER_SOCKET_SUFFIX_BYTES)
      throw invalid(
        field,
        `must be at most ${107 - KEEPER_SOCKET_SUFFIX_BYTES} bytes (job keepers' Unix sockets live below it)`,
      );
    return path;
  }),
  // sun_path holds 108 bytes including the terminating NUL.
  socketPath: optional((value, field) => {
    const path = absolutePath(value, field);
    if (Buffer.byteLength(path) > 107)
      throw invalid(field, 'must be at most 107 bytes (a Unix socket path)');
    return path;
  }),
  socketGroup: optional(
    string({
      minLength: 1,
      maxBytes: 32,
      pattern: /^[a-z_][a-z0-9_-]*\$?$|^\d+$/,
      patternRule: 'a group name or number',
    }),
  ),
  cgroupName: optional(
    string({
      minLength: 1,
      maxBytes: 64,
      pattern: /^[a-z][a-z0-9-]*$/,
      patternRule: 'lowercase letters, digits and -',
    }),
  ),
  jobsCgroup: optional(
    nullable((value, field) => {
      const path = absolutePath(value, field);
      if (path === '/') throw invalid(field, 'must name a cgroup below the root');
      return path;
    }),
  ),
  helperPath: optional(absolutePath),
  maskPaths: optional(array(absolutePath, { maxItems: 64 })),
  jobUids: optional(
    object({
      first: integer({ min: 1000, max: 2 ** 31 - 1 }),
      count: integer({ min: 1, max: 1_000_000 }),
    }),
  ),
  maxRunningJobs: optional(integer({ min: 1, max: 100_000 })),
  stopGraceMs: optional(integer({ min: 0, max: 3_600_000, unit: 'ms' })),
  maxStopGraceMs: optional(integer({ min: 0, max: 3_600_000, unit: 'ms' })),
  tmpSizeBytes: optional(integer({ min: MiB, max: Number.MAX_SAFE_INTEGER, unit: 'bytes' })),
  jobOpenFiles: optional(integer({ min: 16, max: 1_048_576 })),
  maxOutputBytes: optional(integer({ min: 0, max: Number.MAX_SAFE_INTEGER, unit: 'bytes' })),
  retention: optional(
    object({
      maxAgeMs: optional(integer({ min: 0, max: Number.MAX_SAFE_INTEGER, unit: 'ms' })),
      maxJobs: optional(integer({ min: 0, max: 10_000_000 })),
      maxOutputBytes: optional(integer({ min: 0, max: Number.MAX_SAFE_INTEGER, unit: 'bytes' })),
      maxRecordBytes: optional(integer({ min: 0, max: Number.MAX_SAFE_INTEGER, unit: 'bytes' })),
    }),
  ),
  limits: optional(object({ defaults: optional(jobLimitsSchema), max: optional(jobLimitsSchema) })),
  defaultTimeoutMs: optional(
    nullable(integer({ min: 1, max: Number.MAX_SAFE_INTEGER, unit: 'ms' })),
  ),
  maxTimeoutMs: optional(nullable(integer({ min: 1, max: Number.MAX_SAFE_INTEGER, unit: 'ms' }))),
  maxConnections: optional(integer({ min: 1, max: 65_536 })),
  maxRequestsPerConnection: optional(integer({ min: 1, max: 4096 })),
  logLevel: optional(oneOf(LOG_LEVELS)),
});

const NOBODY = 65_534;

const executorConfigSchema: Check<ExecutorConfig> = (value, field) => {
  const file = fileSchema(value, field);
  const config: ExecutorConfig = {
    ...EXECUTOR_DEFAULTS,
    ...file,
    retention: { ...EXECUTOR_DEFAULTS.retention, ...file.retention },
    limits: {
      defaults: file.limits?.defaults ?? EXECUTOR_DEFAULTS.limits.defaults,
      max: file.limits?.max ?? EXECUTOR_DEFAULTS.limits.max,
    },
  };
  const { first, count } = config.jobUids;
  if (first <= NOBODY && first + count > NOBODY) {
    throw invalid(
      'jobUids',
      `the range ${first}-${first + count - 1} contains ${NOBODY} (nobody, the API's user)`,
    );
  }
  if (first + count - 1 > 2 ** 32 - 2)
    throw invalid('jobUids.count', 'the range ends above the largest uid');
  if (config.stopGraceMs > config.maxStopGraceMs)
    throw invalid('stopGraceMs', `must be at most maxStopGraceMs (${config.maxStopGraceMs})`);
  for (const limit of NUMERIC_LIMIT_FIELDS) {
    const preset = config.limits.defaults[limit];
    const ceiling = config.limits.max[limit];
    if (preset !== undefined && ceiling !== undefined && preset > ceiling) {
      throw invalid(`limits.defaults.${limit}`, `must be at most limits.max.${limit} (${ceiling})`);
    }
  }
  if (
    config.defaultTimeoutMs !== null &&
    config.maxTimeoutMs !== null &&
    config.defaultTimeoutMs > config.maxTimeoutMs
  ) {
    throw invalid('defaultTimeoutMs', `must be at most maxTimeoutMs (${config.maxTimeoutMs})`);
  }
  return config;
};

/** Config from data (tests, or a file already read); throws ConfigError naming the key. */
export function parseExecutorConfig(
  raw: unknown,
  source = 'executor config',
): Readonly<ExecutorConfig> {
  return parseConfig(raw, executorConfigSchema, source);
}

export function loadExecutorConfig(path: string | undefined): Readonly<ExecutorConfig> {
  return path === undefined
    ? parseExecutorConfig({}, 'defaults')
    : readConfigFile(path, executorConfigSchema);
}
