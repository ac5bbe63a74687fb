// The one place where errors become gRPC statuses. Executor internals never reach a client: a
// message is passed on only for the error codes whose messages are written for the caller.
import { Metadata, status } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ErrorCode } from '../shared/errors.ts';
import { JobError } from '../shared/errors.ts';

const CODE_FOR: Record<ErrorCode, status> = {
  'invalid-argument': status.INVALID_ARGUMENT,
  'not-found': status.NOT_FOUND,
  'start-failed': status.FAILED_PRECONDITION,
  'failed-precondition': status.FAILED_PRECONDITION,
  'permission-denied': status.PERMISSION_DENIED,
  'resource-exhausted': status.RESOURCE_EXHAUSTED,
  unavailable: status.UNAVAILABLE,
  'deadline-exceeded': status.DEADLINE_EXCEEDED,
  cancelled: status.CANCELLED,
  'protocol-error': status.INTERNAL,
  internal: status.INTERNAL,
};

/** Field names as the proto spells them: the executor's `spec.limits.memoryBytes` is `limits.memory_bytes`. */
const RENAMED: Record<string, string> = {
  timeoutMs: 'timeout',
  graceMs: 'grace_period',
  after: 'page_token',
};

/** The proto's map fields: in a path, what follows one of them is a key (data), never renamed. */
const MAP_FIELDS = new Set(['env']);

const protoName = (name: string) =>
  RENAMED[name] ?? name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);

export function protoFieldPath(path: string): string {
  // Only the dotted path is renamed; what follows it (` key "MY_VAR"`) is the caller's own text.
  const space = path.indexOf(' ');
  const [dotted, rest] = space < 0 ? [path, ''] : [path.slice(0, space), path.slice(space)];
  const parts = dotted.replace(/^spec\./, '').split('.');
  const renamed: string[] = [];
  for (const [index, part] of parts.entries()) {
    if (index > 0 && MAP_FIELDS.has(parts[index - 1] ?? '')) {
      // `env.MY_VAR` is the value under key MY_VAR: `env["MY_VAR"]`, the key as it was sent.
      renamed[renamed.length - 1] += `[${JSON.stringify(parts.slice(index).join('.'))}]`;
      break;
    }
    renamed.push(protoName(part));
  }
  return renamed.join('.') + rest;
}

function callerMessage(error: JobError): string {
  switch (error.code) {
    case 'invalid-argument': {
      if (error.details.spelling === 'proto') return error.message;
      const colon = error.message.indexOf(': ');
      return colon < 0
        ? error.message
        : `${protoFieldPath(error.message.slice(0, colon))}${error.message.slice(colon)}`;
    }
    case 'unavailable':
      return 'the job executor is unavailable; try again shortly';
    case 'protocol-error':
    case 'internal':
      return 'internal error';
    // Written by the API for its clients.
    case 'deadline-exceeded':
    case 'cancelled':
    case 'not-found':
    case 'start-failed':
    case 'failed-precondition':
    case 'permission-denied':
    case 'resource-exhausted':
      return error.message;
  }
}

/** A status as grpc-js takes it from handlers, interceptors and streams alike. */
export interface CallStatus {
  code: status;
  details: string;
  metadata: Metadata;
}

/** The status code an error is answered with. */
export function statusCodeFor(error: unknown): status {
  return error instanceof JobError ? CODE_FOR[error.code] : status.INTERNAL;
}

export function statusFor(error: unknown, logger: Logger): CallStatus {
  if (!(error instanceof JobError)) {
    logger.error({ err: error }, 'unexpected error in a call');
    return { code: status.INTERNAL, details: 'internal error', metadata: new Metadata() };
  }
  if (error.code === 'unavailable') logger.warn({ err: error.message }, 'executor unavailable');
  if (error.code === 'internal' || error.code === 'protocol-error')
    logger.error({ err: error }, 'executor error');
  const metadata = new Metadata();
  // A start failure carries what a client needs to tell "not found" from "not executable", and
  // a program that could not be run (stage exec) from a job that could not be set up.
  if (error.code === 'start-failed') {
    if (typeof error.details.errno === 'string' && error.details.errno)
      metadata.set('jobworker-errno', error.details.errno);
    if (typeof error.details.stage === 'string')
      metadata.set('jobworker-stage', error.details.stage);
    if (typeof error.details.jobId === 'string')
      metadata.set('jobworker-job-id', error.details.jobId);
  }
  return { code: CODE_FOR[error.code], details: callerMessage(error), metadata };
}
