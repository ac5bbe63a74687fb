// jobctl's limit flags reach the job: observed from inside it (OOM kill, fork limit, cpuset,
// environment, working directory, timeout), and every flag's value as the server applied it.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { jobIdIn, openJobctlKit } from './jobctl-kit.ts';
import type { JobctlKit } from './jobctl-kit.ts';

const MiB = 1024 * 1024;
const limits = suite<{ kit: JobctlKit }>('jobctl limits');
limits.before(async (context) => {
  context.kit = await openJobctlKit();
});
limits.after(async ({ kit }) => {
  await kit.close();
});

async function statusJson(kit: JobctlKit, id: string): Promise<Record<string, unknown>> {
  const ran = await kit.run(['status', '--json', id]);
  assert.is(ran.code, 0, ran.stderr);
  return JSON.parse(ran.stdout.toString()) as Record<string, unknown>;
}

limits(
  '--memory: a job above it is OOM-killed, exits 137, and jobctl says why',
  async ({ kit }) => {
    const ran = await kit.run([
      'run',
      '--memory',
      '32m',
      '--',
      'python3',
      '-c',
      "chunks = [bytes(1048576) + b'x' for _ in range(512)]",
    ]);
    assert.is(ran.code, 137);
    const id = jobIdIn(ran.stderr);
    assert.match(ran.stderr, `jobctl: job ${id} was killed: out of memory (limit 32MiB)\n`);
    const status = await statusJson(kit, id);
    assert.equal([status.state, status.endReason], ['failed', 'oom-killed']);
  },
);

limits('--pids-limit: forks beyond it fail inside the job', async ({ kit }) => {
  // Children that wait to be killed, forked until fork fails: python and 19 of them make 20.
  const program = [
    'import os, signal',
    'children = []',
    'try:',
    '    while len(children) < 60:',
    '        child = os.fork()',
    '        if child == 0:',
    '            signal.pause()',
    '        children.append(child)',
    'except OSError as error:',
    '    print(len(children), error.errno, flush=True)',
    'for child in children:',
    '    os.kill(child, signal.SIGKILL)',
  ].join('\n');
  const ran = await kit.run(['run', '--pids-limit', '20', '--', 'python3', '-c', program]);
  assert.equal([ran.code, ran.stdout.toString()], [0, '19 11\n']);
});

limits('--cpuset-cpus: the job may run only on the cpus named', async ({ kit }) => {
  const ran = await kit.run([
    'run',
    '--cpuset-cpus',
    '1',
    '--',
    'grep',
    'Cpus_allowed_list',
    '/proc/self/status',
  ]);
  assert.equal([ran.code, ran.stdout.toString()], [0, 'Cpus_allowed_list:\t1\n']);
});

limits('--env and --workdir reach the job', async ({ kit }) => {
  const ran = await kit.run(
    [
      'run',
      '-e',
      'GREETING=hello world',
      '--env=EMPTY=',
      '-w',
      '/tmp',
      '--',
      'sh',
      '-c',
      'echo "$GREETING|${EMPTY-unset}"; pwd',
    ],
    {
      env: { GREETING: 'not this one' },
    },
  );
  assert.equal([ran.code, ran.stdout.toString()], [0, 'hello world|\n/tmp\n']);
  const local = await kit.run(['run', '-e', 'FROM_HERE', '--', 'sh', '-c', 'echo "$FROM_HERE"'], {
    env: { FROM_HERE: 'passed along' },
  });
  assert.is(local.stdout.toString(), 'passed along\n');
});

limits(
  '--timeout: the job is stopped when it passes; jobctl exits as the job did',
  async ({ kit }) => {
    const ran = await kit.run(['run', '--timeout', '1s', '--', 'sleep', '600']);
    const id = jobIdIn(ran.stderr);
    const status = await statusJson(kit, id);
    assert.is(status.endReason, 'timed-out');
    assert.is(ran.code, 128 + 15, ran.stderr);
    assert.is(status.signal, 'SIGTERM');
    assert.match(ran.stderr, `jobctl: job ${id} was stopped: it ran past its timeout of 1s\n`);
  },
);

limits("every limit flag, in Docker's units, is what the server applied", async ({ kit }) => {
  const ran = await kit.run([
    'start',
    '--json',
    '--cpus',
    '0.5',
    '--memory',
    '256m',
    '--memory-high',
    '200MiB',
    '--pids-limit',
    '100',
    '--cpuset-cpus',
    '0-1',
    '--device-read-bps',
    '10mb',
    '--device-write-bps',
    '1g',
    '--device-read-iops',
    '1000',
    '--device-write-iops',
    '500',
    '--storage',
    '1g',
    '--storage-kind',
    'disk',
    '--timeout',
    '1m30s',
    '--',
    'true',
  ]);
  assert.is(ran.code, 0, ran.stderr);
  const job = JSON.parse(ran.stdout.toString()) as Record<string, unknown>;
  assert.equal(job.limits, {
    cpus: 0.5,
    memoryBytes: 256 * MiB,
    memoryHighBytes: 200 * MiB,
    pids: 100,
    ioReadBps: 10 * MiB,
    ioWriteBps: 1024 * MiB,
    ioReadIops: 1000,
    ioWriteIops: 500,
    cpusetCpus: '0-1',
    storageBytes: 1024 * MiB,
  });
  assert.is(job.storageKind, 'disk');
  assert.is(job.timeoutSeconds, 90);
  const page = (await kit.run(['status', String(job.id)])).stdout.toString();
  assert.match(
    page,
    /Limits: +cpus 0\.5, memory 256MiB, memory-high 200MiB, pids 100, read 10MiB\/s, write 1GiB\/s, read 1000 IOPS, write 500 IOPS, cpuset 0-1\n/,
  );
  assert.match(page, /Storage: +1GiB on disk\n/);
  assert.match(page, /Timeout: +1m30s\n/);
});

limits(
  '--storage: writing past it fails with ENOSPC in the job; above --memory it is refused, naming the flag',
  async ({ kit }) => {
    const started = await kit.run([
      'start',
      '--storage',
      '8m',
      '--',
      'sh',
      '-c',
      'head -c 16m /dev/zero >/job/fill; echo "exit $?"; wc -c </job/fill',
    ]);
    assert.is(started.code, 0, started.stderr.toString());
    const id = started.stdout.toString().trim();
    const logs = await kit.run(['logs', '-f', id]);
    assert.equal(logs.stdout.toString(), `exit 1\n${8 * MiB}\n`);
    assert.match(logs.stderr.toString(), /No space left on device/);
    const status = await statusJson(kit, id);
    assert.equal(
      [status.state, status.storageKind, (status.limits as Record<string, unknown>).storageBytes],
      ['completed', 'memory', 8 * MiB],
    );
    assert.match((await kit.run(['status', id])).stdout.toString(), /Storage: +8MiB in memory\n/);

    const refused = await kit.run(['run', '--memory', '64m', '--storage', '128m', '--', 'true']);
    assert.is(refused.code, 125);
    assert.is(
      refused.stderr.toString(),
      'jobctl run: --storage "128m": must be at most --memory, 64MiB, for storage in memory: its pages count against the memory limit (disk storage may be larger) (see \'jobctl run --help\')\n',
    );
    // Above the server's own maximum (16 GiB): its answer names the field, jobctl the flag.
    const tooLarge = await kit.run([
      'run',
      '--storage',
      '32g',
      '--storage-kind',
      'disk',
      '--',
      'true',
    ]);
    assert.is(tooLarge.code, 125);
    assert.is(
      tooLarge.stderr.toString(),
      "jobctl: the server refused --storage: 34359738368 is above this executor's maximum of 17179869184\n",
    );
  },
);

limits.run();
