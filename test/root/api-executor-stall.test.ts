// The executor stops answering (SIGSTOP: its socket still accepts connections) and comes back:
// every call ends in bounded time with UNAVAILABLE or DEADLINE_EXCEEDED and a message for clients,
// health turns NOT_SERVING and back, open output streams end so that watchers resume.
import { Metadata, status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { HealthCheckResponse_ServingStatus as Serving } from '../../api/generated/grpc/health/v1/health.ts';
import type {
  Job,
  JobServiceClient,
  ListJobsResponse,
} from '../../api/generated/jobworker/v1/jobworker.ts';
import { healthOf, start, startStack, unary, until } from './api-kit.ts';
import type { Stack } from './api-kit.ts';

const stall = suite<{ stack: Stack; ada: JobServiceClient }>('executor not answering');
stall.before(async (context) => {
  context.stack = await startStack();
  context.ada = await context.stack.client('ada');
});
stall.after(async ({ stack }) => {
  signalExecutor(stack, 'SIGCONT');
  await stack.close();
});

function signalExecutor(stack: Stack, signal: 'SIGSTOP' | 'SIGCONT'): void {
  const pid = stack.executor.child.pid;
  if (pid !== undefined && stack.executor.child.exitCode === null) process.kill(pid, signal);
}

/**
 * How a call ended; one still open after `limitMs` (far beyond every bound the server keeps)
 * counts as hung.
 */
async function ending(call: Promise<unknown>, limitMs = 45_000): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve('still waiting'), limitMs);
  });
  const outcome = await Promise.race([
    call.then(
      () => 'OK',
      (error: ServiceError) => `${status[error.code]}: ${error.details}`,
    ),
    hung,
  ]);
  clearTimeout(timer);
  return outcome;
}

const listAll = (client: JobServiceClient) =>
  unary<object, ListJobsResponse>(client, 'listJobs', {
    owner: '',
    state: 0,
    pageSize: 0,
    pageToken: '',
  });
const withDeadline = (ms: number) => ({ deadline: new Date(Date.now() + ms) });
const UNAVAILABLE = 'UNAVAILABLE: the job executor is unavailable; try again shortly';

stall(
  'a stopped executor: calls end in bounded time, health turns NOT_SERVING, then SERVING again',
  async ({ stack, ada }) => {
    const running = await start(ada, {
      argv: ['sh', '-c', 'while :; do echo tick; sleep 0.1; done'],
    });
    const watch = ada.watchJobOutput({ id: running.id, offset: 0 });
    await new Promise((resolve) => watch.once('data', resolve));
    const watchEnded = new Promise<string>((resolve) => {
      watch.on('data', () => undefined);
      watch.on('error', (error: ServiceError) =>
        resolve(`${status[error.code]}: ${error.details}`),
      );
      watch.on('end', () => resolve('end'));
    });
    assert.is(await healthOf(stack), Serving.SERVING);

    signalExecutor(stack, 'SIGSTOP');
    try {
      // Before the API has noticed: no client deadline at all, and a short one.
      const getJob = ending(unary<{ id: string }, Job>(ada, 'getJob', { id: running.id }));
      const listJobs = ending(listAll(ada));
      const shortGet = ending(
        new Promise((resolve, reject) =>
          ada.getJob({ id: running.id }, new Metadata(), withDeadline(1000), (error, job) =>
            error ? reject(error) : resolve(job),
          ),
        ),
      );
      const startedWhileStopped = ending(
        new Promise<Job>((resolve, reject) =>
          ada.startJob(
            { argv: ['true'], env: {}, workingDir: '' },
            new Metadata(),
            withDeadline(2000),
            (error, job) => (error ? reject(error) : resolve(job)),
          ),
        ),
      );

      assert.match(await shortGet, /^DEADLINE_EXCEEDED/);
      assert.match(await startedWhileStopped, /^DEADLINE_EXCEEDED/);
      for (const [name, call] of [
        ['GetJob', getJob],
        ['ListJobs', listJobs],
      ] as const) {
        // Ended by the server, with its own words: not hung, not the client's deadline.
        const outcome = await call;
        assert.ok(
          outcome === UNAVAILABLE || outcome.startsWith('DEADLINE_EXCEEDED: the job executor'),
          `${name}: ${outcome}`,
        );
      }
      await until('health', () => healthOf(stack), Serving.NOT_SERVING, 15_000);
      assert.is(await watchEnded, UNAVAILABLE, 'an open output stream ends, to be resumed');

      // Once noticed, calls fail at once: a start or stop would otherwise wait for the executor
      // (up to 30 s, or the grace period) and end DEADLINE_EXCEEDED.
      for (const [name, call] of [
        ['GetJob', () => unary(ada, 'getJob', { id: running.id })],
        ['StartJob', () => start(ada, { argv: ['true'] })],
        ['StopJob', () => unary(ada, 'stopJob', { id: running.id })],
        ['ListJobs', () => listAll(ada)],
        [
          'WatchJobOutput',
          () =>
            new Promise((resolve, reject) => {
              const stream = ada.watchJobOutput({ id: running.id, offset: 0 });
              stream.on('data', () => undefined);
              stream.on('error', reject);
              stream.on('end', resolve);
            }),
        ],
      ] as const) {
        assert.is(await ending(call()), UNAVAILABLE, name);
      }
    } finally {
      signalExecutor(stack, 'SIGCONT');
    }

    await until('health', () => healthOf(stack), Serving.SERVING, 15_000);
    const record = await unary<{ id: string }, Job>(ada, 'getJob', { id: running.id });
    assert.is(record.id, running.id);
    assert.ok((await listAll(ada)).jobs.some((job) => job.id === running.id));
    await unary(ada, 'stopJob', { id: running.id });
  },
);

stall.run();
