// The API's quotas on running jobs, checked by the executor with each start: in all and per
// owner, counting starts still under way, and freed when a job ends or its start fails.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { callOp } from '../../executor/socket/op-table.ts';
import type { JobError } from '../../shared/errors.ts';
import type { RunQuota } from '../../shared/executor-protocol.ts';
import { openTestRuntime, stopJob } from './executor-kit.ts';
import type { TestRuntime } from './executor-kit.ts';

const quota = suite<{ t: TestRuntime }>('run quota');
quota.before(async (context) => {
  context.t = await openTestRuntime();
});
quota.after(async ({ t }) => {
  await t.close();
});

const sleepy = { argv: ['sleep', '60'] };
const twoEachThreeInAll: RunQuota = { running: 3, runningPerOwner: 2 };

function start(t: TestRuntime, owner: string, spec: unknown = sleepy) {
  return callOp('start', { spec, owner, quota: twoEachThreeInAll }, t.runtime);
}

/** What a start came to: its job's id, or the refusal's code and message. */
async function outcome(promise: Promise<{ id: string }>): Promise<string> {
  try {
    return (await promise).id;
  } catch (error) {
    return `${(error as JobError).code}: ${(error as JobError).message}`;
  }
}

async function stopAll(t: TestRuntime, ids: string[]): Promise<void> {
  for (const id of ids) await stopJob(t.runtime, id, 0);
}

quota('starts past a quota are refused, per owner and in all, naming it', async ({ t }) => {
  const running = [(await start(t, 'alice')).id, (await start(t, 'alice')).id];
  try {
    assert.is(
      await outcome(start(t, 'alice')),
      'resource-exhausted: alice already runs the maximum of 2 jobs per identity',
    );
    running.push((await start(t, 'bob')).id);
    assert.is(
      await outcome(start(t, 'carol')),
      'resource-exhausted: the server already runs its maximum of 3 jobs',
    );
    // An ended job frees its place.
    await stopJob(t.runtime, running.shift() ?? '', 0);
    running.push((await start(t, 'alice')).id);
  } finally {
    await stopAll(t, running);
  }
});

quota('concurrent starts cannot overshoot a quota: starts under way count', async ({ t }) => {
  const outcomes = await Promise.all(Array.from({ length: 5 }, () => outcome(start(t, 'dave'))));
  const started = outcomes.filter((text) => /^[0-9a-f]{32}$/.test(text));
  try {
    assert.is(started.length, 2, outcomes.join('\n'));
    assert.is(outcomes.filter((text) => text.startsWith('resource-exhausted: dave')).length, 3);
  } finally {
    await stopAll(t, started);
  }
});

quota('a start that fails frees its place at once', async ({ t }) => {
  const failed = await outcome(start(t, 'erin', { argv: ['/no/such/program'] }));
  assert.match(failed, /^start-failed: /);
  const running = [(await start(t, 'erin')).id, (await start(t, 'erin')).id];
  await stopAll(t, running);
});

quota('a quota outside the bounds is refused, naming the field', async ({ t }) => {
  const refused = callOp(
    'start',
    { spec: sleepy, owner: 'frank', quota: { running: 0, runningPerOwner: 1 } },
    t.runtime,
  );
  assert.match(await outcome(refused), /^invalid-argument: quota\.running: /);
});

quota.run();
