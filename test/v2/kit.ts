// Shared by the cgroup v2 suite. These tests run inside the test VM (scripts/vm/run-v2-suite.ts):
// a cgroup-v2-only kernel where each test file starts alone in a non-root cgroup with every
// controller delegated to it, as a systemd service with Delegate=yes does. They drive the real
// executor code (detectCgroupDriver, JobRuntime, the helper binary) and read what the kernel
// reports from the cgroup files.
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type {
  BlockDevice,
  CgroupDriver,
  JobCgroup,
  JobCgroupInMaking,
} from '../../executor/cgroup/cgroup-driver.ts';
import { detectCgroupDriver } from '../../executor/cgroup/detect.ts';
import { parseExecutorConfig, type ExecutorConfig } from '../../executor/config.ts';
import { JobRuntime } from '../../executor/runtime/job-runtime.ts';
import type { JobLimits, JobUsage } from '../../shared/job.ts';
import { createLogger } from '../../shared/logger.ts';
import { TEST_PREFIX } from '../root/executor-kit.ts';

export const CGROUP_ROOT = '/sys/fs/cgroup';
/** What the executor enables for its jobs, as cgroup.controllers lists them (sorted). */
export const JOB_CONTROLLERS = ['cpu', 'cpuset', 'io', 'memory', 'pids'];
export const MiB = 1024 * 1024;

/** The cgroup this process is in now, as a directory. */
export function ownCgroupDir(pid: number | 'self' = 'self'): string {
  const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim();
  if (!line.startsWith('0::/') || line.includes('\n')) {
    throw new Error(`not a cgroup v2 only membership: ${JSON.stringify(line)}`);
  }
  return join(CGROUP_ROOT, line.slice(3));
}

/** A cgroup file's text, trimmed. */
export function cgroupFile(dir: string, file: string): string {
  return readFileSync(join(dir, file), 'utf8').trim();
}

/** Space-separated kernel lists (cgroup.controllers, cgroup.subtree_control), sorted. */
export function words(text: string): string[] {
  return text.split(/\s+/).filter(Boolean).sort();
}

/** `key value` lines (memory.events, cpu.stat, cgroup.events) as numbers. */
export function keyed(text: string): Record<string, number> {
  const values: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key !== undefined && value !== undefined) values[key] = Number(value);
  }
  return values;
}

/**
 * Fails unless this is the test VM as the harness sets it up: root, cgroup2 the only cgroup
 * filesystem, this process in a non-root cgroup that offers every job controller. Returns that
 * cgroup, the one "delegated" to this test file.
 */
export function requireV2Vm(): string {
  const hint =
    'the v2 suite runs in the cgroup v2 VM: sudo node --import tsx scripts/run-tests.ts v2';
  if (process.getuid?.() !== 0) throw new Error(`needs root; ${hint}`);
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  const v1 = mounts.filter((line) => / - cgroup /.test(line));
  const v2 = mounts.filter((line) => / - cgroup2 /.test(line));
  if (v1.length > 0 || !v2.some((line) => line.split(' ')[4] === CGROUP_ROOT)) {
    throw new Error(`this host is not cgroup v2 only; ${hint}`);
  }
  const own = ownCgroupDir();
  if (own === CGROUP_ROOT) throw new Error(`this process is in the root cgroup; ${hint}`);
  const offered = words(cgroupFile(own, 'cgroup.controllers'));
  const missing = JOB_CONTROLLERS.filter((c) => !offered.includes(c));
  if (missing.length > 0) throw new Error(`${own} lacks ${missing.join(' ')}; ${hint}`);
  return own;
}

/** uvu reports an error thrown in a before hook only as "0 / N": print it too. */
export function logged<A extends unknown[]>(
  hook: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
  return async (...args) => {
    try {
      await hook(...args);
    } catch (error) {
      console.error(error);
      throw error;
    }
  };
}

/** The files a test may want to see once a job has ended. */
const SNAPSHOT_FILES = [
  'cgroup.controllers',
  'cgroup.events',
  'cpu.max',
  'cpu.stat',
  'cpuset.cpus',
  'cpuset.cpus.effective',
  'io.max',
  'io.stat',
  'memory.events',
  'memory.max',
  'memory.oom.group',
  'memory.peak',
  'memory.swap.max',
  'pids.events',
  'pids.max',
];

export interface JobTrace {
  /** The job's cgroup directory. */
  dir: string;
  /** How often the runtime asked the driver to kill everything in the job's cgroup. */
  killAlls: number;
  /** SNAPSHOT_FILES as they were just before the runtime removed the cgroup (missing: absent). */
  final: Record<string, string>;
}

/**
 * The real driver, watched: for each job it notes the cgroup directory and the killAll calls, and
 * reads the cgroup's files just before remove(). The runtime removes a job's cgroup as soon as
 * the job ends, and the tests want to see what the kernel counted there.
 */
export class WatchedDriver implements CgroupDriver {
  readonly traces = new Map<string, JobTrace>();
  readonly #inner: CgroupDriver;

  constructor(inner: CgroupDriver) {
    this.#inner = inner;
  }

  describe(): string {
    return this.#inner.describe();
  }

  prepare(keep?: ReadonlySet<string>): Promise<string[]> {
    return this.#inner.prepare(keep);
  }

  existing(jobId: string): JobCgroup {
    return this.#inner.existing(jobId);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  async create(jobId: string, limits: JobLimits, devices: readonly BlockDevice[]) {
    return this.#watched(jobId, await this.#inner.create(jobId, limits, devices));
  }

  async begin(
    jobId: string,
    limits: JobLimits,
    devices: readonly BlockDevice[],
  ): Promise<JobCgroupInMaking> {
    const making = await this.#inner.begin(jobId, limits, devices);
    return {
      cgroup: this.#watched(jobId, making.cgroup),
      makeTheRest: () => making.makeTheRest(),
      removeMade: () => making.removeMade(),
    };
  }

  #watched(jobId: string, job: JobCgroup): JobCgroup {
    const [dir = ''] = job.joinDirs;
    const trace: JobTrace = { dir, killAlls: 0, final: {} };
    this.traces.set(jobId, trace);
    return {
      jobId,
      joinDirs: job.joinDirs,
      v2Dir: job.v2Dir,
      isPopulated: () => job.isPopulated(),
      killAll: () => {
        trace.killAlls += 1;
        return job.killAll();
      },
      readUsage: (): Promise<JobUsage> => job.readUsage(),
      wasOomKilled: () => job.wasOomKilled(),
      remove: async () => {
        for (const file of SNAPSHOT_FILES) {
          const text = await readFile(join(dir, file), 'utf8').catch(() => undefined);
          if (text !== undefined) trace.final[file] = text.trim();
        }
        await job.remove();
      },
    };
  }

  trace(jobId: string): JobTrace {
    const trace = this.traces.get(jobId);
    if (trace === undefined) throw new Error(`no cgroup was created for job ${jobId}`);
    return trace;
  }
}

export interface V2Runtime {
  runtime: JobRuntime;
  driver: WatchedDriver;
  config: Readonly<ExecutorConfig>;
  close(): Promise<void>;
}

/**
 * A real runtime on the detected (v2) driver, watched, with a state directory under /var/tmp,
 * which in the VM is the virtio disk: the jobs' /job is on a real block device for io.max.
 */
export async function openV2Runtime(): Promise<V2Runtime> {
  const stateDir = await mkdtemp(`/var/tmp/${TEST_PREFIX}`);
  const cgroupName = `${TEST_PREFIX}${randomBytes(4).toString('hex')}`;
  // No socket: the runtime is driven in-process.
  const config = parseExecutorConfig({ stateDir, cgroupName, logLevel: 'error' });
  let driver: WatchedDriver;
  let runtime: JobRuntime;
  try {
    driver = new WatchedDriver(await detectCgroupDriver({ name: cgroupName }));
    runtime = await JobRuntime.open({
      config,
      cgroups: driver,
      logger: createLogger('v2-test-executor', config.logLevel),
    });
  } catch (error) {
    await rm(stateDir, { recursive: true, force: true });
    throw error;
  }
  return {
    runtime,
    driver,
    config,
    async close() {
      await runtime.drain(200);
      await runtime.close();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

/** The pids of /proc whose files (read with `read`) pass `test`; a process gone meanwhile fails. */
export function pidsWhere(test: (read: (file: string) => string) => boolean): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        return test((file) => readFileSync(`/proc/${pid}/${file}`, 'utf8'));
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** The pids whose command line holds marker (the tests put one in every process they start). */
export function pidsWithMarker(marker: string): number[] {
  return pidsWhere((read) => read('cmdline').includes(marker));
}
