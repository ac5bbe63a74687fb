// The executor: the one process that runs as root. It owns the job runtime, the cgroups and the
// socket the API talks to, and nothing else.
//
//   executor [--config /etc/jobworker/executor.json]
import { parseArgs } from 'node:util';
import { createLogger } from '../shared/logger.ts';
import type { Logger } from '../shared/logger.ts';
import { notifySystemdReady } from '../shared/systemd-ready.ts';
import { detectCgroupDriver } from './cgroup/detect.ts';
import { loadExecutorConfig } from './config.ts';
import type { ExecutorConfig } from './config.ts';
import { JobRuntime } from './runtime/job-runtime.ts';
import { checkUidRangeUnused } from './runtime/uid-pool.ts';
import { ExecutorServer } from './socket/executor-server.ts';
import { checkTrustedExecutable, UntrustedExecutableError } from './trusted-executable.ts';

/** Root runs the helper for every job: it, and the path to it, must be root's alone. */
async function checkHelper(path: string): Promise<void> {
  try {
    await checkTrustedExecutable(path);
  } catch (error) {
    if (!(error instanceof UntrustedExecutableError)) throw error;
    const missing = error.offendingPath === path && error.problem === 'does not exist';
    throw new Error(`helperPath: ${error.message}${missing ? ' (run: npm run build)' : ''}`);
  }
}

interface Running {
  server: ExecutorServer;
  runtime: JobRuntime;
}

/** Closes the socket, then lets go of the runtime (jobs stay with their keepers), and exits. */
async function stop({ server, runtime }: Running, logger: Logger): Promise<never> {
  try {
    await server.close();
    await runtime.close();
  } catch (error) {
    // Said in the log, not as an unhandled rejection. What is left (a cgroup parent that still
    // holds a cgroup, say) is the next start's: it reuses its parents and sweeps them.
    logger.error({ err: error }, 'stopping did not finish cleanly');
    process.exit(1);
  }
  logger.info('executor stopped');
  process.exit(0);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string' } } });
  let config: Readonly<ExecutorConfig>;
  try {
    config = loadExecutorConfig(values.config);
  } catch (error) {
    console.error(`executor: ${(error as Error).message}`);
    process.exit(78); // EX_CONFIG
  }
  const logger = createLogger('executor', config.logLevel);
  // Node's default for SIGHUP is to exit. The executor reads its configuration at start only: say
  // so, and keep running. Installed first: a SIGHUP while the executor starts (its socket may
  // already take connections) must not end it either.
  process.on('SIGHUP', () =>
    logger.warn(
      'SIGHUP: the executor reads its configuration at start only; restart it to apply changes',
    ),
  );
  // Also installed first: Node's default for SIGTERM is to exit at once, and one that comes while
  // the executor starts (a stop right after a start) would leave its cgroups and say nothing. It
  // waits for the start to finish instead, then stops as it would later.
  let running: Running | null = null;
  let stopSignal: NodeJS.Signals | null = null;
  const onStopSignal = (signal: NodeJS.Signals) => {
    if (stopSignal) {
      logger.warn({ signal }, 'second signal: exiting without waiting for jobs');
      process.exit(1);
    }
    stopSignal = signal;
    // Jobs outlive the executor: their keepers carry on and the next start takes them over.
    // Ending every job is a separate act (executor/drain.ts).
    logger.info({ signal }, 'stopping: no new requests; running jobs stay with their keepers');
    if (running) void stop(running, logger);
    else logger.info('still starting: stopping once started');
  };
  process.on('SIGTERM', onStopSignal);
  process.on('SIGINT', onStopSignal);
  if (process.getuid?.() !== 0) {
    logger.fatal('the executor must run as root (it creates cgroups, namespaces and job users)');
    process.exit(77); // EX_NOPERM
  }
  try {
    checkUidRangeUnused(config.jobUids);
    await checkHelper(config.helperPath);
  } catch (error) {
    logger.fatal((error as Error).message);
    process.exit(78);
  }

  const cgroups = await detectCgroupDriver({
    name: config.cgroupName,
    jobsCgroup: config.jobsCgroup,
  });
  logger.info({ cgroups: cgroups.describe() }, 'cgroups detected');
  const runtime = await JobRuntime.open({ config, cgroups, logger });
  const server = new ExecutorServer(runtime, config, logger);
  await server.listen();
  running = { server, runtime };
  if (stopSignal) {
    void stop(running, logger);
    return;
  }
  // Its socket listens: units ordered after this one (the API) may start.
  notifySystemdReady(logger);
}

await main();
