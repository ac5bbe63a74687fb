// A job's /job: a filesystem of its own with a size cap and an inode cap (in memory by default,
// or on disk through a loop device), discarded whole when the job ends. Nothing a job writes
// there ever reaches the executor's state directory, so there is nothing for the executor to walk
// and remove, however many files or however deep a tree the job made.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { JobRecord, JobSpec } from '../../shared/job.ts';
import {
  FILL_JOB_DIR,
  loopDevicesBackedBy,
  openTestRuntime,
  runToEnd,
  shell,
  sleep,
  startJob,
  strangersInJobDir,
  TEST_PREFIX,
} from './executor-kit.ts';
import type { TestRuntime } from './executor-kit.ts';

const MiB = 1024 * 1024;
const storage = suite<{ t: TestRuntime }>('job storage');
storage.before(async (context) => {
  context.t = await openTestRuntime();
});
storage.after(async ({ t }) => {
  await t.close();
});

/** Creates empty files in /job until the kernel refuses one; prints the errno's name and count. */
const CREATE = [
  'import errno, os',
  'made = 0',
  'try:',
  '    while True:',
  "        os.close(os.open('/job/f%d' % made, os.O_WRONLY | os.O_CREAT))",
  '        made += 1',
  'except OSError as e:',
  '    print(errno.errorcode[e.errno], made, flush=True)',
].join('\n');

function python(program: string, spec: Partial<JobSpec>): JobSpec {
  return { argv: ['python3', '-c', program], ...spec };
}

function endedNormally(record: JobRecord, stderr: string): void {
  assert.is(record.state, 'COMPLETED', `${record.endReason} ${record.error ?? ''} ${stderr}`);
  assert.is(record.exitCode, 0);
}

storage(
  '/job in memory: a tmpfs of the size asked for, the job’s alone (0700), nosuid, nodev',
  async ({ t }) => {
    const { stdout, record } = await shell(
      t.runtime,
      'grep " /job " /proc/mounts; stat -c "%a %u" /job; id -u',
      { limits: { storageBytes: 8 * MiB } },
    );
    const [mount, mode, uid] = stdout.trim().split('\n');
    assert.match(mount ?? '', /^tmpfs \/job tmpfs rw,nosuid,nodev,/);
    assert.match(mount ?? '', /size=8192k,nr_inodes=2048,mode=700,uid=\d+,gid=\d+/);
    assert.is(mode, `700 ${uid}`);
    assert.is(record.limits.storageBytes, 8 * MiB);
    assert.is(record.storageKind, 'memory');
  },
);

storage(
  'a job writing past its storage cap gets ENOSPC, goes on, and ends normally',
  async ({ t }) => {
    const { stdout, stderr, record } = await runToEnd(
      t.runtime,
      python(
        `${FILL_JOB_DIR}\nos.remove('/job/fill')\nprint(open('/job/after', 'w').write('ok'))`,
        {
          limits: { storageBytes: 8 * MiB, memoryBytes: 64 * MiB },
        },
      ),
    );
    endedNormally(record, stderr);
    assert.equal(stdout.trim().split('\n'), ['ENOSPC 8388608', '2']);
  },
);

storage(
  'a job creating files past its inode cap gets ENOSPC (one inode per 4 KiB)',
  async ({ t }) => {
    const { stdout, stderr, record } = await runToEnd(
      t.runtime,
      python(CREATE, { limits: { storageBytes: MiB } }),
    );
    endedNormally(record, stderr);
    // 1 MiB gives 256 inodes; /job itself is one.
    assert.is(stdout.trim(), 'ENOSPC 255');
  },
);

storage(
  '/job on disk: ext4 on a loop device, may exceed the memory limit, capped at its size',
  async ({ t }) => {
    const { stdout, stderr, record } = await runToEnd(
      t.runtime,
      python(
        [
          'import subprocess',
          "print(subprocess.run(['sh', '-c', 'grep \" /job \" /proc/mounts; stat -c %a /job; ls -A /job'], capture_output=True, text=True).stdout, end='')",
          FILL_JOB_DIR,
        ].join('\n'),
        {
          storageKind: 'disk',
          limits: { storageBytes: 48 * MiB, memoryBytes: 32 * MiB },
        },
      ),
    );
    endedNormally(record, stderr);
    const [mount, mode, full] = stdout.trim().split('\n');
    assert.match(mount ?? '', /^\/dev\/loop\d+ \/job ext4 rw,nosuid,nodev,/);
    assert.is(mode, '700', 'the job’s alone; nothing else in it (no lost+found)');
    const [errno, bytes] = (full ?? '').split(' ');
    assert.is(errno, 'ENOSPC');
    // ext4's own metadata (inode tables: one inode per 4 KiB) takes some of the cap.
    assert.ok(Number(bytes) <= 48 * MiB && Number(bytes) > 40 * MiB, `wrote ${bytes} bytes`);
    assert.is(record.storageKind, 'disk');
    assert.is(record.limits.storageBytes, 48 * MiB);
    await t.runtime.wait(record.id);
    assert.equal(
      await strangersInJobDir(t.config.stateDir, record.id),
      [],
      'the image is gone (the init unlinked it once attached)',
    );
    assert.equal(await loopDevicesBackedBy(t.config.stateDir), [], 'its loop device detached');
  },
);

storage(
  'many files end with their job: nothing reaches the state directory, and other jobs start meanwhile',
  async ({ t }) => {
    const files = 200_000;
    const started = await startJob(
      t.runtime,
      python(
        `import os\nfor i in range(${files}):\n    os.close(os.open('/job/f%d' % i, os.O_WRONLY | os.O_CREAT))\nprint(len(os.listdir('/job')), flush=True)`,
        { limits: { memoryBytes: 2048 * MiB, storageBytes: 1024 * MiB } },
      ),
    );
    let output = '';
    for await (const chunk of t.runtime.readOutput(started.id, 0))
      output += Buffer.from(chunk.data).toString();
    assert.is(output.trim(), String(files));
    // The job has ended; its files go with its mount namespace while another job starts.
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const since = Date.now();
    const [, other] = await Promise.all([
      t.runtime.wait(started.id),
      shell(t.runtime, 'echo other'),
    ]);
    delay.disable();
    assert.is(other.stdout, 'other\n');
    assert.equal(await strangersInJobDir(t.config.stateDir, started.id), []);
    console.log(
      `  ${files} files: settled and another job ran in ${Date.now() - since} ms; ` +
        `event loop delay max ${(delay.max / 1e6).toFixed(1)} ms`,
    );
  },
);

storage(
  'a tree deeper than PATH_MAX is discarded with its job, and retention then deletes the job',
  async () => {
    // Every ended job is deleted at once (retention runs after each job's end).
    const t = await openTestRuntime({ retention: { maxJobs: 0 } });
    try {
      const { stdout, stderr, record } = await runToEnd(
        t.runtime,
        python(
          [
            'import os',
            "os.chdir('/job')",
            'for _ in range(1000):',
            "    os.mkdir('deep-directory')",
            "    os.chdir('deep-directory')",
            "open('leaf', 'w').write('x')",
            "print(1000 * len('/deep-directory') > 4096)",
          ].join('\n'),
          {},
        ),
      );
      endedNormally(record, stderr);
      assert.is(stdout.trim(), 'True');
      const jobs = join(t.config.stateDir, 'jobs');
      for (let waited = 0; waited < 5000 && (await readdir(jobs)).length > 0; waited += 20)
        await sleep(20);
      assert.equal(await readdir(jobs), []);
    } finally {
      await t.close();
    }
  },
);

storage(
  'at start, what is left of ended jobs’ storage is discarded: an image, an older executor’s deep work directory',
  async () => {
    const first = await openTestRuntime();
    const { stateDir } = first.config;
    try {
      const { record } = await shell(first.runtime, 'true');
      await first.runtime.drain(200);
      await first.runtime.close();
      // What a crash before the init took the image leaves, and what an older executor's /job
      // directory could be: a tree deeper than PATH_MAX.
      const jobDir = join(stateDir, 'jobs', record.id);
      await writeFile(join(jobDir, 'storage.img'), 'image');
      await mkdir(join(jobDir, 'work'));
      execFileSync(
        'python3',
        [
          '-c',
          "import os\nfor _ in range(400):\n    os.mkdir('d-123456789')\n    os.chdir('d-123456789')",
        ],
        { cwd: join(jobDir, 'work') },
      );
      const second = await openTestRuntime({
        stateDir,
        socketPath: `${stateDir}/run/executor.sock`,
      });
      try {
        assert.equal(await strangersInJobDir(stateDir, record.id), []);
        assert.is((await second.runtime.get(record.id)).state, 'COMPLETED', 'the record is kept');
      } finally {
        await second.close();
      }
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  },
);

storage('a state directory under /tmp: jobs run, in memory and on disk', async () => {
  // The job's new root is built on /tmp inside its mount namespace: the state directory must
  // not be needed below it once that is mounted.
  const stateDir = await mkdtemp(`/tmp/${TEST_PREFIX}`);
  const t = await openTestRuntime({ stateDir, socketPath: `${stateDir}/run/executor.sock` });
  try {
    for (const storageKind of ['memory', 'disk'] as const) {
      const { stdout, stderr, record } = await shell(
        t.runtime,
        `echo hello > /job/greeting && cat /job/greeting && ls ${stateDir} 2>&1 >/dev/null | wc -l`,
        { storageKind, limits: { storageBytes: 4 * MiB } },
      );
      endedNormally(record, stderr);
      assert.equal(stdout.trim().split('\n'), ['hello', '1'], `${storageKind}: ${stdout}`);
    }
  } finally {
    await t.close();
    await rm(stateDir, { recursive: true, force: true });
  }
});

storage.run();
