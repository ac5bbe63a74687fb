// Runs last in the VM (files run in name order): after every other v2 test file, nothing of
// theirs remains. The VM's runner removed each file's service cgroup with the leaves it expects
// there (scripts/vm/guest-suite.sh); any other cgroup stays for this check to name.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { EXECUTOR_DEFAULTS } from '../../executor/config.ts';
import { TEST_PREFIX } from '../root/executor-kit.ts';
import { CGROUP_ROOT, ownCgroupDir, pidsWhere, pidsWithMarker, requireV2Vm } from './kit.ts';

const leftovers = suite('v2: no leftovers');

leftovers('no cgroup but this file’s own remains', () => {
  requireV2Vm();
  const own = ownCgroupDir();
  const ancestors = new Set<string>();
  for (let dir = own; dir !== CGROUP_ROOT; dir = dirname(dir)) ancestors.add(dir);
  const found = execFileSync('find', [CGROUP_ROOT, '-mindepth', '1', '-type', 'd'], {
    encoding: 'utf8',
  })
    .split('\n')
    .filter((dir) => dir !== '' && !ancestors.has(dir));
  assert.equal(found, []);
});

leftovers('no helper, job init or marked test process is running', () => {
  const strays = pidsWhere(
    (read) =>
      read('comm').trim() === 'jobworker-init' ||
      read('cmdline').startsWith(EXECUTOR_DEFAULTS.helperPath),
  );
  assert.equal([...strays, ...pidsWithMarker('jobworker-marker-')], []);
});

leftovers('no state directory or mount of a test remains', () => {
  assert.equal(
    readdirSync('/var/tmp').filter((name) => name.startsWith(TEST_PREFIX)),
    [],
  );
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line.includes(TEST_PREFIX));
  assert.equal(mounts, []);
});

leftovers('no loop device is attached (jobs’ disk storage detaches with the job)', () => {
  // Nothing else in the VM uses loop devices: any attached one is a job's.
  const attached = readdirSync('/sys/block')
    .filter((name) => name.startsWith('loop'))
    .flatMap((name) => {
      try {
        return [`${name}: ${readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').trim()}`];
      } catch {
        return [];
      }
    });
  assert.equal(attached, []);
});

leftovers.run();
