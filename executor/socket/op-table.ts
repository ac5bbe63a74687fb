// The executor's whole request surface. Nothing reaches the job runtime except through a row of
// this table, and every row checks its arguments before its handler runs. No op takes a path,
// uid, cgroup or device: the executor derives those from job ids and its own config.
// A test pins the list of ops, so adding one is a visible, reviewed change.
import type { ExecutorOp, OutputChunk, OutputEnd } from '../../shared/executor-protocol.ts';
import { JOB_ID, MAX_LIST_LIMIT } from '../../shared/executor-protocol.ts';
import { JOB_STATES } from '../../shared/job.ts';
import { jobSpecSchema } from '../../shared/job-spec-schema.ts';
import { integer, object, oneOf, optional, string } from '../../shared/schema.ts';
import type { Check } from '../../shared/schema.ts';
import type { JobRuntime } from '../runtime/job-runtime.ts';

const jobId = string({
  maxBytes: 32,
  pattern: JOB_ID,
  patternRule: 'a job id (32 lowercase hex characters)',
});
/** Identities are certificate CNs: printable, no control characters. */
const owner = string({
  minLength: 1,
  maxBytes: 128,
  pattern: /^[^\p{Cc}]+$/u,
  patternRule: 'printable text',
});

export interface OpContext {
  runtime: JobRuntime;
  /** Aborted when the connection closes: a stream stops reading at once. */
  signal: AbortSignal;
}

export interface UnaryOp {
  kind: 'unary';
  run: (rawArgs: unknown, context: OpContext) => Promise<unknown>;
}
export interface StreamOp {
  kind: 'stream';
  run: (
    rawArgs: unknown,
    context: OpContext,
  ) => { chunks: AsyncIterable<OutputChunk>; end: () => Promise<OutputEnd> };
}

/** A row: its arguments are checked (throwing invalid-argument naming the field) before the handler. */
function unary<A>(
  args: Check<A>,
  handler: (args: A, context: OpContext) => Promise<unknown>,
): UnaryOp {
  return { kind: 'unary', run: async (raw, context) => handler(args(raw, ''), context) };
}
function stream<A>(
  args: Check<A>,
  handler: (args: A, context: OpContext) => AsyncIterable<OutputChunk>,
  end: (args: A, context: OpContext) => Promise<OutputEnd>,
): StreamOp {
  return {
    kind: 'stream',
    run: (raw, context) => {
      const checked = args(raw, '');
      return { chunks: handler(checked, context), end: () => end(checked, context) };
    },
  };
}

const startArgs = object({ spec: jobSpecSchema, owner });
const stopArgs = object({
  id: jobId,
  graceMs: optional(integer({ min: 0, max: 3_600_000, unit: 'ms' })),
});
const getArgs = object({ id: jobId });
const listArgs = object({
  owner: optional(owner),
  state: optional(oneOf(JOB_STATES)),
  limit: optional(integer({ min: 1, max: MAX_LIST_LIMIT })),
  after: optional(jobId),
});
const readOutputArgs = object({
  id: jobId,
  offset: integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
});

export const OP_TABLE: Readonly<Record<ExecutorOp, UnaryOp | StreamOp>> = {
  start: unary(startArgs, function answerStartJob(args, { runtime }) {
    return runtime.start(args.spec, args.owner);
  }),
  stop: unary(stopArgs, function answerStopJob(args, { runtime }) {
    return runtime.stop(args.id, args.graceMs);
  }),
  get: unary(getArgs, function answerGetJob(args, { runtime }) {
    return runtime.get(args.id);
  }),
  list: unary(listArgs, function answerListJobs(args, { runtime }) {
    return runtime.list(args);
  }),
  'read-output': stream(
    readOutputArgs,
    function answerReadOutput(args, { runtime, signal }) {
      return runtime.readOutput(args.id, args.offset, signal);
    },
    (args, { runtime }) => runtime.outputSummary(args.id),
  ),
};
