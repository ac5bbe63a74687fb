// One run of the native helper (executor/helper/jobworker-helper.c) for one job: sends it the
// spec, follows its reports, and drains the job's stdout and stderr into the job's OutputLog.
// The protocol on fd 3 is described at the top of the C file.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { constants, open } from 'node:fs';
import net from 'node:net';
import { getSystemErrorMap, promisify } from 'node:util';
import type { Logger } from 'pino';
import type { OutputStream } from '../../shared/executor-protocol.ts';
import type { OutputLog } from './output-log.ts';

/** What the helper needs; every path and id here was derived by the executor, none by a client. */
export interface HelperSpec {
  uid: number;
  gid: number;
  hostname: string;
  /** Host path of the job's writable directory, bound at /job inside the job. */
  workdir: string;
  /** Working directory inside the job's view. */
  cwd: string;
  tmpSizeBytes: number;
  cgroupDirs: readonly string[];
  maskPaths: readonly string[];
  argv: readonly string[];
  env: readonly string[];
}

export type StartResult =
  { started: true; initPid: number } | { started: false; error: StartError };

export interface StartError {
  /** Errno name (ENOENT, EACCES, …), or "" when the helper gave none. */
  errno: string;
  /** libuv's wording: "no such file or directory". */
  reason: string;
  /** Where it failed: "exec", "chdir", "join cgroup /sys/…", … */
  stage: string;
}

export interface HelperEnd {
  /** The job's exit, as the init saw it; null when the helper was killed before reporting. */
  exitCode: number | null;
  signal: number | null;
  /** The monitor's own status (non-zero only when the helper itself failed). */
  helperCode: number | null;
  helperSignal: NodeJS.Signals | null;
  /** The helper's own stderr, for the executor's log. */
  diagnostics: string;
}

/** Reports are a handful of short lines; anything larger is a broken helper. */
const MAX_REPORT_BYTES = 16 * 1024;
const MAX_DIAGNOSTIC_BYTES = 4 * 1024;

function encodeSpec(spec: HelperSpec): Buffer {
  const pairs: [string, string][] = [
    ['uid', String(spec.uid)],
    ['gid', String(spec.gid)],
    ['hostname', spec.hostname],
    ['workdir', spec.workdir],
    ['cwd', spec.cwd],
    ['tmp-size', String(spec.tmpSizeBytes)],
    ...spec.cgroupDirs.map((dir): [string, string] => ['cgroup', dir]),
    ...spec.maskPaths.map((path): [string, string] => ['mask', path]),
    ...spec.argv.map((arg): [string, string] => ['arg', arg]),
    ...spec.env.map((entry): [string, string] => ['env', entry]),
  ];
  const body = Buffer.from(pairs.map(([key, value]) => `${key}\0${value}\0`).join(''), 'utf8');
  const header = Buffer.allocUnsafe(4);
  header.writeUInt32BE(body.length, 0);
  return Buffer.concat([header, body]);
}

const systemErrors = getSystemErrorMap();
// A plain descriptor, owned by the socket made from it (a FileHandle would close it when collected).
const openFd = promisify(open);

/** What execve can fail with that libuv's table does not name (Linux numbers). */
const EXEC_ERRORS_LIBUV_LACKS = new Map<number, [string, string]>([
  [8, ['ENOEXEC', 'exec format error']],
  [80, ['ELIBBAD', 'accessing a corrupted shared library']],
]);

export function describeErrno(errno: number): { name: string; reason: string } {
  const known = systemErrors.get(-errno) ?? EXEC_ERRORS_LIBUV_LACKS.get(errno);
  return known
    ? { name: known[0], reason: known[1] }
    : { name: errno ? `E${errno}` : '', reason: errno ? `error ${errno}` : 'unknown error' };
}

export class HelperProcess {
  readonly pid: number;
  /** Resolves once the job's program was exec'd, or failed to be. */
  readonly started: Promise<StartResult>;
  /** Resolves when the helper has exited and the job's output is fully drained into the log. */
  readonly ended: Promise<HelperEnd>;

  private readonly child: ChildProcess;
  private readonly logger: Logger;
  private exitCode: number | null = null;
  private exitSignal: number | null = null;

  private constructor(child: ChildProcess, pid: number, log: OutputLog, logger: Logger) {
    this.child = child;
    this.pid = pid;
    this.logger = logger;
    const control = child.stdio[3] as net.Socket;
    let resolveStart!: (result: StartResult) => void;
    this.started = new Promise((resolve) => (resolveStart = resolve));
    let initPid = 0;
    const outputs: Promise<void>[] = [];

    let pending = '';
    let received = 0;
    control.setEncoding('utf8');
    control.on('data', (text: string) => {
      received += text.length;
      if (received > MAX_REPORT_BYTES) {
        this.logger.error({ pid }, 'helper report channel overflow; killing the helper');
        this.kill();
        control.destroy();
        return;
      }
      pending += text;
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        const [kind = '', ...rest] = line.split(' ');
        switch (kind) {
          case 'pipes': {
            const [stdoutFd, stderrFd] = rest.map(Number);
            const opened = Promise.all([
              this.drain(Number(stdoutFd), 'stdout', log),
              this.drain(Number(stderrFd), 'stderr', log),
            ]);
            // The monitor holds the pipes' read ends until this byte: output written by a job
            // that ends at once is still there for us to read.
            outputs.push(
              opened.then(
                (pipes) => {
                  control.write('g');
                  return Promise.all(pipes.map((pipe) => pipe.closed)).then(() => undefined);
                },
                (error: unknown) => {
                  this.logger.error({ pid, err: error }, 'cannot open the job output pipes');
                  control.write('g');
                  this.kill();
                },
              ),
            );
            break;
          }
          case 'init':
            initPid = Number(rest[0]);
            break;
          case 'started':
            resolveStart({ started: true, initPid });
            break;
          case 'start-error': {
            const errno = Number(rest[0]);
            const { name, reason } = describeErrno(errno);
            resolveStart({
              started: false,
              error: { errno: name, reason, stage: rest.slice(1).join(' ') },
            });
            break;
          }
          case 'exit':
            if (rest[0] === 'code') this.exitCode = Number(rest[1]);
            else if (rest[0] === 'signal') this.exitSignal = Number(rest[1]);
            break;
          default:
            this.logger.warn({ pid, line }, 'unexpected helper report');
        }
      }
    });
    control.on('error', (error) =>
      this.logger.debug({ pid, err: error }, 'helper control socket error'),
    );

    let diagnostics = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      if (diagnostics.length < MAX_DIAGNOSTIC_BYTES)
        diagnostics += text.slice(0, MAX_DIAGNOSTIC_BYTES - diagnostics.length);
    });

    this.ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.on('close', (code, signal) => resolve({ code, signal }));
    }).then(async ({ code, signal }) => {
      // A helper that died before "started" never will: settle the start for the caller.
      resolveStart({
        started: false,
        error: {
          errno: '',
          reason: `helper ended (${signal ?? `exit ${code}`})`,
          stage: 'job setup',
        },
      });
      await Promise.all(outputs);
      return {
        exitCode: this.exitCode,
        signal: this.exitSignal,
        helperCode: code,
        helperSignal: signal,
        diagnostics,
      };
    });
  }

  static async spawn(
    helperPath: string,
    spec: HelperSpec,
    log: OutputLog,
    logger: Logger,
  ): Promise<HelperProcess> {
    const child = spawn(helperPath, [], {
      // 0 and 1 are /dev/null (the job gets its own output pipes from the helper), 2 carries the
      // helper's own diagnostics, 3 is the control socket.
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
      env: {},
      // Its own session: a Ctrl-C on the executor's terminal must not reach the jobs directly;
      // the executor decides how jobs stop.
      detached: true,
    });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid ?? 0));
      child.once('error', reject);
    });
    const helper = new HelperProcess(child, pid, log, logger);
    (child.stdio[3] as net.Socket).write(encodeSpec(spec));
    return helper;
  }

  /** Sends a signal to the monitor, which forwards it to the job's process group. */
  signal(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  /** SIGKILL to the monitor: the init dies with it (PDEATHSIG) and with the init, the namespace. */
  kill(): void {
    this.signal('SIGKILL');
  }

  /**
   * Opens our own read end of one of the job's output pipes and copies it into the log. Resolves
   * once it is open; `closed` resolves when the job's side is closed and everything was read.
   */
  private async drain(
    fd: number,
    stream: OutputStream,
    log: OutputLog,
  ): Promise<{ closed: Promise<void> }> {
    if (!Number.isInteger(fd) || fd < 0) throw new Error(`bad pipe descriptor from helper: ${fd}`);
    const ours = await openFd(
      `/proc/${this.pid}/fd/${fd}`,
      constants.O_RDONLY | constants.O_NONBLOCK,
    );
    const pipe = new net.Socket({ fd: ours, readable: true, writable: false });
    const closed = new Promise<void>((resolve) => {
      pipe.on('data', (chunk: Buffer) => {
        if (!log.append(stream, chunk)) {
          pipe.pause();
          void log.whenDrained().then(() => pipe.resume());
        }
      });
      pipe.on('error', (error) => {
        this.logger.warn({ pid: this.pid, stream, err: error }, 'job output pipe error');
        pipe.destroy();
      });
      pipe.on('close', () => resolve());
    });
    return { closed };
  }
}
