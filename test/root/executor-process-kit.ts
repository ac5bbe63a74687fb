// Runs the real executor process with a test config, as root: its compiled entry point with plain
// node, as the systemd unit runs it (the root suite builds first).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { compiledPath } from '../../shared/app-layout.ts';
import { TEST_PREFIX, sleep } from './executor-kit.ts';

/** A gid no account uses, so the test never edits /etc/group; only it may open the socket. */
export const TEST_SOCKET_GID = 61_234;

export interface ExecutorProcess {
  child: ChildProcess;
  stateDir: string;
  socketPath: string;
  cgroupName: string;
  configPath: string;
  /** Everything the process wrote to stderr (its JSON log). */
  log(): string;
  /** SIGTERM (or the given signal) and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Starts the executor again on the same state directory and cgroup name. */
  restart(): Promise<ExecutorProcess>;
  remove(): Promise<void>;
}

/**
 * Every process the test kits start. If the test process dies (a crash, an unhandled rejection),
 * its 'exit' handler still ends them: a failed run must not leave a stack behind.
 */
const started = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of started)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
});

export function trackChild(child: ChildProcess): ChildProcess {
  started.add(child);
  child.once('exit', () => started.delete(child));
  return child;
}

async function waitForSocket(path: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`executor exited ${child.exitCode}:\n${log()}`);
    const connected = await new Promise<boolean>((resolve) => {
      const socket = net.createConnection(path);
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (connected) return;
    if (Date.now() > deadline) throw new Error(`executor did not listen on ${path}:\n${log()}`);
    await sleep(50);
  }
}

async function launch(
  stateDir: string,
  cgroupName: string,
  configPath: string,
): Promise<ExecutorProcess> {
  const socketPath = join(stateDir, 'run', 'executor.sock');
  const child = trackChild(
    spawn(process.execPath, [compiledPath('executor/main.ts'), '--config', configPath], {
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
  );
  let stderr = '';
  child.stderr?.on('data', (data: Buffer) => (stderr += data.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const log = () => stderr;
  await waitForSocket(socketPath, child, log);
  const self: ExecutorProcess = {
    child,
    stateDir,
    socketPath,
    cgroupName,
    configPath,
    log,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
    restart: () => launch(stateDir, cgroupName, configPath),
    async remove() {
      await self.stop();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
  return self;
}

export async function startExecutorProcess(
  config: Record<string, unknown> = {},
): Promise<ExecutorProcess> {
  const stateDir = await mkdtemp(`/var/tmp/${TEST_PREFIX}`);
  // Traversable, as /run is in production: the socket's own directory does the access control.
  await chmod(stateDir, 0o755);
  const cgroupName = `${TEST_PREFIX}${randomBytes(4).toString('hex')}`;
  const configPath = join(stateDir, 'executor.json');
  await writeFile(
    configPath,
    JSON.stringify({
      stateDir: join(stateDir, 'state'),
      socketPath: join(stateDir, 'run', 'executor.sock'),
      socketGroup: String(TEST_SOCKET_GID),
      cgroupName,
      logLevel: 'info',
      stopGraceMs: 500,
      ...config,
    }),
  );
  return launch(stateDir, cgroupName, configPath);
}
