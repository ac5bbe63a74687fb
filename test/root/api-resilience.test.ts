// The API when the executor goes away and comes back, and when the API itself is stopped.
import { status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { HealthCheckResponse_ServingStatus as Serving } from '../../api/generated/grpc/health/v1/health.ts';
import type {
  Job,
  JobServiceClient,
  OutputChunk,
} from '../../api/generated/jobworker/v1/jobworker.ts';
import { JobState } from '../../api/generated/jobworker/v1/jobworker.ts';
import { sleep } from './executor-kit.ts';
import { codeOf, healthOf, start, startStack, unary, until } from './api-kit.ts';
import type { Stack } from './api-kit.ts';

const resilience = suite<{ stack: Stack; ada: JobServiceClient }>('executor outages');
resilience.before(async (context) => {
  context.stack = await startStack();
  context.ada = await context.stack.client('ada');
});
resilience.after(async ({ stack }) => {
  await stack.close();
});

resilience(
  'executor down: UNAVAILABLE with a clear message, NOT_SERVING, the API stays up and reconnects',
  async ({ stack, ada }) => {
    assert.is(await healthOf(stack), Serving.SERVING);
    await stack.executor.stop();
    try {
      await start(ada, { argv: ['true'] });
      assert.unreachable();
    } catch (error) {
      assert.is((error as ServiceError).code, status.UNAVAILABLE);
      assert.is(
        (error as ServiceError).details,
        'the job executor is unavailable; try again shortly',
      );
    }
    await until('health', () => healthOf(stack), Serving.NOT_SERVING);
    assert.is(stack.api.exitCode, null);

    await stack.restartExecutor();
    await until('health', () => healthOf(stack), Serving.SERVING);
    const job = await start(ada, { argv: ['echo', 'back'] });
    assert.is(job.state, JobState.JOB_STATE_RUNNING);
  },
);

resilience(
  'a stream in flight when the executor dies ends with UNAVAILABLE, not a hang; the job runs on',
  async ({ stack, ada }) => {
    const job = await start(ada, { argv: ['sh', '-c', 'while :; do echo tick; sleep 0.05; done'] });
    const stream = ada.watchJobOutput({ id: job.id, offset: 0 });
    await new Promise((resolve) => stream.once('data', resolve));
    const ended = new Promise<number>((resolve) => {
      stream.on('data', () => undefined);
      stream.on('error', (error: ServiceError) => resolve(error.code));
      stream.on('end', () => resolve(status.OK));
    });
    await stack.executor.stop('SIGKILL');
    assert.is(await ended, status.UNAVAILABLE);
    await stack.restartExecutor();
    // As a client would: once the API says it is serving again (a call may otherwise still meet
    // the outage, UNAVAILABLE "try again shortly"; the log says why if one does here).
    await until('health', () => healthOf(stack), Serving.SERVING);
    // Its keeper kept it running; the restarted executor took it over.
    const record = await unary<{ id: string }, Job>(ada, 'getJob', { id: job.id }).catch(
      (error: unknown) => {
        const warnings = stack
          .apiLog()
          .split('\n')
          .filter((line) => line.includes('"level":40') || line.includes('"level":50'));
        throw new Error(`${(error as Error).message}; the API's warnings:\n${warnings.join('\n')}`);
      },
    );
    assert.is(record.state, JobState.JOB_STATE_RUNNING);
  },
);

resilience(
  'jobs keep running while the API restarts; their records and output survive it',
  async ({ stack }) => {
    let ada = await stack.client('ada');
    const job = await start(ada, { argv: ['sh', '-c', 'echo before; sleep 1; echo after'] });
    await stack.restartApi();
    ada = await stack.client('ada');
    let text = '';
    for await (const message of ada.watchJobOutput({ id: job.id, offset: 0 }))
      text += (message as OutputChunk).data.toString();
    assert.is(text, 'before\nafter\n');
    assert.is(
      (await unary<{ id: string }, Job>(ada, 'getJob', { id: job.id })).state,
      JobState.JOB_STATE_COMPLETED,
    );
  },
);

resilience('SIGTERM to the API: it ends its streams and exits 0', async ({ stack }) => {
  const ada = await stack.client('ada');
  const job = await start(ada, { argv: ['sleep', '30'] });
  const stream = ada.watchJobOutput({ id: job.id, offset: 0 });
  const ended = new Promise<string>((resolve) => {
    stream.on('error', (error: ServiceError) => resolve(status[error.code]));
    stream.on('end', () => resolve('end'));
    stream.on('data', () => undefined);
  });
  await sleep(200);
  const exited = new Promise<number | null>((resolve) =>
    stack.api.once('exit', (code) => resolve(code)),
  );
  stack.api.kill('SIGTERM');
  assert.is(await exited, 0);
  assert.is(
    await ended,
    'UNAVAILABLE',
    'the stream was ended with a status telling the watcher to resume',
  );
  assert.is(await codeOf(start(ada, { argv: ['true'] })), status.UNAVAILABLE);
  await stack.restartApi();
});

resilience.run();
