// One job's cgroups across every hierarchy of the layout, for both drivers: creating them with
// their limits, killing what runs in them, reading usage and removing them.
import { posix } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { JobError } from '../../shared/errors.ts';
import type { JobLimits, JobUsage } from '../../shared/job.ts';
import type { BlockDevice, JobCgroup, JobCgroupInMaking } from './cgroup-driver.ts';
import {
  CgroupFsError,
  errnoOf,
  keyedValue,
  type CgroupFs,
  type FileWrite,
  type VersionedStat,
} from './cgroup-fs.ts';
import * as cpu from './cpu.ts';
import * as cpuset from './cpuset.ts';
import * as io from './io.ts';
import {
  checkJobId,
  homeOf,
  jobDir,
  parentDir,
  type CgroupLayout,
  type Controller,
  type Hierarchy,
} from './layout.ts';
import * as memory from './memory.ts';
import * as pids from './pids.ts';

const POLL_MS = 10;
/** How long killAll waits for the cgroup to empty before it reports the job as unkillable. */
export const KILL_TIMEOUT_MS = 5_000;
/** rmdir says EBUSY for a moment after the last process exits, until the kernel lets go. */
export const REMOVE_TIMEOUT_MS = 2_000;

/**
 * The controller each limit needs; asking for one the host lacks is the caller's error. null: no
 * cgroup file of its own (the size of /job is its filesystem's; in memory, its pages count under
 * memoryBytes).
 */
const LIMIT_CONTROLLER = {
  cpus: 'cpu',
  memoryBytes: 'memory',
  memoryHighBytes: 'memory',
  pids: 'pids',
  ioReadBps: 'io',
  ioWriteBps: 'io',
  ioReadIops: 'io',
  ioWriteIops: 'io',
  cpusetCpus: 'cpuset',
  storageBytes: null,
} as const satisfies Record<keyof Required<JobLimits>, string | null>;

/**
 * Creates the job's directory in every hierarchy and writes every limit into it. Values are
 * worked out (and validated) before the first mkdir, so a refused limit leaves nothing behind;
 * a write the kernel refuses removes what was created.
 */
export async function createJobCgroup(
  fs: CgroupFs,
  layout: CgroupLayout,
  jobId: string,
  limits: JobLimits,
  ioDevices: readonly BlockDevice[],
): Promise<JobCgroup> {
  const making = await beginJobCgroup(fs, layout, jobId, limits, ioDevices);
  try {
    await making.makeTheRest();
  } catch (error) {
    await making.removeMade();
    throw error;
  }
  return making.cgroup;
}

/**
 * Works out (and validates) every limit, then makes the job's cgroup v2 directory, the one its
 * init is born into, with its limits; the other hierarchies' directories are made by
 * `makeTheRest`, which the caller runs while the keeper clones the init (see JobCgroupInMaking).
 * A refused limit leaves nothing behind.
 */
export async function beginJobCgroup(
  fs: CgroupFs,
  layout: CgroupLayout,
  jobId: string,
  limits: JobLimits,
  ioDevices: readonly BlockDevice[],
): Promise<JobCgroupInMaking> {
  checkJobId(jobId);
  for (const [field, controller] of Object.entries(LIMIT_CONTROLLER)) {
    if (controller === null || limits[field as keyof JobLimits] === undefined) continue;
    if (homeOf(layout, controller) === undefined) {
      throw new JobError(
        'invalid-argument',
        `limits.${field}: this host has no ${controller} cgroup controller`,
      );
    }
  }
  // Hierarchies are independent of each other, so each one's directory is planned, made and
  // filled concurrently; within one hierarchy the writes keep their order (it matters).
  const plan = await Promise.all(
    layout.hierarchies.map(async (hierarchy) => ({
      hierarchy,
      dir: jobDir(layout, hierarchy, jobId),
      writes: await limitWrites(fs, layout, hierarchy, limits, ioDevices),
    })),
  );
  const created: string[] = [];
  const removeMade = async () => {
    await Promise.all(created.splice(0).map((dir) => removeCgroupDir(fs, dir)));
  };
  const make = async (part: typeof plan) => {
    const outcomes = await Promise.allSettled(
      part.map(async ({ dir, writes }) => {
        if (!(await fs.mkdir(dir))) throw new Error(`cgroup: ${dir} already exists`);
        created.push(dir);
        await writeLimits(fs, dir, writes, { fresh: true });
      }),
    );
    const failure = outcomes.find((outcome) => outcome.status === 'rejected');
    if (failure) throw failure.reason;
  };
  const isBirthplace = (entry: (typeof plan)[number]) => entry.hierarchy === layout.v2;
  try {
    await make(plan.filter(isBirthplace));
  } catch (error) {
    await removeMade();
    throw error;
  }
  return {
    cgroup: new LayoutJobCgroup(fs, layout, jobId),
    makeTheRest: () => make(plan.filter((entry) => !isBirthplace(entry))),
    removeMade,
  };
}

/**
 * Whether a file of a `<name>` parent exists, looked up once per file: the ones asked about come
 * with kernel features (swap accounting) that do not change while the system runs, and every job
 * start would otherwise ask again.
 */
const knownParentFiles = new WeakMap<CgroupFs, Map<string, Promise<boolean>>>();

function parentFileExists(fs: CgroupFs, path: string): Promise<boolean> {
  let known = knownParentFiles.get(fs);
  if (!known) knownParentFiles.set(fs, (known = new Map<string, Promise<boolean>>()));
  let exists = known.get(path);
  if (!exists) {
    exists = fs.exists(path);
    known.set(path, exists);
    // A failed look is not an answer: the next start asks again.
    exists.catch(() => known.delete(path));
  }
  return exists;
}

/** The writes for one hierarchy's job directory, from the controllers that hierarchy serves. */
async function limitWrites(
  fs: CgroupFs,
  layout: CgroupLayout,
  hierarchy: Hierarchy,
  limits: JobLimits,
  ioDevices: readonly BlockDevice[],
): Promise<FileWrite[]> {
  const parent = parentDir(layout, hierarchy);
  const inParent = (file: string) => posix.join(parent, file);
  const v1 = hierarchy.version === 1;
  const writes: FileWrite[] = [];
  for (const controller of hierarchy.serves) {
    switch (controller) {
      case 'cpu':
        writes.push(...(v1 ? cpu.v1Files(limits) : cpu.v2Files(limits)));
        break;
      case 'cpuacct':
        break;
      case 'memory':
        writes.push(
          ...(v1
            ? memory.v1Files(limits, {
                hasMemsw: await parentFileExists(fs, inParent(memory.V1_MEMSW_FILE)),
              })
            : memory.v2Files(limits, {
                hasSwapMax: await parentFileExists(fs, inParent(memory.V2_SWAP_FILE)),
              })),
        );
        break;
      case 'pids':
        writes.push(...(v1 ? pids.v1Files(limits) : pids.v2Files(limits)));
        break;
      case 'io':
        writes.push(...(v1 ? io.v1Files(limits, ioDevices) : io.v2Files(limits, ioDevices)));
        break;
      case 'cpuset':
        writes.push(
          ...(v1
            ? cpuset.v1Files(limits, {
                effectiveCpus: await fs.read(inParent(cpuset.V1_EFFECTIVE_CPUS)),
                effectiveMems: await fs.read(inParent(cpuset.V1_EFFECTIVE_MEMS)),
              })
            : limits.cpusetCpus === undefined
              ? []
              : cpuset.v2Files(limits, {
                  effectiveCpus: await fs.read(inParent(cpuset.V2_EFFECTIVE_CPUS)),
                })),
        );
        break;
    }
  }
  return writes;
}

/**
 * Writes in order (`fresh`: into a cgroup no process is in yet, see CgroupFs.write). A value
 * the kernel refuses (EINVAL, ERANGE, EBUSY) is the request's fault and named by its limit;
 * anything else is an internal failure.
 */
export async function writeLimits(
  fs: CgroupFs,
  dir: string,
  writes: readonly FileWrite[],
  { fresh = false } = {},
): Promise<void> {
  for (const [file, value, limit] of writes) {
    try {
      await fs.write(posix.join(dir, file), value, { fresh });
    } catch (error) {
      const errno = errnoOf(error);
      if (limit === undefined || !['EINVAL', 'ERANGE', 'EBUSY'].includes(errno ?? '')) throw error;
      throw new JobError(
        'invalid-argument',
        `limits.${limit}: the kernel refused ${file} = "${value}" (${errno})`,
      );
    }
  }
}

export class LayoutJobCgroup implements JobCgroup {
  readonly jobId: string;
  readonly joinDirs: readonly string[];
  readonly v2Dir: string | undefined;
  readonly #fs: CgroupFs;
  readonly #layout: CgroupLayout;

  /** Also used for leftovers found by prepare(), whose directories may exist in some hierarchies. */
  constructor(fs: CgroupFs, layout: CgroupLayout, jobId: string) {
    this.#fs = fs;
    this.#layout = layout;
    this.jobId = jobId;
    this.joinDirs = layout.hierarchies.map((h) => jobDir(layout, h, jobId));
    this.v2Dir = layout.v2 === undefined ? undefined : jobDir(layout, layout.v2, jobId);
  }

  #dir(hierarchy: Hierarchy): string {
    return jobDir(this.#layout, hierarchy, this.jobId);
  }

  #file(hierarchy: Hierarchy | undefined, file: string): string | undefined {
    return hierarchy === undefined ? undefined : posix.join(this.#dir(hierarchy), file);
  }

  async isPopulated(): Promise<boolean> {
    const events = this.#file(this.#layout.v2, 'cgroup.events');
    if (events !== undefined) {
      const text = await this.#fs.readOptional(events);
      if (text !== undefined) return keyedValue(text, 'populated') > 0;
    }
    return (await this.#processes()).length > 0;
  }

  /**
   * v2 (also the hybrid tracking cgroup): cgroup.kill kills every process in one step, then we
   * wait for `populated 0`. Then, and on v1-only hosts instead, the v1 sweep: SIGKILL every pid in
   * cgroup.procs until all are empty. Never waits on the freezer, which can stick in FREEZING.
   */
  async killAll(): Promise<void> {
    // The usual case, a job whose init has exited, in one read. With a v2 cgroup every process of
    // the job is in it (the init is cloned into it, and a job cannot move out), so `populated 0`
    // there means none is left in any hierarchy; without one, this reads every cgroup.procs.
    if (!(await this.isPopulated())) return;
    const deadline = Date.now() + KILL_TIMEOUT_MS;
    const kill = this.#file(this.#layout.v2, 'cgroup.kill');
    if (kill !== undefined && (await this.#fs.exists(kill))) {
      await this.#fs.write(kill, '1');
      while (await this.isPopulated()) {
        if (Date.now() > deadline) {
          throw new Error(
            `cgroup: job ${this.jobId} still populated ${KILL_TIMEOUT_MS} ms after cgroup.kill`,
          );
        }
        await sleep(POLL_MS);
      }
    }
    for (;;) {
      const remaining = await this.#processes();
      if (remaining.length === 0) return;
      if (Date.now() > deadline) {
        throw new Error(
          `cgroup: job ${this.jobId} still has processes ${remaining.join(' ')} after ${KILL_TIMEOUT_MS} ms`,
        );
      }
      // Each pid was in the job's cgroup.procs a moment ago; to name another process by now it
      // would have to exit and the pid space wrap around in between. v1 offers nothing tighter.
      for (const pid of remaining) killQuietly(pid);
      await sleep(POLL_MS);
    }
  }

  /** Every pid in the job's cgroup.procs in any hierarchy (a cgroup already gone has none). */
  async #processes(): Promise<number[]> {
    const found = new Set<number>();
    for (const hierarchy of this.#layout.hierarchies) {
      const procs = this.#file(hierarchy, 'cgroup.procs');
      const text = procs === undefined ? undefined : await this.#fs.readOptional(procs);
      for (const line of text?.split('\n') ?? []) {
        const pid = Number(line);
        if (line !== '' && Number.isSafeInteger(pid) && pid > 0) found.add(pid);
      }
    }
    return [...found];
  }

  async readUsage(): Promise<JobUsage> {
    const [ioBytes, cpuSeconds, memoryPeakBytes] = await Promise.all([
      this.#stat('io', io.USAGE_BYTES, { readBytes: 0, writeBytes: 0 }),
      this.#stat('cpuacct', cpu.USAGE_SECONDS, 0),
      this.#stat('memory', memory.PEAK_BYTES, 0),
    ]);
    return {
      cpuSeconds,
      memoryPeakBytes,
      ioReadBytes: ioBytes.readBytes,
      ioWriteBytes: ioBytes.writeBytes,
    };
  }

  async wasOomKilled(): Promise<boolean> {
    return this.#stat('memory', memory.OOM_KILLED, false);
  }

  /** A stat file of the hierarchy serving controller; `missing` when there is none. */
  async #stat<T>(controller: Controller, stat: VersionedStat<T>, missing: T): Promise<T> {
    const home = homeOf(this.#layout, controller);
    if (home === undefined) return missing;
    const { file, parse } = home.version === 1 ? stat.v1 : stat.v2;
    const text = await this.#fs.readOptional(posix.join(this.#dir(home), file));
    return text === undefined ? missing : parse(text);
  }

  async remove(): Promise<void> {
    for (const dir of this.joinDirs) await removeCgroupDir(this.#fs, dir);
  }
}

/** rmdir, retrying EBUSY until REMOVE_TIMEOUT_MS; a directory already gone is fine. */
export async function removeCgroupDir(fs: CgroupFs, dir: string): Promise<void> {
  const deadline = Date.now() + REMOVE_TIMEOUT_MS;
  for (;;) {
    try {
      await fs.rmdir(dir);
      return;
    } catch (error) {
      if (!(error instanceof CgroupFsError) || error.errno !== 'EBUSY' || Date.now() > deadline) {
        throw error;
      }
      await sleep(POLL_MS);
    }
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch (error) {
    if (errnoOf(error) !== 'ESRCH') throw error;
  }
}
