// Stopping everything, as an operator decommissioning a host does, while a job runs: stopping the
// executor leaves its job running (a restart must not lose it); the drain ends it and its keeper
// records it; the next executor start files the record; stopping the units then leaves what the
// README describes: no job process, keeper or cgroup, no mount or socket.
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
  JOBS,
  JOBS_CGROUP,
  must,
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
  'systemctl stop leaves jobs running; a drain stops and records them; then nothing is left',
  withJournal(async () => {
    const started = await jobctl(['start', '--', 'sh', '-c', 'sleep 600 & exec sleep 600']).done;
    assert.is(started.code, 0, started.stderr);
    const id = started.stdout.toString().trim();
    // The job's init and both sleeps (its keeper is outside its cgroup).
    const pids = await jobPids(id, 3);

    await systemctl('stop', API, EXECUTOR);
    for (const unit of [API, EXECUTOR]) {
      assert.is(await property(unit, 'ActiveState'), 'inactive', unit);
      assert.is(await property(unit, 'Result'), 'success', unit);
    }
    assert.is(await property(EXECUTOR, 'ExecMainStatus'), '0');
    assert.ok(
      pids.every((pid) => existsSync(`/proc/${pid}`)),
      'stopping the executor leaves its jobs running',
    );

    // The README's way to end every job: the drain, as root, with no executor running.
    const drained = await must('node', [
      join(APP, 'dist/executor/drain.js'),
      '--config',
      '/etc/jobworker/executor.json',
      '--grace',
      '1s',
    ]);
    assert.is(drained, 'drain: 1 job(s) stopped');
    assert.equal(
      pids.filter((pid) => existsSync(`/proc/${pid}`)),
      [],
      'no process of the job',
    );
    await systemctl('stop', JOBS);
    assert.is(await property(JOBS, 'ActiveState'), 'inactive');

    // The next executor start records what ended while none ran; then stop for good.
    await systemctl('start', EXECUTOR);
    for (let i = 0; i < 300; i += 1) {
      const record = JSON.parse(
        readFileSync(join(STATE_DIR, 'jobs', id, 'record.json'), 'utf8'),
      ) as Record<string, unknown>;
      if (record.state !== 'RUNNING') break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const record = JSON.parse(
      readFileSync(join(STATE_DIR, 'jobs', id, 'record.json'), 'utf8'),
    ) as Record<string, unknown>;
    assert.equal([record.state, record.endReason], ['STOPPED', 'stopped']);
    await systemctl('stop', EXECUTOR, JOBS);

    const helper = join(APP, 'executor/helper/build/jobworker-helper');
    assert.equal(
      [
        ...pidsWhere('comm', (comm) => comm.trim() === 'jobworker-init'),
        ...pidsWhere('cmdline', (cmdline) => cmdline.startsWith(helper)),
      ],
      [],
      'no job init or keeper anywhere',
    );
    assert.not.ok(existsSync(JOBS_CGROUP), 'systemd removed the jobs’ cgroup, empty');
    assert.not.ok(existsSync(EXECUTOR_CGROUP), 'and the executor’s');
    const mounts = readFileSync('/proc/1/mountinfo', 'utf8')
      .split('\n')
      .map((line) => line.split(' ')[4] ?? '')
      .filter((point) => point.startsWith(`${STATE_DIR}/`) || point.includes('jobworker/jobs'));
    assert.equal(mounts, [], 'no mount below the state directory');
    assert.not.ok(existsSync('/run/jobworker'), 'the socket’s runtime directory is gone');
  }),
);

shutdown.run();
