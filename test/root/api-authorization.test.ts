// Who may do what, proved on the real stack: roles × methods × ownership, quotas, validation,
// the error mapping, and one audit line per call.
import { status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type {
  JobServiceClient,
  Job,
  ListJobsResponse,
} from '../../api/generated/jobworker/v1/jobworker.ts';
import { JobState } from '../../api/generated/jobworker/v1/jobworker.ts';
import { auditLines, codeOf, start, startStack, unary, watch } from './api-kit.ts';
import type { Stack, Who } from './api-kit.ts';
import { availableParallelism } from 'node:os';

interface Context {
  stack: Stack;
  as: Record<Who, JobServiceClient>;
}

const sleepy = { argv: ['sleep', '300'] };
const authz = suite<Context>('authorization');
authz.before(async (context) => {
  context.stack = await startStack();
  const as = {} as Record<Who, JobServiceClient>;
  for (const who of ['ada', 'alice', 'bob', 'vera', 'nora'] as const)
    as[who] = await context.stack.client(who);
  context.as = as;
});
authz.after(async ({ stack }) => {
  await stack.close();
});

const get = (client: JobServiceClient, id: string) =>
  unary<{ id: string }, Job>(client, 'getJob', { id });
const stop = (client: JobServiceClient, id: string) =>
  unary<{ id: string }, Job>(client, 'stopJob', { id });
const list = (client: JobServiceClient, request: Record<string, unknown> = {}) =>
  unary<Record<string, unknown>, ListJobsResponse>(client, 'listJobs', {
    owner: '',
    state: 0,
    pageSize: 0,
    pageToken: '',
    ...request,
  });

authz('the role × method × ownership matrix', async ({ as }) => {
  const alicesJob = await start(as.alice, sleepy);
  const bobsJob = await start(as.bob, sleepy);
  const missing = 'f'.repeat(32);
  const { OK, NOT_FOUND, PERMISSION_DENIED } = status;
  // [who, what, expected code]
  const rows: [Who, string, () => Promise<unknown>, status][] = [
    ['ada', 'start', () => start(as.ada, { argv: ['true'] }), OK],
    ['alice', 'start', () => start(as.alice, { argv: ['true'] }), OK],
    ['vera', 'start', () => start(as.vera, { argv: ['true'] }), PERMISSION_DENIED],
    ['nora', 'start', () => start(as.nora, { argv: ['true'] }), PERMISSION_DENIED],
    ['ada', "get bob's", () => get(as.ada, bobsJob.id), OK],
    ['alice', 'get own', () => get(as.alice, alicesJob.id), OK],
    ['alice', "get bob's", () => get(as.alice, bobsJob.id), NOT_FOUND],
    ['alice', 'get missing', () => get(as.alice, missing), NOT_FOUND],
    ['vera', "get bob's", () => get(as.vera, bobsJob.id), OK],
    // Admins' and viewers' calls go to the executor without an owner lookup: still not-found.
    ['ada', 'get missing', () => get(as.ada, missing), NOT_FOUND],
    ['vera', 'watch missing', () => watch(as.vera, missing), NOT_FOUND],
    ['ada', 'watch missing', () => watch(as.ada, missing), NOT_FOUND],
    ['ada', 'stop missing', () => stop(as.ada, missing), NOT_FOUND],
    ['nora', "get bob's", () => get(as.nora, bobsJob.id), PERMISSION_DENIED],
    ['alice', "watch bob's", () => watch(as.alice, bobsJob.id), NOT_FOUND],
    ['nora', "watch bob's", () => watch(as.nora, bobsJob.id), PERMISSION_DENIED],
    ['alice', "stop bob's", () => stop(as.alice, bobsJob.id), NOT_FOUND],
    ['vera', "stop bob's", () => stop(as.vera, bobsJob.id), PERMISSION_DENIED],
    ['nora', "stop bob's", () => stop(as.nora, bobsJob.id), PERMISSION_DENIED],
    ['alice', 'list bob', () => list(as.alice, { owner: 'bob' }), PERMISSION_DENIED],
    ['nora', 'list', () => list(as.nora), PERMISSION_DENIED],
    ['alice', 'stop own', () => stop(as.alice, alicesJob.id), OK],
    ['ada', "stop bob's", () => stop(as.ada, bobsJob.id), OK],
  ];
  const failures: string[] = [];
  for (const [who, what, call, expected] of rows) {
    const code = await codeOf(call());
    if (code !== expected)
      failures.push(`${who} ${what}: ${status[code]}, expected ${status[expected]}`);
  }
  assert.equal(failures, []);
});

authz("someone else's job and a missing one answer exactly alike", async ({ as }) => {
  const bobsJob = await start(as.bob, { argv: ['true'] });
  const detail = async (id: string) => {
    try {
      await get(as.alice, id);
      return 'found';
    } catch (error) {
      return (error as ServiceError).details.replace(id, '<id>');
    }
  };
  assert.is(await detail(bobsJob.id), await detail('e'.repeat(32)));
});

authz(
  "listings: users see only their own jobs, viewers and admins see everyone's",
  async ({ as }) => {
    await start(as.alice, { argv: ['true'] });
    await start(as.bob, { argv: ['true'] });
    const owners = async (client: JobServiceClient) =>
      new Set((await list(client)).jobs.map((job) => job.owner));
    assert.equal(await owners(as.alice), new Set(['alice']));
    assert.equal(await owners(as.bob), new Set(['bob']));
    assert.ok((await owners(as.vera)).has('alice') && (await owners(as.vera)).has('bob'));
    assert.ok((await owners(as.ada)).has('alice') && (await owners(as.ada)).has('bob'));
    assert.equal(
      new Set((await list(as.ada, { owner: 'bob' })).jobs.map((job) => job.owner)),
      new Set(['bob']),
    );
  },
);

authz('listings page with a token and filter by state', async ({ as }) => {
  for (let i = 0; i < 5; i += 1) await start(as.bob, { argv: ['true'] });
  const seen: string[] = [];
  let token = '';
  let pages = 0;
  do {
    const page = await list(as.bob, { pageSize: 2, pageToken: token });
    seen.push(...page.jobs.map((job) => job.id));
    token = page.nextPageToken;
    pages += 1;
  } while (token !== '');
  const all = (await list(as.bob)).jobs.map((job) => job.id);
  assert.equal(seen, all);
  assert.ok(pages >= 3);
  const running = await list(as.ada, { state: JobState.JOB_STATE_RUNNING });
  assert.ok(running.jobs.every((job) => job.state === JobState.JOB_STATE_RUNNING));
  assert.is(await codeOf(list(as.bob, { pageToken: 'not-a-token' })), status.INVALID_ARGUMENT);
});

authz(
  'invalid requests are INVALID_ARGUMENT naming the field as the proto spells it',
  async ({ as }) => {
    const message = async (promise: Promise<unknown>) => {
      try {
        await promise;
        return 'accepted';
      } catch (error) {
        return `${status[(error as ServiceError).code]}: ${(error as ServiceError).details}`;
      }
    };
    // Thunks: each call starts only when its turn comes (a rejection nobody awaits would crash).
    const cases: [() => Promise<unknown>, string][] = [
      [() => start(as.alice, { argv: [] }), 'INVALID_ARGUMENT: argv: must not be empty'],
      [
        () => start(as.alice, { argv: ['true'], workingDir: 'relative' }),
        'INVALID_ARGUMENT: working_dir: must be an absolute path',
      ],
      [
        () => start(as.alice, { argv: ['true'], env: { '9LIVES': 'x' } }),
        'INVALID_ARGUMENT: env key "9LIVES": must be a name of letters, digits and _, not starting with a digit',
      ],
      [
        () => start(as.alice, { argv: ['true'], env: { MY_VAR: 'a\0b' } }),
        'INVALID_ARGUMENT: env["MY_VAR"]: must not contain a NUL character',
      ],
      [
        () => start(as.alice, { argv: ['true'], limits: { memoryBytes: 1024 } }),
        'INVALID_ARGUMENT: limits.memory_bytes: must be at least 4194304 bytes',
      ],
      [
        () => start(as.alice, { argv: ['true'], limits: { cpus: 5000 } }),
        'INVALID_ARGUMENT: limits.cpus: must be at most 4096 cores',
      ],
      [
        () => start(as.alice, { argv: ['true'], limits: { cpus: 100 } }),
        // The configured maximum (64), clamped to this host's CPUs.
        `INVALID_ARGUMENT: limits.cpus: 100 is above this executor's maximum of ${Math.min(64, availableParallelism())}`,
      ],
      [
        () => start(as.alice, { argv: ['true'], limits: { cpusetCpus: 'all' } }),
        'INVALID_ARGUMENT: limits.cpuset_cpus: must be a cpu list such as 0-1,3',
      ],
      [
        () => start(as.alice, { argv: ['true'], timeout: { seconds: 0, nanos: 1 } }),
        'INVALID_ARGUMENT: timeout: must be a whole number of milliseconds',
      ],
      [
        () => get(as.alice, '../../etc/passwd'),
        'INVALID_ARGUMENT: id: must be a job id (32 lowercase hex characters)',
      ],
    ];
    for (const [call, expected] of cases) assert.is(await message(call()), expected);
  },
);

authz(
  'a program that cannot be executed is FAILED_PRECONDITION with errno, stage and job id trailers',
  async ({ as }) => {
    for (const [argv, errno, text] of [
      [['no-such-program'], 'ENOENT', 'exec "no-such-program": no such file or directory'],
      [['/etc/passwd'], 'EACCES', 'exec "/etc/passwd": permission denied'],
    ] as const) {
      try {
        await start(as.alice, { argv: [...argv] });
        assert.unreachable();
      } catch (error) {
        const failure = error as ServiceError;
        assert.is(failure.code, status.FAILED_PRECONDITION);
        assert.is(failure.details, text);
        assert.equal(failure.metadata.get('jobworker-errno'), [errno]);
        assert.equal(failure.metadata.get('jobworker-stage'), ['exec']);
        const [id] = failure.metadata.get('jobworker-job-id') as string[];
        const record = await get(as.alice, id ?? '');
        assert.is(record.error, text);
      }
    }
  },
);

authz('a request above the size bound is refused before it is read', async ({ as }) => {
  const big = 'x'.repeat(2 * 1024 * 1024);
  assert.is(await codeOf(start(as.alice, { argv: ['echo', big] })), status.RESOURCE_EXHAUSTED);
});

authz(
  'every call is audited when received and once with its outcome: who, role, method, job',
  async ({ stack, as }) => {
    const job = await start(as.alice, { argv: ['true'] });
    await codeOf(get(as.bob, job.id));
    // The outcome line may reach the log a moment after the client has its answer.
    const completedOf = (lines: Record<string, unknown>[]) =>
      lines.filter((entry) => entry.stage === 'completed' && entry.job === job.id);
    const deadline = Date.now() + 10_000;
    while (completedOf(auditLines(stack)).length < 2 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    const audit = auditLines(stack);
    const completed = completedOf(audit);
    const pick = (entry: Record<string, unknown>) => [
      entry.who,
      entry.role,
      entry.method,
      entry.job,
      entry.outcome,
    ];
    assert.equal(completed.map(pick), [
      ['alice', 'user', '/jobworker.v1.JobService/StartJob', job.id, 'OK'],
      ['bob', 'user', '/jobworker.v1.JobService/GetJob', job.id, 'NOT_FOUND'],
    ]);
    for (const entry of completed) {
      const stages = audit.filter((line) => line.call === entry.call).map((line) => line.stage);
      assert.equal(stages, ['received', 'completed']);
    }
    const refused = audit.filter((entry) => entry.who === 'nora' && entry.stage === 'completed');
    assert.ok(
      refused.length > 0 && refused.every((entry) => entry.outcome === 'PERMISSION_DENIED'),
    );
  },
);

authz.run();

const quotas = suite<{ stack: Stack }>('quotas');
quotas.before(async (context) => {
  context.stack = await startStack(
    { quotas: { maxRunningJobs: 3, maxRunningJobsPerIdentity: 2 } },
    // The executor logs each request it receives (op and connection).
    { logLevel: 'debug' },
  );
});
quotas.after(async ({ stack }) => {
  await stack.close();
});

quotas(
  'running jobs are capped per identity and in total: RESOURCE_EXHAUSTED',
  async ({ stack }) => {
    const alice = await stack.client('alice');
    const bob = await stack.client('bob');
    const ada = await stack.client('ada');
    const first = await start(alice, sleepy);
    await start(alice, sleepy);
    const perIdentity = await codeOf(start(alice, sleepy));
    assert.is(perIdentity, status.RESOURCE_EXHAUSTED);
    await start(bob, sleepy);
    try {
      await start(ada, sleepy);
      assert.unreachable();
    } catch (error) {
      assert.is((error as ServiceError).code, status.RESOURCE_EXHAUSTED);
      assert.match((error as ServiceError).details, /maximum of 3 jobs/);
    }
    await stop(alice, first.id);
    const again = await start(alice, sleepy);
    assert.is(again.owner, 'alice');
  },
);

quotas('concurrent starts cannot overshoot a quota', async ({ stack }) => {
  const ada = await stack.client('ada');
  for (const job of (await list(ada, { state: JobState.JOB_STATE_RUNNING })).jobs)
    await stop(ada, job.id);
  const bob = await stack.client('bob');
  const codes = await Promise.all(Array.from({ length: 6 }, () => codeOf(start(bob, sleepy))));
  assert.is(codes.filter((code) => code === status.OK).length, 2);
  assert.is(codes.filter((code) => code === status.RESOURCE_EXHAUSTED).length, 4);
});

quotas(
  'concurrent starts are not serialised, and list nothing: both reach the executor before either has started',
  async ({ stack }) => {
    const ada = await stack.client('ada');
    for (const job of (await list(ada, { state: JobState.JOB_STATE_RUNNING })).jobs)
      await stop(ada, job.id);
    // Two starts on one connection arrive together (ada may run two: the per-identity quota).
    const logged = stack.executor.log().length;
    const jobs = await Promise.all([start(ada, sleepy), start(ada, sleepy)]);
    // The executor logs each request it receives, and each job once it has started.
    const lines = stack.executor
      .log()
      .slice(logged)
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { msg: string; op?: string });
    const requests = lines.filter((line) => line.msg === 'request');
    // The quotas go with the start: no listing of running jobs first.
    assert.not.ok(
      requests.some((request) => request.op === 'list'),
      JSON.stringify(requests),
    );
    const firstStarted = lines.findIndex((line) => line.msg === 'job started');
    assert.ok(firstStarted > 0, 'the executor logged the starts');
    const startsBefore = lines
      .slice(0, firstStarted)
      .filter((line) => line.msg === 'request' && line.op === 'start');
    assert.is(startsBefore.length, 2, JSON.stringify(lines));
    for (const job of jobs) await stop(ada, job.id);
  },
);

quotas.run();

const owners = suite<{ stack: Stack }>('job owners');
owners.before(async (context) => {
  // The executor logs each request it receives (op and connection).
  context.stack = await startStack({}, { logLevel: 'debug' });
});
owners.after(async ({ stack }) => {
  await stack.close();
});

owners(
  "a user naming a job the API has seen costs no owner lookup, and still not another's",
  async ({ stack }) => {
    const [alice, bob] = [await stack.client('alice'), await stack.client('bob')];
    const job = await start(alice, { argv: ['sh', '-c', 'echo hi; sleep 300'] });
    const logged = stack.executor.log().length;
    assert.is((await get(alice, job.id)).owner, 'alice');
    assert.is(await codeOf(get(bob, job.id)), status.NOT_FOUND);
    assert.is(await codeOf(stop(bob, job.id)), status.NOT_FOUND);
    const stopped = stop(alice, job.id);
    const watched = await watch(alice, job.id);
    assert.is(watched.text, 'hi\n');
    assert.is((await stopped).owner, 'alice');
    const ops = stack.executor
      .log()
      .slice(logged)
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { msg: string; op?: string })
      .filter((line) => line.msg === 'request')
      .map((line) => line.op);
    // Its start named the job's owner: only the calls themselves reach the executor.
    assert.equal(ops.sort(), ['get', 'read-output', 'stop'], JSON.stringify(ops));
  },
);

owners.run();
