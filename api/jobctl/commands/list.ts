// jobctl list: the jobs the caller may see, newest first, as Docker's `ps`: running ones unless
// --all or --state says otherwise.
import { JobState } from '../../generated/jobworker/v1/jobworker.ts';
import { EXIT } from '../exit-codes.ts';
import { table } from '../format.ts';
import type { ListFilter } from '../job-api.ts';
import { jobJson, LIST_HEADERS, listRow } from '../job-view.ts';
import type { Session } from '../session.ts';

export interface ListOptions {
  all: boolean;
  state: JobState | undefined;
  owner: string | undefined;
  quiet: boolean;
  json: boolean;
  full: boolean;
}

export async function listCommand(session: Session, options: ListOptions): Promise<number> {
  const filter: ListFilter = {};
  const state = options.state ?? (options.all ? undefined : JobState.JOB_STATE_RUNNING);
  if (state !== undefined) filter.state = state;
  if (options.owner !== undefined) filter.owner = options.owner;
  // Newest first; the server's order (oldest first) breaks ties.
  const jobs = (await session.api().list(filter))
    .reverse()
    .sort((a, b) => (b.startedAt?.getTime() ?? 0) - (a.startedAt?.getTime() ?? 0));
  const now = new Date();
  if (options.json) {
    await session.out(
      `${JSON.stringify(
        jobs.map((job) => jobJson(job, now)),
        null,
        2,
      )}\n`,
    );
  } else if (options.quiet) {
    await session.out(jobs.map((job) => `${job.id}\n`).join(''));
  } else {
    await session.out(
      `${table(
        LIST_HEADERS,
        jobs.map((job) => listRow(job, now, options.full)),
      )}\n`,
    );
  }
  return EXIT.ok;
}
