// The one place that decides who may do what, before any handler runs: it authenticates the
// call (client certificate), checks the method against the caller's role, checks that a job the
// request names is one the caller may see (NOT_FOUND otherwise), scopes listings, and audits the
// call (call-audit.ts): when it comes in, and its outcome, whatever ends it.
import { ServerInterceptingCall } from '@grpc/grpc-js';
import type { ServerInterceptor } from '@grpc/grpc-js';
import type { AuthContext } from '@grpc/grpc-js/build/src/auth-context.js';
import type { Logger } from 'pino';
import { JOB_ID } from '../shared/executor-protocol.ts';
import { GONE, JobError } from '../shared/errors.ts';
import { invalid } from '../shared/schema.ts';
import type { ExecutorClient } from './executor-client.ts';
import { CallAudit } from './call-audit.ts';
import { identify } from './caller-identity.ts';
import { deadlineMs } from './call-bounds.ts';
import { statusFor } from './grpc-status.ts';
import { listingOwner, maySeeJob, ruleFor, seesEveryJob } from './authorization-policy.ts';
import type { PeerIdentity } from './peer-identity.ts';
import { RefusedRequest } from './service-definitions.ts';
import { sendWatchMessagesFramed } from './watch-framing.ts';

export interface InterceptorParts {
  executor: ExecutorClient;
  logger: Logger;
  audit: Logger;
}

/**
 * The call as handlers see it, its auth context the one read at interception (caller-identity.ts):
 * the call's bounds and the watcher limit ask for it too.
 */
class AuthenticatedCall extends ServerInterceptingCall {
  readonly #auth: AuthContext | null;

  constructor(
    auth: AuthContext | null,
    ...args: ConstructorParameters<typeof ServerInterceptingCall>
  ) {
    super(...args);
    this.#auth = auth;
  }

  override getAuthContext(): AuthContext {
    return this.#auth ?? super.getAuthContext();
  }
}

export function authorizationInterceptor(parts: InterceptorParts): ServerInterceptor {
  return (method, call) => {
    // Here, where a throw would escape grpc-js; a failure refuses the call below.
    const caller = identify(call);
    const deadline = deadlineMs(call.getDeadline());
    const audit = new CallAudit(parts.audit, method.path, deadline);
    // This is grpc-js's own call: a watch's messages leave it framed already (watch-framing.ts).
    sendWatchMessagesFramed(method.path, call);
    // grpc-js sends some statuses itself, straight from the call (its deadline timer, a message
    // above the size bound), past the interceptors: observe every status where they all pass.
    const sendStatus = call.sendStatus.bind(call);
    let answered = false;
    call.sendStatus = (outcome) => {
      answered = true;
      audit.statusSent(outcome.code, outcome.details);
      sendStatus(outcome);
    };
    let identity: PeerIdentity | null = null;
    let refused = false;
    // Aborts an owner lookup under way when the client goes away. Made only for a call that looks
    // one up: an AbortSignal and its abort cost more than the rest of a short call's interception.
    let gone: AbortController | null = null;
    let cancelled = false;
    const goneSignal = () => {
      gone ??= new AbortController();
      if (cancelled) gone.abort(GONE);
      return gone.signal;
    };
    const intercepting: ServerInterceptingCall = new AuthenticatedCall(caller.auth, call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            if (caller.auth === null) {
              audit.received(null, null);
              refuse(caller.error);
              return;
            }
            identity = caller.identity;
            audit.received(identity.name, identity.role);
            try {
              ruleFor(identity, method.path);
            } catch (error) {
              refuse(error);
              return;
            }
            nextMetadata(metadata);
          },
          onCancel: () => {
            // grpc-js reports every call as cancelled once its status is sent, too.
            if (answered) return;
            cancelled = true;
            gone?.abort(GONE);
            audit.clientGone();
          },
          onReceiveMessage: (message: Record<string, unknown>, nextMessage) => {
            if (refused || identity === null) return;
            if (message instanceof RefusedRequest) {
              refuse(message.error);
              return;
            }
            audit.attach(message);
            checkRequest(identity, message).then(
              () => nextMessage(message),
              (error: unknown) => refuse(error),
            );
          },
        }),
      sendMessage: (message: unknown, next) => {
        // StartJob's answer names the new job.
        const id = (message as { id?: unknown } | null)?.id;
        if (audit.job === null && typeof id === 'string') audit.job = id;
        next(message);
      },
    });

    function refuse(error: unknown): void {
      refused = true;
      intercepting.sendStatus(statusFor(error, parts.logger));
    }

    async function checkRequest(
      caller: PeerIdentity,
      message: Record<string, unknown>,
    ): Promise<void> {
      const rule = ruleFor(caller, method.path);
      if (rule.namesJob) {
        const id = message.id;
        if (typeof id !== 'string' || !JOB_ID.test(id))
          throw invalid('id', 'must be a job id (32 lowercase hex characters)');
        audit.job = id;
        // Admins and viewers may name any job: no trip to the executor for its owner first (one
        // that does not exist is not-found from the executor's answer to the call itself).
        if (!seesEveryJob(caller)) {
          const owner = await parts.executor.jobOwner(id, {
            identity: caller.name,
            deadline,
            signal: goneSignal(),
          });
          if (!maySeeJob(caller, owner)) throw new JobError('not-found', `job ${id} not found`);
        }
      }
      if (rule.lists)
        message.owner = listingOwner(
          caller,
          typeof message.owner === 'string' ? message.owner : '',
        );
    }

    return intercepting;
  };
}
