// A start whose cgroups fail after its keeper was given the job: the keeper clones the job's init
// while the cgroups are made, so their failure must end both before anything of the job runs,
// and leave nothing behind, as a start that never began. And a close that comes meanwhile waits
// for the start to settle, then removes every cgroup of the executor's.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { CgroupDriver, JobCgroup } from '../../executor/cgroup/cgroup-driver.ts';
import { JobError } from '../../shared/errors.ts';
import { openTestRuntime, startJob } from './executor-kit.ts';
import type { TestRuntime } from './executor-kit.ts';

/** The pids in a cgroup, once there are any (up to `ms`); none where it does not exist. */
async function processesOnceThere(dir: string, ms: number): Promise<string[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const text = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
    const pids = text.split('\n').filter((line) => line !== '');
    if (pids.length > 0 || Date.now() > deadline) return pids;
    await sleep(5);
  }
}

/** True while `pid` runs: not once it has exited (a zombie waiting to be reaped has). */
async function runs(pid: string): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== '' && state !== 'Z' && state !== 'X';
}

interface Failing {
  cgroup: JobCgroup | null;
  /** The job's init as the cgroup it was born into showed it, while the rest were made. */
  initPids: string[];
  /** What the failure waits for, once the rest are made. */
  gate: Promise<void>;
}

/** Makes every cgroup of a job, then fails as a refused limit would, once its init exists. */
function failingAfterTheInit(inner: CgroupDriver, seen: Failing): CgroupDriver {
  return {
    describe: () => inner.describe(),
    prepare: (keep) => inner.prepare(keep),
    existing: (jobId) => inner.existing(jobId),
    create: (jobId, limits, devices) => inner.create(jobId, limits, devices),
    close: () => inner.close(),
    async begin(jobId, limits, devices) {
      const making = await inner.begin(jobId, limits, devices);
      seen.cgroup = making.cgroup;
      return {
        cgroup: making.cgroup,
        removeMade: () => making.removeMade(),
        async makeTheRest() {
          await making.makeTheRest();
          const born = making.cgroup.v2Dir;
          if (born !== undefined) seen.initPids = await processesOnceThere(born, 5_000);
          await seen.gate;
          throw new JobError('invalid-argument', 'limits.pids: refused (by the test)');
        },
      };
    },
  };
}

/** A suite whose runtime's cgroups fail as above. */
function failingSuite(title: string) {
  const failing = suite<{ t: TestRuntime; seen: Failing }>(title);
  failing.before(async (context) => {
    context.seen = { cgroup: null, initPids: [], gate: Promise.resolve() };
    context.t = await openTestRuntime({}, (driver) => failingAfterTheInit(driver, context.seen));
  });
  failing.after(async ({ t }) => {
    await t.close();
  });
  return failing;
}

const failure = failingSuite('cgroups failing after the keeper');

failure('fail the start and leave no record, directory, cgroup or process', async ({ t, seen }) => {
  const error = await startJob(t.runtime, { argv: ['true'] }).then(
    () => null,
    (caught: unknown) => caught,
  );
  assert.instance(error, JobError);
  assert.is((error as JobError).code, 'invalid-argument');
  assert.match((error as JobError).message, 'limits.pids: refused');

  const { cgroup, initPids } = seen;
  assert.ok(cgroup, 'the start got as far as its cgroups');
  if (cgroup.v2Dir !== undefined)
    // One process: the init, cloned while the rest of the cgroups were made, and no job forked.
    assert.is(initPids.length, 1, 'the init alone was there while the rest were made');
  // Its cgroup is removed, so it has exited (its parent, the keeper, ended before it).
  for (const pid of initPids) assert.not.ok(await runs(pid), `init ${pid} has ended`);
  for (const dir of cgroup.joinDirs) assert.not.ok(existsSync(dir), `${dir} is removed`);
  assert.equal(await readdir(join(t.config.stateDir, 'jobs')), [], 'no job directory is left');
  assert.equal((await t.runtime.list({})).jobs, [], 'no job is recorded');
});

failure.run();

const closing = failingSuite('a close during a start');

closing('waits for the start to settle, then removes every cgroup', async ({ t, seen }) => {
  let open!: () => void;
  seen.gate = new Promise((resolve) => (open = resolve));
  const starting = startJob(t.runtime, { argv: ['true'] }).then(
    () => null,
    (caught: unknown) => caught,
  );
  while (seen.initPids.length === 0 && seen.cgroup?.v2Dir !== undefined) await sleep(5);
  let closed = false;
  const closingNow = t.runtime.close().then(() => (closed = true));
  await sleep(100);
  assert.not.ok(closed, 'the close waits for the start under way');
  open();
  assert.instance(await starting, JobError);
  await closingNow;
  const { cgroup } = seen;
  assert.ok(cgroup);
  for (const dir of cgroup.joinDirs) {
    assert.not.ok(existsSync(dir), `${dir} is removed`);
    assert.not.ok(existsSync(dirname(dir)), `the executor's ${dirname(dir)} is removed`);
  }
});

closing.run();
