// The one interface the job runtime sees. Implementations for cgroup v2, v1 and hybrid hosts are
// chosen by detect.ts; nothing outside executor/cgroup/ knows which one is in use.
import type { JobLimits, JobUsage } from '../../shared/job.ts';

/** A whole disk, as the kernel's io/blkio throttles name it. */
export interface BlockDevice {
  major: number;
  minor: number;
  /** Kernel name (vda, nvme0n1), for logs and messages only. */
  name: string;
}

export interface CgroupDriver {
  /** One line for the startup log: which controller is served from which hierarchy. */
  describe(): string;
  /**
   * Creates this executor's parent cgroup(s) below the executor's own cgroup and removes job
   * cgroups left behind by an earlier run (killing what still runs in them), except those of
   * `keep`: jobs whose keepers a restarted executor took over. Returns the job ids that were
   * swept. Idempotent.
   */
  prepare(keep?: ReadonlySet<string>): Promise<string[]>;
  /** The cgroup(s) of a job created by an earlier run of this executor, to take over. */
  existing(jobId: string): JobCgroup;
  /**
   * Creates the cgroup(s) for one job and writes every limit before any process enters.
   * Fails with a message naming the limit when the kernel refuses a value.
   */
  create(jobId: string, limits: JobLimits, ioDevices: readonly BlockDevice[]): Promise<JobCgroup>;
  /**
   * The same in two steps, for a start: first (here) the job's cgroup v2 directory with its
   * limits, the one its init is cloned into; then `makeTheRest`, the other hierarchies, made
   * while the init is being cloned. Every limit is checked before anything is made.
   */
  begin(
    jobId: string,
    limits: JobLimits,
    ioDevices: readonly BlockDevice[],
  ): Promise<JobCgroupInMaking>;
  /** Removes the parent cgroup(s) on shutdown; job cgroups must already be removed. */
  close(): Promise<void>;
}

export interface JobCgroup {
  readonly jobId: string;
  /**
   * Directories the job's init joins (moving itself, through their tasks files) before it does
   * anything else, so every process of the job is born inside the job's cgroups.
   */
  readonly joinDirs: readonly string[];
  /**
   * The job's directory in the cgroup v2 hierarchy, if there is one: the job's init is cloned
   * straight into it (CLONE_INTO_CGROUP) instead of joining it by a migration, which on v1 and
   * v2 alike waits for an RCU grace period (milliseconds per start).
   */
  readonly v2Dir: string | undefined;
  /** True while any process is in the job's cgroup. */
  isPopulated(): Promise<boolean>;
  /** Kills every process in the job's cgroup and waits (bounded) until it is empty. */
  killAll(): Promise<void>;
  /** Usage so far; read before remove(). */
  readUsage(): Promise<JobUsage>;
  /** True when the kernel's OOM killer killed a process of this job. */
  wasOomKilled(): Promise<boolean>;
  /** Removes the job's cgroup(s); retries while the kernel still reports them busy. */
  remove(): Promise<void>;
}

/** A job's cgroups half made (CgroupDriver.begin). */
export interface JobCgroupInMaking {
  /** All of the job's cgroups, by name: usable once `makeTheRest` has succeeded. */
  readonly cgroup: JobCgroup;
  /** Makes the job's directories in the other hierarchies and writes their limits. */
  makeTheRest(): Promise<void>;
  /**
   * Removes the directories made so far: after a failure, once nothing of the job is in them
   * (its init, cloned into the first, has ended).
   */
  removeMade(): Promise<void>;
}
