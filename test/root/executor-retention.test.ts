// Retention on a real runtime: ended jobs beyond the configured count or age are deleted with
// their output; running jobs and anything that is not a job directory are never touched.
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openTestRuntime, shell, sleep, startJob, stopJob } from './executor-kit.ts';
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

/**
 * The job directories once they are `expected`, or as they are after 10 s: the sweep after a job
 * ends runs in the background, and takes longer on a busy machine.
 */
async function jobDirsOnceSwept(t: TestRuntime, expected: string[]): Promise<string[]> {
  const deadline = Date.now() + 10_000;
  let dirs = await jobDirs(t);
  while (JSON.stringify(dirs) !== JSON.stringify(expected) && Date.now() < deadline) {
    await sleep(20);
    dirs = await jobDirs(t);
  }
  return dirs;
}

retention(
  'beyond maxJobs the oldest ended jobs go, records and output; a running job stays',
  async ({ t }) => {
    await writeFile(join(t.config.stateDir, 'jobs', 'not-a-job.txt'), 'left alone');
    const running = await startJob(t.runtime, { argv: ['sleep', '60'] }, 'tester');
    const ended: string[] = [];
    for (let i = 0; i < 5; i += 1) ended.push((await shell(t.runtime, `echo ${i}`)).record.id);
    const kept = ended.slice(-3);
    assert.equal(
      await jobDirsOnceSwept(t, [...kept, running.id].sort()),
      [...kept, running.id].sort(),
    );
    assert.equal(
      (await t.runtime.list()).jobs.map((job) => job.id).sort(),
      [...kept, running.id].sort(),
    );
    assert.ok(existsSync(join(t.config.stateDir, 'jobs', 'not-a-job.txt')));
    await stopJob(t.runtime, running.id, 500);
  },
);

const bigRecords = suite<{ t: TestRuntime }>('retention by record size');
bigRecords.before(async (context) => {
  context.t = await openTestRuntime({ retention: { maxRecordBytes: 1024 * 1024 } });
});
bigRecords.after(async ({ t }) => {
  await t.close();
});

bigRecords(
  'records of ended jobs are bounded in bytes; a large one is read back whole from disk',
  async ({ t }) => {
    // A long argv makes a long record (env values are never stored): about 240 KiB each.
    const bulky = 'x'.repeat(120 * 1024);
    const ids: string[] = [];
    for (let i = 0; i < 6; i += 1) {
      const started = await startJob(
        t.runtime,
        { argv: ['true', bulky, bulky, String(i)] },
        'tester',
      );
      await t.runtime.wait(started.id);
      ids.push(started.id);
    }
    const kept = new Set(await jobDirsOnceSwept(t, ids.slice(2).sort()));
    // Under a 1 MiB budget the four newest stay, the oldest go first.
    assert.equal(
      ids.map((id) => kept.has(id)),
      [false, false, true, true, true, true],
    );
    const newest = await t.runtime.get(ids[5] ?? '');
    assert.equal(newest.argv, ['true', bulky, bulky, '5']);
    // Pages stay within one frame: big records come a few at a time.
    const argvs: number[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await t.runtime.list(after === undefined ? {} : { after });
      argvs.push(...page.jobs.map((job) => job.argv.length));
      after = page.jobs.at(-1)?.id;
      if (!page.more) break;
    }
    assert.equal(argvs, [4, 4, 4, 4]);
  },
);

retention.run();
bigRecords.run();

const aging = suite<{ t: TestRuntime }>('retention by age');
aging.before(async (context) => {
  // Wide margins: a loaded machine stretches every step of the test but not maxAgeMs.
  context.t = await openTestRuntime({ retention: { maxAgeMs: 1500 } });
});
aging.after(async ({ t }) => {
  await t.close();
});

aging('an ended job older than maxAgeMs is deleted at the next sweep', async ({ t }) => {
  const old = (await shell(t.runtime, 'echo old')).record.id;
  await sleep(1700);
  const fresh = (await shell(t.runtime, 'echo fresh')).record.id;
  assert.equal(await jobDirsOnceSwept(t, [fresh]), [fresh]);
  assert.equal(await t.runtime.applyRetention(), []);
  assert.not.ok((await t.runtime.list()).jobs.some((job) => job.id === old));
});

aging.run();
