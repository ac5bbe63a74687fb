// Works out once, at executor start, which hierarchy serves each controller and where the
// executor's own cgroup is in each, and picks the driver. Reads /proc/self/mountinfo and
// /proc/self/cgroup; both roots are injectable so tests can feed fixture text.
import { readFile, stat } from 'node:fs/promises';
import { posix } from 'node:path';
import type { CgroupDriver } from './cgroup-driver.ts';
import { CgroupFs } from './cgroup-fs.ts';
import {
  checkInstanceName,
  CONTROLLERS,
  executorLeafName,
  KERNEL_NAMES,
  type CgroupLayout,
  type Controller,
  type Hierarchy,
} from './layout.ts';
import { V1CgroupDriver } from './v1-driver.ts';
import { V2CgroupDriver } from './v2-driver.ts';

export interface DetectOptions {
  /**
   * This executor instance's directory below its own cgroup in every hierarchy: "jobworker" in
   * production, "jobworker-test-<random>" in tests.
   */
  name: string;
  /** Where procfs is mounted; default /proc. */
  procRoot?: string;
  /** Prefix for the mount points mountinfo names; default none (tests: a fixture tree). */
  fsRoot?: string;
  /**
   * On cgroup v2, the cgroup (as /proc/self/cgroup names one) to make job cgroups below instead
   * of the executor's own: one delegated for jobs and never restarted (config jobsCgroup).
   */
  jobsCgroup?: string | null;
}

export async function detectCgroupDriver(options: DetectOptions): Promise<CgroupDriver> {
  checkInstanceName(options.name);
  const procRoot = options.procRoot ?? '/proc';
  const found = findHierarchies(
    await readFile(posix.join(procRoot, 'self/mountinfo'), 'utf8'),
    await readFile(posix.join(procRoot, 'self/cgroup'), 'utf8'),
    options.fsRoot ?? '',
  );
  // Only v2 forbids processes beside controllers enabled for children: on a v1-only host jobs
  // stay below the executor's own cgroups, which restarts do not disturb.
  const apart =
    options.jobsCgroup !== undefined && options.jobsCgroup !== null && found.v2 !== undefined;
  found.v2 = apart
    ? await apartFrom(found.v2, options.jobsCgroup ?? '')
    : outOfExecutorLeaf(found.v2, options.name);
  let v2Controllers: string[] = [];
  if (found.v2 !== undefined) {
    const fs = new CgroupFs([found.v2.ownDir]);
    const text = await fs.read(posix.join(found.v2.ownDir, 'cgroup.controllers'));
    v2Controllers = text.trim().split(/\s+/).filter(Boolean);
  }
  const layout = { ...planLayout(found, v2Controllers, options.name), v2Apart: apart };
  if (layout.hierarchies.length === 0) {
    throw new Error(
      'cgroup: no cgroup hierarchy is mounted where the executor can reach its own cgroup',
    );
  }
  const pureV2 = layout.hierarchies.every((h) => h.version === 2);
  return pureV2 ? new V2CgroupDriver(layout) : new V1CgroupDriver(layout);
}

/** The v2 hierarchy with jobsCgroup as the jobs' own cgroup; it must exist (its unit runs). */
async function apartFrom(
  v2: FoundHierarchy | undefined,
  jobsCgroup: string,
): Promise<FoundHierarchy> {
  if (v2 === undefined) throw new Error('jobsCgroup: no cgroup v2 hierarchy');
  const ownDir = posix.join(v2.mountPoint, jobsCgroup);
  const exists = await stat(ownDir).then(
    (info) => info.isDirectory(),
    () => false,
  );
  if (!exists)
    throw new Error(
      `jobsCgroup: ${jobsCgroup} is not a cgroup (${ownDir}); is the unit that holds it running?`,
    );
  return { ...v2, ownDir };
}

/**
 * A process already in this instance's v2 leaf (`<own>/<name>-executor`, where the driver moves
 * the executor) is an executor detecting again, or one restarted in place: its own cgroup is the
 * leaf's parent, so that its jobs, leftovers and delegation stay where they were.
 */
export function outOfExecutorLeaf(
  v2: FoundHierarchy | undefined,
  name: string,
): FoundHierarchy | undefined {
  if (v2 === undefined || v2.ownDir === v2.mountPoint) return v2;
  if (posix.basename(v2.ownDir) !== executorLeafName(name)) return v2;
  return { ...v2, ownDir: posix.dirname(v2.ownDir) };
}

export interface MountEntry {
  /** The directory in the hierarchy that is mounted (not always the hierarchy's root). */
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

/** mountinfo(5): `id parent maj:min root mountpoint options [optional…] - fstype source superopts`. */
export function parseMountinfo(text: string): MountEntry[] {
  const mounts: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(' ');
    const dash = fields.indexOf('-', 6);
    const [root, mountPoint] = [fields[3], fields[4]];
    const [fsType, , superOptions] = fields.slice(dash + 1);
    if (dash < 0 || root === undefined || mountPoint === undefined || fsType === undefined)
      continue;
    mounts.push({
      root: unescapeMountPath(root),
      mountPoint: unescapeMountPath(mountPoint),
      fsType,
      superOptions: superOptions?.split(',') ?? [],
    });
  }
  return mounts;
}

/** mountinfo escapes space, tab, newline and backslash as octal: `\040`. */
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, octal: string) =>
    String.fromCharCode(parseInt(octal, 8)),
  );
}

export interface CgroupMembership {
  hierarchyId: number;
  /** v1: the hierarchy's controllers (`cpu,cpuacct`, `name=systemd`); v2: none. */
  controllers: string[];
  path: string;
}

/** /proc/self/cgroup: `4:memory:/process_api/x` for v1, `0::/path` for v2. */
export function parseProcCgroup(text: string): CgroupMembership[] {
  const memberships: CgroupMembership[] = [];
  for (const line of text.split('\n')) {
    const match = /^(\d+):([^:]*):(\/.*)$/.exec(line.trim());
    if (match === null) continue;
    const [, id = '', controllers = '', path = ''] = match;
    memberships.push({
      hierarchyId: Number(id),
      controllers: controllers === '' ? [] : controllers.split(','),
      path,
    });
  }
  return memberships;
}

export interface FoundHierarchy {
  version: 1 | 2;
  mountPoint: string;
  ownDir: string;
  /** v1: the kernel's controller names for the hierarchy; v2: empty (see cgroup.controllers). */
  controllers: string[];
}

/**
 * Pairs every cgroup mount with the executor's membership in that hierarchy. A hierarchy whose
 * mount does not contain the executor's cgroup (another subtree is mounted, or the path leaves the
 * cgroup namespace with `..`) is unusable and left out.
 */
export function findHierarchies(
  mountinfo: string,
  procCgroup: string,
  fsRoot = '',
): { v1: FoundHierarchy[]; v2: FoundHierarchy | undefined } {
  const memberships = parseProcCgroup(procCgroup);
  const v1: FoundHierarchy[] = [];
  let v2: FoundHierarchy | undefined;
  for (const mount of parseMountinfo(mountinfo)) {
    if (mount.fsType === 'cgroup2') {
      const member = memberships.find((m) => m.hierarchyId === 0);
      const ownDir = member && ownDirIn(mount, member.path, fsRoot);
      if (v2 === undefined && ownDir !== undefined) {
        v2 = { version: 2, mountPoint: fsRoot + mount.mountPoint, ownDir, controllers: [] };
      }
    } else if (mount.fsType === 'cgroup') {
      const member = memberships.find(
        (m) =>
          m.hierarchyId !== 0 &&
          m.controllers.length > 0 &&
          m.controllers.every((c) => mount.superOptions.includes(c)),
      );
      const ownDir = member && ownDirIn(mount, member.path, fsRoot);
      const seen = v1.some((h) => h.controllers.join() === member?.controllers.join());
      if (member !== undefined && ownDir !== undefined && !seen) {
        v1.push({
          version: 1,
          mountPoint: fsRoot + mount.mountPoint,
          ownDir,
          controllers: member.controllers,
        });
      }
    }
  }
  return { v1, v2 };
}

function ownDirIn(mount: MountEntry, cgroupPath: string, fsRoot: string): string | undefined {
  if (cgroupPath.split('/').some((s) => s === '..' || s === '.')) return undefined;
  const root = mount.root === '/' ? '' : mount.root;
  if (cgroupPath !== root && !cgroupPath.startsWith(`${root}/`)) return undefined;
  const relative = cgroupPath.slice(root.length);
  const base = fsRoot + mount.mountPoint;
  return relative === '' || relative === '/' ? base : posix.join(base, relative);
}

/**
 * For each controller: v2 when the executor's v2 cgroup lists it in cgroup.controllers, else the
 * v1 hierarchy that carries it, else none. A cgroup2 mount always joins the layout: even with no
 * controller it gives each job cgroup.kill, `populated` and CPU time.
 */
export function planLayout(
  found: { v1: readonly FoundHierarchy[]; v2: FoundHierarchy | undefined },
  v2Controllers: readonly string[],
  name: string,
): CgroupLayout {
  const hierarchies = new Map<FoundHierarchy, Hierarchy>();
  const serve = (from: FoundHierarchy, controller: Controller) => {
    const hierarchy = hierarchies.get(from) ?? {
      version: from.version,
      mountPoint: from.mountPoint,
      ownDir: from.ownDir,
      serves: [],
    };
    hierarchy.serves.push(controller);
    hierarchies.set(from, hierarchy);
  };
  const { v2 } = found;
  for (const controller of CONTROLLERS) {
    const names = KERNEL_NAMES[controller];
    const inV2 = names.v2 === undefined || v2Controllers.includes(names.v2);
    const v1Home = found.v1.find((h) => h.controllers.includes(names.v1));
    if (v2 !== undefined && inV2) serve(v2, controller);
    else if (v1Home !== undefined) serve(v1Home, controller);
  }
  const v1Hierarchies = found.v1.flatMap((h) => hierarchies.get(h) ?? []);
  const v2Hierarchy =
    v2 === undefined
      ? undefined
      : (hierarchies.get(v2) ?? {
          version: 2 as const,
          mountPoint: v2.mountPoint,
          ownDir: v2.ownDir,
          serves: [],
        });
  return {
    name,
    hierarchies: v2Hierarchy === undefined ? v1Hierarchies : [...v1Hierarchies, v2Hierarchy],
    v2: v2Hierarchy,
    v2Apart: false,
  };
}
