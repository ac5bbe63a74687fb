// Limits, observed for real: the kernel enforces each one on a job that tries to exceed it.
import { availableParallelism } from 'node:os';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openTestRuntime, runToEnd, shell, startJob } from './executor-kit.ts';
import type { TestRuntime } from './executor-kit.ts';

const MiB = 1024 * 1024;
const limits = suite<{ t: TestRuntime }>('job limits');
limits.before(async (context) => {
  context.t = await openTestRuntime();
});
limits.after(async ({ t }) => {
  await t.close();
});

limits('a memory hog under a 32 MiB limit ends oom-killed', async ({ t }) => {
  const { record } = await runToEnd(t.runtime, {
    argv: ['python3', '-c', "chunks = [bytes(1048576) + b'x' for _ in range(512)]"],
    limits: { memoryBytes: 32 * MiB },
  });
  assert.is(record.state, 'FAILED');
  assert.is(record.endReason, 'oom-killed');
  assert.is(record.signal, 'SIGKILL');
  assert.is(record.limits.memoryBytes, 32 * MiB);
  assert.ok(
    (record.usage?.memoryPeakBytes ?? 0) <= 32 * MiB,
    `peak ${record.usage?.memoryPeakBytes}`,
  );
});

limits('a job within its memory limit is not reported as oom-killed', async ({ t }) => {
  const { record } = await shell(t.runtime, `python3 -c "x = bytes(8 * 1048576)"`, {
    limits: { memoryBytes: 64 * MiB },
  });
  assert.is(record.endReason, 'exited');
  assert.is(record.state, 'COMPLETED');
});

limits('a fork loop is capped by the pids limit', async ({ t }) => {
  // Python keeps going when fork fails (a shell would exit), so it can count what it got.
  const program = [
    'import os, time',
    'forked, error = 0, None',
    'for _ in range(60):',
    '    try:',
    '        if os.fork() == 0:',
    '            time.sleep(2)',
    '            os._exit(0)',
    '        forked += 1',
    '    except OSError as e:',
    '        error = e.errno',
    'print(forked, error, flush=True)',
  ].join('\n');
  const { stdout, record } = await runToEnd(t.runtime, {
    argv: ['python3', '-c', program],
    limits: { pids: 20 },
  });
  // 20 processes in all: python itself and 19 children; then fork fails with EAGAIN (11).
  assert.is(stdout.trim(), '19 11');
  assert.is(record.limits.pids, 20);
});

limits(
  'a busy loop under cpus 0.5 gets about half a core, even with two busy processes',
  async ({ t }) => {
    const started = Date.now();
    const { record } = await shell(
      t.runtime,
      'timeout 3 sh -c "while :; do :; done" & timeout 3 sh -c "while :; do :; done" & wait',
      {
        limits: { cpus: 0.5 },
      },
    );
    const wallSeconds = (Date.now() - started) / 1000;
    const share = (record.usage?.cpuSeconds ?? 0) / wallSeconds;
    assert.ok(
      share > 0.35 && share < 0.65,
      `cpu share ${share.toFixed(3)} (${record.usage?.cpuSeconds}s in ${wallSeconds}s)`,
    );
  },
);

limits(
  'the same busy loop with a higher limit, run alongside one at cpus 0.5, gets clearly more',
  async ({ t }) => {
    // Side by side, so that whatever else loads the machine weighs on both alike.
    const loop = 'timeout 3 sh -c "while :; do :; done"';
    const [limited, unlimited] = await Promise.all([
      shell(t.runtime, loop, { limits: { cpus: 0.5 } }),
      shell(t.runtime, loop, { limits: { cpus: 2 } }),
    ]);
    const low = limited.record.usage?.cpuSeconds ?? 0;
    const high = unlimited.record.usage?.cpuSeconds ?? 0;
    assert.ok(low < 1.95, `the limited loop used ${low}s in 3s`);
    assert.ok(high > low * 1.3, `unlimited ${high}s, limited ${low}s`);
  },
);

// IO limits are on disks: these jobs ask for a disk-backed /job, whose image's reads and writes
// reach the state directory's disk as the job's own (the loop device does direct IO).
limits('direct-IO writes under a 10 MiB/s write limit run near that rate', async ({ t }) => {
  const { stderr, record } = await shell(
    t.runtime,
    'dd if=/dev/zero of=/job/file bs=1M count=30 oflag=direct',
    { storageKind: 'disk', limits: { ioWriteBps: 10 * MiB } },
  );
  assert.is(record.state, 'COMPLETED', stderr);
  const seconds = Number(/copied, ([\d.]+) s/.exec(stderr)?.[1]);
  const rate = (30 * MiB) / seconds / MiB;
  assert.ok(rate > 7 && rate < 13, `write rate ${rate.toFixed(2)} MiB/s (${stderr.trim()})`);
  assert.ok(
    (record.usage?.ioWriteBytes ?? 0) >= 30 * MiB,
    `io write bytes ${record.usage?.ioWriteBytes}`,
  );
});

limits('direct-IO reads under a 10 MiB/s read limit run near that rate', async ({ t }) => {
  const { stderr, record } = await shell(
    t.runtime,
    'dd if=/dev/zero of=/job/file bs=1M count=20 oflag=direct 2>/dev/null && dd if=/job/file of=/dev/null bs=1M iflag=direct',
    { storageKind: 'disk', limits: { ioReadBps: 10 * MiB } },
  );
  assert.is(record.state, 'COMPLETED', stderr);
  const seconds = Number(/copied, ([\d.]+) s/.exec(stderr)?.[1]);
  const rate = (20 * MiB) / seconds / MiB;
  assert.ok(rate > 7 && rate < 13, `read rate ${rate.toFixed(2)} MiB/s (${stderr.trim()})`);
});

limits('cpuset pins the job to the cpus it names', async ({ t }) => {
  const { stdout } = await shell(t.runtime, 'grep Cpus_allowed_list /proc/self/status; nproc', {
    limits: { cpusetCpus: '1' },
  });
  assert.equal(stdout.trim().split('\n'), ['Cpus_allowed_list:\t1', '1']);
});

limits('limits beyond the configured maximum are refused, naming the field', async ({ t }) => {
  try {
    await startJob(t.runtime, { argv: ['true'], limits: { cpus: 1000 } }, 'tester');
    assert.unreachable('started');
  } catch (error) {
    assert.is(
      (error as Error).message,
      // The configured maximum (64), clamped to this host's CPUs at start.
      `spec.limits.cpus: 1000 is above this executor's maximum of ${Math.min(64, availableParallelism())}`,
    );
  }
});

limits("a cpuset outside the host's cpus is refused, naming the field", async ({ t }) => {
  try {
    await startJob(t.runtime, { argv: ['true'], limits: { cpusetCpus: '0-63' } }, 'tester');
    assert.unreachable('started');
  } catch (error) {
    assert.match((error as Error).message, /limits\.cpusetCpus/);
  }
});

limits(
  'the recorded limits are the applied ones: defaults fill what was not asked',
  async ({ t }) => {
    const { record } = await shell(t.runtime, 'true', { limits: { memoryBytes: 100 * MiB } });
    // /job in memory, not asked for: at most half the memory limit (the default is 256 MiB).
    assert.equal(record.limits, {
      cpus: 1,
      memoryBytes: 100 * MiB,
      pids: 512,
      storageBytes: 50 * MiB,
    });
  },
);

limits.run();
