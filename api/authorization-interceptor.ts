// The one place that decides who may do what, before any handler runs: it authenticates the
// call (client certificate), checks the method against the caller's role, checks that a job the
// request names is one the caller may see (NOT_FOUND otherwise), scopes listings, and writes the
// call's audit line (who, role, method, job, outcome) when its status is sent.
import { ServerInterceptingCall, status } from '@grpc/grpc-js';
import type { ServerInterceptor } from '@grpc/grpc-js';
import type { PartialStatusObject } from '@grpc/grpc-js/build/src/call-interface.js';
import type { Logger } from 'pino';
import { JOB_ID } from '../shared/executor-protocol.ts';
import { JobError } from '../shared/errors.ts';
import { invalid } from '../shared/schema.ts';
import type { ExecutorClient } from './executor-client.ts';
import { deadlineMs } from './call-bounds.ts';
import { statusFor } from './grpc-status.ts';
import { listingOwner, maySeeJob, ruleFor } from './authorization-policy.ts';
import { peerIdentity } from './peer-identity.ts';
import type { PeerIdentity } from './peer-identity.ts';
import { RefusedRequest } from './service-definitions.ts';

export interface InterceptorParts {
  executor: ExecutorClient;
  logger: Logger;
  audit: Logger;
}

export function authorizationInterceptor(parts: InterceptorParts): ServerInterceptor {
  return (method, call) => {
    const audit: { who: string | null; role: string | null; method: string; job: string | null } = {
      who: null,
      role: null,
      method: method.path,
      job: null,
    };
    let identity: PeerIdentity | null = null;
    let refused = false;
    const gone = new AbortController();
    const intercepting: ServerInterceptingCall = new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            try {
              identity = peerIdentity(call.getAuthContext());
              audit.who = identity.name;
              audit.role = identity.role;
              ruleFor(identity, method.path);
            } catch (error) {
              refuse(error);
              return;
            }
            nextMetadata(metadata);
          },
          onCancel: () => gone.abort(),
          onReceiveMessage: (message: Record<string, unknown>, nextMessage) => {
            if (refused || identity === null) return;
            if (message instanceof RefusedRequest) {
              refuse(message.error);
              return;
            }
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
      sendStatus: (outcome: PartialStatusObject, next) => {
        parts.audit.info(
          { ...audit, outcome: status[outcome.code], details: outcome.details },
          'call',
        );
        next(outcome);
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
        const job = await parts.executor.getJob(id, {
          identity: caller.name,
          deadline: deadlineMs(call.getDeadline()),
          signal: gone.signal,
        });
        if (!maySeeJob(caller, job.owner)) throw new JobError('not-found', `job ${id} not found`);
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
