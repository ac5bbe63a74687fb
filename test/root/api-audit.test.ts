// Clients that give up: a StartJob cancelled or out of time either starts no job or starts one
// that is audited, and every call leaves exactly one received and one completed audit line.
import { Metadata, status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type {
  Job,
  JobServiceClient,
  ListJobsResponse,
} from '../../api/generated/jobworker/v1/jobworker.ts';
import { auditLines, startStack, unary, until } from './api-kit.ts';
import type { Stack } from './api-kit.ts';

const audit = suite<{ stack: Stack }>('audit of calls whose client gave up');
audit.before(async (context) => {
  context.stack = await startStack({
    quotas: { maxRunningJobs: 500, maxRunningJobsPerIdentity: 500 },
  });
});
audit.after(async ({ stack }) => {
  await stack.close();
});

const START = '/jobworker.v1.JobService/StartJob';

/** A StartJob that gives up after `deadlineMs`, or is cancelled after `cancelMs`. */
function startGivingUp(
  client: JobServiceClient,
  giveUp: { deadlineMs: number } | { cancelMs: number },
): Promise<string> {
  return new Promise((resolve) => {
    const options = 'deadlineMs' in giveUp ? { deadline: Date.now() + giveUp.deadlineMs } : {};
    const call = client.startJob(
      { argv: ['sleep', '600'], env: {}, workingDir: '' },
      new Metadata(),
      options,
      (error: ServiceError | null) => resolve(error ? status[error.code] : 'OK'),
    );
    if ('cancelMs' in giveUp) setTimeout(() => call.cancel(), giveUp.cancelMs);
  });
}

async function jobsOf(client: JobServiceClient): Promise<Job[]> {
  return (
    await unary<object, ListJobsResponse>(client, 'listJobs', {
      owner: '',
      state: 0,
      pageSize: 0,
      pageToken: '',
    })
  ).jobs;
}

for (const [who, giveUp, title] of [
  ['alice', (i: number) => ({ deadlineMs: 1 + (i % 12) * 3 }), 'deadlines of 1 to 34 ms'],
  ['bob', (i: number) => ({ cancelMs: i % 12 }), 'a cancel after 0 to 11 ms'],
] as const) {
  audit(
    `StartJob with ${title}: no job started unaudited; one received and one completed line each`,
    async ({ stack }) => {
      const client = await stack.client(who);
      const calls = 48;
      const outcomes: string[] = [];
      // A few at a time, as a client retrying with short deadlines would.
      for (let i = 0; i < calls; i += 4)
        outcomes.push(
          ...(await Promise.all([0, 1, 2, 3].map((j) => startGivingUp(client, giveUp(i + j))))),
        );
      assert.ok(
        outcomes.some((outcome) => outcome !== 'OK'),
        `every call was answered in time: ${outcomes.join(', ')}`,
      );
      const mine = () =>
        auditLines(stack).filter((entry) => entry.who === who && entry.method === START);
      const completed = () => mine().filter((entry) => entry.stage === 'completed');
      // A call the client gave up on before it reached the server is no call of the server's.
      const received = () => mine().filter((entry) => entry.stage === 'received');
      const unfinished = () => {
        const done = new Set(completed().map((entry) => entry.call));
        return received().filter((entry) => !done.has(entry.call)).length;
      };
      await until('every call received completed', () => Promise.resolve(unfinished()), 0, 30_000);
      assert.ok(received().length >= calls / 2, `only ${received().length} calls reached the API`);
      assert.is(completed().length, received().length, 'exactly one completed line per call');
      const jobs = await jobsOf(client);
      const audited = completed()
        .map((entry) => entry.job)
        .filter((job): job is string => typeof job === 'string');
      assert.equal(
        new Set(jobs.map((job) => job.id)),
        new Set(audited),
        'the jobs started are exactly those audited',
      );
      assert.is(audited.length, jobs.length, 'no job audited twice');
      // A job started for a client that had gone says so: its outcome, and what the start did.
      for (const entry of completed())
        if (entry.outcome !== 'OK' && typeof entry.job === 'string')
          assert.is(entry.result, 'OK', JSON.stringify(entry));
      for (const job of jobs) await unary(client, 'stopJob', { id: job.id });
    },
  );
}

audit.run();
