// The two drivers' other paths on this hybrid machine's real kernel: driven as a v1-only host
// (no v2 tracking cgroup: kill by sweeping cgroup.procs, CPU time from cpuacct) and as a v2 host
// whose cgroup offers no controllers (cgroup.kill, populated, cpu.stat). Same cleanup rules as
// cgroup-driver.test.ts: unique names, everything removed in the after hooks.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { JobError } from '../../shared/errors.ts';
import type { JobLimits } from '../../shared/job.ts';
import type { CgroupDriver, JobCgroup } from '../../executor/cgroup/cgroup-driver.ts';
import { findHierarchies, planLayout } from '../../executor/cgroup/detect.ts';
import { V1CgroupDriver } from '../../executor/cgroup/v1-driver.ts';
import { V2CgroupDriver } from '../../executor/cgroup/v2-driver.ts';
import {
  MiB,
  newJobId,
  procsIn,
  removeJobs,
  removeLeftovers,
  requireRoot,
  startGated,
  uniqueInstanceName,
  waitForProgram,
  withTimeout,
} from './cgroup-test-kit.ts';

const V1_NAME = uniqueInstanceName();
const V2_NAME = uniqueInstanceName();
const jobs: JobCgroup[] = [];

async function hostHierarchies() {
  return findHierarchies(
    await readFile('/proc/self/mountinfo', 'utf8'),
    await readFile('/proc/self/cgroup', 'utf8'),
  );
}

/**
 * A job that forks (two background sleeps next to the main one) after burning some CPU; checks
 * it is counted, then killed to the last process.
 */
async function runAndKill(driver: CgroupDriver, limits: JobLimits): Promise<void> {
  assert.equal(await driver.prepare(), []);
  const job = await driver.create(newJobId(), limits, []);
  jobs.push(job);
  assert.is(await job.isPopulated(), false);
  const child = startGated(
    'dd if=/dev/zero of=/dev/null bs=1M count=4000 2>/dev/null; sleep 60 & sleep 60 & exec sleep 60',
  );
  await child.enter(job.joinDirs);
  child.release();
  await waitForProgram(child.pid, 'sleep');
  assert.is(await job.isPopulated(), true);
  const procs = await procsIn(job.joinDirs);
  assert.ok(new Set(procs).size >= 3, `processes ${procs.join(' ')}`);
  const usage = await job.readUsage();
  console.log(
    `  ${driver.constructor.name}: ${new Set(procs).size} processes, ${JSON.stringify(usage)}`,
  );
  assert.ok(usage.cpuSeconds > 0.02, `cpuSeconds ${usage.cpuSeconds}`);

  await job.killAll();
  assert.is(await withTimeout(child.exited, 2_000, 'the job to exit'), 'SIGKILL');
  assert.is(await job.isPopulated(), false);
  assert.equal(await procsIn(job.joinDirs), []);
  assert.is(await job.wasOomKilled(), false);
  await job.remove();
  jobs.splice(jobs.indexOf(job), 1);
  for (const dir of job.joinDirs) assert.not.ok(existsSync(dir), `${dir} still exists`);
  await driver.close();
}

test.before(() => {
  requireRoot();
});

test.after.each(() => removeJobs(jobs));

test.after(async () => {
  assert.equal(await removeLeftovers(V1_NAME), [], 'cgroups left behind');
  assert.equal(await removeLeftovers(V2_NAME), [], 'cgroups left behind');
});

test('v1 only: limits, CPU time from cpuacct, kill by sweeping cgroup.procs', async () => {
  const { v1 } = await hostHierarchies();
  const driver = new V1CgroupDriver(planLayout({ v1, v2: undefined }, [], V1_NAME));
  console.log(`  ${driver.describe()}`);
  assert.match(driver.describe(), /cpuacct=v1:/);
  await runAndKill(driver, { cpus: 1, memoryBytes: 128 * MiB, pids: 8, cpusetCpus: '0' });
});

test('v2 without controllers: cgroup.kill, populated, cpu.stat; limits refused by name', async () => {
  const { v2 } = await hostHierarchies();
  assert.ok(v2, 'this machine has a cgroup2 mount');
  const controllers = (await readFile(`${v2.ownDir}/cgroup.controllers`, 'utf8'))
    .trim()
    .split(/\s+/);
  const driver = new V2CgroupDriver(planLayout({ v1: [], v2 }, controllers, V2_NAME));
  console.log(`  ${driver.describe()}`);
  try {
    await driver.prepare();
    await driver.create(newJobId(), { cpus: 1 }, []);
    assert.unreachable('a cpu limit without a cpu controller was accepted');
  } catch (error) {
    assert.instance(error, JobError);
    assert.is((error as Error).message, 'limits.cpus: this host has no cpu cgroup controller');
  }
  await runAndKill(driver, {});
});

test.run();
