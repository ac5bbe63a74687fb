// Pure cgroup v2 hosts: one hierarchy serves every controller. Jobs go below
// `<own>/<name>/`, so the executor delegates controllers down its own subtree first.
import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { errnoOf, type CgroupFs } from './cgroup-fs.ts';
import {
  describeLayout,
  executorLeafName,
  KERNEL_NAMES,
  parentDir,
  type CgroupLayout,
  type Hierarchy,
} from './layout.ts';
import { LayoutDriver } from './layout-driver.ts';

/**
 * close() removes `<own>/<name>` but not the leaf `<own>/<name>-executor`, which still holds the
 * executor; the next start moves into it again, and the service manager removes it with the
 * service's cgroup.
 */
export class V2CgroupDriver extends LayoutDriver {
  describe(): string {
    return describeLayout(this.layout, 'v2');
  }

  protected async prepareParents(): Promise<void> {
    const v2 = this.layout.v2;
    if (v2 === undefined) throw new Error('cgroup: the v2 driver needs a cgroup2 hierarchy');
    await delegateV2Controllers(this.fs, this.layout, v2);
  }
}

/**
 * Makes `<own>/<name>` a parent whose children get the controllers v2 serves us. v2 lets a
 * non-root cgroup hand controllers to its children only while it holds no processes itself, so
 * the executor first moves itself into the leaf `<own>/<name>-executor`, together with any
 * processes it started before (its descendants).
 * Other processes in the executor's cgroup would be left inside; that is an operator's setup
 * error, reported as such rather than worked around by moving processes that are not ours.
 */
export async function delegateV2Controllers(
  fs: CgroupFs,
  layout: CgroupLayout,
  v2: Hierarchy,
): Promise<void> {
  const parent = parentDir(layout, v2);
  const names = v2.serves.flatMap((c) => KERNEL_NAMES[c].v2 ?? []);
  if (names.length === 0) {
    await fs.mkdir(parent);
    return;
  }
  const own = v2.ownDir;
  const ownProcs = posix.join(own, 'cgroup.procs');
  // The root cgroup has no cgroup.type and may hold processes next to enabled controllers. A
  // jobs' cgroup apart from the executor's holds none of its processes: its unit's own process
  // waits in a leaf of it.
  if (!layout.v2Apart && (await fs.exists(posix.join(own, 'cgroup.type')))) {
    const leafProcs = posix.join(own, executorLeafName(layout.name), 'cgroup.procs');
    await fs.mkdir(posix.dirname(leafProcs));
    await fs.write(leafProcs, String(process.pid));
    for (const pid of await descendantsOf(process.pid, pidsIn(await fs.read(ownProcs)))) {
      try {
        await fs.write(leafProcs, String(pid));
      } catch (error) {
        if (errnoOf(error) !== 'ESRCH') throw error; // it exited meanwhile
      }
    }
  }
  const enable = names.map((n) => `+${n}`).join(' ');
  try {
    await fs.write(posix.join(own, 'cgroup.subtree_control'), enable);
  } catch (error) {
    if (errnoOf(error) !== 'EBUSY') throw error;
    const others = pidsIn(await fs.read(ownProcs));
    throw new Error(
      layout.v2Apart
        ? `cgroup: cannot enable "${enable}" in ${own}/cgroup.subtree_control: processes ` +
            `${others.join(' ')} are in that cgroup itself; the unit that holds jobsCgroup must ` +
            `keep its own process in a leaf below it`
        : `cgroup: cannot enable "${enable}" in ${own}/cgroup.subtree_control because other ` +
            `processes share the executor's cgroup (pids ${others.join(' ')}). Run the executor in ` +
            `a cgroup of its own that is delegated to it (systemd: Delegate=yes).`,
    );
  }
  await fs.mkdir(parent);
  await fs.write(posix.join(parent, 'cgroup.subtree_control'), enable);
}

function pidsIn(cgroupProcs: string): number[] {
  return cgroupProcs
    .split('\n')
    .filter((line) => /^\d+$/.test(line))
    .map(Number);
}

/**
 * The candidates whose chain of parents (through other candidates) reaches ancestor, from
 * /proc/<pid>/stat. A candidate that exits meanwhile is left out.
 */
export async function descendantsOf(
  ancestor: number,
  candidates: readonly number[],
  procRoot = '/proc',
): Promise<number[]> {
  const parents = new Map<number, number>();
  for (const pid of candidates) {
    const stat = await readFile(posix.join(procRoot, String(pid), 'stat'), 'utf8').catch(() => '');
    // `pid (comm) state ppid …`; comm may hold spaces and parentheses, so read after the last ')'.
    const [, ppid] = stat
      .slice(stat.lastIndexOf(')') + 1)
      .trim()
      .split(' ')
      .map(Number);
    if (ppid !== undefined && Number.isSafeInteger(ppid)) parents.set(pid, ppid);
  }
  const isDescendant = (pid: number): boolean => {
    const seen = new Set<number>();
    for (let at = parents.get(pid); at !== undefined && !seen.has(at); at = parents.get(at)) {
      if (at === ancestor) return true;
      seen.add(at);
    }
    return false;
  };
  return candidates.filter((pid) => pid !== ancestor && isDescendant(pid));
}
