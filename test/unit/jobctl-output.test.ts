// What jobctl prints and exits with: human sizes and durations, command lines, the list table,
// the status page, the --json object, and the exit code for each way a job can end.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { EXIT, startFailureExitCode } from '../../api/jobctl/exit-codes.ts';
import { jobExitCode } from '../../api/jobctl/job-exit-code.ts';
import {
  commandLine,
  humanBytes,
  humanDuration,
  shellQuote,
  table,
  timeAgo,
  truncate,
} from '../../api/jobctl/format.ts';
import {
  exitOrReason,
  jobJson,
  LIST_HEADERS,
  listRow,
  statusText,
} from '../../api/jobctl/job-view.ts';
import { EndReason, JobState, StorageKind } from '../../api/generated/jobworker/v1/jobworker.ts';
import type { Job } from '../../api/generated/jobworker/v1/jobworker.ts';

const output = suite('jobctl output');

const NOW = new Date('2025-01-31T12:00:00Z');
const ID = '0123456789abcdef0123456789abcdef';

function job(fields: Partial<Job> = {}): Job {
  return {
    id: ID,
    owner: 'alice',
    argv: ['sh', '-c', 'echo hi'],
    envNames: [],
    workingDir: '/job',
    state: JobState.JOB_STATE_RUNNING,
    endReason: EndReason.END_REASON_UNSPECIFIED,
    signal: '',
    error: '',
    startedAt: new Date('2025-01-31T11:57:00Z'),
    outputBytes: 0,
    outputTruncated: false,
    ...fields,
  };
}

const ended = (reason: EndReason, state: JobState, fields: Partial<Job> = {}) =>
  job({ state, endReason: reason, endedAt: new Date('2025-01-31T11:58:05Z'), ...fields });

output('sizes in binary units, durations compact', () => {
  const sizes: [number, string][] = [
    [0, '0B'],
    [1023, '1023B'],
    [1024, '1KiB'],
    [1536, '1.5KiB'],
    [256 * 1024 * 1024, '256MiB'],
    [1.25 * 1024 ** 3, '1.3GiB'],
    [150 * 1024 ** 2, '150MiB'],
  ];
  for (const [bytes, text] of sizes) assert.is(humanBytes(bytes), text);
  const durations: [number, string][] = [
    [0, '0ms'],
    [850, '850ms'],
    [1000, '1s'],
    [12_340, '12.3s'],
    [65_000, '1m05s'],
    [7_380_000, '2h03m'],
    [3 * 86_400_000 + 4 * 3_600_000, '3d04h'],
  ];
  for (const [ms, text] of durations) assert.is(humanDuration(ms), text);
});

output('how long ago, in Docker words', () => {
  const ago = (seconds: number) => timeAgo(new Date(NOW.getTime() - seconds * 1000), NOW);
  assert.is(ago(0.2), 'Less than a second ago');
  assert.is(ago(1), '1 second ago');
  assert.is(ago(42), '42 seconds ago');
  assert.is(ago(70), 'About a minute ago');
  assert.is(ago(5 * 60), '5 minutes ago');
  assert.is(ago(3600), 'About an hour ago');
  assert.is(ago(5 * 3600), '5 hours ago');
  assert.is(ago(3 * 86_400), '3 days ago');
  assert.is(ago(21 * 86_400), '3 weeks ago');
});

output('command lines quote what a shell would need quoted', () => {
  assert.is(shellQuote('ls'), 'ls');
  assert.is(shellQuote('-la'), '-la');
  assert.is(shellQuote(''), "''");
  assert.is(shellQuote('a b'), "'a b'");
  assert.is(shellQuote("it's"), "'it'\\''s'");
  assert.is(shellQuote('$HOME'), "'$HOME'");
  assert.is(shellQuote('a\nb'), "$'a\\nb'");
  assert.is(commandLine(['sh', '-c', 'echo hi', 'ünï']), "sh -c 'echo hi' 'ünï'");
  assert.is(truncate('abcdef', 4), 'abc…');
  assert.is(truncate('abc', 4), 'abc');
});

output('tables: columns three spaces apart, the last one not padded', () => {
  assert.is(
    table(
      ['A', 'BB', 'C'],
      [
        ['x', 'y', 'z'],
        ['long', '', 'last'],
      ],
    ),
    'A      BB   C\nx      y    z\nlong        last',
  );
});

output('EXIT/REASON says how each job ended, in few words', () => {
  assert.is(exitOrReason(job()), '');
  assert.is(
    exitOrReason(ended(EndReason.END_REASON_EXITED, JobState.JOB_STATE_COMPLETED, { exitCode: 0 })),
    '0',
  );
  assert.is(
    exitOrReason(ended(EndReason.END_REASON_EXITED, JobState.JOB_STATE_FAILED, { exitCode: 3 })),
    '3',
  );
  assert.is(
    exitOrReason(
      ended(EndReason.END_REASON_KILLED_BY_SIGNAL, JobState.JOB_STATE_FAILED, {
        signal: 'SIGSEGV',
      }),
    ),
    'SIGSEGV',
  );
  assert.is(
    exitOrReason(
      ended(EndReason.END_REASON_STOPPED, JobState.JOB_STATE_STOPPED, { signal: 'SIGTERM' }),
    ),
    'SIGTERM',
  );
  assert.is(
    exitOrReason(
      ended(EndReason.END_REASON_OOM_KILLED, JobState.JOB_STATE_FAILED, { signal: 'SIGKILL' }),
    ),
    'oom-killed (SIGKILL)',
  );
  assert.is(
    exitOrReason(ended(EndReason.END_REASON_EXECUTOR_RESTARTED, JobState.JOB_STATE_FAILED)),
    'executor-restarted',
  );
});

output('a list row: short id and command unless full', () => {
  const long = job({ argv: ['python3', '-c', 'x'.repeat(60)] });
  assert.equal(listRow(long, NOW, false), [
    ID.slice(0, 12),
    'alice',
    'running',
    '',
    '3 minutes ago',
    '3m00s',
    `python3 -c ${'x'.repeat(28)}…`,
  ]);
  assert.equal(listRow(long, NOW, true)[0], ID);
  assert.equal(listRow(long, NOW, true)[6], `python3 -c ${'x'.repeat(60)}`);
  assert.is(LIST_HEADERS.join(' '), 'ID OWNER STATE EXIT/REASON STARTED DURATION COMMAND');
});

output('the status page', () => {
  const page = statusText(
    ended(EndReason.END_REASON_OOM_KILLED, JobState.JOB_STATE_FAILED, {
      signal: 'SIGKILL',
      envNames: ['A', 'B'],
      limits: {
        cpus: 0.5,
        memoryBytes: 64 * 1024 * 1024,
        pids: 100,
        cpusetCpus: '0-1',
        ioReadBps: 10 * 1024 * 1024,
        storageBytes: 32 * 1024 * 1024,
      },
      storageKind: StorageKind.STORAGE_KIND_MEMORY,
      timeout: { seconds: 30, nanos: 0 },
      usage: {
        cpuSeconds: 1.5,
        memoryPeakBytes: 64 * 1024 * 1024,
        ioReadBytes: 0,
        ioWriteBytes: 4096,
      },
      outputBytes: 2048,
    }),
    NOW,
  );
  // Values line up in one column; compare them with one space after the name.
  const lines = page.split('\n').map((line) => line.replace(/^([A-Za-z ]+):\s+/, '$1: '));
  for (const line of [
    `ID: ${ID}`,
    "Command: sh -c 'echo hi'",
    'State: failed: oom-killed (SIGKILL)',
    'Duration: 1m05s',
    'Env: A, B',
    'Limits: cpus 0.5, memory 64MiB, pids 100, read 10MiB/s, cpuset 0-1',
    'Storage: 32MiB in memory',
    'Timeout: 30s',
    'Usage: cpu 1.5s, memory peak 64MiB, read 0B, write 4KiB',
    'Output: 2KiB',
  ]) {
    assert.ok(lines.includes(line), `${line}\n---\n${page}`);
  }
  assert.match(statusText(job(), NOW), /Running for: 3m00s/);
  assert.match(
    statusText(ended(EndReason.END_REASON_EXITED, JobState.JOB_STATE_FAILED, { exitCode: 3 }), NOW),
    /State: +failed \(exit code 3\)/,
  );
  const onDisk = job({
    limits: { storageBytes: 10 * 1024 ** 3 },
    storageKind: StorageKind.STORAGE_KIND_DISK,
  });
  assert.match(statusText(onDisk, NOW), /Storage: +10GiB on disk/);
});

output('--json: every field present, null when unset, names as in status', () => {
  const json = jobJson(
    ended(EndReason.END_REASON_EXITED, JobState.JOB_STATE_COMPLETED, {
      exitCode: 0,
      limits: { memoryBytes: 1024 },
    }),
    NOW,
  );
  // The server says nothing of storage for jobs recorded before it had storage kinds.
  assert.equal(json, {
    id: ID,
    owner: 'alice',
    argv: ['sh', '-c', 'echo hi'],
    envNames: [],
    workingDir: '/job',
    state: 'completed',
    endReason: 'exited',
    exitCode: 0,
    signal: null,
    error: null,
    startedAt: '2025-01-31T11:57:00.000Z',
    endedAt: '2025-01-31T11:58:05.000Z',
    durationSeconds: 65,
    timeoutSeconds: null,
    limits: {
      cpus: null,
      memoryBytes: 1024,
      memoryHighBytes: null,
      pids: null,
      ioReadBps: null,
      ioWriteBps: null,
      ioReadIops: null,
      ioWriteIops: null,
      cpusetCpus: null,
      storageBytes: null,
    },
    storageKind: null,
    usage: null,
    outputBytes: 0,
    outputTruncated: false,
  });
});

output('exit codes: the job status, 128+signal, Docker-style codes for failures', () => {
  assert.is(
    jobExitCode(ended(EndReason.END_REASON_EXITED, JobState.JOB_STATE_COMPLETED, { exitCode: 0 })),
    0,
  );
  assert.is(
    jobExitCode(ended(EndReason.END_REASON_EXITED, JobState.JOB_STATE_FAILED, { exitCode: 3 })),
    3,
  );
  assert.is(
    jobExitCode(
      ended(EndReason.END_REASON_KILLED_BY_SIGNAL, JobState.JOB_STATE_FAILED, {
        signal: 'SIGKILL',
      }),
    ),
    137,
  );
  assert.is(
    jobExitCode(
      ended(EndReason.END_REASON_STOPPED, JobState.JOB_STATE_STOPPED, { signal: 'SIGTERM' }),
    ),
    143,
  );
  assert.is(
    jobExitCode(
      ended(EndReason.END_REASON_KILLED_BY_SIGNAL, JobState.JOB_STATE_FAILED, {
        signal: 'SIGSEGV',
      }),
    ),
    139,
  );
  assert.is(jobExitCode(ended(EndReason.END_REASON_OOM_KILLED, JobState.JOB_STATE_FAILED)), 137);
  assert.is(
    jobExitCode(ended(EndReason.END_REASON_EXECUTOR_RESTARTED, JobState.JOB_STATE_FAILED)),
    EXIT.refused,
  );
  assert.equal(
    ['ENOENT', 'EACCES', 'ENOEXEC', undefined].map((errno) => startFailureExitCode(errno)),
    [EXIT.notFound, EXIT.notExecutable, EXIT.notExecutable, EXIT.refused],
  );
  // Only the exec itself earns a shell's 127 or 126; a job that could not be set up is refused.
  assert.equal(
    [
      startFailureExitCode('ENOENT', 'exec'),
      startFailureExitCode('ENOENT', 'chdir'),
      startFailureExitCode('EPERM', 'setup'),
    ],
    [EXIT.notFound, EXIT.refused, EXIT.refused],
  );
  assert.equal(
    [EXIT.refused, EXIT.notExecutable, EXIT.notFound, EXIT.detached],
    [125, 126, 127, 130],
  );
});

output.run();
