// Runs the outside programs that check the API from outside (openssl, sslscan, testssl, python3)
// to their end, output captured, within a time limit.
import { spawn } from 'node:child_process';
import { trackChild } from './executor-process-kit.ts';

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CommandOptions {
  /** Written to the program's stdin, which is then closed; stdin is empty otherwise. */
  input?: string | Buffer;
  cwd?: string;
  timeoutMs?: number;
}

/**
 * Resolves with the exit code and output whatever the code; rejects only when the program cannot
 * start or outlives its time limit. It runs in a process group of its own so that a time-out
 * ends its children too (testssl runs openssl): SIGTERM first, which lets testssl remove its
 * temporary directory, then SIGKILL.
 */
export function runCommand(
  command: string,
  args: readonly string[],
  options: CommandOptions = {},
): Promise<CommandResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = trackChild(
      spawn(command, args, {
        cwd: options.cwd,
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe'],
      }),
    );
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (data: Buffer) => (stdout += data.toString()));
    child.stderr?.on('data', (data: Buffer) => (stderr += data.toString()));
    // A program that exits without reading its stdin must not fail the test with EPIPE.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.input ?? '');
    let timedOut = false;
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        // The group is gone already.
      }
    };
    let killer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      signalGroup('SIGTERM');
      killer = setTimeout(() => signalGroup('SIGKILL'), 5000);
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      clearTimeout(killer);
      if (timedOut) {
        reject(
          new Error(
            `${command} ${args.join(' ')} did not finish within ${timeoutMs} ms:\n${stdout}\n${stderr}`,
          ),
        );
      } else resolve({ code, stdout, stderr });
    });
  });
}

/** A python3 program run as `nobody` (no groups), to its end: what another local user could do. */
export function pythonAsNobody(program: string): Promise<CommandResult> {
  return runCommand('setpriv', [
    '--reuid',
    'nobody',
    '--regid',
    'nogroup',
    '--clear-groups',
    '/usr/bin/python3',
    '-c',
    program,
  ]);
}
