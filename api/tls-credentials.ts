// Transport security for the gRPC server: TLS 1.3 only, a restricted list of TLS 1.3 suites, a
// client certificate required and verified against the configured CA (and CRL).
//
// grpc-js's ServerCredentials.createSsl cannot set minVersion or ciphers, so this small subclass
// passes Node's TLS options itself. It relies on grpc-js passing _getConstructorOptions() and
// _getSecureContextOptions() to http2.createSecureServer, which is why @grpc/grpc-js is pinned to
// an exact version and a test proves a TLS 1.2 client is refused.
import { readFileSync } from 'node:fs';
import type { SecureServerOptions } from 'node:http2';
import type { SecureContextOptions } from 'node:tls';
import { ServerCredentials } from '@grpc/grpc-js';
import type { ApiConfig } from './config.ts';

/** The two 256-bit TLS 1.3 suites; TLS_AES_128_GCM_SHA256 is left out on purpose. */
export const TLS13_SUITES = 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';
/** Key exchange groups offered. */
export const KEY_EXCHANGE_GROUPS = 'X25519:P-384:P-256';

const VERSION_AND_SUITES = {
  minVersion: 'TLSv1.3',
  maxVersion: 'TLSv1.3',
  ciphers: TLS13_SUITES,
  ecdhCurve: KEY_EXCHANGE_GROUPS,
} as const;

/** Reads the CA, certificate, key and CRL named in the config (as root, before the drop). */
export function readTlsMaterial(tls: ApiConfig['tls']): SecureContextOptions {
  const read = (what: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new Error(
        `tls.${what}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      );
    }
  };
  const material: SecureContextOptions = {
    ...VERSION_AND_SUITES,
    ca: read('caFile', tls.caFile),
    cert: read('certFile', tls.certFile),
    key: read('keyFile', tls.keyFile),
  };
  if (tls.crlFile !== null) material.crl = read('crlFile', tls.crlFile);
  return material;
}

export class MutualTls13Credentials extends ServerCredentials {
  constructor(material: SecureContextOptions) {
    const constructorOptions: SecureServerOptions = {
      ...VERSION_AND_SUITES,
      // Ask every client for a certificate and end the handshake when it has none or it does
      // not verify: no request is ever read from an unauthenticated peer.
      requestCert: true,
      rejectUnauthorized: true,
    };
    super(constructorOptions, material);
  }

  /** New CA, certificate, key or CRL for connections from now on (SIGHUP). */
  reload(material: SecureContextOptions): void {
    this.updateSecureContextOptions(material);
  }

  _equals(other: ServerCredentials): boolean {
    return other === this;
  }
}
