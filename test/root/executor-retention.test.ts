// Retention on a real runtime: ended jobs beyond the configured count or age are deleted with
// their output; running jobs and anything that is not a job directory are never touched.
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openTestRuntime, shell, sleep } from './executor-kit.ts';
import type { TestRuntime } from './executor-kit.ts';

const retention = suite<{ t: TestRuntime }>('retention');
retention.before(async (context) => {
  context.t = await openTestRuntime({ retention: { maxJobs: 3, maxAgeMs: 60_000 } });
});
retention.after(async ({ t }) => {
  await t.close();
});

const jobDirs = async (t: TestRuntime) =>
  (await readdir(join(t.config.stateDir, 'jobs')))
    .filter((name) => /^[0-9a-f]{32}$/.test(name))
    .sort();

retention(
  'beyond maxJobs the oldest ended jobs go, records and output; a running job stays',
  async ({ t }) => {
    await writeFile(join(t.config.stateDir, 'jobs', 'not-a-job.txt'), 'left alone');
    const running = await t.runtime.start({ argv: ['sleep', '60'] }, 'tester');
    const ended: string[] = [];
    for (let i = 0; i < 5; i += 1) ended.push((await shell(t.runtime, `echo ${i}`)).record.id);
    await sleep(100); // the sweep after the last job runs in the background
    const kept = ended.slice(-3);
    assert.equal(await jobDirs(t), [...kept, running.id].sort());
    assert.equal(
      t.runtime
        .list()
        .jobs.map((job) => job.id)
        .sort(),
      [...kept, running.id].sort(),
    );
    assert.ok(existsSync(join(t.config.stateDir, 'jobs', 'not-a-job.txt')));
    await t.runtime.stop(running.id, 500);
  },
);

retention.run();

const aging = suite<{ t: TestRuntime }>('retention by age');
aging.before(async (context) => {
  context.t = await openTestRuntime({ retention: { maxAgeMs: 300 } });
});
aging.after(async ({ t }) => {
  await t.close();
});

aging('an ended job older than maxAgeMs is deleted at the next sweep', async ({ t }) => {
  const old = (await shell(t.runtime, 'echo old')).record.id;
  await sleep(400);
  const fresh = (await shell(t.runtime, 'echo fresh')).record.id;
  await sleep(100);
  assert.equal(await jobDirs(t), [fresh]);
  assert.equal(await t.runtime.applyRetention(), []);
  assert.not.ok(t.runtime.list().jobs.some((job) => job.id === old));
});

aging.run();
