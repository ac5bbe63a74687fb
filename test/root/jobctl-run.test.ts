// `jobctl run`, the real process against a real stack: exit codes, stdout and stderr kept apart
// byte for byte, argv passed untouched, and Ctrl-C (stop, then detach).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { jobIdIn, openJobctlKit } from './jobctl-kit.ts';
import type { JobctlKit } from './jobctl-kit.ts';

const run = suite<{ kit: JobctlKit }>('jobctl run');
run.before(async (context) => {
  // A long grace period, so that a job that ignores SIGTERM is still being stopped when the
  // second Ctrl-C comes (the detach test); jobs that honour SIGTERM end at once.
  context.kit = await openJobctlKit({}, { stopGraceMs: 30_000 });
});
run.after(async ({ kit }) => {
  await kit.close();
});

const json = (ran: { stdout: Buffer }) =>
  JSON.parse(ran.stdout.toString()) as Record<string, unknown>;

run('exits with the job exit code: 0, 3, and 128+n when signal n killed it', async ({ kit }) => {
  const cases: [string, number][] = [
    ['exit 0', 0],
    ['exit 3', 3],
    ['exit 255', 255],
    ['kill -KILL $$', 128 + 9],
    ['kill -SEGV $$', 128 + 11],
  ];
  for (const [script, code] of cases) {
    const ran = await kit.run(['run', '--', 'sh', '-c', script]);
    assert.is(ran.code, code, `${script}: ${ran.stderr}`);
    assert.is(ran.stderr, '', script);
  }
});

run('a program that is not there is 127, one that cannot be executed 126', async ({ kit }) => {
  const missing = await kit.run(['run', '--', 'no-such-program-here', 'arg']);
  assert.is(missing.code, 127);
  assert.is(
    missing.stderr,
    `jobctl: cannot start the job: exec "no-such-program-here": no such file or directory (looked up in the job's PATH when it has no "/")\n`,
  );
  const notExecutable = await kit.run(['run', '--', '/etc/passwd']);
  assert.is(notExecutable.code, 126);
  assert.match(
    notExecutable.stderr,
    /^jobctl: cannot start the job: exec "\/etc\/passwd": permission denied \(is it executable\?\)\n$/,
  );
  assert.is(missing.stdout.length + notExecutable.stdout.length, 0);
});

run('a working directory that fails is 125, without hints about the program', async ({ kit }) => {
  const ran = await kit.run(['run', '-w', '/no/such/dir', '--', 'true']);
  assert.equal(
    [ran.code, ran.stderr],
    [125, 'jobctl: cannot start the job: chdir "/no/such/dir": no such file or directory\n'],
  );
});

run('a job the service refuses is 125, with the reason in one line', async ({ kit }) => {
  const viewer = await kit.run(['run', '--', 'true'], { who: 'vera' });
  assert.equal(
    [viewer.code, viewer.stderr],
    [
      125,
      'jobctl: permission denied: role viewer may not call StartJob (you are vera, role viewer)\n',
    ],
  );
  const tooMuch = await kit.run(['run', '--cpus', '1000', '--', 'true']);
  assert.is(tooMuch.code, 125);
  assert.match(tooMuch.stderr, /^jobctl: the server refused --cpus: .*maximum.*\n$/);
});

run('stdout goes to stdout and stderr to stderr, byte for byte', async ({ kit }) => {
  const ran = await kit.run([
    'run',
    '--',
    'sh',
    '-c',
    "printf 'out 1\\n'; printf 'err 1\\n' >&2; printf 'out 2'; printf 'err 2' >&2",
  ]);
  assert.equal([ran.code, ran.stdout.toString(), ran.stderr], [0, 'out 1\nout 2', 'err 1\nerr 2']);
  // Binary output, larger than any one chunk: every byte, in order, nothing added.
  const binary = await kit.run([
    'run',
    '--',
    'python3',
    '-c',
    'import sys; sys.stdout.buffer.write(bytes(range(256)) * 8192)',
  ]);
  assert.is(binary.code, 0);
  assert.ok(
    binary.stdout.equals(
      Buffer.alloc(256 * 8192, Buffer.from(Array.from({ length: 256 }, (_, i) => i))),
    ),
  );
  assert.is(binary.stderr, '');
});

run(
  "the job's argv arrives untouched: spaces, quotes, flags, unicode, empty strings",
  async ({ kit }) => {
    const args = [
      'two words',
      "it's",
      '"double"',
      '-la',
      '--',
      '--memory',
      '64m',
      '',
      'ünïcödé ✓ 日本',
      '$HOME',
      '*',
      'line\nbreak',
      '\\',
      ' ',
    ];
    const program = ['python3', '-c', 'import json, sys; print(json.dumps(sys.argv[1:]))'];
    const afterDashes = await kit.run(['run', '--', ...program, ...args]);
    assert.is(afterDashes.code, 0, afterDashes.stderr);
    assert.equal(JSON.parse(afterDashes.stdout.toString()), args);
    // Without --, as with Docker: the argv starts at the first word that is not a flag.
    const docker = await kit.run(['run', '--memory', '64m', ...program, ...args]);
    assert.equal(JSON.parse(docker.stdout.toString()), args);
  },
);

run('-d starts the job and prints only its id, as start does', async ({ kit }) => {
  const ran = await kit.run(['run', '-d', '--', 'sh', '-c', 'echo detached']);
  assert.is(ran.code, 0);
  assert.match(ran.stdout.toString(), /^[0-9a-f]{32}\n$/);
  const logs = await kit.run(['logs', '-f', ran.stdout.toString().trim()]);
  assert.is(logs.stdout.toString(), 'detached\n');
});

run(
  'Ctrl-C stops the job and says so; jobctl exits as the job did (SIGTERM: 143)',
  async ({ kit }) => {
    const running = kit.spawn(['run', '--', 'sh', '-c', 'echo ready; exec sleep 600']);
    await running.until('the job running', (out) => out.toString() === 'ready\n');
    running.child.kill('SIGINT');
    const ran = await running.done;
    const id = jobIdIn(ran.stderr);
    assert.is(ran.code, 143);
    assert.match(ran.stderr, `jobctl: stopping job ${id}… (Ctrl-C again to detach)\n`);
    assert.match(ran.stderr, `jobctl: job ${id} was stopped\n`);
    const status = json(await kit.run(['status', '--json', id]));
    assert.equal(
      [status.state, status.endReason, status.signal],
      ['stopped', 'stopped', 'SIGTERM'],
    );
  },
);

run(
  'a second Ctrl-C detaches: exit 130, the job id printed, the job left to the server',
  async ({ kit }) => {
    // This job ignores SIGTERM: with the stack's 30 s grace period it outlives the first Ctrl-C.
    const running = kit.spawn([
      'run',
      '--',
      'sh',
      '-c',
      'trap "" TERM; echo ready; while :; do sleep 0.1; done',
    ]);
    await running.until('the job running', (out) => out.toString() === 'ready\n');
    running.child.kill('SIGINT');
    await running.until('the stop', (_out, err) => err.includes('stopping job'));
    running.child.kill('SIGINT');
    const ran = await running.done;
    const id = jobIdIn(ran.stderr);
    assert.is(ran.code, 130);
    assert.match(
      ran.stderr,
      `jobctl: detached; job ${id} goes on being stopped: jobctl status ${id}\n`,
    );
    assert.is(json(await kit.run(['status', '--json', id])).state, 'running');
    // Done with it: no grace this time.
    assert.is((await kit.run(['stop', '--grace', '0', id])).code, 0);
    assert.is(json(await kit.run(['status', '--json', id])).state, 'stopped');
  },
);

run.run();
