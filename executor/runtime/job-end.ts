// How a job's end is classified: one pure function, so the precedence is visible and tested.
import { constants } from 'node:os';
import type { EndReason, JobState } from '../../shared/job.ts';
import type { StartError } from './keeper-link.ts';

export type StopReason = 'stopped' | 'timed-out';

export interface EndFacts {
  startError: StartError | null;
  oomKilled: boolean;
  stopReason: StopReason | null;
  /** The job's own exit, as its keeper recorded it (the init's own, when the init was killed). */
  exitCode: number | null;
  signal: number | null;
}

export interface EndOutcome {
  state: JobState;
  endReason: EndReason;
  exitCode: number | null;
  signal: string | null;
}

const signalNames = new Map<number, string>(
  Object.entries(constants.signals).map(([name, number]) => [number, name]),
);

export function signalName(signal: number): string {
  return signalNames.get(signal) ?? `SIG${signal}`;
}

/**
 * Precedence: a start failure explains everything; an OOM kill explains a death better than the
 * signal it came with; a stop or timeout the executor caused comes next; then the job's own exit.
 */
export function classifyEnd(facts: EndFacts): EndOutcome {
  const signal = facts.signal !== null ? signalName(facts.signal) : null;
  const exit = { exitCode: facts.exitCode, signal };
  if (facts.startError) return { state: 'FAILED', endReason: 'start-failed', ...exit };
  if (facts.oomKilled) return { state: 'FAILED', endReason: 'oom-killed', ...exit };
  if (facts.stopReason === 'timed-out') return { state: 'FAILED', endReason: 'timed-out', ...exit };
  if (facts.stopReason === 'stopped') return { state: 'STOPPED', endReason: 'stopped', ...exit };
  if (signal !== null) return { state: 'FAILED', endReason: 'killed-by-signal', ...exit };
  return { state: facts.exitCode === 0 ? 'COMPLETED' : 'FAILED', endReason: 'exited', ...exit };
}

/**
 * Where a start failed, as clients are told: only an exec failure is about the program (not
 * found, not executable); a chdir failure is about the working directory; anything else is the
 * job's setup, which no change to argv fixes.
 */
export function startStage(error: StartError): 'exec' | 'chdir' | 'setup' {
  return error.stage === 'exec' || error.stage === 'chdir' ? error.stage : 'setup';
}

/** The message a person reads for a start failure: `exec "foo": no such file or directory`. */
export function describeStartError(error: StartError, argv0: string, workingDir: string): string {
  if (error.stage === 'exec') return `exec ${JSON.stringify(argv0)}: ${error.reason}`;
  if (error.stage === 'chdir') return `chdir ${JSON.stringify(workingDir)}: ${error.reason}`;
  return `job setup failed at ${error.stage}: ${error.reason}`;
}
