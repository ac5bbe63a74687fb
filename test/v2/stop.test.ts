// Stopping on cgroup v2: cgroup.kill ends a whole forking tree at once, whatever the processes do
// to escape (ignore SIGTERM, leave the session, keep forking), and the job's cgroup is removed.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { killStartedChildren, newJobId, startGated, withTimeout } from '../root/cgroup-test-kit.ts';
import { sleep } from '../root/executor-kit.ts';
import {
  cgroupFile,
  keyed,
  logged,
  openV2Runtime,
  pidsWithMarker,
  requireV2Vm,
  words,
  type V2Runtime,
} from './kit.ts';
import { startJob, stopJob } from '../root/executor-kit.ts';

const stop = suite<{ t: V2Runtime }>('v2 stop');
stop.before(
  logged(async (context) => {
    requireV2Vm();
    context.t = await openV2Runtime();
  }),
);
stop.after(async ({ t }) => {
  killStartedChildren();
  await t?.close();
});

/** A shell loop that ignores SIGTERM and forks a short-lived child every 100 ms, forever. */
const BRANCH = 'trap "" TERM; while :; do sleep 0.1 & wait; done';

/** `count` such loops, each in a session of its own, then one more as the process itself. */
function forkingTree(marker: string, count: number): string {
  const branch = `setsid sh -c '${BRANCH}' ${marker}`;
  return `trap "" TERM; for i in $(seq ${count}); do ${branch} & done; exec sh -c '${BRANCH}' ${marker}`;
}

async function waitForMarked(marker: string, count: number): Promise<void> {
  for (let i = 0; pidsWithMarker(marker).length < count; i += 1) {
    if (i > 1000) throw new Error(`fewer than ${count} processes of ${marker} appeared`);
    await sleep(20);
  }
}

stop(
  'cgroup.kill ends a forking tree in one step: no signal needs to be sent by pid',
  async ({ t }) => {
    const job = await t.driver.create(newJobId(), { pids: 64 }, []);
    const [dir = ''] = job.joinDirs;
    const marker = `jobworker-marker-${randomBytes(4).toString('hex')}`;
    const child = startGated(forkingTree(marker, 4));
    await child.enter(job.joinDirs);
    child.release();
    await waitForMarked(marker, 5);
    const before = words(cgroupFile(dir, 'cgroup.procs')).length;

    // The v1 fallback in killAll sends SIGKILL by pid to what is left after cgroup.kill; on v2
    // nothing should be left for it.
    const kill = process.kill.bind(process);
    let sentByPid = 0;
    process.kill = (pid: number, signal?: string | number) => {
      sentByPid += 1;
      return kill(pid, signal);
    };
    const started = Date.now();
    try {
      await job.killAll();
    } finally {
      process.kill = kill;
    }
    const killMs = Date.now() - started;
    console.log(`  ${before} processes in the cgroup; killAll took ${killMs} ms`);
    assert.is(sentByPid, 0, 'signals sent by pid');
    assert.is(keyed(cgroupFile(dir, 'cgroup.events')).populated, 0);
    assert.is(cgroupFile(dir, 'cgroup.procs'), '');
    assert.equal(pidsWithMarker(marker), []);
    assert.is(await withTimeout(child.exited, 2_000, 'the tree’s first process'), 'SIGKILL');
    await job.remove();
    assert.not.ok(existsSync(dir), `${dir} still exists`);
  },
);

stop(
  'stop ends a job that ignores SIGTERM and forks; its cgroup is emptied and removed',
  async ({ t }) => {
    const marker = `jobworker-marker-${randomBytes(4).toString('hex')}`;
    const job = await startJob(
      t.runtime,
      { argv: ['sh', '-c', forkingTree(marker, 3), marker], limits: { pids: 64 } },
      'tester',
    );
    await waitForMarked(marker, 4);
    const trace = t.driver.trace(job.id);
    const running = words(cgroupFile(trace.dir, 'cgroup.procs')).length;
    const started = Date.now();
    const record = await stopJob(t.runtime, job.id, 300);
    console.log(`  ${running} processes; stop with a 300 ms grace took ${Date.now() - started} ms`);
    assert.equal([record.state, record.endReason], ['STOPPED', 'stopped']);
    assert.ok(trace.killAlls >= 1, 'the job’s cgroup was killed');
    assert.is(keyed(trace.final['cgroup.events'] ?? '').populated, 0);
    assert.not.ok(existsSync(trace.dir), `${trace.dir} still exists`);
    assert.equal(pidsWithMarker(marker), []);
  },
);

stop.run();
