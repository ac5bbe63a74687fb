// The helper trust check (executor/trusted-executable.ts): root runs a program only if the file
// and every directory and link on the way to it are root's and writable by no one else. Real
// files, owners and modes in a scratch tree under /var/lib (root's 0755 all the way up).
import { spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  lchownSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  checkTrustedExecutable,
  UntrustedExecutableError,
} from '../../executor/trusted-executable.ts';
import { compiledPath } from '../../shared/app-layout.ts';
import { TEST_PREFIX } from './executor-kit.ts';
import { trackChild } from './executor-process-kit.ts';

const NOBODY = 65_534;

interface Context {
  /** /var/lib/jobworker-test-trust-*: root's, 0755, as are the directories above it. */
  dir: string;
  /** dir/bin/program: root's, 0755. */
  program: string;
}

const trust = suite<Context>('trusted executables');

trust.before.each((context) => {
  context.dir = mkdtempSync(`/var/lib/${TEST_PREFIX}trust-`);
  chmodSync(context.dir, 0o755);
  mkdirSync(join(context.dir, 'bin'), { mode: 0o755 });
  context.program = join(context.dir, 'bin', 'program');
  writeFileSync(context.program, '#!/bin/sh\n', { mode: 0o755 });
});
trust.after.each(({ dir }) => rmSync(dir, { recursive: true, force: true }));

/** The refusal for `path`, which must name `offending`. */
async function refused(path: string, offending: string, problem: RegExp): Promise<void> {
  try {
    await checkTrustedExecutable(path);
  } catch (error) {
    assert.instance(error, UntrustedExecutableError);
    const refusal = error as UntrustedExecutableError;
    assert.is(refusal.offendingPath, offending, refusal.message);
    assert.match(refusal.problem, problem);
    assert.match(refusal.message, `${path}: ${offending} `);
    assert.match(refusal.message, 'must be owned by root and writable by no one else');
    return;
  }
  assert.unreachable(`${path} was trusted`);
}

trust('a root-owned program in root-owned directories is trusted', async ({ program }) => {
  assert.is(await checkTrustedExecutable(program), program);
});

trust('the file itself: another owner, group or world write, not executable', async (context) => {
  const { program } = context;
  chownSync(program, NOBODY, 0);
  await refused(program, program, /^is owned by uid 65534, not root$/);
  chownSync(program, 0, 0);
  chmodSync(program, 0o775);
  await refused(program, program, /^is writable by group or others \(0775\)$/);
  chmodSync(program, 0o757);
  await refused(program, program, /^is writable by group or others \(0757\)$/);
  chmodSync(program, 0o644);
  await refused(program, program, /^is not executable \(0644\)$/);
  chmodSync(program, 0o755);
  mkdirSync(join(context.dir, 'bin', 'dir'), { mode: 0o755 });
  await refused(
    join(context.dir, 'bin', 'dir'),
    join(context.dir, 'bin', 'dir'),
    /^is not a regular file$/,
  );
});

trust(
  'any directory above it: another owner, group or world write, sticky or not',
  async (context) => {
    const { dir, program } = context;
    const bin = join(dir, 'bin');
    chownSync(bin, NOBODY, 0);
    await refused(program, bin, /^is owned by uid 65534, not root$/);
    chownSync(bin, 0, 0);
    chmodSync(dir, 0o775);
    await refused(program, dir, /^is writable by group or others \(0775\)$/);
    chmodSync(dir, 0o1777);
    await refused(program, dir, /^is writable by group or others \(01777\)$/);
    chmodSync(dir, 0o755);
    // /var/tmp is root's but world-writable (sticky): nothing below it is trusted.
    const underVarTmp = mkdtempSync(`/var/tmp/${TEST_PREFIX}trust-`);
    try {
      chmodSync(underVarTmp, 0o755);
      copyFileSync(program, join(underVarTmp, 'program'));
      await refused(
        join(underVarTmp, 'program'),
        '/var/tmp',
        /^is writable by group or others \(01777\)$/,
      );
    } finally {
      rmSync(underVarTmp, { recursive: true, force: true });
    }
  },
);

trust('symbolic links are followed, and each one and its target path checked', async (context) => {
  const { dir, program } = context;
  const link = join(dir, 'link');
  symlinkSync('bin/program', link);
  assert.is(await checkTrustedExecutable(link), program, 'a root-owned link to a trusted program');
  symlinkSync(dir, join(dir, 'self'));
  assert.is(
    await checkTrustedExecutable(join(dir, 'self', 'bin', '..', 'bin', 'program')),
    program,
  );

  lchownSync(link, NOBODY, NOBODY);
  await refused(link, link, /^is a symbolic link owned by uid 65534, not root$/);

  // A root-owned link into a directory someone else may write: the target path is checked too.
  const open = join(dir, 'open');
  mkdirSync(open, { mode: 0o777 });
  chmodSync(open, 0o777);
  copyFileSync(program, join(open, 'program'));
  symlinkSync(join(open, 'program'), join(dir, 'bin', 'to-open'));
  await refused(join(dir, 'bin', 'to-open'), open, /^is writable by group or others \(0777\)$/);

  symlinkSync('loop-b', join(dir, 'loop-a'));
  symlinkSync('loop-a', join(dir, 'loop-b'));
  await refused(
    join(dir, 'loop-a'),
    join(dir, 'loop-a'),
    /^has too many levels of symbolic links$/,
  );
});

trust('a missing or relative path is refused by name', async ({ dir }) => {
  await refused(join(dir, 'bin', 'none'), join(dir, 'bin', 'none'), /^does not exist$/);
  await refused(join(dir, 'none', 'program'), join(dir, 'none'), /^does not exist$/);
  await refused('bin/program', 'bin/program', /^is not an absolute path$/);
});

trust(
  'the executor refuses to start with an untrusted helper, naming the path',
  async ({ dir }) => {
    const helper = join(dir, 'bin', 'program');
    chmodSync(join(dir, 'bin'), 0o777);
    const config = join(dir, 'executor.json');
    writeFileSync(
      config,
      JSON.stringify({
        stateDir: join(dir, 'state'),
        socketPath: join(dir, 'run', 'executor.sock'),
        cgroupName: `${TEST_PREFIX}trust`,
        helperPath: helper,
      }),
    );
    const child = trackChild(
      spawn(process.execPath, [compiledPath('executor/main.ts'), '--config', config], {
        stdio: ['ignore', 'ignore', 'pipe'],
      }),
    );
    let log = '';
    child.stderr?.on('data', (data: Buffer) => (log += data.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.is(code, 78, log);
    assert.match(
      log,
      `helperPath: ${helper}: ${join(dir, 'bin')} is writable by group or others (0777)`,
    );
  },
);

trust.run();
