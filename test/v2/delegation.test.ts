// The v2 driver in a delegated cgroup, as under systemd's Delegate=yes: it must move the executor
// (and what the executor already started) into a leaf, enable the controllers for its jobs, give
// each job every controller and limit, find its own cgroup again from inside the leaf, and refuse
// clearly when a process that is not its own shares its cgroup.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { resolveBlockDevices } from '../../executor/cgroup/block-device.ts';
import type { CgroupDriver, JobCgroup } from '../../executor/cgroup/cgroup-driver.ts';
import { detectCgroupDriver } from '../../executor/cgroup/detect.ts';
import { V2CgroupDriver } from '../../executor/cgroup/v2-driver.ts';
import {
  killStartedChildren,
  newJobId,
  removeJobs,
  startGated,
  uniqueInstanceName,
  withTimeout,
} from '../root/cgroup-test-kit.ts';
import {
  cgroupFile,
  JOB_CONTROLLERS,
  logged,
  MiB,
  ownCgroupDir,
  requireV2Vm,
  words,
} from './kit.ts';

const NAME = uniqueInstanceName();
const jobs: JobCgroup[] = [];
/** The cgroup the VM's runner started this file in: the executor's "service" cgroup. */
let own = '';
let driver: CgroupDriver;
/** A process this test started before the driver prepared, as tsx's esbuild service is. */
let earlyChild: ChildProcess;
const strays: number[] = [];

test.before(
  logged(async () => {
    own = requireV2Vm();
    earlyChild = spawn('sleep', ['600'], { stdio: 'ignore' });
    driver = await detectCgroupDriver({ name: NAME });
    console.log(`  ${driver.describe()}`);
  }),
);

test.after.each(() => removeJobs(jobs));

test.after(async () => {
  earlyChild?.kill('SIGKILL');
  killStartedChildren();
  for (const pid of strays) process.kill(pid, 'SIGKILL');
  await driver?.close();
  assert.not.ok(existsSync(join(own, NAME)), 'close removed the jobs’ parent');
});

test('the v2 driver serves every controller from the one cgroup2 hierarchy', () => {
  assert.instance(driver, V2CgroupDriver);
  const served = [...driver.describe().matchAll(/(\w+)=v2:([^ ,]+)/g)].map(([, c, dir]) => [
    c,
    dir,
  ]);
  const expected = ['cpu', 'cpuacct', 'memory', 'pids', 'io', 'cpuset', 'tracking'].map((c) => [
    c,
    own,
  ]);
  assert.equal(served, expected);
});

test('prepare moves the executor and its processes into a leaf, then delegates the controllers', async () => {
  assert.is(cgroupFile(own, 'cgroup.subtree_control'), '', 'nothing delegated before prepare');
  const before = words(cgroupFile(own, 'cgroup.procs')).map(Number);
  assert.ok(
    before.includes(process.pid) && before.includes(earlyChild.pid ?? 0),
    'both start here',
  );

  assert.equal(await driver.prepare(), []);

  const leaf = join(own, `${NAME}-executor`);
  assert.is(ownCgroupDir(), leaf);
  assert.is(ownCgroupDir(earlyChild.pid), leaf, 'the process it had started moved too');
  assert.is(cgroupFile(own, 'cgroup.procs'), '', 'no process left in the delegating cgroup');
  assert.equal(words(cgroupFile(own, 'cgroup.subtree_control')), JOB_CONTROLLERS);
  assert.equal(words(cgroupFile(join(own, NAME), 'cgroup.subtree_control')), JOB_CONTROLLERS);
  console.log(`  moved ${before.length} processes into ${leaf}`);
  assert.equal(await driver.prepare(), [], 'prepare again changes nothing');
  assert.is(ownCgroupDir(), leaf);
});

test('a job cgroup gets every controller and reads back every limit', async () => {
  const devices = await resolveBlockDevices(['/var/tmp']);
  assert.equal(
    devices.map((d) => d.name),
    ['vda'],
    'the VM’s virtio disk is under /var/tmp',
  );
  const dev = devices.map((d) => `${d.major}:${d.minor}`).join();
  const job = await driver.create(
    newJobId(),
    {
      cpus: 0.5,
      memoryBytes: 64 * MiB,
      memoryHighBytes: 48 * MiB,
      pids: 32,
      ioReadBps: MiB,
      ioWriteBps: 2 * MiB,
      ioReadIops: 100,
      ioWriteIops: 200,
      cpusetCpus: '1',
    },
    devices,
  );
  jobs.push(job);
  assert.equal(job.joinDirs, [join(own, NAME, job.jobId)], 'one directory, in the one hierarchy');
  const [dir = ''] = job.joinDirs;
  assert.equal(words(cgroupFile(dir, 'cgroup.controllers')), JOB_CONTROLLERS);
  const expected = {
    'cpu.max': '50000 100000',
    'cpuset.cpus': '1',
    'cpuset.cpus.effective': '1',
    'io.max': `${dev} rbps=${MiB} wbps=${2 * MiB} riops=100 wiops=200`,
    'memory.high': String(48 * MiB),
    'memory.max': String(64 * MiB),
    'memory.oom.group': '1',
    'memory.swap.max': '0',
    'pids.max': '33',
  };
  const actual = Object.fromEntries(Object.keys(expected).map((f) => [f, cgroupFile(dir, f)]));
  assert.equal(actual, expected);
  console.log(`  read back ${Object.keys(expected).length} files; io.max on vda ${dev}`);
});

test('detected again from inside its leaf, the driver finds the same cgroups and sweeps leftovers', async () => {
  // As an earlier run (or a crash mid-create) leaves it: a job cgroup with a process in it.
  const leftover = newJobId();
  const dir = join(own, NAME, leftover);
  await mkdir(dir);
  const child = startGated('exec sleep 600');
  await child.enter([dir]);
  child.release();

  const again = await detectCgroupDriver({ name: NAME });
  assert.ok(again.describe().includes(`cpu=v2:${own} `), again.describe());
  assert.equal(await again.prepare(), [leftover]);
  assert.is(await withTimeout(child.exited, 5_000, 'the leftover to die'), 'SIGKILL');
  assert.not.ok(existsSync(dir), `${dir} still exists`);
  assert.is(ownCgroupDir(), join(own, `${NAME}-executor`), 'still in the same leaf');
});

test('a process that is not the executor’s in its cgroup is refused, by pid', async () => {
  // An orphan (its parent shell exits at once): not a descendant of this process.
  const started = spawnSync('sh', ['-c', 'setsid sleep 600 >/dev/null 2>&1 & echo $!'], {
    encoding: 'utf8',
  });
  const orphan = Number(started.stdout.trim());
  assert.ok(orphan > 0, started.stderr);
  strays.push(orphan);
  // The executor of another instance starts in the cgroup this one's leaf is, with the orphan.
  const shared = ownCgroupDir();
  await writeFile(join(shared, 'cgroup.procs'), String(orphan));
  const other = uniqueInstanceName();
  const second = await detectCgroupDriver({ name: other });
  try {
    await second.prepare();
    assert.unreachable('prepare succeeded');
  } catch (error) {
    assert.is(
      (error as Error).message,
      `cgroup: cannot enable "+cpu +memory +pids +io +cpuset" in ${shared}/cgroup.subtree_control ` +
        `because other processes share the executor's cgroup (pids ${orphan}). Run the executor ` +
        `in a cgroup of its own that is delegated to it (systemd: Delegate=yes).`,
    );
  }
  assert.is(ownCgroupDir(), join(shared, `${other}-executor`), 'only this process moved');
  assert.is(ownCgroupDir(orphan), shared, 'the other process was left where it was');
});

test.run();
