// Limits on cgroup v2, observed for real: jobs started by the real runtime and helper try to
// exceed each limit; the job's record says what happened, and the job's cgroup files (read just
// before the runtime removes them) say what the kernel counted. Figures are printed, never
// asserted beyond "near the limit": the VM is emulated, and slow.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { JobLimits } from '../../shared/job.ts';
import { runToEnd, shell } from '../root/executor-kit.ts';
import {
  cgroupFile,
  JOB_CONTROLLERS,
  keyed,
  logged,
  MiB,
  openV2Runtime,
  ownCgroupDir,
  requireV2Vm,
  words,
  type V2Runtime,
} from './kit.ts';
import { startJob, stopJob } from '../root/executor-kit.ts';

const run = promisify(execFile);
const limits = suite<{ t: V2Runtime; own: string }>('v2 job limits');
limits.before(
  logged(async (context) => {
    context.own = requireV2Vm();
    context.t = await openV2Runtime();
  }),
);
limits.after(async ({ t }) => {
  await t?.close();
});

/**
 * The whole-disk device under the jobs' disk-backed /job (the VM's virtio disk, which holds the
 * image behind the job's loop device), as io.max names it.
 */
function diskOf(ioMax: string | undefined): string {
  const device = ioMax?.split(' ')[0];
  if (device === undefined || !/^\d+:\d+$/.test(device)) throw new Error(`io.max: ${ioMax}`);
  return device;
}

/** rbytes/wbytes of one device in io.stat. */
function ioBytes(ioStat: string | undefined, device: string): { rbytes: number; wbytes: number } {
  const line = ioStat?.split('\n').find((l) => l.startsWith(`${device} `)) ?? '';
  const value = (key: string) => Number(new RegExp(`${key}=(\\d+)`).exec(line)?.[1] ?? 0);
  return { rbytes: value('rbytes'), wbytes: value('wbytes') };
}

/** dd's own figure: "… copied, 3.01 s, 10.4 MB/s" → seconds. */
function ddSeconds(stderr: string): number {
  const seconds = Number(/copied, ([\d.]+) s/.exec(stderr)?.[1]);
  if (!Number.isFinite(seconds)) throw new Error(`no dd summary in ${JSON.stringify(stderr)}`);
  return seconds;
}

limits(
  'the runtime’s executor sits in its own leaf; each job cgroup gets every controller',
  async ({ t, own }) => {
    assert.is(ownCgroupDir(), join(own, `${t.config.cgroupName}-executor`));
    assert.equal(words(cgroupFile(own, 'cgroup.subtree_control')), JOB_CONTROLLERS);
    const { record } = await shell(t.runtime, 'cat /proc/self/cgroup');
    const trace = t.driver.trace(record.id);
    assert.is(trace.dir, join(own, t.config.cgroupName, record.id));
    assert.equal(words(trace.final['cgroup.controllers'] ?? ''), JOB_CONTROLLERS);
    assert.is(keyed(trace.final['cgroup.events'] ?? '').populated, 0, 'empty when removed');
  },
);

limits('memory.max: a memory hog ends oom-killed, as memory.events counts it', async ({ t }) => {
  const { record } = await runToEnd(t.runtime, {
    argv: ['python3', '-c', "chunks = [bytes(1048576) + b'x' for _ in range(512)]"],
    limits: { memoryBytes: 32 * MiB },
  });
  const final = t.driver.trace(record.id).final;
  const events = keyed(final['memory.events'] ?? '');
  console.log(`  memory.events ${JSON.stringify(events)}; memory.peak ${final['memory.peak']}`);
  assert.equal(
    [record.state, record.endReason, record.signal],
    ['FAILED', 'oom-killed', 'SIGKILL'],
  );
  assert.ok((events.oom_kill ?? 0) >= 1, 'oom_kill counted');
  assert.is(final['memory.max'], String(32 * MiB));
  assert.is(final['memory.swap.max'], '0');
  assert.is(final['memory.oom.group'], '1');
  assert.ok(Number(final['memory.peak']) <= 32 * MiB, `peak ${final['memory.peak']}`);
  assert.is(record.usage?.memoryPeakBytes, Number(final['memory.peak']));
});

limits('a job within its memory limit is not oom-killed', async ({ t }) => {
  const { record } = await shell(t.runtime, `python3 -c "x = bytes(8 * 1048576)"`, {
    limits: { memoryBytes: 64 * MiB },
  });
  assert.equal([record.state, record.endReason], ['COMPLETED', 'exited']);
  assert.is(keyed(t.driver.trace(record.id).final['memory.events'] ?? '').oom_kill, 0);
});

limits('pids.max caps a fork loop, and pids.events counts the refusals', async ({ t }) => {
  // Forks children that linger until fork is refused; prints how many it got, and the errno.
  const forkUntilRefused = [
    'import os, time',
    'children = 0',
    'try:',
    '    while children < 60:',
    '        if os.fork() == 0: time.sleep(2); os._exit(0)',
    '        children += 1',
    'except OSError as refused: print(children, refused.errno, flush=True)',
  ].join('\n');
  const { stdout, record } = await runToEnd(t.runtime, {
    argv: ['python3', '-c', forkUntilRefused],
    limits: { pids: 20 },
  });
  const final = t.driver.trace(record.id).final;
  console.log(`  forked ${stdout.trim()}; pids.events ${final['pids.events']}`);
  // 20 processes: python and 19 children; then fork fails with EAGAIN (11).
  assert.is(stdout.trim(), '19 11');
  assert.is(final['pids.max'], '21', 'the limit plus the job’s init');
  assert.ok((keyed(final['pids.events'] ?? '').max ?? 0) > 0, 'pids.events max');
});

limits('cpu.max: two busy loops under cpus 0.5 get about half a core, throttled', async ({ t }) => {
  const started = Date.now();
  const { record } = await shell(
    t.runtime,
    'timeout 4 sh -c "while :; do :; done" & timeout 4 sh -c "while :; do :; done" & wait',
    { limits: { cpus: 0.5 } },
  );
  const wallSeconds = (Date.now() - started) / 1000;
  const cpuSeconds = record.usage?.cpuSeconds ?? 0;
  const share = cpuSeconds / wallSeconds;
  const stat = keyed(t.driver.trace(record.id).final['cpu.stat'] ?? '');
  console.log(
    `  cpu share ${share.toFixed(3)} (${cpuSeconds.toFixed(2)} s in ${wallSeconds.toFixed(2)} s); ` +
      `throttled ${stat.nr_throttled} of ${stat.nr_periods} periods`,
  );
  assert.is(t.driver.trace(record.id).final['cpu.max'], '50000 100000');
  assert.ok(share > 0.3 && share < 0.7, `cpu share ${share.toFixed(3)}`);
  assert.ok((stat.nr_throttled ?? 0) > 0, 'cpu.stat nr_throttled');
});

/**
 * Runs a job whose last dd moves `mib` MiB under `limits`: the rate dd measured, and what the
 * job's io.stat counted on the disk its io.max names.
 */
async function throttledDd(t: V2Runtime, script: string, mib: number, limits: JobLimits) {
  const { stderr, record } = await shell(t.runtime, script, { storageKind: 'disk', limits });
  assert.is(record.state, 'COMPLETED', stderr);
  const final = t.driver.trace(record.id).final;
  const device = diskOf(final['io.max']);
  const rate = mib / ddSeconds(stderr);
  return {
    rate,
    device,
    ioMax: final['io.max'] ?? '',
    usage: record.usage,
    ...ioBytes(final['io.stat'], device),
  };
}

limits('io.max: direct writes on the virtio disk run near a 10 MiB/s limit', async ({ t }) => {
  const dd = 'dd if=/dev/zero of=/job/file bs=1M count=30 oflag=direct';
  const { rate, device, ioMax, usage, wbytes } = await throttledDd(t, dd, 30, {
    ioWriteBps: 10 * MiB,
  });
  console.log(`  write rate ${rate.toFixed(2)} MiB/s on ${device}; io.stat wbytes ${wbytes}`);
  // The disk under the image alone: the loop device's direct IO there is the job's own.
  assert.match(ioMax, new RegExp(`^${device} rbps=max wbps=${10 * MiB} [^\n]*$`));
  assert.ok(rate > 7 && rate < 13, `write rate ${rate.toFixed(2)} MiB/s`);
  assert.ok(wbytes >= 30 * MiB, `io.stat wbytes ${wbytes}`);
  assert.is(usage?.ioWriteBytes, wbytes);
});

limits('io.max: direct reads run near a 10 MiB/s limit', async ({ t }) => {
  const dd =
    'dd if=/dev/zero of=/job/file bs=1M count=20 oflag=direct 2>/dev/null && ' +
    'dd if=/job/file of=/dev/null bs=1M iflag=direct';
  const { rate, rbytes } = await throttledDd(t, dd, 20, { ioReadBps: 10 * MiB });
  console.log(`  read rate ${rate.toFixed(2)} MiB/s; io.stat rbytes ${rbytes}`);
  assert.ok(rate > 7 && rate < 13, `read rate ${rate.toFixed(2)} MiB/s`);
  assert.ok(rbytes >= 20 * MiB, `io.stat rbytes ${rbytes}`);
});

limits('io.max also holds the writeback of a job’s buffered writes (v1 cannot)', async ({ t }) => {
  // The job dirties 24 MiB of page cache at memory speed and waits. A sync from outside the job
  // then writes those pages back, and v2 charges the writeback to the job's cgroup: the sync
  // takes about 24 MiB / 8 MiB/s.
  const started = await startJob(
    t.runtime,
    {
      argv: ['sh', '-c', 'dd if=/dev/zero of=/job/file bs=1M count=24 2>&1 && exec sleep 120'],
      storageKind: 'disk',
      limits: { ioWriteBps: 8 * MiB },
    },
    'tester',
  );
  let output = '';
  for await (const chunk of t.runtime.readOutput(started.id, 0)) {
    output += Buffer.from(chunk.data).toString();
    if (output.includes('copied')) break;
  }
  const dirtied = ddSeconds(output);
  const syncStarted = Date.now();
  await run('sync');
  const syncSeconds = (Date.now() - syncStarted) / 1000;
  const record = await stopJob(t.runtime, started.id, 0);
  const { wbytes } = ioBytes(
    t.driver.trace(record.id).final['io.stat'],
    diskOf(t.driver.trace(record.id).final['io.max']),
  );
  console.log(
    `  dd into the page cache ${dirtied.toFixed(2)} s; sync ${syncSeconds.toFixed(2)} s ` +
      `(${(24 / syncSeconds).toFixed(2)} MiB/s); io.stat wbytes ${wbytes}`,
  );
  assert.ok(syncSeconds > 24 / 8 / 1.6, `sync took ${syncSeconds.toFixed(2)} s`);
  assert.ok(wbytes >= 24 * MiB, `io.stat wbytes ${wbytes}`);
});

limits('cpuset pins the job to the CPU it names', async ({ t }) => {
  const { stdout, record } = await shell(
    t.runtime,
    'grep Cpus_allowed_list /proc/self/status; nproc',
    {
      limits: { cpusetCpus: '1' },
    },
  );
  assert.equal(stdout.trim().split('\n'), ['Cpus_allowed_list:\t1', '1']);
  assert.is(t.driver.trace(record.id).final['cpuset.cpus.effective'], '1');
});

limits.run();
