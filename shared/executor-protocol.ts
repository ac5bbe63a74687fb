// The executor socket's messages. The executor's op table (executor/socket/op-table.ts) is the
// authority on what is accepted; this file is the vocabulary both sides share.
//
//   request   { id, op, args }                       one per frame, id chosen by the client
//   reply     { id, ok: result }                     unary ops
//             { id, error: { code, message, details } }
//   stream    { id, chunk: { stream, offset, data } }   read-output, zero or more
//             { id, end: { outputBytes, truncated } }    then exactly one end (or an error)
import type { ErrorCode } from './errors.ts';
import type { JobRecord, JobSpec, JobState } from './job.ts';

export const EXECUTOR_OPS = ['start', 'stop', 'get', 'owner', 'list', 'read-output'] as const;
export type ExecutorOp = (typeof EXECUTOR_OPS)[number];

export interface StartArgs {
  spec: JobSpec;
  /** Who the job belongs to; the API passes the client certificate's CN. */
  owner: string;
  /** The API's quotas on running jobs, checked with the start itself. */
  quota?: RunQuota;
}
/**
 * A start is refused (resource-exhausted) while this many jobs run or are starting: in all, or
 * of the start's owner. The executor's own maximum applies besides.
 */
export interface RunQuota {
  running: number;
  runningPerOwner: number;
}
export interface StopArgs {
  id: string;
  /** How long the job has after SIGTERM before everything in its cgroup is killed. */
  graceMs?: number;
}
export interface GetArgs {
  id: string;
}
/** Whose a job is: all the API needs to decide whether a caller may name it. */
export interface JobOwner {
  owner: string;
}
export interface ListArgs {
  owner?: string;
  state?: JobState;
  /** At most this many records (and never more than fit one frame); default and maximum 1000. */
  limit?: number;
  /** Continue after this job id (the last one of the previous page). */
  after?: string;
}

/** Oldest first. `more` is true when further records match: ask again with `after`. */
export interface ListResult {
  jobs: JobRecord[];
  more: boolean;
}

export const MAX_LIST_LIMIT = 1000;
export interface ReadOutputArgs {
  id: string;
  /** Byte offset in the job's combined output to start from (0 = the first byte). */
  offset: number;
}

export interface OpArgs {
  start: StartArgs;
  stop: StopArgs;
  get: GetArgs;
  owner: GetArgs;
  list: ListArgs;
  'read-output': ReadOutputArgs;
}
export interface OpResults {
  start: JobRecord;
  stop: JobRecord;
  get: JobRecord;
  owner: JobOwner;
  list: ListResult;
  'read-output': OutputEnd;
}

export type OutputStream = 'stdout' | 'stderr';

export interface OutputChunk {
  stream: OutputStream;
  /** Offset of data[0] in the job's combined output. */
  offset: number;
  data: Uint8Array;
}

export interface OutputEnd {
  /** Total bytes of output stored for the job. */
  outputBytes: number;
  /** True when the job wrote more than the configured cap and the rest was not stored. */
  truncated: boolean;
}

export interface WireError {
  code: ErrorCode;
  message: string;
  details?: Record<string, string | number>;
}

export interface Request<Op extends ExecutorOp = ExecutorOp> {
  id: number;
  op: Op;
  args: OpArgs[Op];
}

export type Reply =
  | { id: number; ok: unknown }
  | { id: number; error: WireError }
  | { id: number; chunk: OutputChunk }
  | { id: number; end: OutputEnd };

/** Request ids are u32 so that either side can keep them in a plain Map. */
export const MAX_REQUEST_ID = 0xffffffff;

/** Defined in job-id.ts; here too for the modules that import it from the protocol. */
/** Kept for the API's imports; the definition is shared/job-id.ts. */
export { JOB_ID } from './job-id.ts';
