// The executor's whole request surface, and its only validator. Nothing reaches the job runtime
// except through a row of this table: every row checks its arguments, the config-dependent rules
// included (limits against the configured maxima, a stop's grace), and hands the runtime typed,
// already-checked values. No op takes a path, uid, cgroup or device: the executor derives those
// from job ids and its own config. The envelope accepts exactly this table's ops, and a test pins
// the list, so adding one is a visible, reviewed change.
import type {
  ExecutorOp,
  OpResults,
  OutputChunk,
  OutputEnd,
} from '../../shared/executor-protocol.ts';
import { MAX_LIST_LIMIT } from '../../shared/executor-protocol.ts';
import { JOB_ID, JOB_ID_RULE } from '../../shared/job-id.ts';
import { JOB_STATES } from '../../shared/job.ts';
import { jobSpecSchema } from '../../shared/job-spec-schema.ts';
import { integer, object, oneOf, optional, string } from '../../shared/schema.ts';
import type { Check } from '../../shared/schema.ts';
import { JobError } from '../../shared/errors.ts';
import { effectiveLimits, effectiveTimeout } from '../runtime/effective-limits.ts';
import type { JobRuntime } from '../runtime/job-runtime.ts';

const jobId = string({
  maxBytes: 32,
  pattern: JOB_ID,
  patternRule: JOB_ID_RULE,
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

const quotaCount = integer({ min: 1, max: 100_000 });
const startArgs = object({
  spec: jobSpecSchema,
  owner,
  quota: optional(object({ running: quotaCount, runningPerOwner: quotaCount })),
});
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
  start: unary(startArgs, function answerStartJob({ spec, owner, quota }, { runtime }) {
    // The runtime's config: its maxima are already clamped to this host.
    const storageKind = spec.storageKind ?? 'memory';
    const limits = effectiveLimits(spec.limits ?? {}, runtime.config, storageKind);
    const timeoutMs = effectiveTimeout(spec, runtime.config);
    return runtime.start({ spec, owner, quota, limits, storageKind, timeoutMs });
  }),
  stop: unary(stopArgs, function answerStopJob(args, { runtime }) {
    const graceMs = args.graceMs ?? runtime.config.stopGraceMs;
    if (graceMs > runtime.config.maxStopGraceMs) {
      throw new JobError(
        'invalid-argument',
        `graceMs: must be at most ${runtime.config.maxStopGraceMs}`,
        { field: 'graceMs' },
      );
    }
    return runtime.stop(args.id, graceMs);
  }),
  get: unary(getArgs, function answerGetJob(args, { runtime }) {
    return runtime.get(args.id);
  }),
  // Cheaper than get for a running job: no usage read from its cgroups, no record copied.
  owner: unary(getArgs, function answerJobOwner(args, { runtime }) {
    return Promise.resolve(runtime.ownerOf(args.id));
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

/** The ops this table answers: what the envelope accepts. */
export const TABLE_OPS = Object.keys(OP_TABLE) as ExecutorOp[];

type UnaryName = Exclude<ExecutorOp, 'read-output'>;

/**
 * One unary op run in process exactly as a request on the socket would run: through its row's
 * checks (for the tests and benchmarks that drive a runtime directly).
 */
export function callOp<Op extends UnaryName>(
  op: Op,
  args: unknown,
  runtime: JobRuntime,
): Promise<OpResults[Op]> {
  const row = OP_TABLE[op];
  if (row.kind !== 'unary') throw new Error(`${op} is a stream op`);
  return row.run(args, { runtime, signal: new AbortController().signal }) as Promise<OpResults[Op]>;
}
