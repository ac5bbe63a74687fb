// Who may do what: one table of methods and roles, and the ownership rules. Pure functions, used
// only by the authorization interceptor (authorization-interceptor.ts).
//
//   admin   everything, every job
//   user    starts jobs; gets, stops, watches and lists only jobs it owns
//   viewer  gets, watches and lists every job; never starts or stops
//
// A job that exists but is not the caller's to see answers NOT_FOUND, exactly as a job that does
// not exist: ids cannot be probed.
import { JobError } from '../shared/errors.ts';
import type { PeerIdentity, Role } from './peer-identity.ts';

interface MethodRule {
  /** Roles that may call it; 'any' = any verified certificate, with or without a role. */
  roles: readonly Role[] | 'any';
  /** The request names one job (field `id`) that the caller must be allowed to see. */
  namesJob: boolean;
  /** A listing, scoped to what the caller may see. */
  lists: boolean;
}

const EVERY_ROLE = ['admin', 'user', 'viewer'] as const;

export const METHOD_RULES: Readonly<Record<string, MethodRule>> = {
  '/jobworker.v1.JobService/StartJob': { roles: ['admin', 'user'], namesJob: false, lists: false },
  '/jobworker.v1.JobService/StopJob': { roles: ['admin', 'user'], namesJob: true, lists: false },
  '/jobworker.v1.JobService/GetJob': { roles: EVERY_ROLE, namesJob: true, lists: false },
  '/jobworker.v1.JobService/ListJobs': { roles: EVERY_ROLE, namesJob: false, lists: true },
  '/jobworker.v1.JobService/WatchJobOutput': { roles: EVERY_ROLE, namesJob: true, lists: false },
  // Health reveals only whether the service is up: any verified client may ask.
  '/grpc.health.v1.Health/Check': { roles: 'any', namesJob: false, lists: false },
  '/grpc.health.v1.Health/Watch': { roles: 'any', namesJob: false, lists: false },
};

/** The rule for a method; throws permission-denied when the caller's role may not call it. */
export function ruleFor(identity: PeerIdentity, method: string): MethodRule {
  const rule = METHOD_RULES[method];
  if (!rule) throw new JobError('permission-denied', `${method} is not an allowed method`);
  if (rule.roles === 'any') return rule;
  if (identity.role === null) {
    throw new JobError(
      'permission-denied',
      `the client certificate of ${identity.name} has no role (OU must be one of admin, user, viewer)`,
    );
  }
  if (!rule.roles.includes(identity.role)) {
    throw new JobError(
      'permission-denied',
      `role ${identity.role} may not call ${method.slice(method.lastIndexOf('/') + 1)}`,
    );
  }
  return rule;
}

/** Admins and viewers may see every job: naming one needs no look at its owner. */
export function seesEveryJob(identity: PeerIdentity): boolean {
  return identity.role === 'admin' || identity.role === 'viewer';
}

export function maySeeJob(identity: PeerIdentity, owner: string): boolean {
  return seesEveryJob(identity) || owner === identity.name;
}

/** The owner filter a listing runs with: users see only their own jobs. */
export function listingOwner(identity: PeerIdentity, requested: string): string {
  if (identity.role !== 'user') return requested;
  if (requested !== '' && requested !== identity.name) {
    throw new JobError('permission-denied', 'users may list only their own jobs');
  }
  return identity.name;
}
