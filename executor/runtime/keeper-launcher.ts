// The helper's launcher: started once by the executor (and again if it ever dies), it forks a
// keeper for each connection to its socket (executor/helper/jobworker-helper.c, "Launcher"). A
// job's start then costs a connect and the fork of a small C process, not a spawn from this
// process, whose fork copies the page tables of a hundred MiB of Node heap on every job.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import type { Logger } from 'pino';
import { checkTrustedExecutable } from '../trusted-executable.ts';
import { parseStartError } from './keeper-link.ts';

/**
 * The launcher builds the jobs' view template and listens at once; one that says nothing for this
 * long is not working.
 */
const READY_TIMEOUT_MS = 10_000;

interface Running {
  child: ChildProcess;
  link: net.Socket;
  exited: Promise<void>;
}

export class KeeperLauncher {
  private readonly helperPath: string;
  private readonly socketPath: string;
  private readonly maskPaths: readonly string[];
  private readonly logger: Logger;
  private running: Promise<Running> | null = null;
  private closed = false;

  /**
   * `socketPath` must be in a directory only root can write (the state directory). `maskPaths`
   * are hidden in every job's view (resolved, existing paths).
   */
  constructor(
    helperPath: string,
    socketPath: string,
    maskPaths: readonly string[],
    logger: Logger,
  ) {
    this.helperPath = helperPath;
    this.socketPath = socketPath;
    this.maskPaths = maskPaths;
    this.logger = logger;
  }

  /** A new connection to the launcher: a keeper of its own is at the other end. */
  async connect(): Promise<net.Socket> {
    await this.ensureRunning();
    const socket = net.createConnection(this.socketPath);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.removeAllListeners('error');
    return socket;
  }

  /** Ends the launcher (keepers it forked carry on) and removes its socket. */
  async close(): Promise<void> {
    this.closed = true;
    const running = await this.running?.catch(() => null);
    this.running = null;
    if (running) {
      // Held open again until it has gone, or the event loop could end before we know.
      running.child.ref();
      running.link.ref();
      running.child.kill('SIGTERM');
      await running.exited;
    }
    await rm(this.socketPath, { force: true });
  }

  private ensureRunning(): Promise<Running> {
    if (this.closed) return Promise.reject(new Error('the executor is closing'));
    this.running ??= this.start().catch((error: unknown) => {
      this.running = null;
      throw error;
    });
    return this.running;
  }

  private async start(): Promise<Running> {
    // Root is about to run it: it and every directory above it must still be root's alone.
    const helper = await checkTrustedExecutable(this.helperPath);
    const child = spawn(helper, ['launcher', this.socketPath, ...this.maskPaths], {
      // 0-2 /dev/null: keepers outlive us, so nothing of ours may be their stdio. 3 is the link.
      stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
      env: {},
    });
    const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
    child.once('error', (error) => this.logger.error({ err: error }, 'keeper launcher failed'));
    const link = child.stdio[3] as net.Socket;
    link.setEncoding('utf8');
    let said = '';
    const answer = await new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve(''), READY_TIMEOUT_MS);
      const settle = (line: string) => {
        clearTimeout(timer);
        resolve(line);
      };
      link.on('data', (text: string) => {
        said += text;
        if (said.includes('\n')) settle(said.slice(0, said.indexOf('\n')));
      });
      link.once('close', () => settle(said));
    });
    if (answer !== 'ready') {
      child.kill('SIGKILL');
      await exited;
      const [kind, ...rest] = answer.split(' ');
      const error = kind === 'start-error' ? parseStartError(rest) : null;
      const why = error ? `${error.stage}: ${error.reason}` : 'it did not say it was ready';
      throw new Error(`cannot start the keeper launcher (${helper}): ${why}`);
    }
    // Ours only while we run: neither it nor its link may hold the event loop open.
    child.unref();
    link.unref();
    void exited.then(() => {
      if (this.closed) return;
      this.logger.error(
        { code: child.exitCode, signal: child.signalCode },
        'the keeper launcher ended; the next job start starts another',
      );
      this.running = null;
    });
    return { child, link, exited };
  }
}
