// The job model both processes share: what a client asks for (JobSpec) and what the executor
// records (JobRecord). Plain data only; validation lives in job-spec-validation.ts.

/**
 * Resource limits. Every field is optional in a request; the executor fills absent fields from
 * its configured defaults, and where there is no default, from its configured maximum, so the
 * limits recorded on a job are the ones that were really applied.
 */
export interface JobLimits {
  /** CPU time as a fraction of cores: 0.5 = half of one core, 2 = two full cores. */
  cpus?: number;
  /** Hard memory ceiling in bytes; swap is disabled for jobs. Exceeding it ends in oom-killed. */
  memoryBytes?: number;
  /** Soft ceiling in bytes: above it the job is throttled and reclaimed (v2 memory.high). */
  memoryHighBytes?: number;
  /** Maximum number of processes and threads of the job itself. */
  pids?: number;
  /** Block IO throttles on the disks behind the job's filesystem, per second. */
  ioReadBps?: number;
  ioWriteBps?: number;
  ioReadIops?: number;
  ioWriteIops?: number;
  /** CPUs the job may run on, in the kernel's list syntax: "0-1,3". */
  cpusetCpus?: string;
  /**
   * Size cap of the job's own filesystem at /job; a job that fills it gets ENOSPC. Its inode
   * cap follows from it (storageInodes). In memory, at most memoryBytes: its pages count there.
   */
  storageBytes?: number;
}

export const NUMERIC_LIMIT_FIELDS = [
  'cpus',
  'memoryBytes',
  'memoryHighBytes',
  'pids',
  'ioReadBps',
  'ioWriteBps',
  'ioReadIops',
  'ioWriteIops',
  'storageBytes',
] as const satisfies readonly (keyof JobLimits)[];
export type NumericLimitField = (typeof NUMERIC_LIMIT_FIELDS)[number];

/**
 * What backs a job's /job: `memory`, a tmpfs charged to the job's memory limit (the default);
 * `disk`, an ext4 filesystem in an image file on the executor's state disk, its space reserved
 * when the job starts. Either is discarded whole when the job ends.
 */
export type StorageKind = 'memory' | 'disk';
export const STORAGE_KINDS: readonly StorageKind[] = ['memory', 'disk'];

/** One inode per this many bytes of storage: every file can have at least one page. */
export const STORAGE_BYTES_PER_INODE = 4096;

/** The inode cap of a job's filesystem, from its size cap. */
export function storageInodes(storageBytes: number): number {
  return Math.ceil(storageBytes / STORAGE_BYTES_PER_INODE);
}

/** What a client asks the executor to run. argv is executed directly, never through a shell. */
export interface JobSpec {
  argv: string[];
  env?: Record<string, string>;
  /** Absolute path inside the job's view; defaults to the job's writable directory. */
  workingDir?: string;
  limits?: JobLimits;
  /** What backs /job; memory when not asked. */
  storageKind?: StorageKind;
  /** Wall-clock limit in milliseconds; the job is stopped (reason timed-out) when it passes. */
  timeoutMs?: number;
}

export type JobState = 'RUNNING' | 'COMPLETED' | 'FAILED' | 'STOPPED';

export type EndReason =
  | 'exited'
  | 'killed-by-signal'
  | 'oom-killed'
  | 'timed-out'
  | 'stopped'
  | 'start-failed'
  | 'executor-restarted';

export interface JobUsage {
  cpuSeconds: number;
  memoryPeakBytes: number;
  ioReadBytes: number;
  ioWriteBytes: number;
}

/** The executor's record of one job, as returned by get/list and persisted across restarts. */
export interface JobRecord {
  id: string;
  /** The identity the caller named (the API passes the client certificate's CN). */
  owner: string;
  argv: string[];
  /** Names only: values may be secrets and are never stored or returned. */
  envNames: string[];
  workingDir: string;
  limits: JobLimits;
  /** What backed /job (absent in records from before storage kinds). */
  storageKind?: StorageKind;
  timeoutMs: number | null;
  state: JobState;
  endReason: EndReason | null;
  exitCode: number | null;
  /** Signal name (SIGKILL, …) when the job's main process was killed by a signal. */
  signal: string | null;
  /** Why the job failed to start, e.g. `exec "foo": no such file or directory`. */
  error: string | null;
  /** Milliseconds since the epoch. */
  createdAt: number;
  endedAt: number | null;
  usage: JobUsage | null;
  outputBytes: number;
  outputTruncated: boolean;
}

export const JOB_STATES: readonly JobState[] = ['RUNNING', 'COMPLETED', 'FAILED', 'STOPPED'];
