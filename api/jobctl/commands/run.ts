// jobctl run: start a job, stream its stdout to stdout and its stderr to stderr as it arrives,
// then exit with its status. Ctrl-C stops the job (and says so); a second Ctrl-C detaches,
// leaving it to the server, and prints its id. SIGTERM and SIGHUP count as Ctrl-C.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  EndReason,
  JobState,
  type Job,
  type StartJobRequest,
} from '../../generated/jobworker/v1/jobworker.ts';
import { durationToMs } from '../../../shared/proto-duration.ts';
import { CliError } from '../cli-errors.ts';
import { describeFailure } from '../failures.ts';
import { EXIT } from '../exit-codes.ts';
import { jobExitCode } from '../job-exit-code.ts';
import { isConnectionDrop, RECONNECT_GIVE_UP_MS } from '../follow-output.ts';
import { humanBytes, humanDuration } from '../format.ts';
import type { Session } from '../session.ts';
import { printOutput } from './print-output.ts';
import { startJob } from './start-job.ts';

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
/** How long a detach waits for a stop it has just sent. */
const STOP_SEND_MS = 2000;

/** A line on stderr after the job's own output, when it ended in a way its status alone hides. */
function endNote(job: Job): string | undefined {
  const limit = job.limits?.memoryBytes;
  switch (job.endReason) {
    case EndReason.END_REASON_OOM_KILLED:
      return `job ${job.id} was killed: out of memory${limit ? ` (limit ${humanBytes(limit)})` : ''}`;
    case EndReason.END_REASON_TIMED_OUT:
      return `job ${job.id} was stopped: it ran past its timeout${job.timeout ? ` of ${humanDuration(durationToMs(job.timeout))}` : ''}`;
    case EndReason.END_REASON_STOPPED:
      return `job ${job.id} was stopped`;
    case EndReason.END_REASON_EXECUTOR_RESTARTED:
      return `job ${job.id} was lost: the server's executor restarted while it ran`;
    case EndReason.END_REASON_EXITED:
    case EndReason.END_REASON_KILLED_BY_SIGNAL:
    case EndReason.END_REASON_START_FAILED:
    case EndReason.END_REASON_UNSPECIFIED:
      return undefined;
  }
}

/** GetJob, riding out an API restart as the output stream does. */
async function finalRecord(session: Session, id: string): Promise<Job> {
  const since = Date.now();
  for (;;) {
    try {
      return await session.api().get(id);
    } catch (error) {
      if (!isConnectionDrop(error) || Date.now() - since > RECONNECT_GIVE_UP_MS) throw error;
      await sleep(500);
    }
  }
}

export async function runJob(session: Session, request: StartJobRequest): Promise<number> {
  let presses = 0;
  let job: Job | undefined;
  const detach = new AbortController();
  const stop = (id: string): Promise<unknown> =>
    session
      .api()
      .stop(id)
      .catch((error: unknown) => {
        session.note(
          `could not stop job ${id}: ${describeFailure(error, session.failureContext()).message}`,
        );
      });
  const onSignal = () => {
    presses += 1;
    if (presses === 1) {
      session.note(`stopping job${job ? ` ${job.id}` : ''}… (Ctrl-C again to detach)`);
      if (job) void stop(job.id);
      return;
    }
    session.note(
      job
        ? `detached; job ${job.id} goes on being stopped: jobctl status ${job.id}`
        : 'detached before the job started',
    );
    detach.abort();
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
  try {
    job = await startJob(session, request);
    if (detach.signal.aborted) {
      // Both Ctrl-Cs came before the job existed: stop it, giving the request a moment to
      // reach the server (the API carries a stop through once it has it), then leave.
      session.note(`job ${job.id} started meanwhile; stopping it: jobctl status ${job.id}`);
      await Promise.race([stop(job.id), sleep(STOP_SEND_MS)]);
      return EXIT.detached;
    }
    if (presses > 0) void stop(job.id);
    const id = job.id;
    let ended: Job;
    let offset = 0;
    try {
      for (;;) {
        const result = await printOutput(session, id, {
          from: offset,
          resume: true,
          signal: detach.signal,
        });
        offset = result.offset;
        if (result.reason === 'aborted') return EXIT.detached;
        ended = await finalRecord(session, id);
        // The stream ends only once the job has; should a record still say running, read on.
        if (ended.state !== JobState.JOB_STATE_RUNNING) break;
      }
    } catch (error) {
      const { message, detail } = describeFailure(error, session.failureContext());
      throw new CliError(`${message}; job ${id} may still be running: jobctl logs -f ${id}`, {
        exitCode: EXIT.refused,
        ...(detail === undefined ? {} : { detail }),
      });
    }
    const note = endNote(ended);
    if (note) session.note(note);
    if (ended.outputTruncated)
      session.note(`the job wrote more output than the server keeps; the rest was not stored`);
    return jobExitCode(ended);
  } finally {
    for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
  }
}
