// jobctl logs: a job's output from its first byte, stdout to stdout and stderr to stderr. Without
// -f it stops at what the job had written when asked; with -f it follows until the job ends, and
// when the connection drops it resumes from the last byte received.
import { JobState } from '../../generated/jobworker/v1/jobworker.ts';
import { EXIT } from '../exit-codes.ts';
import { checkJobIdArgument } from '../job-api.ts';
import type { Session } from '../session.ts';
import { printOutput } from './print-output.ts';

export async function logsCommand(
  session: Session,
  given: string,
  follow: boolean,
): Promise<number> {
  checkJobIdArgument(given);
  const api = session.api();
  const id = await api.resolveId(given);
  // Asked first even with -f: a job that is not there, or a server that is down, fails at once
  // instead of being waited for.
  const job = await api.get(id);
  // An ended job's stream ends by itself; a running one's would follow it, unless told where to stop.
  const until = !follow && job.state === JobState.JOB_STATE_RUNNING ? job.outputBytes : undefined;
  await printOutput(session, id, {
    from: 0,
    ...(until === undefined ? {} : { until }),
    resume: follow,
  });
  return EXIT.ok;
}
