// A job's life: how it ends and how that is recorded, start errors, timeouts, stops that must
// reach every process, and nothing left behind.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { callOp } from '../../executor/socket/op-table.ts';
import { JobError } from '../../shared/errors.ts';
import type { JobSpec } from '../../shared/job.ts';
import {
  cgroupDirsNamed,
  openTestRuntime,
  processExists,
  runToEnd,
  shell,
  sleep,
  startJob,
  stopJob,
  TEST_PREFIX,
} from './executor-kit.ts';
import type { TestRuntime } from './executor-kit.ts';

const lifecycle = suite<{ t: TestRuntime }>('job lifecycle');
lifecycle.before(async (context) => {
  context.t = await openTestRuntime();
});
lifecycle.after(async ({ t }) => {
  await t.close();
});

/** Host pids whose command line contains `marker` (a job's processes seen from outside). */
function hostPidsWith(marker: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(marker)) pids.push(Number(name));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Reads the job's output until it contains `text` (the job says it is ready). */
async function waitForOutput(t: TestRuntime, id: string, text: string): Promise<void> {
  let seen = '';
  for await (const chunk of t.runtime.readOutput(id, 0)) {
    seen += Buffer.from(chunk.data).toString();
    if (seen.includes(text)) return;
  }
  throw new Error(`the job ended without printing ${JSON.stringify(text)}: ${seen}`);
}

async function expectStartError(
  t: TestRuntime,
  spec: JobSpec,
  message: string,
  errno: string,
  stage = 'exec',
) {
  try {
    await startJob(t.runtime, spec, 'tester');
    assert.unreachable('the job started');
  } catch (error) {
    assert.instance(error, JobError);
    const jobError = error as JobError;
    assert.is(jobError.code, 'start-failed');
    assert.is(jobError.message, message);
    assert.is(jobError.details.errno, errno);
    assert.is(
      jobError.details.stage,
      stage,
      'exec, chdir or setup: only exec is about the program',
    );
    const record = await t.runtime.get(String(jobError.details.jobId));
    assert.is(record.state, 'FAILED');
    assert.is(record.endReason, 'start-failed');
    assert.is(record.error, message);
    assert.is(cgroupDirsNamed(record.id), '');
  }
}

lifecycle('exit 0 is COMPLETED; the cgroups are gone once it ended', async ({ t }) => {
  const { record } = await shell(t.runtime, 'exit 0');
  assert.equal(
    [record.state, record.endReason, record.exitCode, record.signal],
    ['COMPLETED', 'exited', 0, null],
  );
  assert.ok(record.endedAt !== null && record.endedAt >= record.createdAt);
  assert.is(cgroupDirsNamed(record.id), '');
});

lifecycle('a non-zero exit is FAILED with its code', async ({ t }) => {
  const { record } = await shell(t.runtime, 'exit 3');
  assert.equal(
    [record.state, record.endReason, record.exitCode, record.signal],
    ['FAILED', 'exited', 3, null],
  );
});

lifecycle('a job killed by a signal records the signal', async ({ t }) => {
  const { record } = await runToEnd(t.runtime, {
    argv: ['python3', '-c', 'import os, signal; os.kill(os.getpid(), signal.SIGSEGV)'],
  });
  assert.equal(
    [record.state, record.endReason, record.exitCode, record.signal],
    ['FAILED', 'killed-by-signal', null, 'SIGSEGV'],
  );
});

lifecycle('a missing program is a start error, not a job that exited 127', async ({ t }) => {
  await expectStartError(
    t,
    { argv: ['no-such-program-here'] },
    'exec "no-such-program-here": no such file or directory',
    'ENOENT',
  );
  await expectStartError(
    t,
    { argv: ['/no/such/path'] },
    'exec "/no/such/path": no such file or directory',
    'ENOENT',
  );
});

lifecycle('a program that is not executable is a start error', async ({ t }) => {
  await expectStartError(
    t,
    { argv: ['/etc/passwd'] },
    'exec "/etc/passwd": permission denied',
    'EACCES',
  );
  await expectStartError(t, { argv: ['/usr'] }, 'exec "/usr": permission denied', 'EACCES');
});

lifecycle('a missing working directory is a start error', async ({ t }) => {
  await expectStartError(
    t,
    { argv: ['true'], workingDir: '/no/such/dir' },
    'chdir "/no/such/dir": no such file or directory',
    'ENOENT',
    'chdir',
  );
});

lifecycle('a working directory in the host view is honoured', async ({ t }) => {
  const { stdout } = await shell(t.runtime, 'pwd', { workingDir: '/usr/share' });
  assert.is(stdout, '/usr/share\n');
});

lifecycle('a job past its timeout is stopped and recorded as timed-out', async ({ t }) => {
  const started = Date.now();
  const { record } = await runToEnd(t.runtime, { argv: ['sleep', '30'], timeoutMs: 300 });
  assert.equal([record.state, record.endReason, record.signal], ['FAILED', 'timed-out', 'SIGTERM']);
  assert.is(record.timeoutMs, 300);
  assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
});

lifecycle('stop: SIGTERM reaches the whole process group; the job ends STOPPED', async ({ t }) => {
  const job = await startJob(
    t.runtime,
    { argv: ['sh', '-c', 'sleep 100 & sleep 100 & wait'] },
    'tester',
  );
  await sleep(100);
  const started = Date.now();
  const record = await stopJob(t.runtime, job.id, 5000);
  assert.ok(Date.now() - started < 1000, 'ended well inside the grace period');
  assert.equal([record.state, record.endReason], ['STOPPED', 'stopped']);
});

lifecycle(
  "stop kills a double-forked, setsid'd grandchild and a main process that ignores SIGTERM",
  async ({ t }) => {
    const marker = `jobworker-marker-${randomBytes(6).toString('hex')}`;
    const job = await startJob(
      t.runtime,
      {
        argv: [
          'sh',
          '-c',
          `setsid -f python3 -c 'import time; time.sleep(1000)' ${marker}-grandchild
         exec python3 -c 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print("ready", flush=True); time.sleep(1000)' ${marker}-main`,
        ],
      },
      'tester',
    );
    await waitForOutput(t, job.id, 'ready\n');
    const pids = await waitFor('both processes', () => {
      const found = hostPidsWith(marker);
      return found.length === 2 ? found : undefined;
    });
    const started = Date.now();
    const record = await stopJob(t.runtime, job.id, 300);
    const took = Date.now() - started;
    assert.ok(took >= 300 && took < 2000, `stop took ${took} ms`);
    for (const pid of pids) assert.not.ok(processExists(pid), `process ${pid} survived the stop`);
    assert.equal(hostPidsWith(marker), []);
    assert.equal(
      [record.state, record.endReason, record.signal],
      ['STOPPED', 'stopped', 'SIGKILL'],
    );
    assert.is(cgroupDirsNamed(job.id), '');
  },
);

lifecycle('when the main process exits, whatever it left running is killed', async ({ t }) => {
  const marker = `jobworker-marker-${randomBytes(6).toString('hex')}`;
  await shell(
    t.runtime,
    `setsid -f python3 -c 'import time; time.sleep(1000)' ${marker}; sleep 0.2`,
  );
  assert.equal(hostPidsWith(marker), []);
});

lifecycle("orphaned zombies are reaped by the job's init", async ({ t }) => {
  const { stdout } = await shell(
    t.runtime,
    '(sleep 0.1 &); (sleep 0.1 &); (sleep 0.1 &); sleep 1; ps -e -o stat=,comm=',
  );
  assert.not.match(stdout, /^Z/m, stdout);
  assert.not.match(stdout, /sleep\n.*sleep\n.*sleep/s, 'the orphans should have exited');
});

lifecycle(
  'stop of an ended job returns its record unchanged; unknown ids are not found',
  async ({ t }) => {
    const { record } = await shell(t.runtime, 'exit 0');
    assert.equal(await stopJob(t.runtime, record.id), record);
    try {
      await stopJob(t.runtime, '0'.repeat(32));
      assert.unreachable();
    } catch (error) {
      assert.is((error as JobError).code, 'not-found');
    }
  },
);

lifecycle(
  'owner answers whose a job is, running or ended; unknown ids are not found',
  async ({ t }) => {
    const running = await startJob(t.runtime, { argv: ['sleep', '60'] }, 'alice');
    const { record: ended } = await runToEnd(t.runtime, { argv: ['true'] }, 'bob');
    assert.equal(await callOp('owner', { id: running.id }, t.runtime), { owner: 'alice' });
    assert.equal(await callOp('owner', { id: ended.id }, t.runtime), { owner: 'bob' });
    try {
      await callOp('owner', { id: '0'.repeat(32) }, t.runtime);
      assert.unreachable();
    } catch (error) {
      assert.is((error as JobError).code, 'not-found');
    }
    await stopJob(t.runtime, running.id, 100);
  },
);

lifecycle('list filters by owner and state, oldest first, and pages', async ({ t }) => {
  const owner = `lister-${randomBytes(3).toString('hex')}`;
  const ids: string[] = [];
  for (let i = 0; i < 3; i += 1) ids.push((await shell(t.runtime, 'exit 0', {})).record.id);
  const a = await runToEnd(t.runtime, { argv: ['true'] }, owner);
  const b = await runToEnd(t.runtime, { argv: ['false'] }, owner);
  assert.equal(
    (await t.runtime.list({ owner })).jobs.map((job) => job.id),
    [a.record.id, b.record.id],
  );
  assert.equal(
    (await t.runtime.list({ owner, state: 'FAILED' })).jobs.map((job) => job.id),
    [b.record.id],
  );
  const first = await t.runtime.list({ owner, limit: 1 });
  assert.equal([first.jobs.map((job) => job.id), first.more], [[a.record.id], true]);
  const second = await t.runtime.list({ owner, limit: 1, after: a.record.id });
  assert.equal([second.jobs.map((job) => job.id), second.more], [[b.record.id], false]);
});

lifecycle('usage is recorded: cpu seconds, peak memory', async ({ t }) => {
  // A fixed amount of the process's own CPU time, however busy the machine is.
  const program = "import time\nx = b'x' * (64 * 1048576)\nwhile time.process_time() < 0.4: pass";
  const { record } = await runToEnd(t.runtime, { argv: ['python3', '-c', program] });
  assert.ok((record.usage?.cpuSeconds ?? 0) >= 0.4, `cpu ${record.usage?.cpuSeconds}`);
  assert.ok(
    (record.usage?.memoryPeakBytes ?? 0) > 64 * 1048576,
    `peak ${record.usage?.memoryPeakBytes}`,
  );
});

lifecycle(
  'jobs/ is a top of directory hierarchies (chattr +T): ext4 spreads job directories over its groups',
  async ({ t }) => {
    // Only the ext2/3/4 family has the attribute: a probe tells whether the state disk is one.
    const probe = mkdtempSync(join(t.config.stateDir, 'probe-'));
    const supported = spawnSync('/usr/bin/chattr', ['+T', probe]).status === 0;
    rmSync(probe, { recursive: true });
    if (!supported) {
      console.log(`  (${t.config.stateDir} is not on ext2/3/4: no attribute to look for)`);
      return;
    }
    const [flags = ''] = execFileSync('/usr/bin/lsattr', ['-d', join(t.config.stateDir, 'jobs')], {
      encoding: 'utf8',
    }).split(' ');
    assert.ok(flags.includes('T'), `lsattr: ${flags}`);
    await runToEnd(t.runtime, { argv: ['true'] });
  },
);

lifecycle('on a state disk without that attribute (tmpfs) jobs start and run as ever', async () => {
  const mountPoint = mkdtempSync(`/var/tmp/${TEST_PREFIX}tmpfs-`);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m,mode=0700', 'tmpfs', mountPoint]);
  try {
    const stateDir = join(mountPoint, 'state');
    const t = await openTestRuntime({ stateDir, socketPath: join(stateDir, 'run/executor.sock') });
    try {
      const { record, stdout } = await shell(t.runtime, 'echo ran');
      assert.is(record.state, 'COMPLETED');
      assert.is(stdout, 'ran\n');
    } finally {
      await t.close();
    }
  } finally {
    execFileSync('umount', [mountPoint]);
    rmSync(mountPoint, { recursive: true });
  }
});

lifecycle.run();
