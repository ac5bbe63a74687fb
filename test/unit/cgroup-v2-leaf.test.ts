// The two rules that let the v2 driver run in a delegated cgroup: an executor found in its own
// leaf counts the leaf's parent as its cgroup, and it moves its own descendants (not others') into
// that leaf with it.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { outOfExecutorLeaf } from '../../executor/cgroup/detect.ts';
import { descendantsOf } from '../../executor/cgroup/v2-driver.ts';

const leaf = suite('v2 executor leaf');
const v2 = (ownDir: string) => ({
  version: 2 as const,
  mountPoint: '/sys/fs/cgroup',
  ownDir,
  controllers: [],
});

leaf("an executor already in its leaf takes the leaf's parent as its own cgroup", () => {
  assert.equal(
    outOfExecutorLeaf(v2('/sys/fs/cgroup/svc/jobworker-executor'), 'jobworker'),
    v2('/sys/fs/cgroup/svc'),
  );
  assert.equal(outOfExecutorLeaf(v2('/sys/fs/cgroup/svc'), 'jobworker'), v2('/sys/fs/cgroup/svc'));
  // Another instance's leaf, or the hierarchy's root, are left as they are.
  assert.equal(
    outOfExecutorLeaf(v2('/sys/fs/cgroup/svc/other-executor'), 'jobworker'),
    v2('/sys/fs/cgroup/svc/other-executor'),
  );
  assert.equal(outOfExecutorLeaf(v2('/sys/fs/cgroup'), 'jobworker'), v2('/sys/fs/cgroup'));
  assert.is(outOfExecutorLeaf(undefined, 'jobworker'), undefined);
});

leaf('descendants are found through /proc/<pid>/stat, however strange their names', async () => {
  const proc = await mkdtemp(join(tmpdir(), 'jobworker-unit-'));
  try {
    // 100 is the executor; 101 its child (esbuild); 102 a grandchild; 200 a stranger; 300 loops.
    const stats: Record<number, string> = {
      100: '100 (node) S 1 100 100',
      101: '101 (esbuild) S 100 100 100',
      102: '102 (a (b) c) S 101 100 100',
      200: '200 (sleep) S 1 200 200',
      300: '300 (x) S 301 300 300',
      301: '301 (y) S 300 300 300',
    };
    for (const [pid, stat] of Object.entries(stats)) {
      await mkdir(join(proc, pid));
      await writeFile(join(proc, pid, 'stat'), `${stat} 0 0\n`);
    }
    assert.equal(await descendantsOf(100, [100, 101, 102, 200, 300, 301, 999], proc), [101, 102]);
  } finally {
    await rm(proc, { recursive: true, force: true });
  }
});

leaf.run();
