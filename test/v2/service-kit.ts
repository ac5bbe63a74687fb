// The real executor process (compiled: dist/executor/main.js) run as a service with a delegated cgroup of its
// own, next to the test: the test moves itself into a leaf of its cgroup, delegates the
// controllers, and starts the executor alone in a sibling cgroup, as systemd starts a
// Delegate=yes service. The executor must then make its own leaf and delegate further.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { compiledPath } from '../../shared/app-layout.ts';
import { sleep, TEST_PREFIX } from '../root/executor-kit.ts';
import { TEST_SOCKET_GID } from '../root/executor-process-kit.ts';
import { CGROUP_ROOT, cgroupFile, JOB_CONTROLLERS, words } from './kit.ts';
import { drainKeepers } from '../../executor/runtime/keeper-drain.ts';
import { createLogger } from '../../shared/logger.ts';
import { untilNoJobRunning } from '../root/executor-process-kit.ts';

/** In the VM, the Node.js runtime takes a while to load the executor's modules. */
const LISTEN_TIMEOUT_MS = 90_000;

export interface ExecutorService {
  child: ChildProcess;
  pid: number;
  /** The cgroup the executor was started in (its "service" cgroup). */
  cgroupDir: string;
  cgroupName: string;
  socketPath: string;
  /** The executor's state directory (its config's stateDir). */
  stateDir: string;
  /** Everything the executor wrote to stderr (its JSON log). */
  log(): string;
  /** The jobs' cgroup apart from the executor's, with jobsApart. */
  jobsDir: string | undefined;
  /** SIGTERM (or the given signal) and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Starts the executor again in its service cgroup, on the same state and config. */
  restart(): Promise<ExecutorService>;
  /** Stops the executor if needed; removes its state and its service cgroup with the leaf. */
  remove(): Promise<void>;
}

/** Makes `own` a delegating cgroup: this process (and its children) go to the leaf `test-process`. */
async function delegateFrom(own: string): Promise<void> {
  const leaf = join(own, 'test-process');
  await mkdir(leaf, { recursive: true });
  for (const pid of words(cgroupFile(own, 'cgroup.procs'))) {
    await writeFile(join(leaf, 'cgroup.procs'), pid).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ESRCH') throw error;
    });
  }
  await writeFile(
    join(own, 'cgroup.subtree_control'),
    JOB_CONTROLLERS.map((c) => `+${c}`).join(' '),
  );
}

export interface ServiceOptions {
  /**
   * Job cgroups apart from the executor's, in a sibling "jobs.service" cgroup whose own process
   * waits in a leaf (as jobworker-jobs.service does), named by jobsCgroup: the layout that lets a
   * restarted executor be placed in its service cgroup again.
   */
  jobsApart?: boolean;
}

/** A process that waits in the leaf `holder` of `dir`, as jobworker-jobs.service's does. */
async function holdCgroup(dir: string): Promise<ChildProcess> {
  await mkdir(join(dir, 'holder'), { recursive: true });
  const holder = spawn(
    'sh',
    ['-c', 'echo $$ >"$1/holder/cgroup.procs" && exec sleep 100000', '-', dir],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 100 && cgroupFile(join(dir, 'holder'), 'cgroup.procs') === ''; i += 1)
    await sleep(20);
  return holder;
}

export async function startExecutorService(
  own: string,
  options: ServiceOptions = {},
): Promise<ExecutorService> {
  await delegateFrom(own);
  const cgroupDir = join(own, 'executor.service');
  await mkdir(cgroupDir);
  const jobsDir = options.jobsApart ? join(own, 'jobs.service') : undefined;
  const holder = jobsDir === undefined ? undefined : await holdCgroup(jobsDir);
  const stateDir = await mkdtemp(`/var/tmp/${TEST_PREFIX}`);
  await chmod(stateDir, 0o755);
  const cgroupName = `${TEST_PREFIX}${randomBytes(4).toString('hex')}`;
  const socketPath = join(stateDir, 'run', 'executor.sock');
  const configPath = join(stateDir, 'executor.json');
  await writeFile(
    configPath,
    JSON.stringify({
      stateDir: join(stateDir, 'state'),
      socketPath,
      socketGroup: String(TEST_SOCKET_GID),
      cgroupName,
      logLevel: 'info',
      stopGraceMs: 500,
      jobsCgroup: jobsDir === undefined ? null : jobsDir.slice(CGROUP_ROOT.length),
    }),
  );
  const removeAll = async (service: ExecutorService) => {
    // Jobs outlive the executor: end them as a drain does, and let the executor record them.
    await drainKeepers(join(stateDir, 'state'), 200, createLogger('test-drain', 'error'));
    if (service.child.exitCode === null && service.child.signalCode === null)
      await untilNoJobRunning(join(stateDir, 'state'));
    await service.stop();
    await rm(stateDir, { recursive: true, force: true });
    await rmdir(join(cgroupDir, `${cgroupName}-executor`)).catch(() => undefined);
    await rmdir(cgroupDir);
    if (jobsDir !== undefined) {
      holder?.kill('SIGKILL');
      for (let i = 0; i < 100 && cgroupFile(join(jobsDir, 'holder'), 'cgroup.procs'); i += 1)
        await sleep(20);
      await rmdir(join(jobsDir, cgroupName)).catch(() => undefined);
      await rmdir(join(jobsDir, 'holder'));
      await rmdir(jobsDir);
    }
  };
  const launch = async (): Promise<ExecutorService> => {
    // The shell puts itself into the service's cgroup, then becomes the executor there.
    const child = spawn(
      'sh',
      [
        '-c',
        'echo $$ >"$1/cgroup.procs" && shift && exec "$@"',
        '-',
        cgroupDir,
        process.execPath,
        compiledPath('executor/main.ts'),
        '--config',
        configPath,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    const listening = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new Error(`the executor did not listen in ${LISTEN_TIMEOUT_MS} ms:\n${stderr}`)),
        LISTEN_TIMEOUT_MS,
      );
      child.stderr?.on('data', (data: Buffer) => {
        stderr += data.toString();
        if (stderr.includes('"executor listening"')) {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`the executor exited (${signal ?? code}):\n${stderr}`));
      });
    });
    const service: ExecutorService = {
      child,
      pid: child.pid ?? 0,
      cgroupDir,
      jobsDir,
      cgroupName,
      socketPath,
      stateDir: join(stateDir, 'state'),
      log: () => stderr,
      async stop(signal = 'SIGTERM') {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        return exited;
      },
      restart: launch,
      remove: () => removeAll(service),
    };
    try {
      await listening;
    } catch (error) {
      await service.remove().catch(() => undefined);
      throw error;
    }
    return service;
  };
  return launch();
}
