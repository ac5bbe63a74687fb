// The small registry of error codes that cross the executor socket. The API maps each code to one
// gRPC status in one place; the message is written for the person who sent the request.

export const ERROR_CODES = {
  /** A request field is malformed or out of range; the message names the field and the rule. */
  'invalid-argument': 'a request field is malformed or out of range',
  /** No job with that id (the API also uses it for jobs the caller may not see). */
  'not-found': 'no such job',
  /** The job's program could not be started (exec failed, working directory missing, …). */
  'start-failed': 'the job could not be started',
  /** The operation does not apply to the job's current state (for example stopping an ended job). */
  'failed-precondition': 'the job is not in a state that allows this',
  /** The caller's role does not allow this (API side: certificate OU). */
  'permission-denied': 'the caller may not do this',
  /** A bound was reached: running jobs, job uids, connections, readers. */
  'resource-exhausted': 'a configured bound was reached',
  /** A frame or op the executor does not accept; the connection is closed after the answer. */
  'protocol-error': 'the request is not part of the executor protocol',
  /** The executor cannot be reached (client side: connection refused, closed, timed out). */
  unavailable: 'the executor cannot be reached',
  /** The executor did not answer within the call's deadline (client side only). */
  'deadline-exceeded': 'the executor did not answer in time',
  /** The caller went away before the call was made (API side only). */
  cancelled: 'the caller went away',
  /** Something failed inside the executor; the details are in the executor's log only. */
  internal: 'internal executor error',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class JobError extends Error {
  readonly code: ErrorCode;
  /** Extra machine-readable facts, e.g. { errno: 'ENOENT' } for start-failed. */
  readonly details: Readonly<Record<string, string | number>>;

  constructor(code: ErrorCode, message: string, details: Record<string, string | number> = {}) {
    super(message);
    this.name = 'JobError';
    this.code = code;
    this.details = details;
  }
}

/**
 * What every "the other end went away" signal aborts with, made once: abort() without a reason
 * builds a DOMException, stack and all, each time, and every call's signals are aborted when its
 * stream closes, however it ended.
 */
export const GONE = new JobError('cancelled', 'the other end went away');

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}
