// Fair sharing of the executor between identities, in the manner of the Kubernetes API server's
// fair queuing: at most `capacity` calls in flight in all, at most `perIdentity` of them one
// identity's; beyond that a call waits in its identity's own queue (bounded), and each place
// that frees up goes to the next identity in turn. One identity's burst waits behind itself;
// another identity's calls go straight through.
import { JobError } from '../shared/errors.ts';
import { notInTime } from './executor-connection.ts';

export interface AdmissionLimits {
  /** Calls in flight to the executor, in all. */
  capacity: number;
  /** ...of one identity. */
  perIdentity: number;
  /** Calls of one identity waiting for a place; past it, RESOURCE_EXHAUSTED. */
  queuedPerIdentity: number;
  /** Calls waiting, in all. */
  queuedTotal: number;
}

interface Waiter {
  grant: (release: () => void) => void;
  refuse: (error: JobError) => void;
}

interface Flow {
  inFlight: number;
  waiting: Waiter[];
}

export class FairAdmission {
  private readonly limits: AdmissionLimits;
  private readonly flows = new Map<string, Flow>();
  /** Identities with waiting calls, in the order their turns come. */
  private turns: string[] = [];
  private inFlight = 0;
  private queued = 0;

  constructor(limits: AdmissionLimits) {
    this.limits = limits;
  }

  /**
   * A place for one call of `identity`; resolves with the function that gives it back (once the
   * call is over for the executor too). Waits, if it must, until `deadline` or `signal`.
   */
  acquire(identity: string, deadline: number, signal?: AbortSignal): Promise<() => void> {
    const flow = this.flow(identity);
    if (flow.waiting.length === 0 && this.mayStart(flow))
      return Promise.resolve(this.start(identity, flow));
    if (flow.waiting.length >= this.limits.queuedPerIdentity) {
      return Promise.reject(
        new JobError(
          'resource-exhausted',
          `too many calls of ${identity} are waiting for the job executor; try again shortly`,
        ),
      );
    }
    if (this.queued >= this.limits.queuedTotal) {
      return Promise.reject(
        new JobError('resource-exhausted', 'the server is busy; try again shortly'),
      );
    }
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const leave = (error: JobError) => {
        const index = flow.waiting.indexOf(waiter);
        if (index < 0) return;
        flow.waiting.splice(index, 1);
        this.queued -= 1;
        if (flow.waiting.length === 0) this.turns = this.turns.filter((turn) => turn !== identity);
        waiter.refuse(error);
        this.forget(identity, flow);
      };
      const onAbort = () => leave(new JobError('cancelled', 'the caller went away'));
      const settle = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = {
        grant: (release) => {
          settle();
          resolve(release);
        },
        refuse: (error) => {
          settle();
          reject(error);
        },
      };
      flow.waiting.push(waiter);
      this.queued += 1;
      if (flow.waiting.length === 1) this.turns.push(identity);
      if (Number.isFinite(deadline))
        timer = setTimeout(() => leave(notInTime()), deadline - Date.now());
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Every waiting call fails with `error` (the executor is not answering). */
  refuseWaiting(error: JobError): void {
    for (const [identity, flow] of this.flows) {
      for (const waiter of flow.waiting.splice(0)) {
        this.queued -= 1;
        waiter.refuse(error);
      }
      this.forget(identity, flow);
    }
    this.turns = [];
  }

  private flow(identity: string): Flow {
    let flow = this.flows.get(identity);
    if (!flow) {
      flow = { inFlight: 0, waiting: [] };
      this.flows.set(identity, flow);
    }
    return flow;
  }

  private mayStart(flow: Flow): boolean {
    return this.inFlight < this.limits.capacity && flow.inFlight < this.limits.perIdentity;
  }

  private start(identity: string, flow: Flow): () => void {
    this.inFlight += 1;
    flow.inFlight += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight -= 1;
      flow.inFlight -= 1;
      this.forget(identity, flow);
      this.dispatch();
    };
  }

  /** Gives free places to waiting calls, one identity after another. */
  private dispatch(): void {
    let passed = 0;
    while (this.inFlight < this.limits.capacity && passed < this.turns.length) {
      const identity = this.turns.shift() as string;
      const flow = this.flows.get(identity);
      const waiter = flow?.waiting[0];
      if (!flow || !waiter) continue;
      if (!this.mayStart(flow)) {
        // At its own limit: its turn waits until one of its calls ends.
        this.turns.push(identity);
        passed += 1;
        continue;
      }
      flow.waiting.shift();
      this.queued -= 1;
      if (flow.waiting.length > 0) this.turns.push(identity);
      passed = 0;
      waiter.grant(this.start(identity, flow));
    }
  }

  private forget(identity: string, flow: Flow): void {
    if (flow.inFlight === 0 && flow.waiting.length === 0) {
      this.flows.delete(identity);
      this.turns = this.turns.filter((turn) => turn !== identity);
    }
  }
}
