// Every limit, asked for with jobctl's flags and observed from inside the job, with the executor
// under systemd (Delegate=yes, its sandbox): the kernel enforces what the executor wrote in the
// job's cgroup below the unit's. Figures are printed; the VM is emulated, so bounds are loose.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ensureRunning, EXECUTOR, jobctl, jobShell, property, withJournal } from './kit.ts';

const limits = suite('systemd: limits seen from inside jobs');
/** Asks for 512 MiB, a MiB at a time. */
const MEMORY_HOG = "chunks = [bytes(1048576) + b'x' for _ in range(512)]";
limits.before(ensureRunning);

limits(
  '--memory: a hog is OOM-killed (137); the executor’s unit carries on (OOMPolicy=continue)',
  withJournal(async () => {
    const before = await property(EXECUTOR, 'MainPID');
    const ran = await jobctl(['run', '--memory', '32m', '--', 'python3', '-c', MEMORY_HOG]).done;
    assert.is(ran.code, 137, ran.stderr);
    // Said from the job's record: its end reason is oom-killed.
    assert.match(
      ran.stderr,
      /^jobctl: job [0-9a-f]{32} was killed: out of memory \(limit 32MiB\)$/m,
    );
    assert.is(await property(EXECUTOR, 'ActiveState'), 'active');
    assert.is(await property(EXECUTOR, 'MainPID'), before, 'the executor was not restarted');
  }),
);

limits(
  '--pids-limit: forks beyond it fail inside the job (EAGAIN)',
  withJournal(async () => {
    // Forks children that wait until fork is refused; the job's end takes them all.
    const forkUntilRefused = [
      'import os, signal',
      'forked = 0',
      'try:',
      '    while forked < 60:',
      '        if os.fork() == 0: signal.pause()',
      '        forked += 1',
      'except OSError as refused: print(forked, refused.errno)',
    ].join('\n');
    const ran = await jobctl(['run', '--pids-limit', '20', '--', 'python3', '-c', forkUntilRefused])
      .done;
    // 20 processes: python and 19 children.
    assert.equal([ran.code, ran.stdout.toString()], [0, '19 11\n'], ran.stderr);
  }),
);

limits(
  '--cpus 0.5: two busy processes get about half a core between them',
  withJournal(async () => {
    const busyPair = [
      'import os, time',
      'started = time.monotonic()',
      'for _ in range(2):',
      '    if os.fork() == 0:',
      '        end = time.monotonic() + 4',
      '        while time.monotonic() < end: pass',
      '        os._exit(0)',
      'os.wait(); os.wait()',
      't = os.times()',
      'print((t.children_user + t.children_system) / (time.monotonic() - started))',
    ].join('\n');
    const ran = await jobctl(['run', '--cpus', '0.5', '--', 'python3', '-c', busyPair]).done;
    assert.is(ran.code, 0, ran.stderr);
    const share = Number(ran.stdout.toString());
    console.log(`  cpu share seen by the job: ${share.toFixed(3)} of a core`);
    assert.ok(share > 0.3 && share < 0.7, `cpu share ${share}`);
  }),
);

limits(
  '--device-write-bps, --device-read-bps: direct IO on the VM’s virtio disk runs near 10 MiB/s',
  withJournal(async () => {
    // Disk storage: /job on a loop device over the state directory's disk (the virtio disk).
    const ran = await jobShell(
      'dd if=/dev/zero of=/job/file bs=1M count=20 oflag=direct && ' +
        'dd if=/job/file of=/dev/null bs=1M iflag=direct',
      [
        ...['--storage-kind', 'disk', '--storage', '64m'],
        ...['--device-write-bps', '10mb', '--device-read-bps', '10mb'],
      ],
    );
    assert.is(ran.code, 0, ran.stderr);
    const rates = [...ran.stderr.matchAll(/copied, ([\d.]+) s/g)].map((m) => 20 / Number(m[1]));
    console.log(`  write ${rates[0]?.toFixed(2)} MiB/s, read ${rates[1]?.toFixed(2)} MiB/s`);
    assert.is(rates.length, 2, ran.stderr);
    for (const rate of rates) assert.ok(rate > 7 && rate < 13, `rate ${rate} MiB/s`);
  }),
);

limits(
  '--cpuset-cpus: the job may run on the CPU it names only',
  withJournal(async () => {
    const ran = await jobShell('grep Cpus_allowed_list /proc/self/status; nproc', [
      '--cpuset-cpus',
      '1',
    ]);
    assert.equal([ran.code, ran.stdout.toString()], [0, 'Cpus_allowed_list:\t1\n1\n']);
  }),
);

limits.run();
