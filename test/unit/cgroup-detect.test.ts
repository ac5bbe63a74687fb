// Detection from fixture /proc text for the three kinds of host, and the driver it picks.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rejects } from './cgroup-assert.ts';
import {
  detectCgroupDriver,
  findHierarchies,
  parseMountinfo,
  parseProcCgroup,
  planLayout,
} from '../../executor/cgroup/detect.ts';
import { V1CgroupDriver } from '../../executor/cgroup/v1-driver.ts';
import { V2CgroupDriver } from '../../executor/cgroup/v2-driver.ts';

const SERVICE = '/system.slice/jobworker.service';

// A systemd host booted with the unified hierarchy only, executor under Delegate=yes.
const V2_MOUNTINFO = `22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
25 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
29 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;
const V2_CGROUP = `0::${SERVICE}\n`;

// This development machine: v1 controllers (cpu and cpuacct apart) plus an empty cgroup2 mount.
const HYBRID_MOUNTINFO = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const HYBRID_CGROUP = `9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/ac41
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
`;

// A v1-only host (CentOS 7 style): cpu and cpuacct co-mounted, no cgroup2.
const V1_MOUNTINFO = `25 18 0:21 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
26 25 0:22 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
28 25 0:24 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,cpuset
29 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpuacct,cpu
30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,memory
31 25 0:27 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,blkio
32 25 0:28 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,pids
33 25 0:29 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,freezer
`;
const V1_CGROUP = `11:cpuset:/
10:pids:${SERVICE}
9:blkio:${SERVICE}
8:memory:${SERVICE}
4:cpuacct,cpu:${SERVICE}
3:freezer:/
1:name=systemd:${SERVICE}
`;

test('mountinfo: root, mount point (unescaped), type and super options', () => {
  const mounts = parseMountinfo(
    '41 31 0:38 /sub /sys/fs/cgroup/my\\040dir rw,relatime shared:3 master:1 - cgroup cgroup rw,cpu,cpuacct\n',
  );
  assert.equal(mounts, [
    {
      root: '/sub',
      mountPoint: '/sys/fs/cgroup/my dir',
      fsType: 'cgroup',
      superOptions: ['rw', 'cpu', 'cpuacct'],
    },
  ]);
});

test('/proc/self/cgroup: v1 controller lists and the v2 line', () => {
  assert.equal(parseProcCgroup('4:cpu,cpuacct:/a/b\n1:name=systemd:/\n0::/x y\n'), [
    { hierarchyId: 4, controllers: ['cpu', 'cpuacct'], path: '/a/b' },
    { hierarchyId: 1, controllers: ['name=systemd'], path: '/' },
    { hierarchyId: 0, controllers: [], path: '/x y' },
  ]);
});

test('v2-only host: every controller from the executor’s delegated v2 cgroup', () => {
  const found = findHierarchies(V2_MOUNTINFO, V2_CGROUP);
  const own = `/sys/fs/cgroup${SERVICE}`;
  assert.equal(found, {
    v1: [],
    v2: { version: 2, mountPoint: '/sys/fs/cgroup', ownDir: own, controllers: [] },
  });
  const layout = planLayout(found, 'cpuset cpu io memory hugetlb pids rdma misc'.split(' '), 'jw');
  const v2 = {
    version: 2,
    mountPoint: '/sys/fs/cgroup',
    ownDir: own,
    serves: ['cpu', 'cpuacct', 'memory', 'pids', 'io', 'cpuset'],
  };
  assert.equal(layout, { name: 'jw', hierarchies: [v2], v2, v2Apart: false });
});

test('v2-only host without every controller delegated: those are absent', () => {
  const layout = planLayout(findHierarchies(V2_MOUNTINFO, V2_CGROUP), ['memory', 'pids'], 'jw');
  assert.equal(layout.v2?.serves, ['cpuacct', 'memory', 'pids']);
});

test('hybrid host: v1 controllers, v2 tracking cgroup for kill, populated and CPU time', () => {
  const found = findHierarchies(HYBRID_MOUNTINFO, HYBRID_CGROUP);
  const layout = planLayout(found, ['hugetlb'], 'jw');
  const v2 = {
    version: 2,
    mountPoint: '/sys/fs/cgroup/unified',
    ownDir: '/sys/fs/cgroup/unified',
    serves: ['cpuacct'],
  };
  assert.equal(layout, {
    name: 'jw',
    hierarchies: [
      {
        version: 1,
        mountPoint: '/sys/fs/cgroup/cpu',
        ownDir: '/sys/fs/cgroup/cpu',
        serves: ['cpu'],
      },
      {
        version: 1,
        mountPoint: '/sys/fs/cgroup/cpuset',
        ownDir: '/sys/fs/cgroup/cpuset',
        serves: ['cpuset'],
      },
      {
        version: 1,
        mountPoint: '/sys/fs/cgroup/memory',
        ownDir: '/sys/fs/cgroup/memory/process_api/ac41',
        serves: ['memory'],
      },
      {
        version: 1,
        mountPoint: '/sys/fs/cgroup/blkio',
        ownDir: '/sys/fs/cgroup/blkio',
        serves: ['io'],
      },
      {
        version: 1,
        mountPoint: '/sys/fs/cgroup/pids',
        ownDir: '/sys/fs/cgroup/pids',
        serves: ['pids'],
      },
      v2,
    ],
    v2,
    v2Apart: false,
  });
});

test('v1-only host: cpu and cpuacct co-mounted are one hierarchy; no tracking cgroup', () => {
  const layout = planLayout(findHierarchies(V1_MOUNTINFO, V1_CGROUP), [], 'jw');
  assert.is(layout.v2, undefined);
  assert.equal(
    layout.hierarchies.map((h) => [h.version, h.ownDir, h.serves]),
    [
      [1, '/sys/fs/cgroup/cpuset', ['cpuset']],
      [1, `/sys/fs/cgroup/cpu,cpuacct${SERVICE}`, ['cpu', 'cpuacct']],
      [1, `/sys/fs/cgroup/memory${SERVICE}`, ['memory']],
      [1, `/sys/fs/cgroup/blkio${SERVICE}`, ['io']],
      [1, `/sys/fs/cgroup/pids${SERVICE}`, ['pids']],
    ],
  );
});

test('mixed host: controllers already on v2 are served there, the rest by v1', () => {
  const found = findHierarchies(HYBRID_MOUNTINFO.replace(/^35 .*\n/m, ''), HYBRID_CGROUP);
  const layout = planLayout(found, ['memory', 'hugetlb'], 'jw');
  assert.equal(layout.v2?.serves, ['cpuacct', 'memory']);
  assert.equal(
    layout.hierarchies.map((h) => [h.version, h.serves]),
    [
      [1, ['cpu']],
      [1, ['cpuset']],
      [1, ['io']],
      [1, ['pids']],
      [2, ['cpuacct', 'memory']],
    ],
  );
});

test('a mount of a subtree maps the cgroup path below its root; other subtrees are unusable', () => {
  const mountinfo =
    '35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n' +
    '36 31 0:33 /docker/abc /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n' +
    '37 31 0:34 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n';
  const cgroup = '5:memory:/docker/abc/inner\n4:pids:/elsewhere\n0::/../outside\n';
  const found = findHierarchies(mountinfo, cgroup);
  assert.equal(
    found.v1.map((h) => [h.controllers, h.ownDir]),
    [[['memory'], '/sys/fs/cgroup/memory/inner']],
  );
  assert.is(found.v2, undefined);
});

async function fixtureTree(mountinfo: string, cgroup: string, files: Record<string, string>) {
  const root = await mkdtemp(join(tmpdir(), 'cgroup-detect-test-'));
  const all = { 'proc/self/mountinfo': mountinfo, 'proc/self/cgroup': cgroup, ...files };
  for (const [path, text] of Object.entries(all)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
  }
  return root;
}

test('detectCgroupDriver: the v2 driver on a v2-only host', async () => {
  const root = await fixtureTree(V2_MOUNTINFO, V2_CGROUP, {
    [`sys/fs/cgroup${SERVICE}/cgroup.controllers`]: 'cpuset cpu io memory pids\n',
  });
  try {
    const driver = await detectCgroupDriver({ name: 'jw', procRoot: `${root}/proc`, fsRoot: root });
    assert.instance(driver, V2CgroupDriver);
    const own = `v2:${root}/sys/fs/cgroup${SERVICE}`;
    assert.is(
      driver.describe(),
      `cgroup v2: cpu=${own} cpuacct=${own} memory=${own} pids=${own} io=${own} cpuset=${own}, ` +
        `tracking=${own}, jobs under <own>/jw/<jobId>`,
    );
  } finally {
    await rm(root, { recursive: true });
  }
});

test('detectCgroupDriver: the v1 driver on hybrid and v1-only hosts', async () => {
  const hybrid = await fixtureTree(HYBRID_MOUNTINFO, HYBRID_CGROUP, {
    'sys/fs/cgroup/unified/cgroup.controllers': 'hugetlb\n',
  });
  const v1 = await fixtureTree(V1_MOUNTINFO, V1_CGROUP, {});
  try {
    const fromHybrid = await detectCgroupDriver({
      name: 'jw',
      procRoot: `${hybrid}/proc`,
      fsRoot: hybrid,
    });
    assert.instance(fromHybrid, V1CgroupDriver);
    assert.match(fromHybrid.describe(), /^cgroup hybrid \(v1 \+ v2 tracking\): cpu=v1:/);
    const fromV1 = await detectCgroupDriver({ name: 'jw', procRoot: `${v1}/proc`, fsRoot: v1 });
    assert.instance(fromV1, V1CgroupDriver);
    assert.match(fromV1.describe(), /^cgroup v1: cpu=v1:/);
  } finally {
    await rm(hybrid, { recursive: true });
    await rm(v1, { recursive: true });
  }
});

test('jobsCgroup: on v2, job cgroups go below the named cgroup, apart from the executor', async () => {
  const jobs = '/system.slice/jobworker-jobs.service';
  const root = await fixtureTree(V2_MOUNTINFO, V2_CGROUP, {
    [`sys/fs/cgroup${jobs}/cgroup.controllers`]: 'cpuset cpu io memory pids\n',
  });
  const v1 = await fixtureTree(V1_MOUNTINFO, V1_CGROUP, {});
  try {
    const driver = await detectCgroupDriver({
      name: 'jw',
      procRoot: `${root}/proc`,
      fsRoot: root,
      jobsCgroup: jobs,
    });
    assert.match(driver.describe(), new RegExp(`memory=v2:${root}/sys/fs/cgroup${jobs} `));
    await rejects(
      () =>
        detectCgroupDriver({
          name: 'jw',
          procRoot: `${root}/proc`,
          fsRoot: root,
          jobsCgroup: '/system.slice/absent.service',
        }),
      /^jobsCgroup: \/system\.slice\/absent\.service is not a cgroup .*is the unit that holds it running\?$/,
    );
    // A v1-only host has no such rule: jobs stay below the executor's own cgroups.
    const fromV1 = await detectCgroupDriver({
      name: 'jw',
      procRoot: `${v1}/proc`,
      fsRoot: v1,
      jobsCgroup: jobs,
    });
    assert.match(fromV1.describe(), /^cgroup v1: cpu=v1:/);
    assert.not.match(fromV1.describe(), /jobworker-jobs/);
  } finally {
    await rm(root, { recursive: true });
    await rm(v1, { recursive: true });
  }
});

test('detectCgroupDriver: the instance name must be one plain directory name', async () => {
  for (const name of ['', '.', '..', 'a/b', '-x', 'x'.repeat(65)]) {
    await rejects(
      () => detectCgroupDriver({ name, procRoot: '/nonexistent' }),
      /cgroup: instance name .* must be 1-64 of/,
    );
  }
});

test.run();
