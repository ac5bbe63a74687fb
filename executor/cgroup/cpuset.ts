// cpuset: the CPUs a job may run on, in the kernel's list syntax ("0-1,3").
import { JobError } from '../../shared/errors.ts';
import type { JobLimits } from '../../shared/job.ts';
import type { FileWrite } from './cgroup-fs.ts';

/** Above the kernel's largest NR_CPUS (8192), so a typo cannot expand into a huge list. */
const MAX_CPU = 8191;
const CPU_LIST = /^\d+(-\d+)?(,\d+(-\d+)?)*$/;

/**
 * Parses "0-1,3" into sorted unique CPU numbers; "" (an empty kernel list) is []. Strict: no
 * spaces, no stride syntax; trim the newline off kernel text first.
 */
export function parseCpuList(text: string): number[] {
  if (text === '') return [];
  if (!CPU_LIST.test(text)) {
    throw new Error(
      `${JSON.stringify(text)} is not a CPU list like "0-1,3" (numbers and ranges, comma-separated)`,
    );
  }
  const cpus = new Set<number>();
  for (const item of text.split(',')) {
    const [first, last = first] = item.split('-').map(Number);
    if (first === undefined || last === undefined) continue;
    if (first > last) throw new Error(`range "${item}" runs backwards`);
    if (last > MAX_CPU) throw new Error(`CPU ${last} is above ${MAX_CPU}`);
    for (let cpu = first; cpu <= last; cpu += 1) cpus.add(cpu);
  }
  return [...cpus].sort((a, b) => a - b);
}

/** The shortest kernel list for sorted unique CPUs: [0, 1, 3] → "0-1,3". */
export function formatCpuList(cpus: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < cpus.length;) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === (cpus[j] ?? 0) + 1) j += 1;
    parts.push(i === j ? `${cpus[i]}` : `${cpus[i]}-${cpus[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/**
 * The job's CPU list in canonical form, or a JobError naming limits.cpusetCpus when it is
 * malformed, empty or names a CPU the executor's cgroup may not use (parentCpus, effective).
 */
export function validateCpusetCpus(requested: string, parentCpus: string): string {
  const fail = (rule: string) => new JobError('invalid-argument', `limits.cpusetCpus: ${rule}`);
  let cpus: number[];
  try {
    cpus = parseCpuList(requested);
  } catch (error) {
    throw fail((error as Error).message);
  }
  if (cpus.length === 0) throw fail('must name at least one CPU');
  const allowed = new Set(parseCpuList(parentCpus.trim()));
  const outside = cpus.filter((cpu) => !allowed.has(cpu));
  if (outside.length > 0) {
    throw fail(
      `CPU ${formatCpuList(outside)} is not available to jobs (available: "${parentCpus.trim()}")`,
    );
  }
  return formatCpuList(cpus);
}

/** What a cpuset cgroup's parent offers: its effective CPU and memory-node lists. */
export interface CpusetParent {
  effectiveCpus: string;
  effectiveMems: string;
}

export const V1_EFFECTIVE_CPUS = 'cpuset.effective_cpus';
export const V1_EFFECTIVE_MEMS = 'cpuset.effective_mems';
export const V2_EFFECTIVE_CPUS = 'cpuset.cpus.effective';

/**
 * v1 starts a new cpuset with no CPUs and no memory nodes, and refuses processes (ENOSPC) until
 * both are set; so a job always gets both, with the parent's CPUs when it asked for none.
 */
export function v1Files(limits: JobLimits, parent: CpusetParent): FileWrite[] {
  const cpus =
    limits.cpusetCpus === undefined
      ? parent.effectiveCpus.trim()
      : validateCpusetCpus(limits.cpusetCpus, parent.effectiveCpus);
  return [
    ['cpuset.cpus', cpus, 'cpusetCpus'],
    ['cpuset.mems', parent.effectiveMems.trim()],
  ];
}

/** The executor's own `<name>` parent on v1 needs the same two files before jobs go below it. */
export function v1ParentFiles(parent: CpusetParent): FileWrite[] {
  return [
    ['cpuset.cpus', parent.effectiveCpus.trim()],
    ['cpuset.mems', parent.effectiveMems.trim()],
  ];
}

/** v2 inherits the parent's CPUs and memory nodes when the files are left empty. */
export function v2Files(
  limits: JobLimits,
  parent: Pick<CpusetParent, 'effectiveCpus'>,
): FileWrite[] {
  if (limits.cpusetCpus === undefined) return [];
  const cpus = validateCpusetCpus(limits.cpusetCpus, parent.effectiveCpus);
  return [['cpuset.cpus', cpus, 'cpusetCpus']];
}
