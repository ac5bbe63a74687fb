// A program started with its stdout and stderr collected as it runs, for tests that drive real
// processes (jobctl, systemctl, scripts) and wait for what they print.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

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

/** Starts a program with its stdout and stderr collected; each `until` gives up after hangMs. */
export function spawnCollected(
  file: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  hangMs: number,
): Running {
  const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let err = '';
  child.stdout?.on('data', (data: Buffer) => out.push(data));
  child.stderr?.on('data', (data: Buffer) => (err += data.toString()));
  const done = new Promise<Ran>((resolve) =>
    child.on('close', (code, signal) => {
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: err });
    }),
  );
  return {
    child,
    stdout: () => Buffer.concat(out),
    stderr: () => err,
    async until(what, test) {
      const deadline = Date.now() + hangMs;
      while (!test(Buffer.concat(out), err)) {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`${basename(file, '.js')} ended before ${what}:\n${err}`);
        }
        if (Date.now() > deadline) throw new Error(`no ${what} within ${hangMs} ms:\n${err}`);
        await sleep(20);
      }
    },
    done,
  };
}
