// Where each controller lives on this host, as worked out once by detect.ts, and where the
// executor's cgroups go in each hierarchy: `<own cgroup>/<name>/<jobId>`.
import { posix } from 'node:path';
import { JOB_ID } from '../../shared/job-id.ts';

/** Our uses of cgroups; `cpuacct` is the CPU-time counter (v2: cpu.stat, always there). */
export type Controller = 'cpu' | 'cpuacct' | 'memory' | 'pids' | 'io' | 'cpuset';
export const CONTROLLERS: readonly Controller[] = [
  'cpu',
  'cpuacct',
  'memory',
  'pids',
  'io',
  'cpuset',
];

/** Each of our controllers as v1 names its hierarchy's controller and as v2 lists it. */
export const KERNEL_NAMES: Record<Controller, { v1: string; v2: string | undefined }> = {
  cpu: { v1: 'cpu', v2: 'cpu' },
  // v2 has no cpuacct: every v2 cgroup counts CPU time in cpu.stat.
  cpuacct: { v1: 'cpuacct', v2: undefined },
  memory: { v1: 'memory', v2: 'memory' },
  pids: { v1: 'pids', v2: 'pids' },
  io: { v1: 'blkio', v2: 'io' },
  cpuset: { v1: 'cpuset', v2: 'cpuset' },
};

export interface Hierarchy {
  version: 1 | 2;
  mountPoint: string;
  /** The executor's own cgroup in this hierarchy, as an absolute directory. */
  ownDir: string;
  /** Which of our controllers this hierarchy serves; a v2 hierarchy may serve none (tracking). */
  serves: Controller[];
}

export interface CgroupLayout {
  /** The executor instance's directory below its own cgroup in every hierarchy. */
  name: string;
  /** Every hierarchy a job joins; each job has one directory in each. */
  hierarchies: Hierarchy[];
  /**
   * The v2 hierarchy when cgroup2 is mounted: it gives cgroup.kill, `populated` and CPU time
   * even when it serves no controller (hybrid hosts).
   */
  v2: Hierarchy | undefined;
  /**
   * True when the v2 jobs' cgroup is not the executor's own but one delegated to hold jobs apart
   * from it (config jobsCgroup): the executor neither lives nor moves there.
   */
  v2Apart: boolean;
}

/** The instance name becomes a directory name in every hierarchy. */
const INSTANCE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function checkInstanceName(name: string): void {
  if (!INSTANCE_NAME.test(name)) {
    throw new Error(
      `cgroup: instance name ${JSON.stringify(name)} must be 1-64 of A-Z a-z 0-9 _ . - (not starting with . _ -)`,
    );
  }
}

export function checkJobId(jobId: string): void {
  if (!JOB_ID.test(jobId)) {
    throw new Error(`cgroup: job id ${JSON.stringify(jobId)} is not 32 lowercase hex characters`);
  }
}

/**
 * The v2 leaf the executor moves itself into (v2-driver.ts): `<own>/<name>-executor`. A process
 * found there is an executor of this instance already moved, so its own cgroup is the parent.
 */
export function executorLeafName(name: string): string {
  return `${name}-executor`;
}

export function parentDir(layout: CgroupLayout, hierarchy: Hierarchy): string {
  return posix.join(hierarchy.ownDir, layout.name);
}

export function jobDir(layout: CgroupLayout, hierarchy: Hierarchy, jobId: string): string {
  checkJobId(jobId);
  return posix.join(hierarchy.ownDir, layout.name, jobId);
}

export function homeOf(layout: CgroupLayout, controller: Controller): Hierarchy | undefined {
  return layout.hierarchies.find((h) => h.serves.includes(controller));
}

/** For the startup log: `memory=v1:/sys/fs/cgroup/memory/x …`. */
export function describeLayout(layout: CgroupLayout, kind: string): string {
  const homes = CONTROLLERS.map((c) => {
    const home = homeOf(layout, c);
    return `${c}=${home ? `v${home.version}:${home.ownDir}` : 'none'}`;
  });
  const tracking = layout.v2 ? `, tracking=v2:${layout.v2.ownDir}` : '';
  return `cgroup ${kind}: ${homes.join(' ')}${tracking}, jobs under <own>/${layout.name}/<jobId>`;
}
