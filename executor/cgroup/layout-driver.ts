// What the v1 and v2 drivers share: everything but how the `<name>` parents are made ready.
import type { JobLimits } from '../../shared/job.ts';
import type { BlockDevice, CgroupDriver, JobCgroup, JobCgroupInMaking } from './cgroup-driver.ts';
import { CgroupFs, errnoOf } from './cgroup-fs.ts';
import { beginJobCgroup, createJobCgroup, LayoutJobCgroup, removeCgroupDir } from './job-cgroup.ts';
import { JOB_ID } from '../../shared/job-id.ts';
import { parentDir, type CgroupLayout } from './layout.ts';

export abstract class LayoutDriver implements CgroupDriver {
  protected readonly layout: CgroupLayout;
  protected readonly fs: CgroupFs;

  constructor(layout: CgroupLayout) {
    if (layout.hierarchies.length === 0) throw new Error('cgroup: no usable cgroup hierarchy');
    this.layout = layout;
    this.fs = new CgroupFs(layout.hierarchies.map((h) => h.ownDir));
  }

  abstract describe(): string;

  /** Creates the `<name>` parent in every hierarchy, ready for job cgroups. Idempotent. */
  protected abstract prepareParents(): Promise<void>;

  async prepare(keep: ReadonlySet<string> = new Set()): Promise<string[]> {
    await this.prepareParents();
    return this.#sweepLeftovers(keep);
  }

  existing(jobId: string): JobCgroup {
    return new LayoutJobCgroup(this.fs, this.layout, jobId);
  }

  create(jobId: string, limits: JobLimits, ioDevices: readonly BlockDevice[]): Promise<JobCgroup> {
    return createJobCgroup(this.fs, this.layout, jobId, limits, ioDevices);
  }

  begin(
    jobId: string,
    limits: JobLimits,
    ioDevices: readonly BlockDevice[],
  ): Promise<JobCgroupInMaking> {
    return beginJobCgroup(this.fs, this.layout, jobId, limits, ioDevices);
  }

  async close(): Promise<void> {
    for (const hierarchy of this.layout.hierarchies) {
      const dir = parentDir(this.layout, hierarchy);
      try {
        await removeCgroupDir(this.fs, dir);
      } catch (error) {
        if (errnoOf(error) !== 'EBUSY') throw error;
        throw new Error(`cgroup: cannot remove ${dir}: job cgroups are still in it`);
      }
    }
  }

  /**
   * Job cgroups below our parents are from an earlier run of this instance: unless their job was
   * taken over, kill and remove.
   */
  async #sweepLeftovers(keep: ReadonlySet<string>): Promise<string[]> {
    const ids = new Set<string>();
    for (const hierarchy of this.layout.hierarchies) {
      const children = await this.fs.childCgroups(parentDir(this.layout, hierarchy));
      for (const child of children) if (JOB_ID.test(child) && !keep.has(child)) ids.add(child);
    }
    const swept = [...ids].sort();
    for (const jobId of swept) {
      const job = new LayoutJobCgroup(this.fs, this.layout, jobId);
      await job.killAll();
      await job.remove();
    }
    return swept;
  }
}
