// Pure cgroup v2 hosts: one hierarchy serves every controller. Jobs go below
// `<own>/<name>/`, so the executor delegates controllers down its own subtree first.
import { posix } from 'node:path';
import { errnoOf, type CgroupFs } from './cgroup-fs.ts';
import {
  describeLayout,
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
 * the executor first moves itself (its own pid only) into the leaf `<own>/<name>-executor`. Other
 * processes in the executor's cgroup would be left inside; that is an operator's setup error,
 * reported as such rather than worked around by moving processes that are not ours.
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
  // The root cgroup has no cgroup.type and may hold processes next to enabled controllers.
  if (await fs.exists(posix.join(own, 'cgroup.type'))) {
    const leaf = posix.join(own, `${layout.name}-executor`);
    await fs.mkdir(leaf);
    await fs.write(posix.join(leaf, 'cgroup.procs'), String(process.pid));
  }
  const enable = names.map((n) => `+${n}`).join(' ');
  try {
    await fs.write(posix.join(own, 'cgroup.subtree_control'), enable);
  } catch (error) {
    if (errnoOf(error) !== 'EBUSY') throw error;
    const others = (await fs.read(posix.join(own, 'cgroup.procs'))).trim().split(/\s+/);
    throw new Error(
      `cgroup: cannot enable "${enable}" in ${own}/cgroup.subtree_control because other ` +
        `processes share the executor's cgroup (pids ${others.join(' ')}). Run the executor in ` +
        `a cgroup of its own that is delegated to it (systemd: Delegate=yes).`,
    );
  }
  await fs.mkdir(parent);
  await fs.write(posix.join(parent, 'cgroup.subtree_control'), enable);
}
