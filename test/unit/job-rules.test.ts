// Pure rules of the executor: effective limits, how an end is classified, the op table.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { EXECUTOR_OPS } from '../../shared/executor-protocol.ts';
import { parseExecutorConfig } from '../../executor/config.ts';
import { effectiveLimits, effectiveTimeout } from '../../executor/runtime/effective-limits.ts';
import { classifyEnd, describeStartError, startStage } from '../../executor/runtime/job-end.ts';
import type { EndFacts } from '../../executor/runtime/job-end.ts';
import { OP_TABLE, TABLE_OPS } from '../../executor/socket/op-table.ts';
import { describeErrno } from '../../executor/runtime/keeper-link.ts';
import { storageInodes } from '../../shared/job.ts';
import { jobSpecSchema } from '../../shared/job-spec-schema.ts';

const rules = suite('executor rules');
const MiB = 1024 * 1024;

rules('the op table is exactly these six ops (a new op is a reviewed change)', () => {
  assert.equal(Object.keys(OP_TABLE).sort(), [
    'get',
    'list',
    'owner',
    'read-output',
    'start',
    'stop',
  ]);
  assert.equal([...EXECUTOR_OPS].sort(), Object.keys(OP_TABLE).sort());
  assert.equal([...TABLE_OPS].sort(), Object.keys(OP_TABLE).sort(), 'the envelope accepts these');
  assert.equal(
    Object.entries(OP_TABLE)
      .filter(([, op]) => op.kind === 'stream')
      .map(([name]) => name),
    ['read-output'],
  );
});

rules('effective limits: request, else default, else maximum; never above the maximum', () => {
  const config = parseExecutorConfig({
    limits: {
      defaults: { cpus: 1, memoryBytes: 256 * MiB },
      max: { cpus: 4, memoryBytes: 1024 * MiB, pids: 100 },
    },
  });
  // storageBytes: neither configured: the built-in 256 MiB, at most half the memory limit.
  assert.equal(effectiveLimits({}, config), {
    cpus: 1,
    memoryBytes: 256 * MiB,
    pids: 100,
    storageBytes: 128 * MiB,
  });
  assert.equal(effectiveLimits({ cpus: 2, pids: 5, ioWriteBps: 1000 }, config), {
    cpus: 2,
    memoryBytes: 256 * MiB,
    pids: 5,
    ioWriteBps: 1000,
    storageBytes: 128 * MiB,
  });
  assert.throws(
    () => effectiveLimits({ pids: 101 }, config),
    /^spec\.limits\.pids: 101 is above this executor's maximum of 100$/,
  );
});

rules(
  'a soft memory ceiling at or above the hard one is dropped unless both were asked for',
  () => {
    const config = parseExecutorConfig({
      limits: { defaults: { memoryHighBytes: 512 * MiB }, max: {} },
    });
    assert.equal(effectiveLimits({ memoryBytes: 256 * MiB }, config), {
      memoryBytes: 256 * MiB,
      storageBytes: 128 * MiB,
    });
    assert.equal(effectiveLimits({ memoryBytes: 1024 * MiB }, config), {
      memoryBytes: 1024 * MiB,
      memoryHighBytes: 512 * MiB,
      storageBytes: 256 * MiB,
    });
  },
);

rules(
  'storage: in memory never above the memory limit (refused by name when asked), on disk as configured',
  () => {
    const config = parseExecutorConfig({
      limits: {
        defaults: { memoryBytes: 1024 * MiB, storageBytes: 256 * MiB },
        max: { memoryBytes: 4096 * MiB, storageBytes: 2048 * MiB },
      },
    });
    const storage = (limits: object, kind?: 'memory' | 'disk') =>
      effectiveLimits(limits, config, kind).storageBytes;
    assert.is(storage({}), 256 * MiB);
    assert.is(storage({ storageBytes: 1024 * MiB }), 1024 * MiB, 'up to the memory limit');
    // Not asked for: at most half the memory limit, in memory only.
    assert.is(storage({ memoryBytes: 64 * MiB }), 32 * MiB);
    assert.is(storage({ memoryBytes: 64 * MiB }, 'disk'), 256 * MiB);
    assert.is(storage({ memoryBytes: 64 * MiB, storageBytes: 1024 * MiB }, 'disk'), 1024 * MiB);
    assert.throws(
      () => storage({ memoryBytes: 64 * MiB, storageBytes: 128 * MiB }),
      /^spec\.limits\.storageBytes: must be at most limits\.memoryBytes, 67108864 bytes, for storage in memory: its pages count against the memory limit/,
    );
    assert.throws(
      () => storage({ storageBytes: 4096 * MiB }, 'disk'),
      /^spec\.limits\.storageBytes: 4294967296 is above this executor's maximum of 2147483648$/,
    );
    // The same rule where both values are in the request: the API and jobctl refuse it early.
    const spec = (extra: object) => () => jobSpecSchema({ argv: ['a'], ...extra }, 'spec');
    assert.throws(
      spec({ limits: { memoryBytes: 64 * MiB, storageBytes: 128 * MiB } }),
      /^spec\.limits\.storageBytes: must be at most limits\.memoryBytes/,
    );
    spec({ storageKind: 'disk', limits: { memoryBytes: 64 * MiB, storageBytes: 128 * MiB } })();
    assert.throws(spec({ storageKind: 'ssd' }), /^spec\.storageKind: must be one of memory, disk$/);
    assert.throws(
      spec({ limits: { storageBytes: 4096 } }),
      /^spec\.limits\.storageBytes: must be at least 1048576 bytes/,
    );
  },
);

rules('the inode cap of /job: one per 4 KiB of its size cap', () => {
  assert.equal(
    [1, 256, 1024].map((mib) => storageInodes(mib * MiB)),
    [256, 65_536, 262_144],
  );
});

rules('timeouts: request, else default, else maximum; above the maximum is refused', () => {
  const config = parseExecutorConfig({ defaultTimeoutMs: 1000, maxTimeoutMs: 5000 });
  assert.is(effectiveTimeout({ argv: ['a'] }, config), 1000);
  assert.is(effectiveTimeout({ argv: ['a'], timeoutMs: 3000 }, config), 3000);
  assert.throws(
    () => effectiveTimeout({ argv: ['a'], timeoutMs: 6000 }, config),
    /^spec\.timeoutMs: 6000 is above/,
  );
  assert.is(effectiveTimeout({ argv: ['a'] }, parseExecutorConfig({})), null);
});

rules(
  "end classification: start failure, then OOM, then our stop or timeout, then the job's own exit",
  () => {
    const base: EndFacts = {
      startError: null,
      oomKilled: false,
      stopReason: null,
      exitCode: null,
      signal: null,
    };
    const cases: [Partial<EndFacts>, [string, string, number | null, string | null]][] = [
      [{ exitCode: 0 }, ['COMPLETED', 'exited', 0, null]],
      [{ exitCode: 2 }, ['FAILED', 'exited', 2, null]],
      [{ signal: 11 }, ['FAILED', 'killed-by-signal', null, 'SIGSEGV']],
      [{ signal: 9, oomKilled: true }, ['FAILED', 'oom-killed', null, 'SIGKILL']],
      [{ signal: 15, stopReason: 'stopped' }, ['STOPPED', 'stopped', null, 'SIGTERM']],
      [{ exitCode: 0, stopReason: 'stopped' }, ['STOPPED', 'stopped', 0, null]],
      [{ signal: 9, stopReason: 'stopped' }, ['STOPPED', 'stopped', null, 'SIGKILL']],
      [{ signal: 15, stopReason: 'timed-out' }, ['FAILED', 'timed-out', null, 'SIGTERM']],
      [
        { exitCode: 127, startError: { errno: 'ENOENT', reason: 'x', stage: 'exec' } },
        ['FAILED', 'start-failed', 127, null],
      ],
    ];
    for (const [facts, expected] of cases) {
      const outcome = classifyEnd({ ...base, ...facts });
      assert.equal(
        [outcome.state, outcome.endReason, outcome.exitCode, outcome.signal],
        expected,
        JSON.stringify(facts),
      );
    }
  },
);

rules("start errors read like the shell's", () => {
  const reason = 'no such file or directory';
  assert.is(
    describeStartError({ errno: 'ENOENT', reason, stage: 'exec' }, 'foo', '/job'),
    'exec "foo": no such file or directory',
  );
  assert.is(
    describeStartError({ errno: 'ENOENT', reason, stage: 'chdir' }, 'foo', '/x'),
    'chdir "/x": no such file or directory',
  );
  assert.is(
    describeStartError(
      { errno: 'EPERM', reason: 'operation not permitted', stage: 'mount /proc' },
      'foo',
      '/job',
    ),
    'job setup failed at mount /proc: operation not permitted',
  );
});

rules("start failures name their stage: exec, chdir, or the job's setup", () => {
  const at = (stage: string) => startStage({ errno: 'ENOENT', reason: 'x', stage });
  assert.equal(
    ['exec', 'chdir', 'mount /proc', 'join cgroup /sys/fs/cgroup/x', 'init ended during setup'].map(
      at,
    ),
    ['exec', 'chdir', 'setup', 'setup', 'setup'],
  );
});

rules('errno numbers become names and libuv-style reasons, also those libuv does not list', () => {
  assert.equal(describeErrno(2), { name: 'ENOENT', reason: 'no such file or directory' });
  assert.equal(describeErrno(8), { name: 'ENOEXEC', reason: 'exec format error' });
  assert.equal(describeErrno(999), { name: 'E999', reason: 'error 999' });
});

rules.run();
