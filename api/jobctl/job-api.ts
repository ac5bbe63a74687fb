// The JobService calls jobctl makes, as promises with deadlines. Errors are grpc-js ServiceErrors
// (code, details, metadata); failures.ts turns them into words.
import { Metadata } from '@grpc/grpc-js';
import type { ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import { JOB_ID, JOB_ID_PREFIX } from '../../shared/job-id.ts';
import { msToDuration } from '../../shared/proto-duration.ts';
import {
  JobServiceClient,
  JobState,
  type Job,
  type ListJobsResponse,
  type OutputChunk,
  type StartJobRequest,
} from '../generated/jobworker/v1/jobworker.ts';
import { CliError, UsageError } from './cli-errors.ts';
import type { ClientTls } from './client-tls.ts';

/** How long a call may wait for an answer (connecting included). */
const CALL_DEADLINE_MS = 30_000;
/** StopJob answers after the grace period; this much on top of it. */
const STOP_DEADLINE_EXTRA_MS = 30_000;
/** The server's longest grace period is its own configuration: wait that long when none is given. */
const STOP_DEADLINE_DEFAULT_MS = 5 * 60_000;

/** A grpc-js call error: code, details, metadata (trailers). */
export function isServiceError(error: unknown): error is ServiceError {
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as ServiceError).code === 'number' &&
    'metadata' in error
  );
}

/** Refuses, before anything is sent, what cannot be a job id or the start of one. */
export function checkJobIdArgument(text: string): void {
  if (!JOB_ID_PREFIX.test(text)) {
    throw new UsageError(
      `${JSON.stringify(text)} is not a job id (32 hex digits, or the start of one)`,
    );
  }
}

export interface ListFilter {
  owner?: string;
  state?: JobState;
}

export class JobApi {
  readonly #client: JobServiceClient;

  constructor(target: string, tls: ClientTls) {
    this.#client = new JobServiceClient(target, tls.credentials, tls.options);
  }

  #unary<Request, Response>(
    method: 'startJob' | 'stopJob' | 'getJob' | 'listJobs',
    request: Request,
    deadlineMs = CALL_DEADLINE_MS,
  ): Promise<Response> {
    return new Promise((resolve, reject) => {
      const call = this.#client[method].bind(this.#client) as unknown as (
        request: Request,
        metadata: Metadata,
        options: { deadline: number },
        callback: (error: ServiceError | null, response: Response) => void,
      ) => void;
      call(request, new Metadata(), { deadline: Date.now() + deadlineMs }, (error, response) =>
        error ? reject(error) : resolve(response),
      );
    });
  }

  start(request: StartJobRequest): Promise<Job> {
    return this.#unary('startJob', request, 2 * CALL_DEADLINE_MS);
  }

  stop(id: string, graceMs?: number): Promise<Job> {
    const request = graceMs === undefined ? { id } : { id, gracePeriod: msToDuration(graceMs) };
    return this.#unary(
      'stopJob',
      request,
      (graceMs ?? STOP_DEADLINE_DEFAULT_MS) + STOP_DEADLINE_EXTRA_MS,
    );
  }

  get(id: string): Promise<Job> {
    return this.#unary('getJob', { id });
  }

  /** Every job the caller may see that matches, oldest first, all pages. */
  async list(filter: ListFilter = {}): Promise<Job[]> {
    const jobs: Job[] = [];
    let pageToken = '';
    do {
      const page: ListJobsResponse = await this.#unary('listJobs', {
        owner: filter.owner ?? '',
        state: filter.state ?? JobState.JOB_STATE_UNSPECIFIED,
        pageSize: 0,
        pageToken,
      });
      jobs.push(...page.jobs);
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    return jobs;
  }

  /** The job's output from `offset`, then live until it ends. */
  watch(id: string, offset: number): ClientReadableStream<OutputChunk> {
    return this.#client.watchJobOutput({ id, offset });
  }

  /** A full id as given, or the one job whose id starts with the given prefix (as Docker allows). */
  async resolveId(text: string): Promise<string> {
    checkJobIdArgument(text);
    if (JOB_ID.test(text)) return text;
    const matches = (await this.list()).filter((job) => job.id.startsWith(text));
    if (matches.length === 1 && matches[0]) return matches[0].id;
    if (matches.length === 0) throw new CliError(`no such job: ${text}`);
    throw new CliError(
      `the id prefix ${text} is ambiguous: ${matches.length} jobs start with it (${matches
        .slice(0, 3)
        .map((job) => job.id.slice(0, 12))
        .join(', ')}${matches.length > 3 ? ', …' : ''}); give more of the id`,
    );
  }

  close(): void {
    this.#client.close();
  }
}
