// start, status, stop, logs and list: the real jobctl against a real stack, as a script or a
// person would use them.
import { spawnSync } from 'node:child_process';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openJobctlKit } from './jobctl-kit.ts';
import type { JobctlKit } from './jobctl-kit.ts';

const commands = suite<{ kit: JobctlKit }>('jobctl commands');
commands.before(async (context) => {
  context.kit = await openJobctlKit();
});
commands.after(async ({ kit }) => {
  await kit.close();
});

type JobJson = Record<string, unknown> & { id: string; state: string };

async function start(
  kit: JobctlKit,
  argv: string[],
  who: 'ada' | 'alice' = 'ada',
): Promise<string> {
  const ran = await kit.run(['start', '--', ...argv], { who });
  assert.is(ran.code, 0, ran.stderr);
  assert.match(ran.stdout.toString(), /^[0-9a-f]{32}\n$/);
  return ran.stdout.toString().trim();
}

async function status(kit: JobctlKit, id: string, who: 'ada' | 'alice' = 'ada'): Promise<JobJson> {
  const ran = await kit.run(['status', '--json', id], { who });
  assert.is(ran.code, 0, ran.stderr);
  return JSON.parse(ran.stdout.toString()) as JobJson;
}

commands(
  'start prints the id only; logs prints the output, stdout and stderr apart',
  async ({ kit }) => {
    const id = await start(kit, ['sh', '-c', 'echo to-out; echo to-err >&2; exit 4']);
    const follow = await kit.run(['logs', '-f', id]);
    assert.equal(
      [follow.code, follow.stdout.toString(), follow.stderr],
      [0, 'to-out\n', 'to-err\n'],
    );
    // An ended job: the whole output, and logs does not wait.
    const logs = await kit.run(['logs', id]);
    assert.equal([logs.code, logs.stdout.toString(), logs.stderr], [0, 'to-out\n', 'to-err\n']);
  },
);

commands(
  'logs without -f prints what a running job has written so far, then returns',
  async ({ kit }) => {
    const id = await start(kit, [
      'sh',
      '-c',
      `echo first; ${kit.waitFor('logs-running')}; echo second`,
    ]);
    // Wait until the first line is stored (logs -f shows it), then ask without -f.
    const follower = kit.spawn(['logs', '-f', id]);
    await follower.until('the first line', (out) => out.toString() === 'first\n');
    const logs = await kit.run(['logs', id]);
    assert.equal([logs.code, logs.stdout.toString()], [0, 'first\n']);
    assert.is((await status(kit, id)).state, 'running');
    await kit.open('logs-running');
    const followed = await follower.done;
    assert.equal([followed.code, followed.stdout.toString()], [0, 'first\nsecond\n']);
  },
);

commands(
  'a reader that goes away ends jobctl quietly, as a shell tool (128 + SIGPIPE)',
  async ({ kit }) => {
    const id = await start(kit, ['sh', '-c', 'yes jobworker | head -c 4000000']);
    await kit.run(['logs', '-f', id]);
    const piped = spawnSync(
      'bash',
      ['-c', `jobctl logs ${id} | head -c 9; echo " \${PIPESTATUS[0]}"`],
      {
        env: kit.env(),
        encoding: 'utf8',
      },
    );
    assert.equal([piped.stdout, piped.stderr], ['jobworker 141\n', '']);
  },
);

commands(
  'status: a page for people, every field for scripts, found by an id prefix',
  async ({ kit }) => {
    const id = await start(kit, ['sh', '-c', 'exit 3']);
    await kit.run(['logs', '-f', id]); // returns once the job has ended
    const job = await status(kit, id.slice(0, 10));
    assert.equal(
      [job.id, job.owner, job.argv, job.state, job.endReason, job.exitCode, job.signal],
      [id, 'ada', ['sh', '-c', 'exit 3'], 'failed', 'exited', 3, null],
    );
    const page = await kit.run(['status', id]);
    assert.is(page.code, 0);
    const text = page.stdout.toString();
    for (const line of [
      `ID: +${id}`,
      'Owner: +ada',
      "Command: +sh -c 'exit 3'",
      'State: +failed \\(exit code 3\\)',
      'Duration: ',
      'Output: +0B',
    ]) {
      assert.match(text, new RegExp(`^${line}`, 'm'));
    }
    const missing = await kit.run(['status', 'ffffffffffffffffffffffffffffffff']);
    assert.is(missing.code, 1);
    assert.match(missing.stderr, /^jobctl: .*ffffffffffffffffffffffffffffffff.*\n$/);
  },
);

commands(
  "stop: SIGTERM, prints the id; stopping an ended job is fine; others' jobs stay hidden",
  async ({ kit }) => {
    const id = await start(kit, ['sleep', '600'], 'alice');
    // Another user's job is not found, exactly as one that does not exist.
    const bob = await kit.run(['stop', id], { who: 'bob' });
    assert.is(bob.code, 1);
    assert.is((await status(kit, id, 'alice')).state, 'running');
    const viewer = await kit.run(['stop', id], { who: 'vera' });
    assert.equal(
      [viewer.code, viewer.stderr],
      [
        1,
        'jobctl: permission denied: role viewer may not call StopJob (you are vera, role viewer)\n',
      ],
    );
    const stopped = await kit.run(['stop', id], { who: 'alice' });
    assert.equal([stopped.code, stopped.stdout.toString()], [0, `${id}\n`]);
    const job = await status(kit, id, 'alice');
    assert.equal([job.state, job.endReason, job.signal], ['stopped', 'stopped', 'SIGTERM']);
    const again = await kit.run(['stop', id], { who: 'alice' });
    assert.equal([again.code, again.stdout.toString()], [0, `${id}\n`]);
  },
);

commands(
  'list: running jobs by default, --all, --state, --owner, -q, --json, newest first',
  async ({ kit }) => {
    // alice's jobs only, so that the other tests' jobs stay out of the way.
    const done = await start(kit, ['true'], 'alice');
    await kit.run(['logs', '-f', done], { who: 'alice' });
    const failed = await start(kit, ['sh', '-c', 'exit 2'], 'alice');
    await kit.run(['logs', '-f', failed], { who: 'alice' });
    const running = await start(
      kit,
      ['sh', '-c', `echo a long command line that goes on and on; ${kit.waitFor('list')}`],
      'alice',
    );
    const list = (...args: string[]) => kit.run(['list', ...args], { who: 'alice' });

    const table = (await list()).stdout.toString().split('\n');
    assert.match(
      table[0] ?? '',
      /^ID {13}OWNER {3}STATE {5}EXIT\/REASON {3}STARTED +DURATION {3}COMMAND$/,
    );
    assert.is(table.length, 3); // header, the one running job, and the final newline
    assert.match(
      table[1] ?? '',
      new RegExp(
        `^${running.slice(0, 12)}   alice   running .*   sh -c 'echo a long command .{12}…$`,
      ),
    );

    assert.is((await list('-q')).stdout.toString(), `${running}\n`);
    // Newest first; alice's job from the stop test is older than these three.
    assert.ok((await list('-aq')).stdout.toString().startsWith(`${running}\n${failed}\n${done}\n`));
    assert.is((await list('-q', '--state', 'failed')).stdout.toString(), `${failed}\n`);
    assert.is(
      (await list('-q', '--state', 'completed', '--owner', 'alice')).stdout.toString(),
      `${done}\n`,
    );
    const all = JSON.parse((await list('--all', '--json')).stdout.toString()) as JobJson[];
    assert.equal(
      all.slice(0, 3).map((job) => [job.id, job.state, job.exitCode]),
      [
        [running, 'running', null],
        [failed, 'failed', 2],
        [done, 'completed', 0],
      ],
    );
    const full = (await list('--no-trunc')).stdout.toString();
    assert.ok(full.includes(running) && full.includes('goes on and on'), full);
    // A user may list only their own jobs.
    const others = await list('--owner', 'bob');
    assert.is(others.code, 1);
    assert.match(others.stderr, /^jobctl: permission denied: users may list only their own jobs/);
    await kit.open('list');
    await kit.run(['logs', '-f', running], { who: 'alice' });
    assert.is((await list('-q')).stdout.toString(), '');
  },
);

commands.run();
