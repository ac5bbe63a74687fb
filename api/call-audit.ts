// The audit of one call, in two stages sharing a call id, as the Kubernetes API server writes
// its audit events: `received` when the call comes in (who, role, method), and `completed`
// exactly once with the outcome. A call its client cancelled, or whose deadline passed, is
// completed too; when a start or stop had already been sent to the executor, the completed line
// waits for the executor's answer and gives its result and job beside the client's outcome.
import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { JobError } from '../shared/errors.ts';
import { statusCodeFor } from './grpc-status.ts';

/** The audit of each call, found by its request message (the same object reaches the handler). */
const byRequest = new WeakMap<object, CallAudit>();

/** The audit of the call whose request this is (undefined for requests no interceptor saw). */
export function auditOf(request: object): CallAudit | undefined {
  return byRequest.get(request);
}

export class CallAudit {
  private readonly logger: Logger;
  private readonly id = randomUUID();
  private readonly method: string;
  private readonly deadline: number;
  private who: string | null = null;
  private role: string | null = null;
  job: string | null = null;
  /** The status the client was sent, if one was sent before it went away. */
  private sent: { code: status; details: string } | null = null;
  private gone = false;
  private held = 0;
  /** What held work (a start or stop sent to the executor) came to: a status name. */
  private result: string | null = null;
  private completed = false;

  constructor(logger: Logger, method: string, deadline: number) {
    this.logger = logger;
    this.method = method;
    this.deadline = deadline;
  }

  /** Writes the `received` line: the caller as its certificate names it (or not at all). */
  received(who: string | null, role: string | null): void {
    this.who = who;
    this.role = role;
    this.write('received', {});
  }

  /** Links the request message to this audit, for its handler (see auditOf). */
  attach(request: object): void {
    byRequest.set(request, this);
  }

  /** A status on its way to the client (from a handler, the interceptor or grpc-js itself). */
  statusSent(code: status, details: string): void {
    if (this.gone || this.sent) return;
    this.sent = { code, details };
    this.complete();
  }

  /** The client went away (cancelled, or its deadline passed) before any status was sent. */
  clientGone(): void {
    this.gone = true;
    this.complete();
  }

  /** Work that changes state: the completed line waits for it and reports what it came to. */
  hold<T>(work: Promise<T>): Promise<T> {
    this.held += 1;
    work
      .then(
        (value) => {
          this.result = 'OK';
          const id = (value as { id?: unknown } | null)?.id;
          if (typeof id === 'string') this.job ??= id;
        },
        (error: unknown) => {
          const jobId = error instanceof JobError ? error.details.jobId : undefined;
          if (typeof jobId === 'string') this.job ??= jobId;
          this.result = status[statusCodeFor(error)] ?? 'UNKNOWN';
        },
      )
      .finally(() => {
        this.held -= 1;
        this.complete();
      });
    return work;
  }

  private complete(): void {
    if (this.completed || this.held > 0 || (!this.sent && !this.gone)) return;
    this.completed = true;
    const late = Date.now() >= this.deadline;
    const { outcome, details } = this.sent
      ? { outcome: status[this.sent.code], details: this.sent.details }
      : late
        ? { outcome: 'DEADLINE_EXCEEDED', details: 'the deadline passed before the answer' }
        : { outcome: 'CANCELLED', details: 'the client went away' };
    // What a start or stop came to, when the client was told something else (or nothing).
    const result = this.result !== null && this.result !== outcome ? { result: this.result } : {};
    this.write('completed', { outcome: outcome ?? 'UNKNOWN', details, ...result });
  }

  private write(stage: 'received' | 'completed', fields: Record<string, string>): void {
    const { id, who, role, method, job } = this;
    this.logger.info({ stage, call: id, who, role, method, job, ...fields }, 'call');
  }
}
