// Jobs through the installed API and the installed jobctl, with the executor under systemd:
// output, exit codes, the job's record, where the job runs in the unit's cgroup, and a stop that
// ends a whole process tree (the executor kills the job's cgroup below its unit's).
import { existsSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ensureRunning,
  jobCgroup,
  jobctl,
  jobPids,
  jobShell,
  jobStatus,
  withJournal,
} from './kit.ts';

const jobs = suite('systemd: jobs');
jobs.before(ensureRunning);

jobs(
  'stdout and stderr come back apart, byte for byte, and jobctl exits with the job’s code',
  withJournal(async () => {
    const ran = await jobShell("printf 'out 1\\n'; printf 'err 1\\n' >&2; printf 'out 2'; exit 3");
    assert.equal([ran.code, ran.stdout.toString(), ran.stderr], [3, 'out 1\nout 2', 'err 1\n']);
    const killed = await jobShell('kill -KILL $$');
    assert.equal([killed.code, killed.stderr], [128 + 9, '']);
  }),
);

jobs(
  'a program that is not there is a start error (127), not a job that ran',
  withJournal(async () => {
    const ran = await jobctl(['run', '--', 'no-such-program-here']).done;
    assert.is(ran.code, 127);
    assert.match(ran.stderr, /exec "no-such-program-here": no such file or directory/);
  }),
);

jobs(
  'start, logs, status: the job runs in its own cgroup (its namespace’s root), removed once it ended',
  withJournal(async () => {
    const started = await jobctl(['start', '--', 'sh', '-c', 'cat /proc/self/cgroup; exit 4']).done;
    assert.is(started.code, 0, started.stderr);
    const id = started.stdout.toString().trim();
    const logs = await jobctl(['logs', '-f', id]).done; // returns once the job has ended
    // Its own cgroup namespace: the job sees its cgroup as the root, no host path.
    assert.is(logs.stdout.toString(), '0::/\n');
    const job = await jobStatus(id);
    assert.equal([job.state, job.endReason, job.exitCode], ['failed', 'exited', 4]);
    assert.not.ok(existsSync(jobCgroup(id)), 'the job cgroup is gone');
  }),
);

const alive = (pid: string) => existsSync(`/proc/${pid}`);

jobs(
  'stop ends a tree that ignores SIGTERM and left its session; its cgroup is gone',
  withJournal(async () => {
    const tree = [
      'trap "" TERM',
      // A grandchild in a session of its own, ignoring SIGTERM too (ignored signals survive exec).
      "(setsid sh -c 'exec sleep 600' &)",
      'exec sleep 600',
    ].join('\n');
    const started = await jobctl(['start', '--', 'sh', '-c', tree]).done;
    assert.is(started.code, 0, started.stderr);
    const id = started.stdout.toString().trim();
    // The job's init, the job's sleep and the grandchild's (its keeper stays outside its cgroup).
    const pids = await jobPids(id, 3);
    // StopJob answers once the job has ended.
    const stopped = await jobctl(['stop', '--grace', '1s', id]).done;
    assert.is(stopped.code, 0, stopped.stderr);
    const job = await jobStatus(id);
    assert.is(job.state, 'stopped');
    assert.not.ok(existsSync(jobCgroup(id)), 'the job cgroup is gone');
    assert.equal(pids.filter(alive), [], 'no process of the job is left');
  }),
);

jobs.run();
