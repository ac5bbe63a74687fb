// Start quotas without a lock across the start (api/start-quotas.ts): reservations in memory
// count until a listing shows their job, never twice.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ExecutorClient } from '../../api/executor-client.ts';
import { StartQuotas } from '../../api/start-quotas.ts';
import type { ListResult } from '../../shared/executor-protocol.ts';
import type { JobRecord } from '../../shared/job.ts';

const quotas = suite('start quotas');

const bounds = { identity: 'alice', deadline: Infinity };

/** An executor whose listings and starts the test answers by hand, in the order it chooses. */
function fakeExecutor() {
  const listings: ((jobs: string[]) => void)[] = [];
  const executor = {
    listJobs: () =>
      new Promise<ListResult>((resolve) =>
        listings.push((ids) =>
          resolve({
            jobs: ids.map((id) => ({ id, owner: 'alice' }) as JobRecord),
            more: false,
          }),
        ),
      ),
  } as unknown as ExecutorClient;
  return { executor, listings };
}

function manualStart() {
  let answer: (id: string) => void = () => undefined;
  const started = new Promise<JobRecord>((resolve) => {
    answer = (id) => resolve({ id, owner: 'alice' } as JobRecord);
  });
  return { start: () => started, answer };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

const outcome = (promise: Promise<JobRecord>) =>
  promise.then(
    (job) => job.id,
    (error: Error) => error.message,
  );

quotas('a start in flight counts against a concurrent one', async () => {
  const { executor, listings } = fakeExecutor();
  const limits = new StartQuotas(executor, { maxRunningJobs: 10, maxRunningJobsPerIdentity: 1 });
  const first = manualStart();
  const a = outcome(limits.start('alice', bounds, first.start));
  const b = outcome(limits.start('alice', bounds, manualStart().start));
  listings[0]?.([]);
  listings[1]?.([]); // read before the first job exists
  await settle();
  first.answer('job-a');
  assert.is(await a, 'job-a');
  assert.is(await b, 'alice already runs the maximum of 1 jobs per identity');
});

quotas('an answered start counts for listings sent before its answer, once', async () => {
  const { executor, listings } = fakeExecutor();
  const limits = new StartQuotas(executor, { maxRunningJobs: 2, maxRunningJobsPerIdentity: 2 });
  const first = manualStart();
  const a = outcome(limits.start('alice', bounds, first.start));
  listings[0]?.([]);
  await settle();
  // Sent while the first start is in flight, answered after it, without its job.
  const second = manualStart();
  const b = outcome(limits.start('alice', bounds, second.start));
  first.answer('job-a');
  assert.is(await a, 'job-a');
  listings[1]?.([]);
  await settle();
  second.answer('job-b');
  assert.is(await b, 'job-b');
  // Sent after both answers: shows both jobs, and counts neither reservation again.
  const c = outcome(limits.start('alice', bounds, manualStart().start));
  listings[2]?.(['job-a', 'job-b']);
  assert.is(await c, 'the server already runs its maximum of 2 jobs');
  const third = manualStart();
  const d = outcome(limits.start('alice', bounds, third.start));
  listings[3]?.(['job-a']);
  await settle();
  third.answer('job-c');
  assert.is(await d, 'job-c', 'job-b has ended: one running, one place free');
});

quotas('a failed start frees its place at once', async () => {
  const { executor, listings } = fakeExecutor();
  const limits = new StartQuotas(executor, { maxRunningJobs: 1, maxRunningJobsPerIdentity: 1 });
  const failing = outcome(
    limits.start('alice', bounds, () => Promise.reject(new Error('exec failed'))),
  );
  listings[0]?.([]);
  assert.is(await failing, 'exec failed');
  const next = manualStart();
  const b = outcome(limits.start('alice', bounds, next.start));
  listings[1]?.([]);
  await settle();
  next.answer('job-b');
  assert.is(await b, 'job-b');
});

quotas.run();
