// The executor restarted as an upgrade or a configuration change does (systemctl restart), and
// killed (Restart=on-failure brings it back), while a job runs and a watcher streams: the job runs
// on in jobworker-jobs.service's cgroup under its keeper, `jobctl logs -f` reconnects and prints
// the job's output whole and once, and the job's record is right once it ends.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ensureRunning,
  EXECUTOR,
  jobctl,
  jobStatus,
  property,
  systemctl,
  withJournal,
} from './kit.ts';

const restart = suite('systemd: executor restarts');
restart.before(ensureRunning);

const LINES = 40;
/**
 * A line every 0.6 s: the job outlives the restart by several seconds, also in a VM without KVM,
 * where a restart of the executor alone takes 8 s (node starts slowly under emulation).
 */
const counting = `for i in $(seq 1 ${LINES}); do echo "line $i"; sleep 0.6; done`;
const expected = Array.from({ length: LINES }, (_, i) => `line ${i + 1}\n`).join('');

async function untilActive(unit: string, otherThan: string): Promise<string> {
  for (;;) {
    const main = await property(unit, 'MainPID');
    if ((await property(unit, 'ActiveState')) === 'active' && main !== '0' && main !== otherThan)
      return main;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

restart(
  'systemctl restart jobworker-executor mid-stream: the job runs on, logs -f prints it all once',
  withJournal(async () => {
    const started = await jobctl(['start', '--', 'sh', '-c', counting]).done;
    assert.is(started.code, 0, started.stderr);
    const id = started.stdout.toString().trim();
    const logs = jobctl(['logs', '-f', id]);
    await logs.until('the first line', (out) => out.toString().includes('line 1\n'));
    const before = await property(EXECUTOR, 'MainPID');
    await systemctl('restart', EXECUTOR);
    assert.is.not(await untilActive(EXECUTOR, before), before, 'a new executor');
    assert.is((await jobStatus(id)).state, 'running', 'taken over by the new executor');
    const ran = await logs.done;
    assert.is(ran.code, 0, ran.stderr);
    assert.is(ran.stdout.toString(), expected);
    const job = await jobStatus(id);
    assert.equal([job.state, job.exitCode], ['completed', 0]);
  }),
);

restart(
  'kill -9 of the executor: systemd starts it again and it takes the job over',
  withJournal(async () => {
    const started = await jobctl(['start', '--', 'sleep', '600']).done;
    assert.is(started.code, 0, started.stderr);
    const id = started.stdout.toString().trim();
    const before = await property(EXECUTOR, 'MainPID');
    process.kill(Number(before), 'SIGKILL');
    await untilActive(EXECUTOR, before);
    assert.is((await jobStatus(id)).state, 'running');
    const stopped = await jobctl(['stop', '--grace', '1s', id]).done;
    assert.is(stopped.code, 0, stopped.stderr);
    assert.is((await jobStatus(id)).state, 'stopped');
  }),
);

restart.run();
