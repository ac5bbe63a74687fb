// jobctl's command line without a server: argv handling, usage errors (one line naming the flag,
// exit 125, nothing sent), help and version.
import { PassThrough } from 'node:stream';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { protectArgv, unmark } from '../../api/jobctl/cli-args.ts';
import type { ArgvGrammar } from '../../api/jobctl/cli-args.ts';
import { main, VERSION } from '../../api/jobctl/main.ts';

const cli = suite('jobctl command line');

const grammar: ArgvGrammar = {
  valueFlags: new Map([
    ['--memory', '--memory'],
    ['--server', '--server'],
    ['-e', '--env'],
    ['--env', '--env'],
  ]),
  jobCommands: new Set(['run']),
};
const M = '\u0000';

cli('values and positionals are marked so that nothing turns them into numbers', () => {
  assert.equal(protectArgv(['logs', '-f', '123', '--server', '0x10'], grammar), [
    'logs',
    '-f',
    `${M}123`,
    '--server',
    `${M}0x10`,
  ]);
  assert.equal(unmark([`${M}123`, 'plain', `${M}`]), ['123', 'plain', '']);
});

cli("the job's argv starts at -- or at the first word after run that is not a flag", () => {
  assert.equal(protectArgv(['run', '--memory', '64m', 'ls', '-la', '--', 'x'], grammar), [
    'run',
    '--memory',
    `${M}64m`,
    '--',
    'ls',
    '-la',
    '--',
    'x',
  ]);
  assert.equal(protectArgv(['--server', 'h:1', 'run', '--', '-x', '--memory'], grammar), [
    '--server',
    `${M}h:1`,
    'run',
    '--',
    '-x',
    '--memory',
  ]);
});

cli('a flag that takes a value takes the next word; short forms and = are normalised', () => {
  assert.equal(
    protectArgv(['run', '-e', 'A=1', '-eB=2', '--env=C=3', '--memory', '--', 'true'], grammar),
    [
      'run',
      '--env',
      `${M}A=1`,
      '--env',
      `${M}B=2`,
      '--env',
      `${M}C=3`,
      '--memory',
      `${M}--`,
      '--',
      'true',
    ],
  );
});

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

async function jobctl(...argv: string[]): Promise<Ran> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (data: Buffer) => (out += data.toString()));
  stderr.on('data', (data: Buffer) => (err += data.toString()));
  // No server anywhere: an error that is not a usage error would say it cannot connect.
  const env = {
    JOBCTL_DEV_DIR: '/nonexistent',
    HOME: '/nonexistent',
    JOBCTL_SERVER: '127.0.0.1:1',
  };
  const code = await main({ argv, env, stdout, stderr });
  return { code, stdout: out, stderr: err };
}

cli('bad flags and values: exit 125, one line naming the flag, nothing else', async () => {
  const cases: [string[], string][] = [
    [
      ['run', '--memory', '0x10', '--', 'true'],
      'jobctl run: --memory "0x10": not a size; use a number with an optional unit k, m, g (256m, 1.5g)',
    ],
    [
      ['run', '--cpus', '1e3', 'true'],
      'jobctl run: --cpus "1e3": not a number of CPUs; use a decimal such as 0.5 or 2',
    ],
    [
      ['run', '--pids-limit', '-1', 'true'],
      'jobctl run: --pids-limit "-1": must be a whole number above 0',
    ],
    [
      ['start', '--timeout', 'soon', '--', 'true'],
      'jobctl start: --timeout "soon": not a duration; use a number with s, m or h (30s, 1m30s, 2h)',
    ],
    [['run', '--memory', '2m', 'true'], 'jobctl run: --memory "2m": must be at least 4MiB'],
    [['run', '--memory'], 'jobctl run: --memory needs a value'],
    [['run', '--memroy', '1g', 'true'], 'jobctl run: unknown flag --memroy'],
    [['run'], 'jobctl run: no command given: jobctl run [OPTIONS] -- COMMAND [ARG...]'],
    [
      ['stop', '--grace', '0x10', 'abc'],
      'jobctl stop: --grace "0x10": not a duration; use a number with s, m or h (30s, 1m30s, 2h)',
    ],
    [['status'], 'jobctl status: missing argument: jobctl status <id>'],
    [
      ['status', '0x1f'],
      'jobctl status: "0x1f" is not a job id (32 hex digits, or the start of one)',
    ],
    [
      ['logs', '-f', '0x1f'],
      'jobctl logs: "0x1f" is not a job id (32 hex digits, or the start of one)',
    ],
    [['status', 'abc', 'def'], 'jobctl status: unexpected argument def'],
    [
      ['list', '--state', 'done'],
      'jobctl list: --state "done": must be one of running, completed, failed, stopped',
    ],
    [['list', '-a', 'x'], 'jobctl list: unexpected argument x'],
    [
      ['completion', 'fish'],
      'jobctl completion: completion "fish": only bash is supported (zsh: autoload bashcompinit && bashcompinit, then source the bash one)',
    ],
    [['frobnicate'], 'jobctl: unknown command "frobnicate"'],
    [
      ['list', '--server', 'http://x'],
      'jobctl list: --server "http://x": not a server address; use host:port (jobs.example.com:50051, 127.0.0.1:50051, [::1]:50051)',
    ],
  ];
  for (const [argv, line] of cases) {
    const ran = await jobctl(...argv);
    const help = `'${line.slice(0, line.indexOf(':'))} --help'`;
    assert.equal(ran, { code: 125, stdout: '', stderr: `${line} (see ${help})\n` }, argv.join(' '));
  }
});

cli(
  'help: every command has its usage, options and examples; `help CMD` is `CMD --help`',
  async () => {
    const top = await jobctl('--help');
    assert.is(top.code, 0);
    for (const section of ['Commands:', 'Connection:', 'Exit codes:', 'JOBCTL_SERVER'])
      assert.ok(top.stdout.includes(section), section);
    for (const command of ['run', 'start', 'stop', 'status', 'logs', 'list', 'completion']) {
      const help = await jobctl(command, '--help');
      assert.is(help.code, 0);
      assert.ok(help.stdout.includes(`$ jobctl ${command}`), `${command}: usage`);
      assert.ok(help.stdout.includes('Examples:'), `${command}: examples`);
      assert.ok(help.stdout.includes('--server <host:port>'), `${command}: connection flags`);
      assert.not.match(help.stdout, / +\n/, `${command}: trailing spaces`);
      assert.equal(await jobctl('help', command), help);
    }
    assert.ok((await jobctl('run', '--help')).stdout.includes('--memory <size>'));
    assert.equal(await jobctl(), { ...top });
  },
);

cli('--version and version print the package version', async () => {
  assert.equal(await jobctl('version'), await jobctl('--version'));
  const ran = await jobctl('--version');
  assert.is(ran.code, 0);
  assert.match(ran.stdout, new RegExp(`^jobctl ${VERSION.replaceAll('.', '\\.')} \\(node v`));
});

cli(
  'without a reachable server, a command says so in one line and exits 1 (run: 125)',
  async () => {
    const env = ['--cert', '/nonexistent/c', '--key', '/nonexistent/k', '--ca', '/nonexistent/ca'];
    const list = await jobctl('list', ...env);
    assert.equal(list, {
      code: 1,
      stdout: '',
      stderr:
        'jobctl: cannot read the client certificate /nonexistent/c (from --cert): no such file\n',
    });
    const run = await jobctl('run', ...env, '--', 'true');
    assert.is(run.code, 125);
  },
);

cli.run();
