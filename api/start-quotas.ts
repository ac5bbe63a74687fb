// Quotas on running jobs, in total and per identity. The check and the start happen under one
// lock, so concurrent StartJob calls cannot overshoot a quota between counting and starting.
import { JobError } from '../shared/errors.ts';
import type { JobRecord } from '../shared/job.ts';
import type { ApiConfig } from './config.ts';
import type { CallBounds, ExecutorClient } from './executor-client.ts';

export class StartQuotas {
  private readonly executor: ExecutorClient;
  private readonly quotas: ApiConfig['quotas'];
  private queue: Promise<unknown> = Promise.resolve();

  constructor(executor: ExecutorClient, quotas: ApiConfig['quotas']) {
    this.executor = executor;
    this.quotas = quotas;
  }

  /** Starts a job for `owner` if both quotas allow it; otherwise RESOURCE_EXHAUSTED. */
  start(owner: string, bounds: CallBounds, start: () => Promise<JobRecord>): Promise<JobRecord> {
    const turn = this.queue.then(async () => {
      const running = await this.countRunning(bounds);
      if (running.total >= this.quotas.maxRunningJobs) {
        throw new JobError(
          'resource-exhausted',
          `the server already runs its maximum of ${this.quotas.maxRunningJobs} jobs`,
        );
      }
      if ((running.byOwner.get(owner) ?? 0) >= this.quotas.maxRunningJobsPerIdentity) {
        throw new JobError(
          'resource-exhausted',
          `${owner} already runs the maximum of ${this.quotas.maxRunningJobsPerIdentity} jobs per identity`,
        );
      }
      return start();
    });
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  private async countRunning(
    bounds: CallBounds,
  ): Promise<{ total: number; byOwner: Map<string, number> }> {
    const byOwner = new Map<string, number>();
    let total = 0;
    let after: string | undefined;
    for (;;) {
      const page = await this.executor.listJobs(
        after === undefined ? { state: 'RUNNING' } : { state: 'RUNNING', after },
        bounds,
      );
      for (const job of page.jobs) {
        total += 1;
        byOwner.set(job.owner, (byOwner.get(job.owner) ?? 0) + 1);
      }
      if (!page.more || page.jobs.length === 0) return { total, byOwner };
      after = page.jobs.at(-1)?.id;
    }
  }
}
