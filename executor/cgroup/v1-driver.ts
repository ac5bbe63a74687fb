// cgroup v1 hosts, and hybrid ones: v1 hierarchies serve the controllers, and a cgroup2 mount
// (when there is one) adds a tracking cgroup per job for cgroup.kill, `populated` and CPU time.
import { posix } from 'node:path';
import * as cpuset from './cpuset.ts';
import { writeLimits } from './job-cgroup.ts';
import { describeLayout, homeOf, parentDir } from './layout.ts';
import { LayoutDriver } from './layout-driver.ts';
import { delegateV2Controllers } from './v2-driver.ts';

export class V1CgroupDriver extends LayoutDriver {
  describe(): string {
    return describeLayout(this.layout, this.layout.v2 ? 'hybrid (v1 + v2 tracking)' : 'v1');
  }

  protected async prepareParents(): Promise<void> {
    for (const hierarchy of this.layout.hierarchies) {
      if (hierarchy.version === 2) {
        // Also covers hosts where some controllers already moved to v2.
        await delegateV2Controllers(this.fs, this.layout, hierarchy);
      } else {
        await this.fs.mkdir(parentDir(this.layout, hierarchy));
      }
    }
    const cpusetHome = homeOf(this.layout, 'cpuset');
    if (cpusetHome?.version === 1) {
      // A new v1 cpuset has no CPUs and no memory nodes, and so could not hold job cgroups'
      // processes; the parent takes the executor's. Left alone once set: jobs may be using it.
      const parent = parentDir(this.layout, cpusetHome);
      const current = async (file: string) => (await this.fs.read(posix.join(parent, file))).trim();
      if ((await current('cpuset.cpus')) === '' || (await current('cpuset.mems')) === '') {
        const own = (file: string) => this.fs.read(posix.join(cpusetHome.ownDir, file));
        const files = cpuset.v1ParentFiles({
          effectiveCpus: await own(cpuset.V1_EFFECTIVE_CPUS),
          effectiveMems: await own(cpuset.V1_EFFECTIVE_MEMS),
        });
        await writeLimits(this.fs, parent, files);
      }
    }
  }
}
