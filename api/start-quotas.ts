// Quotas on running jobs, in total and per identity, without serialising starts: each start
// counts the running jobs (a listing), checks the quotas against that count plus the starts
// the listing may not show yet, and reserves its place in memory, all in one turn of the event
// loop; then it starts, while other starts do the same.
//
// A reservation counts against a listing until that listing shows its job: while the start is
// in flight, and after it, for listings sent before its answer came (those may have been read
// before the job existed). Once no such listing is left, the reservation is dropped.
import { JobError } from '../shared/errors.ts';
import type { JobRecord } from '../shared/job.ts';
import type { ApiConfig } from './config.ts';
import type { CallBounds, ExecutorClient } from './executor-client.ts';

interface Reservation {
  owner: string;
  /** The started job, once the executor has answered. */
  jobId: string | null;
  /** The tick at which the start was answered; Infinity while in flight. */
  answeredAt: number;
}

interface Running {
  ids: Set<string>;
  byOwner: Map<string, number>;
}

export class StartQuotas {
  private readonly executor: ExecutorClient;
  private readonly quotas: ApiConfig['quotas'];
  private readonly reservations = new Set<Reservation>();
  /** Orders listings and answers: a listing sent after an answer shows its job. */
  private clock = 0;
  /** The ticks at which the listings now in flight were sent. */
  private readonly listings = new Set<number>();

  constructor(executor: ExecutorClient, quotas: ApiConfig['quotas']) {
    this.executor = executor;
    this.quotas = quotas;
  }

  /** Starts a job for `owner` if both quotas allow it; otherwise RESOURCE_EXHAUSTED. */
  async start(
    owner: string,
    bounds: CallBounds,
    start: () => Promise<JobRecord>,
  ): Promise<JobRecord> {
    const sentAt = ++this.clock;
    this.listings.add(sentAt);
    let running: Running;
    try {
      running = await this.countRunning(bounds);
    } finally {
      this.listings.delete(sentAt);
      this.prune();
    }
    // From here to the reservation, nothing awaits: concurrent starts see each other.
    let total = running.ids.size;
    let mine = running.byOwner.get(owner) ?? 0;
    for (const reservation of this.reservations) {
      if (reservation.answeredAt < sentAt) continue; // the listing shows it
      if (reservation.jobId !== null && running.ids.has(reservation.jobId)) continue;
      total += 1;
      if (reservation.owner === owner) mine += 1;
    }
    if (total >= this.quotas.maxRunningJobs) {
      throw new JobError(
        'resource-exhausted',
        `the server already runs its maximum of ${this.quotas.maxRunningJobs} jobs`,
      );
    }
    if (mine >= this.quotas.maxRunningJobsPerIdentity) {
      throw new JobError(
        'resource-exhausted',
        `${owner} already runs the maximum of ${this.quotas.maxRunningJobsPerIdentity} jobs per identity`,
      );
    }
    const reservation: Reservation = { owner, jobId: null, answeredAt: Infinity };
    this.reservations.add(reservation);
    try {
      const job = await start();
      reservation.jobId = job.id;
      reservation.answeredAt = ++this.clock;
      return job;
    } catch (error) {
      // No job runs for a start that failed.
      this.reservations.delete(reservation);
      throw error;
    } finally {
      this.prune();
    }
  }

  /** Drops the reservations every listing in flight was sent late enough to show. */
  private prune(): void {
    let oldest = Infinity;
    for (const sentAt of this.listings) oldest = Math.min(oldest, sentAt);
    for (const reservation of this.reservations)
      if (reservation.answeredAt < oldest) this.reservations.delete(reservation);
  }

  private async countRunning(bounds: CallBounds): Promise<Running> {
    const running: Running = { ids: new Set(), byOwner: new Map() };
    let after: string | undefined;
    for (;;) {
      const page = await this.executor.listJobs(
        after === undefined ? { state: 'RUNNING' } : { state: 'RUNNING', after },
        bounds,
      );
      for (const job of page.jobs) {
        running.ids.add(job.id);
        running.byOwner.set(job.owner, (running.byOwner.get(job.owner) ?? 0) + 1);
      }
      if (!page.more || page.jobs.length === 0) return running;
      after = page.jobs.at(-1)?.id;
    }
  }
}
