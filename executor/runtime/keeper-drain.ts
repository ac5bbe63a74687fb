// Stopping every job on the host, for a host shutdown or decommissioning: the one act that ends
// jobs wholesale, kept apart from stopping the executor (which leaves jobs to their keepers, so
// that a restart or an upgrade loses nothing). It talks to the keepers directly, so it works
// whether an executor is running or not; a running executor records the ends as usual.
import { readdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { JOB_ID } from '../../shared/job-id.ts';
import { JobStore } from './job-store.ts';
import { killKeeper, reconnectKeeper } from './keeper-link.ts';

/** How long past the grace period a keeper may take to report its job's end. */
const END_MARGIN_MS = 10_000;

export interface DrainResult {
  /** Jobs whose keepers stopped them and recorded the end. */
  stopped: number;
  /** Keepers that did not report in time and were killed (their jobs with them). */
  killed: number;
}

export async function drainKeepers(
  stateDir: string,
  graceMs: number,
  logger: Logger,
): Promise<DrainResult> {
  const store = new JobStore(stateDir, logger);
  const ids = (await readdir(store.root).catch(() => [])).filter((name) => JOB_ID.test(name));
  const outcomes = await Promise.all(
    ids.map(async (id): Promise<'stopped' | 'killed' | 'none'> => {
      const identity = await store.loadKeeperIdentity(id);
      const link = identity && (await reconnectKeeper(store.jobDir(id), identity, logger));
      if (!identity || !link) return 'none';
      link.stop(graceMs);
      const ended = await Promise.race([
        link.closed.then(() => true),
        sleep(graceMs + END_MARGIN_MS, false),
      ]);
      if (ended) return 'stopped';
      logger.error({ job: id }, 'a job keeper did not report the end of a stop; killing it');
      link.close();
      await killKeeper(identity);
      return 'killed';
    }),
  );
  return {
    stopped: outcomes.filter((outcome) => outcome === 'stopped').length,
    killed: outcomes.filter((outcome) => outcome === 'killed').length,
  };
}
