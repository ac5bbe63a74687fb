// Stopping everything, as an operator (or the host's shutdown) does, while a job runs: the
// executor stops every job, records it, removes its cgroups and exits; systemd finds the units'
// cgroups empty and removes them. The end state the README describes: no job process, no cgroup
// below the executor's, no mount or socket left.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  API,
  APP,
  ensureRunning,
  EXECUTOR,
  EXECUTOR_CGROUP,
  jobctl,
  jobPids,
  property,
  STATE_DIR,
  systemctl,
  withJournal,
} from './kit.ts';

const shutdown = suite('systemd: stop everything');
shutdown.before(ensureRunning);

/** The processes whose /proc/<pid>/<file> satisfies the test. */
function pidsWhere(file: string, test: (text: string) => boolean): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        return test(readFileSync(`/proc/${pid}/${file}`, 'utf8'));
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
}

shutdown(
  'systemctl stop with a job running: the job is stopped and recorded, and nothing is left',
  withJournal(async () => {
    const started = await jobctl(['start', '--', 'sh', '-c', 'sleep 600 & exec sleep 600']).done;
    assert.is(started.code, 0, started.stderr);
    const id = started.stdout.toString().trim();
    // The helper's monitor, the job's init and both sleeps.
    const pids = await jobPids(id, 4);

    await systemctl('stop', API, EXECUTOR);

    for (const unit of [API, EXECUTOR]) {
      assert.is(await property(unit, 'ActiveState'), 'inactive', unit);
      assert.is(await property(unit, 'Result'), 'success', unit);
    }
    assert.is(await property(EXECUTOR, 'ExecMainStatus'), '0');
    const record = JSON.parse(
      readFileSync(join(STATE_DIR, 'jobs', id, 'record.json'), 'utf8'),
    ) as Record<string, unknown>;
    assert.is(record.state, 'STOPPED');
    assert.equal(
      pids.filter((pid) => existsSync(`/proc/${pid}`)),
      [],
      'no process of the job',
    );
    const helper = join(APP, 'executor/helper/build/jobworker-helper');
    assert.equal(
      [
        ...pidsWhere('comm', (comm) => comm.trim() === 'jobworker-init'),
        ...pidsWhere('cmdline', (cmdline) => cmdline.startsWith(helper)),
      ],
      [],
      'no job init or helper anywhere',
    );
    assert.not.ok(existsSync(EXECUTOR_CGROUP), 'systemd removed the executor’s cgroup, empty');
    const mounts = readFileSync('/proc/1/mountinfo', 'utf8')
      .split('\n')
      .map((line) => line.split(' ')[4] ?? '')
      .filter((point) => point.startsWith(`${STATE_DIR}/`) || point.includes('jobworker/jobs'));
    assert.equal(mounts, [], 'no mount below the state directory');
    assert.not.ok(existsSync('/run/jobworker'), 'the socket’s runtime directory is gone');
    assert.not.ok(existsSync(join(STATE_DIR, 'jobs', id, 'work')), 'the job’s /job is gone');
  }),
);

shutdown.run();
