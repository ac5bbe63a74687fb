// jobctl's exit codes, in the manner of the shell and Docker: a job's own status passes through
// (128+n when signal n killed it); jobctl's own failures use the codes a shell reserves.
import { constants } from 'node:os';

export const EXIT = {
  ok: 0,
  /** status, stop, logs, list: the request failed (no such job, connection lost, …). */
  failed: 1,
  /** Before any job ran: bad flags, no connection, the service refused the job or lost it. */
  refused: 125,
  /** The program was found but could not be executed (EACCES and other exec errors). */
  notExecutable: 126,
  /** The program was not found (ENOENT). */
  notFound: 127,
  /** `run` detached by a second Ctrl-C (128 + SIGINT). */
  detached: 130,
  /** Our stdout was closed by its reader (128 + SIGPIPE), as a shell pipeline expects. */
  brokenPipe: 141,
} as const;

/** 128 + the signal's number, as a shell reports a process killed by it. */
export function signalExitCode(name: string): number | undefined {
  const number = (constants.signals as Record<string, number | undefined>)[name];
  return number === undefined ? undefined : 128 + number;
}

/**
 * The exit code for a start refused with `jobworker-errno` and `jobworker-stage` trailers: a
 * shell's 127 (not found) and 126 (not executable) for the program itself only; a job that could
 * not be set up, or whose working directory failed, is refused (125). A server without the stage
 * trailer: by errno alone.
 */
export function startFailureExitCode(errno: string | undefined, stage?: string): number {
  if (stage !== undefined && stage !== 'exec') return EXIT.refused;
  if (errno === 'ENOENT') return EXIT.notFound;
  if (errno) return EXIT.notExecutable;
  return EXIT.refused;
}
