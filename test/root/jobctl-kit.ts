// Driving the real jobctl (the package's bin, compiled and bundled: dist/jobctl/jobctl.cjs) against a real stack, as a
// person would from a shell: its own process, argv, environment, exit code, stdout and stderr.
import type { ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { JOBCTL_BIN } from '../../shared/app-layout.ts';
import { startStack } from './api-kit.ts';
import type { Stack, Who } from './api-kit.ts';
import { TEST_PREFIX } from './executor-kit.ts';
import { spawnCollected, type Ran, type Running } from './spawn-collected.ts';

export type { Ran, Running };

export const JOBCTL = JOBCTL_BIN;
/** How long a test waits for something that must happen before it calls it a hang. */
const HANG_MS = 60_000;

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
    const running = spawnCollected(JOBCTL, args, env(options), HANG_MS);
    children.add(running.child);
    void running.done.then(() => children.delete(running.child));
    return running;
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
