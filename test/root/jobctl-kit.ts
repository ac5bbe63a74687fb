// Driving the real jobctl (the package's bin, compiled and bundled: dist/jobctl/jobctl.cjs) against a real stack, as a
// person would from a shell: its own process, argv, environment, exit code, stdout and stderr.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { JOBCTL_BIN } from '../../shared/app-layout.ts';
import { startStack } from './api-kit.ts';
import type { Stack, Who } from './api-kit.ts';
import { sleep, TEST_PREFIX } from './executor-kit.ts';

export const JOBCTL = JOBCTL_BIN;
/** How long a test waits for something that must happen before it calls it a hang. */
const HANG_MS = 60_000;

export interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export interface Running {
  child: ChildProcess;
  stdout(): Buffer;
  stderr(): string;
  /** Waits until stdout or stderr satisfies the test (fails the test after a long while). */
  until(what: string, test: (out: Buffer, err: string) => boolean): Promise<void>;
  done: Promise<Ran>;
}

export interface RunOptions {
  /** Whose certificate: ada (admin) unless said; null: no connection settings at all. */
  who?: Who | null;
  /** Added to (or, with undefined, removed from) the environment. */
  env?: Record<string, string | undefined>;
}

export interface JobctlKit {
  stack: Stack;
  /** A private HOME (and XDG_CONFIG_HOME below it), so no real config is ever read. */
  home: string;
  /** A directory jobs can see, for gates: a job waits for a file the test creates. */
  gates: string;
  env(options?: RunOptions): NodeJS.ProcessEnv;
  spawn(args: readonly string[], options?: RunOptions): Running;
  run(args: readonly string[], options?: RunOptions): Promise<Ran>;
  /** Opens a gate: creates the file a job waits for. */
  open(gate: string): Promise<void>;
  /** A shell loop that waits for the gate to open (for `sh -c`). */
  waitFor(gate: string): string;
  close(): Promise<void>;
}

export async function openJobctlKit(
  apiConfig: Record<string, unknown> = {},
  executorConfig: Record<string, unknown> = {},
): Promise<JobctlKit> {
  const stack = await startStack(apiConfig, executorConfig);
  const home = await mkdtemp(`/var/tmp/${TEST_PREFIX}jobctl-home-`);
  const gates = await mkdtemp(`/var/tmp/${TEST_PREFIX}jobctl-gates-`);
  // Jobs run as their own uids: they must be able to look into the gate directory.
  await chmod(gates, 0o755);
  await mkdir(join(home, '.config'), { recursive: true });
  // jobctl on the PATH, as an installed bin would be (the completion script calls it).
  await mkdir(join(home, 'bin'));
  await symlink(JOBCTL, join(home, 'bin', 'jobctl'));
  const children = new Set<ChildProcess>();

  const env = (options: RunOptions = {}): NodeJS.ProcessEnv => {
    const who = options.who === undefined ? 'ada' : options.who;
    const base: NodeJS.ProcessEnv = {
      PATH: `${join(home, 'bin')}:${process.env.PATH ?? ''}`,
      HOME: home,
      XDG_CONFIG_HOME: join(home, '.config'),
      // Never the checkout's own development stack.
      JOBCTL_DEV_DIR: join(home, 'no-dev-stack'),
    };
    if (who !== null) {
      Object.assign(base, {
        JOBCTL_SERVER: `127.0.0.1:${stack.port}`,
        JOBCTL_CA: stack.pki.ca,
        JOBCTL_CERT: stack.pki.cert(who).cert,
        JOBCTL_KEY: stack.pki.cert(who).key,
      });
    }
    for (const [name, value] of Object.entries(options.env ?? {})) {
      if (value === undefined) delete base[name];
      else base[name] = value;
    }
    return base;
  };

  const spawnJobctl = (args: readonly string[], options: RunOptions = {}): Running => {
    const child = spawn(JOBCTL, args, { env: env(options), stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    const out: Buffer[] = [];
    let err = '';
    child.stdout?.on('data', (data: Buffer) => out.push(data));
    child.stderr?.on('data', (data: Buffer) => (err += data.toString()));
    const done = new Promise<Ran>((resolve) =>
      child.on('close', (code, signal) => {
        children.delete(child);
        resolve({ code, signal, stdout: Buffer.concat(out), stderr: err });
      }),
    );
    return {
      child,
      stdout: () => Buffer.concat(out),
      stderr: () => err,
      async until(what, test) {
        const deadline = Date.now() + HANG_MS;
        while (!test(Buffer.concat(out), err)) {
          if (child.exitCode !== null || child.signalCode !== null) {
            throw new Error(`jobctl ended before ${what}:\n${err}`);
          }
          if (Date.now() > deadline) throw new Error(`no ${what} within ${HANG_MS} ms:\n${err}`);
          await sleep(20);
        }
      },
      done,
    };
  };

  return {
    stack,
    home,
    gates,
    env,
    spawn: spawnJobctl,
    run: (args, options) => spawnJobctl(args, options).done,
    open: (gate) => writeFile(join(gates, gate), ''),
    waitFor: (gate) => `while [ ! -e ${join(gates, gate)} ]; do sleep 0.05; done`,
    async close() {
      for (const child of children) child.kill('SIGKILL');
      await stack.close();
      await rm(home, { recursive: true, force: true });
      await rm(gates, { recursive: true, force: true });
    },
  };
}

/** The one job id a line of jobctl's output names. */
export function jobIdIn(text: string): string {
  const match = /\b[0-9a-f]{32}\b/.exec(text);
  if (!match) throw new Error(`no job id in: ${text}`);
  return match[0];
}
