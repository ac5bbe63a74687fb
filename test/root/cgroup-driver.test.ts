// The detected driver against this machine's real kernel: limits read back from the kernel's
// files, real processes counted, killed and OOM-killed, leftovers swept. Needs root because it
// creates cgroups (below this process's own cgroup, under a unique name) and moves its own
// children into them. Everything it creates is removed in the after hooks, also when a test fails.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { JobError } from '../../shared/errors.ts';
import type { JobLimits } from '../../shared/job.ts';
import { resolveBlockDevices } from '../../executor/cgroup/block-device.ts';
import type { BlockDevice, CgroupDriver, JobCgroup } from '../../executor/cgroup/cgroup-driver.ts';
import { detectCgroupDriver } from '../../executor/cgroup/detect.ts';
import { V1CgroupDriver } from '../../executor/cgroup/v1-driver.ts';
import {
  jobDirsOf,
  MiB,
  newJobId,
  parentDirsOf,
  procsIn,
  removeJobs,
  removeLeftovers,
  requireRoot,
  startGated,
  uniqueInstanceName,
  waitForProgram,
  withTimeout,
} from './cgroup-test-kit.ts';

const NAME = uniqueInstanceName();
const jobs: JobCgroup[] = [];
let driver: CgroupDriver;

async function createJob(limits: JobLimits, devices: readonly BlockDevice[] = []) {
  const job = await driver.create(newJobId(), limits, devices);
  jobs.push(job);
  return job;
}

/** The value of `file` in whichever of the job's directories has it. */
async function kernelValue(job: JobCgroup, file: string): Promise<string> {
  const dir = job.joinDirs.find((d) => existsSync(join(d, file)));
  if (dir === undefined) throw new Error(`no ${file} in ${job.joinDirs.join(' ')}`);
  return (await readFile(join(dir, file), 'utf8')).trim();
}

/** The effective memory nodes of the job's v1 cpuset parent, which the job must copy. */
async function parentCpusetMems(job: JobCgroup): Promise<string> {
  const dir = job.joinDirs.find((d) => existsSync(join(d, 'cpuset.mems')));
  if (dir === undefined) throw new Error('no cpuset cgroup');
  return (await readFile(join(dir, '..', 'cpuset.effective_mems'), 'utf8')).trim();
}

async function refusal(create: Promise<unknown>): Promise<Error> {
  try {
    await create;
  } catch (error) {
    return error as Error;
  }
  throw new Error('create succeeded');
}

test.before(async () => {
  requireRoot();
  driver = await detectCgroupDriver({ name: NAME });
  console.log(`  ${driver.describe()}`);
  assert.equal(await driver.prepare(), []);
});

test.after.each(() => removeJobs(jobs));

test.after(async () => {
  try {
    await driver.close();
  } finally {
    assert.equal(await removeLeftovers(NAME), [], 'cgroups left behind');
  }
});

test('prepare created the parents; the v1 cpuset parent got the executor’s CPUs and nodes', async () => {
  const parents = (await parentDirsOf(NAME)).filter((d) => existsSync(d));
  assert.ok(parents.length >= 1);
  const cpusetParent = parents.find((d) => existsSync(join(d, 'cpuset.effective_cpus')));
  if (cpusetParent !== undefined) {
    const read = (dir: string, file: string) => readFile(join(dir, file), 'utf8');
    const own = join(cpusetParent, '..');
    assert.is(await read(cpusetParent, 'cpuset.cpus'), await read(own, 'cpuset.effective_cpus'));
    assert.is(await read(cpusetParent, 'cpuset.mems'), await read(own, 'cpuset.effective_mems'));
  }
  assert.equal(await driver.prepare(), [], 'prepare is idempotent');
});

test('the root disk resolves to one whole disk; tmpfs and proc to none', async () => {
  const devices = await resolveBlockDevices(['/', '/', '/dev/shm', '/proc']);
  assert.is(devices.length, 1);
  const [disk] = devices;
  assert.ok(disk);
  const sys = `/sys/dev/block/${disk.major}:${disk.minor}`;
  assert.ok(existsSync(sys));
  assert.not.ok(existsSync(join(sys, 'partition')), 'a whole disk, not a partition');
  console.log(`  / is on ${disk.name} ${disk.major}:${disk.minor}`);
});

test('every limit is written and reads back from the kernel', async () => {
  const devices = await resolveBlockDevices(['/']);
  const limits: JobLimits = {
    cpus: 0.5,
    memoryBytes: 64 * MiB,
    memoryHighBytes: 48 * MiB,
    pids: 32,
    ioReadBps: 1 * MiB,
    ioWriteBps: 2 * MiB,
    ioReadIops: 100,
    ioWriteIops: 200,
    cpusetCpus: '0',
  };
  const job = await createJob(limits, devices);
  for (const dir of job.joinDirs) assert.ok(existsSync(dir), dir);
  const dev = devices.map((d) => `${d.major}:${d.minor}`).join();
  const expected: [string, string][] =
    driver instanceof V1CgroupDriver
      ? [
          ['cpu.cfs_period_us', '100000'],
          ['cpu.cfs_quota_us', '50000'],
          ['memory.limit_in_bytes', String(64 * MiB)],
          ['memory.memsw.limit_in_bytes', String(64 * MiB)],
          ['memory.soft_limit_in_bytes', String(48 * MiB)],
          ['pids.max', '33'],
          ['blkio.throttle.read_bps_device', `${dev} ${MiB}`],
          ['blkio.throttle.write_bps_device', `${dev} ${2 * MiB}`],
          ['blkio.throttle.read_iops_device', `${dev} 100`],
          ['blkio.throttle.write_iops_device', `${dev} 200`],
          ['cpuset.cpus', '0'],
          ['cpuset.mems', await parentCpusetMems(job)],
        ]
      : [
          ['cpu.max', '50000 100000'],
          ['memory.max', String(64 * MiB)],
          ['memory.high', String(48 * MiB)],
          ['memory.swap.max', '0'],
          ['memory.oom.group', '1'],
          ['pids.max', '33'],
          ['io.max', `${dev} rbps=${MiB} wbps=${2 * MiB} riops=100 wiops=200`],
          ['cpuset.cpus', '0'],
        ];
  for (const [file, value] of expected) assert.is(await kernelValue(job, file), value, file);
  console.log(`  read back ${expected.length} kernel files from ${job.joinDirs.length} cgroups`);
});

test('a job process: populated, usage counted, killAll empties every cgroup', async () => {
  const devices = await resolveBlockDevices(['/']);
  // An io limit, because v1 counts io bytes only for throttled devices.
  const limits = { cpus: 1, memoryBytes: 256 * MiB, pids: 16, ioWriteBps: 512 * MiB };
  const job = await createJob(limits, devices);
  assert.is(await job.isPopulated(), false);
  assert.equal(await job.readUsage(), {
    cpuSeconds: 0,
    memoryPeakBytes: 0,
    ioReadBytes: 0,
    ioWriteBytes: 0,
  });
  const scratch = `/var/tmp/${NAME}-io`;
  const child = startGated(
    `dd if=/dev/zero of=/dev/null bs=1M count=4000 2>/dev/null; ` +
      `dd if=/dev/zero of=${scratch} bs=64k count=16 oflag=direct 2>/dev/null; ` +
      `rm -f ${scratch}; exec sleep 60`,
  );
  try {
    await child.enter(job.joinDirs);
    child.release();
    assert.is(await job.isPopulated(), true);
    await waitForProgram(child.pid, 'sleep');
    const usage = await job.readUsage();
    console.log(`  usage: ${JSON.stringify(usage)}`);
    assert.ok(usage.cpuSeconds > 0.02, `cpuSeconds ${usage.cpuSeconds}`);
    assert.ok(usage.memoryPeakBytes > 0, `memoryPeakBytes ${usage.memoryPeakBytes}`);
    assert.ok(usage.ioWriteBytes >= MiB, `ioWriteBytes ${usage.ioWriteBytes}`);

    const started = Date.now();
    await job.killAll();
    console.log(`  killAll took ${Date.now() - started} ms`);
    assert.is(await withTimeout(child.exited, 2_000, 'the job to exit'), 'SIGKILL');
    assert.is(await job.isPopulated(), false);
    assert.equal(await procsIn(job.joinDirs), []);
    assert.is(await job.wasOomKilled(), false, 'SIGKILL from a stop is not an OOM kill');
  } finally {
    await rm(scratch, { force: true });
  }
  await job.remove();
  for (const dir of job.joinDirs) assert.not.ok(existsSync(dir), `${dir} still exists`);
  await job.remove(); // removing again is fine
});

test('a job over its memory limit is OOM-killed and reported as such', async () => {
  const job = await createJob({ memoryBytes: 32 * MiB });
  // tail keeps the "line" it reads from /dev/zero, which never ends: memory grows without bound.
  const child = startGated('exec tail /dev/zero');
  await child.enter(job.joinDirs);
  child.release();
  const started = Date.now();
  assert.is(await withTimeout(child.exited, 20_000, 'the OOM kill'), 'SIGKILL');
  const usage = await job.readUsage();
  console.log(`  OOM kill after ${Date.now() - started} ms; usage ${JSON.stringify(usage)}`);
  assert.is(await job.wasOomKilled(), true);
  assert.ok(usage.memoryPeakBytes <= 33 * MiB, `peak ${usage.memoryPeakBytes}`);
  assert.ok(usage.memoryPeakBytes >= 16 * MiB, `peak ${usage.memoryPeakBytes}`);
});

test('a pids limit counts the job’s init on top of the job’s own processes', async () => {
  const job = await createJob({ pids: 1 });
  assert.is(await kernelValue(job, 'pids.max'), '2');
});

test('a limit the kernel refuses fails create, names the limit and leaves nothing', async () => {
  const error = await refusal(driver.create(newJobId(), { pids: 10_000_000 }, []));
  assert.instance(error, JobError);
  assert.is((error as JobError).code, 'invalid-argument');
  assert.is(error.message, 'limits.pids: the kernel refused pids.max = "10000001" (EINVAL)');
  assert.equal(await jobDirsOf(NAME), []);
});

test('cpusetCpus outside the executor’s CPUs fails before anything is created', async () => {
  const error = await refusal(driver.create(newJobId(), { cpusetCpus: '0-4095' }, []));
  assert.instance(error, JobError);
  assert.match(error.message, /^limits\.cpusetCpus: CPU .* is not available to jobs/);
  assert.equal(await jobDirsOf(NAME), []);
});

test('a malformed job id is refused before anything is created', async () => {
  for (const id of ['../x', 'A'.repeat(32), 'a'.repeat(31), '']) {
    const error = await refusal(driver.create(id, {}, []));
    assert.match(error.message, /is not 32 lowercase hex characters/);
  }
  assert.equal(await jobDirsOf(NAME), []);
});

test('prepare sweeps a job cgroup left by an earlier run: kills its process, removes it', async () => {
  // An earlier run's job, made by hand in some hierarchies only (as a crash mid-create leaves
  // it); cpuset is left out because a v1 cpuset would need cpus and mems first.
  const leftover = newJobId();
  const dirs = (await parentDirsOf(NAME))
    .filter((d) => existsSync(d) && !existsSync(join(d, 'cpuset.cpus')))
    .map((d) => join(d, leftover));
  for (const dir of dirs) await mkdir(dir);
  const child = startGated('exec sleep 60');
  try {
    await child.enter(dirs);
  } catch (error) {
    for (const dir of dirs) await rmdir(dir);
    throw error;
  }
  child.release();

  const fresh = await detectCgroupDriver({ name: NAME });
  assert.equal(await fresh.prepare(), [leftover]);
  assert.is(await withTimeout(child.exited, 2_000, 'the leftover process to die'), 'SIGKILL');
  for (const dir of dirs) assert.not.ok(existsSync(dir), `${dir} still exists`);
  console.log(`  swept ${leftover} from ${dirs.length} hierarchies`);
});

test.run();
