// What `jobctl run` exits with once its job has ended: the job's own status, as a shell reports it.
import { constants } from 'node:os';
import { EndReason } from '../generated/jobworker/v1/jobworker.ts';
import type { Job } from '../generated/jobworker/v1/jobworker.ts';
import { EXIT, signalExitCode } from './exit-codes.ts';

/** What `jobctl run` exits with for an ended job. */
export function jobExitCode(job: Job): number {
  if (job.exitCode !== undefined) return job.exitCode;
  const bySignal = job.signal ? signalExitCode(job.signal) : undefined;
  if (bySignal !== undefined) return bySignal;
  if (job.endReason === EndReason.END_REASON_OOM_KILLED) return 128 + constants.signals.SIGKILL;
  // No status at all: the service lost the job (its executor restarted) or never ran it.
  return EXIT.refused;
}
