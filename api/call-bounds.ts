// The bounds of an executor call made for a client's call: the client's identity, its deadline,
// and a signal that aborts when the client goes away (see executor-client.ts).
import type { ServerSurfaceCall } from '@grpc/grpc-js/build/src/server-call.js';
import type { Deadline } from '@grpc/grpc-js';
import type { CallBounds } from './executor-client.ts';
import { GONE } from '../shared/errors.ts';
import { peerIdentity } from './peer-identity.ts';

/** grpc-js's deadline as epoch ms (Infinity when the client set none). */
export function deadlineMs(deadline: Deadline): number {
  return deadline instanceof Date ? deadline.getTime() : deadline;
}

/** For a handler's call: aborted on the call's 'cancelled' event. */
export function callBounds(call: ServerSurfaceCall): CallBounds {
  const gone = new AbortController();
  if (call.cancelled) gone.abort(GONE);
  else call.once('cancelled', () => gone.abort(GONE));
  return {
    identity: peerIdentity(call.getAuthContext()).name,
    deadline: deadlineMs(call.getDeadline()),
    signal: gone.signal,
  };
}
