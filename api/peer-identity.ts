// Who is calling: the verified client certificate's subject CN is the identity, its OU the role.
import type { AuthContext } from '@grpc/grpc-js/build/src/auth-context.js';
import { JobError } from '../shared/errors.ts';

export const ROLES = ['admin', 'user', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

export interface PeerIdentity {
  /** The certificate's CN: the name jobs are owned by. */
  name: string;
  /** null when the certificate has no OU or one that is not a role. */
  role: Role | null;
}

function single(value: string | string[] | undefined): string | null {
  if (typeof value === 'string' && value.length > 0) return value;
  return null;
}

/**
 * The identity of a call's peer. TLS has already verified the certificate (the handshake fails
 * otherwise); a certificate without exactly one CN is refused here.
 */
export function peerIdentity(auth: AuthContext | null): PeerIdentity {
  const certificate = auth?.sslPeerCertificate;
  if (!certificate || !certificate.subject) {
    throw new JobError('permission-denied', 'a verified client certificate is required');
  }
  const name = single(certificate.subject.CN);
  if (name === null || !/^[^\p{Cc}]{1,128}$/u.test(name)) {
    throw new JobError(
      'permission-denied',
      'the client certificate must name exactly one CN (the identity)',
    );
  }
  const ou = single(certificate.subject.OU);
  const role = ROLES.find((known) => known === ou) ?? null;
  return { name, role };
}
