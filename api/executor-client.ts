// The API's side of the executor socket: one wrapper per op, named to pair with the executor's
// handlers (startJob ↔ answerStartJob). Unary calls share a small pool of connections, each kept
// below the executor's per-connection limit, and are shared fairly between identities
// (fair-admission.ts): one identity's burst waits behind itself. Each output stream has a
// connection of its own while it runs, so a slow watcher only ever holds back itself (a stream
// that ended cleanly leaves its connection for the next: output-connections.ts); health probes
// have one.
//
// Every call is bounded in time: a read (get, list) waits until the client's deadline or this
// server's maximum, whichever comes first, and stops waiting when the client goes away. A start
// or stop is skipped if its client has gone before it is sent, and once sent it is seen through
// to the executor's answer (bounded by the server's maximum: a stop's follows its grace period),
// so that its outcome is known and audited even when nobody waits for it any more.
//
// A probe that goes unanswered for PROBE_TIMEOUT_MS marks the executor as not answering (a
// stopped or wedged process still accepts connections): reads waiting for it and output streams
// end with UNAVAILABLE, and new calls fail at once, until it answers again.
import type {
  ExecutorOp,
  ListArgs,
  ListResult,
  OpArgs,
  OpResults,
  RunQuota,
} from '../shared/executor-protocol.ts';
import { JobError } from '../shared/errors.ts';
import type { JobRecord, JobSpec } from '../shared/job.ts';
import { ChunkCollector, ExecutorOutput } from './executor-output.ts';
import type { OutputCollector, OutputEvent } from './executor-output.ts';
import { FairAdmission } from './fair-admission.ts';
import { KnownOwners } from './known-owners.ts';
import { OutputConnections } from './output-connections.ts';
import type { AdmissionLimits } from './fair-admission.ts';
import { ExecutorConnection, notInTime, unavailable } from './executor-connection.ts';
import type { RequestOptions } from './executor-connection.ts';

/** The longest the API waits for a get or list, whatever the client's deadline. */
export const READ_MAX_MS = 10_000;
/** ...for a start (the helper, cgroups and the record on a loaded host). */
export const START_MAX_MS = 30_000;
/** ...for a stop: its grace period plus this. */
export const STOP_MARGIN_MS = 10_000;
/** A stop without a grace period gets the executor's default, which is at most this (its config). */
const UNSET_GRACE_MS = 60_000;
/** An unanswered probe this old means the executor is not answering. */
export const PROBE_TIMEOUT_MS = 5_000;

/** Unary connections, and requests in flight on each (the executor allows 64 by default). */
const POOL_CONNECTIONS = 4;
const REQUESTS_PER_CONNECTION = 32;
/** Fair shares: one identity's calls in flight, and those it may have waiting. */
const ADMISSION: AdmissionLimits = {
  capacity: POOL_CONNECTIONS * REQUESTS_PER_CONNECTION,
  perIdentity: 32,
  queuedPerIdentity: 512,
  queuedTotal: 8192,
};

export type { OutputEvent } from './executor-output.ts';

/** What bounds one call to the executor: whose it is, and how long its client waits. */
export interface CallBounds {
  /** The client's identity (certificate CN). */
  identity: string;
  /** Epoch ms at which the client stops waiting; Infinity when it set no deadline. */
  deadline: number;
  /** Aborted when the client goes away. */
  signal?: AbortSignal;
}

/** For calls the API makes on its own behalf (and tests): no client deadline. */
const UNBOUNDED: CallBounds = { identity: '', deadline: Infinity };

export type ProbeResult = 'answering' | 'not-answering' | 'unreachable';

export class ExecutorClient {
  readonly socketPath: string;
  private readonly pool: ExecutorConnection[];
  private readonly admission = new FairAdmission(ADMISSION);
  private readonly probes: ExecutorConnection;
  private probing: { sentAt: number; answer: Promise<ProbeResult> } | null = null;
  private stalled = false;
  /** Open output streams, ended when the executor stops answering. */
  private readonly outputs = new Set<ExecutorOutput<unknown>>();
  /** Connections for output streams, kept between streams. */
  private readonly outputConnections: OutputConnections;
  /** Owners of the jobs the executor's answers named. */
  private readonly owners = new KnownOwners();

  constructor(socketPath: string) {
    this.socketPath = socketPath;
    this.pool = Array.from({ length: POOL_CONNECTIONS }, () => new ExecutorConnection(socketPath));
    this.probes = new ExecutorConnection(socketPath);
    this.outputConnections = new OutputConnections(socketPath);
  }

  /** False while the executor accepts requests but does not answer them. */
  get answering(): boolean {
    return !this.stalled;
  }

  /** Starts a job for `owner`; the executor checks `quota` with the start (none: its own cap). */
  startJob(
    spec: JobSpec,
    owner: string,
    bounds: CallBounds = UNBOUNDED,
    quota?: RunQuota,
  ): Promise<JobRecord> {
    const args = quota === undefined ? { spec, owner } : { spec, owner, quota };
    return this.remembered(this.change('start', args, START_MAX_MS, bounds));
  }

  stopJob(id: string, graceMs?: number, bounds: CallBounds = UNBOUNDED): Promise<JobRecord> {
    const args = graceMs === undefined ? { id } : { id, graceMs };
    return this.remembered(
      this.change('stop', args, (graceMs ?? UNSET_GRACE_MS) + STOP_MARGIN_MS, bounds),
    );
  }

  getJob(id: string, bounds: CallBounds = UNBOUNDED): Promise<JobRecord> {
    return this.remembered(this.read('get', { id }, bounds));
  }

  /**
   * Whose a job is (for authorization): known at once for a job an answer named before (its
   * start, a get, a listing), else asked for (cheaper than getJob while the job runs).
   */
  async jobOwner(id: string, bounds: CallBounds = UNBOUNDED): Promise<string> {
    const known = this.owners.get(id);
    if (known !== undefined) return known;
    const { owner } = await this.read('owner', { id }, bounds);
    this.owners.remember(id, owner);
    return owner;
  }

  async listJobs(args: ListArgs = {}, bounds: CallBounds = UNBOUNDED): Promise<ListResult> {
    const listed = await this.read('list', args, bounds);
    for (const job of listed.jobs) this.owners.remember(job.id, job.owner);
    return listed;
  }

  /**
   * Asks the executor for a sign of life, at most one question at a time: 'not-answering' when
   * the question in flight is older than PROBE_TIMEOUT_MS. Meanwhile calls fail at once.
   */
  async probe(): Promise<ProbeResult> {
    if (!this.probing) {
      const answer = this.probes
        .request('list', { limit: 1 }, { deadline: Infinity, leavesOnStall: false })
        .then(
          (): ProbeResult => 'answering',
          (): ProbeResult => 'unreachable',
        );
      const probing = { sentAt: Date.now(), answer };
      this.probing = probing;
      void answer.then((result) => {
        if (this.probing === probing) this.probing = null;
        if (this.stalled) this.stalled = false;
        return result;
      });
    }
    const { sentAt, answer } = this.probing;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<ProbeResult>((resolve) => {
      timer = setTimeout(() => resolve('not-answering'), sentAt + PROBE_TIMEOUT_MS - Date.now());
    });
    const result = await Promise.race([answer, late]);
    clearTimeout(timer);
    if (result === 'not-answering' && !this.stalled) this.stall();
    return result;
  }

  /**
   * A read-output stream of its own, its chunks handed to `collector` as they arrive; it ends
   * UNAVAILABLE if the executor stops answering.
   */
  async openOutput<T>(
    id: string,
    offset: number,
    collector: OutputCollector<T>,
  ): Promise<ExecutorOutput<T>> {
    if (this.stalled) throw this.notAnswering();
    const output: ExecutorOutput<T> = await ExecutorOutput.open(
      this.socketPath,
      this.outputConnections,
      id,
      offset,
      collector,
      () => this.outputs.delete(output),
    );
    this.outputs.add(output);
    return output;
  }

  /**
   * The job's output from `offset`, chunk by chunk, then one end event. Ends early, closing its
   * connection, when the consumer stops iterating or `signal` aborts.
   */
  async *readOutput(id: string, offset: number, signal?: AbortSignal): AsyncGenerator<OutputEvent> {
    const output = await this.openOutput(id, offset, new ChunkCollector());
    const abort = () => output.close();
    signal?.addEventListener('abort', abort, { once: true });
    try {
      for (;;) {
        let taken: { items: OutputEvent[]; ended: boolean };
        try {
          taken = await output.take(1);
        } catch (error) {
          if (signal?.aborted) return;
          throw error;
        }
        yield* taken.items;
        if (taken.ended) {
          yield { end: output.summary };
          return;
        }
      }
    } finally {
      signal?.removeEventListener('abort', abort);
      output.close();
    }
  }

  /** A job record's owner, remembered as the record passes. */
  private async remembered(answer: Promise<JobRecord>): Promise<JobRecord> {
    const record = await answer;
    this.owners.remember(record.id, record.owner);
    return record;
  }

  /** Closes every connection; calls in flight fail with unavailable. */
  close(): void {
    for (const connection of this.pool) connection.close();
    this.probes.close();
    this.outputConnections.close();
  }

  private notAnswering(): JobError {
    return unavailable(this.socketPath, `no answer to a probe for ${PROBE_TIMEOUT_MS / 1000} s`);
  }

  private stall(): void {
    this.stalled = true;
    const error = this.notAnswering();
    this.admission.refuseWaiting(error);
    for (const connection of this.pool) connection.stalled(error);
    for (const output of this.outputs) output.fail(error);
  }

  /** get, owner, list: until the client's deadline or READ_MAX_MS; not once the client has gone. */
  private async read<Op extends 'get' | 'owner' | 'list'>(
    op: Op,
    args: OpArgs[Op],
    bounds: CallBounds,
  ): Promise<OpResults[Op]> {
    return (await this.send(op, args, bounds, READ_MAX_MS, false)) as OpResults[Op];
  }

  /**
   * start, stop: not sent once the client has gone; once sent, awaited until the executor
   * answers (at most `maxMs`), whether or not the client still waits.
   */
  private async change<Op extends 'start' | 'stop'>(
    op: Op,
    args: OpArgs[Op],
    maxMs: number,
    bounds: CallBounds,
  ): Promise<OpResults[Op]> {
    return (await this.send(op, args, bounds, maxMs, true)) as OpResults[Op];
  }

  /**
   * Waits for a place (fair-admission.ts), then sends on the first connection with room; the place is
   * given back once the executor has answered. The wait ends at the client's deadline or
   * `maxMs`, or when the client goes away. Once sent, a read still ends with the client, a
   * change (`seeThrough`) is awaited for `maxMs` whatever the client does.
   */
  private async send(
    op: ExecutorOp,
    args: unknown,
    bounds: CallBounds,
    maxMs: number,
    seeThrough: boolean,
  ): Promise<unknown> {
    if (this.stalled) throw this.notAnswering();
    const deadline = Math.min(bounds.deadline, Date.now() + maxMs);
    const release = await this.admission.acquire(bounds.identity, deadline, bounds.signal);
    const refusal = this.refusal(bounds, deadline);
    if (refusal) {
      release();
      throw refusal;
    }
    const connection = this.connectionWithRoom();
    const options: RequestOptions = seeThrough
      ? { deadline: Date.now() + maxMs, leavesOnStall: false, onFinished: release }
      : { deadline, leavesOnStall: true, onFinished: release };
    if (!seeThrough && bounds.signal) options.signal = bounds.signal;
    return connection.request(op, args, options);
  }

  /**
   * The first connection with room: one is filled before the next is opened. The admission's
   * capacity is the pool's, so one always has room; the least busy otherwise, to be safe.
   */
  private connectionWithRoom(): ExecutorConnection {
    let least = this.pool[0] as ExecutorConnection;
    for (const connection of this.pool) {
      if (connection.inFlight < REQUESTS_PER_CONNECTION) return connection;
      if (connection.inFlight < least.inFlight) least = connection;
    }
    return least;
  }

  /** Why a call that has its place is not sent after all: its client is gone, or the executor. */
  private refusal(bounds: CallBounds, deadline: number): JobError | null {
    if (bounds.signal?.aborted) return new JobError('cancelled', 'the caller went away');
    if (Date.now() >= deadline) return notInTime();
    if (this.stalled) return this.notAnswering();
    return null;
  }
}
