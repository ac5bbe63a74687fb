// Who calls, read once per connection. Node parses the peer's certificate into a new object at
// every ask (a tenth of a millisecond, on every call), while one TLS 1.3 connection has one peer
// certificate for its whole life: there is no renegotiation. The connection is grpc-js's HTTP/2
// session, which its base call holds (not public API: where it is not found, each call is
// identified on its own, as before).
import type { ServerInterceptor } from '@grpc/grpc-js';
import type { AuthContext } from '@grpc/grpc-js/build/src/auth-context.js';
import { peerIdentity } from './peer-identity.ts';
import type { PeerIdentity } from './peer-identity.ts';

type InterceptedCall = Parameters<ServerInterceptor>[1];

export type Identified =
  { auth: AuthContext; identity: PeerIdentity } | { auth: null; error: unknown };

/** Each connection's caller; an entry goes with its session. Failures are not kept. */
const callers = new WeakMap<object, Identified>();

/** The HTTP/2 session a call came on, or null where grpc-js does not show it. */
export function sessionOf(call: InterceptedCall): object | null {
  const session = (call as { stream?: { session?: unknown } }).stream?.session;
  return typeof session === 'object' && session !== null ? session : null;
}

/**
 * Who calls, from the auth context, or why that cannot be known: no verified certificate, or one
 * without a usable CN, or a connection gone meanwhile.
 */
export function identify(call: InterceptedCall): Identified {
  const session = sessionOf(call);
  const known = session && callers.get(session);
  if (known) return known;
  try {
    const auth = call.getAuthContext();
    const identified = { auth, identity: peerIdentity(auth) };
    if (session) callers.set(session, identified);
    return identified;
  } catch (error) {
    return { auth: null, error };
  }
}
