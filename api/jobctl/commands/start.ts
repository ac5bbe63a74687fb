// jobctl start: start a job and print its id (or the whole job with --json), for scripts.
import type { StartJobRequest } from '../../generated/jobworker/v1/jobworker.ts';
import { EXIT } from '../exit-codes.ts';
import { jobJson } from '../job-view.ts';
import type { Session } from '../session.ts';
import { startJob } from './start-job.ts';

export async function startCommand(
  session: Session,
  request: StartJobRequest,
  json: boolean,
): Promise<number> {
  const job = await startJob(session, request);
  await session.out(
    json ? `${JSON.stringify(jobJson(job, new Date()), null, 2)}\n` : `${job.id}\n`,
  );
  return EXIT.ok;
}
