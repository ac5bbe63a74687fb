// Between the proto's messages and the shared job model. Requests become JobSpecs checked by the
// same schema the executor applies (so errors name the field early); records become Job messages.
import type { ListArgs } from '../shared/executor-protocol.ts';
import { JOB_ID } from '../shared/executor-protocol.ts';
import type {
  EndReason as ExecutorEndReason,
  JobLimits,
  JobRecord,
  JobSpec,
  JobState as ExecutorJobState,
  StorageKind as ExecutorStorageKind,
} from '../shared/job.ts';
import { jobSpecSchema } from '../shared/job-spec-schema.ts';
import { invalid } from '../shared/schema.ts';
import type { Duration } from './generated/google/protobuf/duration.ts';
import {
  EndReason,
  JobState,
  StorageKind,
  type Job,
  type Limits,
  type ListJobsRequest,
  type StartJobRequest,
} from './generated/jobworker/v1/jobworker.ts';

/** ListJobs' default and largest page. */
export const MAX_PAGE_SIZE = 500;

const STATES: Record<ExecutorJobState, JobState> = {
  RUNNING: JobState.JOB_STATE_RUNNING,
  COMPLETED: JobState.JOB_STATE_COMPLETED,
  FAILED: JobState.JOB_STATE_FAILED,
  STOPPED: JobState.JOB_STATE_STOPPED,
};

const END_REASONS: Record<ExecutorEndReason, EndReason> = {
  exited: EndReason.END_REASON_EXITED,
  'killed-by-signal': EndReason.END_REASON_KILLED_BY_SIGNAL,
  'oom-killed': EndReason.END_REASON_OOM_KILLED,
  'timed-out': EndReason.END_REASON_TIMED_OUT,
  stopped: EndReason.END_REASON_STOPPED,
  'start-failed': EndReason.END_REASON_START_FAILED,
  'executor-restarted': EndReason.END_REASON_EXECUTOR_RESTARTED,
};

const STORAGE_KINDS: Record<ExecutorStorageKind, StorageKind> = {
  memory: StorageKind.STORAGE_KIND_MEMORY,
  disk: StorageKind.STORAGE_KIND_DISK,
};

function storageKindFromMessage(kind: StorageKind | undefined): ExecutorStorageKind | undefined {
  if (kind === undefined || kind === StorageKind.STORAGE_KIND_UNSPECIFIED) return undefined;
  const name = (Object.keys(STORAGE_KINDS) as ExecutorStorageKind[]).find(
    (key) => STORAGE_KINDS[key] === kind,
  );
  if (!name) throw invalid('storage_kind', 'is not a storage kind');
  return name;
}

/** A Duration as whole milliseconds; `field` names it in errors. */
export function durationToMs(duration: Duration, field: string): number {
  const ms = duration.seconds * 1000 + duration.nanos / 1e6;
  if (!Number.isFinite(ms) || ms < 0) throw invalid(field, 'must not be negative');
  if (!Number.isInteger(ms)) throw invalid(field, 'must be a whole number of milliseconds');
  return ms;
}

function msToDuration(ms: number): Duration {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

function limitsFromMessage(limits: Limits): JobLimits {
  const result: JobLimits = {};
  for (const [name, value] of Object.entries(limits) as [keyof Limits, unknown][]) {
    if (value !== undefined) (result as Record<string, unknown>)[name] = value;
  }
  return result;
}

function limitsToMessage(limits: JobLimits): Limits {
  return { ...limits };
}

/** The request as a JobSpec, checked: an error names the proto field (see grpc-status.ts). */
export function specFromRequest(request: StartJobRequest): JobSpec {
  const spec: JobSpec = { argv: request.argv };
  if (Object.keys(request.env).length > 0) spec.env = request.env;
  if (request.workingDir !== '') spec.workingDir = request.workingDir;
  if (request.limits) spec.limits = limitsFromMessage(request.limits);
  const storageKind = storageKindFromMessage(request.storageKind);
  if (storageKind) spec.storageKind = storageKind;
  if (request.timeout) {
    const timeoutMs = durationToMs(request.timeout, 'timeout');
    if (timeoutMs > 0) spec.timeoutMs = timeoutMs;
  }
  return jobSpecSchema(spec, 'spec');
}

/** A ListJobs request as the executor's list arguments (the owner already scoped by policy). */
export function listArgsFromRequest(request: ListJobsRequest): ListArgs {
  const args: ListArgs = {};
  if (request.owner !== '') args.owner = request.owner;
  if (request.state !== JobState.JOB_STATE_UNSPECIFIED) {
    const state = (Object.keys(STATES) as ExecutorJobState[]).find(
      (name) => STATES[name] === request.state,
    );
    if (!state) throw invalid('state', 'is not a job state');
    args.state = state;
  }
  if (request.pageSize > MAX_PAGE_SIZE)
    throw invalid('page_size', `must be at most ${MAX_PAGE_SIZE}`);
  args.limit = request.pageSize || MAX_PAGE_SIZE;
  if (request.pageToken !== '') {
    if (!JOB_ID.test(request.pageToken))
      throw invalid('page_token', 'is not a token this server gave out');
    args.after = request.pageToken;
  }
  return args;
}

export function jobToMessage(record: JobRecord): Job {
  const job: Job = {
    id: record.id,
    owner: record.owner,
    argv: record.argv,
    envNames: record.envNames,
    workingDir: record.workingDir,
    limits: limitsToMessage(record.limits),
    state: STATES[record.state],
    endReason: record.endReason ? END_REASONS[record.endReason] : EndReason.END_REASON_UNSPECIFIED,
    signal: record.signal ?? '',
    error: record.error ?? '',
    startedAt: new Date(record.createdAt),
    outputBytes: record.outputBytes,
    outputTruncated: record.outputTruncated,
  };
  // Records from before storage kinds have none.
  if (record.storageKind !== undefined) job.storageKind = STORAGE_KINDS[record.storageKind];
  if (record.timeoutMs !== null) job.timeout = msToDuration(record.timeoutMs);
  if (record.exitCode !== null) job.exitCode = record.exitCode;
  if (record.endedAt !== null) job.endedAt = new Date(record.endedAt);
  if (record.usage) job.usage = { ...record.usage };
  return job;
}
