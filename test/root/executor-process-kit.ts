// Runs the real executor process with a test config, as root: its compiled entry point with plain
// node, as the systemd unit runs it (the root suite builds first).
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { compiledPath, SERVICE_NODE_FLAGS } from '../../shared/app-layout.ts';
import { drainKeepers } from '../../executor/runtime/keeper-drain.ts';
import { createLogger } from '../../shared/logger.ts';
import { assertCgroupsRemoved, TEST_PREFIX, sleep } from './executor-kit.ts';

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
  /** Stops every job (as an operator's drain does), then the executor; removes its state. */
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
    // Listening is not yet ready: the socket's group and mode are set after, then it says so.
    if (connected && log().includes('"msg":"executor listening"')) return;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`executor did not listen on ${path}:\n${log()}`);
    }
    await sleep(50);
  }
}

/**
 * How many job inits run under the keepers this state directory names: each job's keeper.id holds
 * its keeper's pid, and a job's init is that keeper's child. (A job's mount table does not name
 * the state directory, so it cannot be told from there.)
 */
export function jobInitsOf(stateDir: string): number {
  const jobs = join(stateDir, 'state', 'jobs');
  const keepers = new Set<string>();
  for (const id of safeList(jobs)) {
    const text = readOrEmpty(join(jobs, id, 'keeper.id'));
    const pid = text.split(' ')[0];
    if (pid) keepers.add(pid);
  }
  let count = 0;
  for (const pid of safeList('/proc').filter((name) => /^\d+$/.test(name))) {
    if (readOrEmpty(`/proc/${pid}/comm`).trim() !== 'jobworker-init') continue;
    const parent = /^PPid:\s+(\d+)$/m.exec(readOrEmpty(`/proc/${pid}/status`))?.[1];
    if (parent !== undefined && keepers.has(parent)) count += 1;
  }
  return count;
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return ''; // gone meanwhile
  }
}

/** Waits (bounded) until no stored record says RUNNING: the executor has recorded every end. */
export async function untilNoJobRunning(stateDir: string): Promise<void> {
  const jobs = join(stateDir, 'jobs');
  const running = async () => {
    let count = 0;
    for (const id of await readdir(jobs).catch(() => [])) {
      const text = await readFile(join(jobs, id, 'record.json'), 'utf8').catch(() => '{}');
      if ((JSON.parse(text) as { state?: string }).state === 'RUNNING') count += 1;
    }
    return count;
  };
  const deadline = Date.now() + 10_000;
  while ((await running()) > 0 && Date.now() < deadline) await sleep(20);
}

export interface SpawnedService {
  child: ChildProcess;
  /** Everything the process wrote to stderr so far (its JSON log). */
  log: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * A service (`executor/main.ts` or `api/main.ts`) on `configPath`, compiled and with the flags its
 * unit gives it; not waited for.
 */
export function spawnService(entry: string, configPath: string): SpawnedService {
  const child = trackChild(
    spawn(process.execPath, [...SERVICE_NODE_FLAGS, compiledPath(entry), '--config', configPath], {
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
  );
  let stderr = '';
  child.stderr?.on('data', (data: Buffer) => (stderr += data.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, log: () => stderr, exited };
}

async function launch(
  stateDir: string,
  cgroupName: string,
  configPath: string,
): Promise<ExecutorProcess> {
  const socketPath = join(stateDir, 'run', 'executor.sock');
  const { child, log, exited } = spawnService('executor/main.ts', configPath);
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
      // Stopping the executor leaves jobs to their keepers: end them first, as a drain does, and
      // let an executor record the ends and remove the cgroups (a new one, if this one is gone).
      const state = join(stateDir, 'state');
      await drainKeepers(state, 200, createLogger('test-drain', 'error'));
      const alive = child.exitCode === null && child.signalCode === null;
      const recorder = alive ? self : await launch(stateDir, cgroupName, configPath);
      await untilNoJobRunning(state);
      const { code, signal } = await recorder.stop();
      if (readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${state} `))
        execFileSync('umount', [state]);
      await rm(stateDir, { recursive: true, force: true });
      if (code !== 0) {
        throw new Error(
          `the executor did not stop cleanly (${signal ?? `exit ${code}`}):\n${recorder.log()}`,
        );
      }
      assertCgroupsRemoved(cgroupName, recorder.log());
    },
  };
  return self;
}

export interface ExecutorProcessOptions {
  /** A state filesystem of its own this small (a tmpfs), to fill it up. */
  stateTmpfsBytes?: number;
}

export async function startExecutorProcess(
  config: Record<string, unknown> = {},
  options: ExecutorProcessOptions = {},
): Promise<ExecutorProcess> {
  const stateDir = await mkdtemp(`/var/tmp/${TEST_PREFIX}`);
  // Traversable, as /run is in production: the socket's own directory does the access control.
  await chmod(stateDir, 0o755);
  if (options.stateTmpfsBytes !== undefined) {
    const state = join(stateDir, 'state');
    await mkdir(state, { mode: 0o700 });
    execFileSync('mount', [
      '-t',
      'tmpfs',
      '-o',
      `size=${options.stateTmpfsBytes},mode=0700`,
      'tmpfs',
      state,
    ]);
  }
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
  try {
    return await launch(stateDir, cgroupName, configPath);
  } catch (error) {
    // An executor that never listened leaves no job: only its directory (and tmpfs) to remove.
    const state = join(stateDir, 'state');
    if (readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${state} `))
      execFileSync('umount', [state]);
    await rm(stateDir, { recursive: true, force: true });
    throw error;
  }
}
