// The client side of the API's mutual TLS: reads the certificates a Connection names, checks what
// can be checked before connecting (readable, PEM, in date, key matching certificate), and makes
// grpc-js credentials that speak TLS 1.3 only and trust only the given CA.
//
// Server name: a server given by IP address is verified against the IP (its certificate names
// it: IP:127.0.0.1), but SNI carries "localhost", because Node refuses to send an IP as SNI
// (RFC 6066) and warns about it; --tls-name verifies (and sends) another name instead.
import { readFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { checkServerIdentity, createSecureContext } from 'node:tls';
import type { PeerCertificate, SecureContext } from 'node:tls';
import { credentials } from '@grpc/grpc-js';
import type { ChannelCredentials, ClientOptions } from '@grpc/grpc-js';
import { CliError } from './cli-errors.ts';
import type { Connection, Setting } from './connection.ts';
import { localTime } from './format.ts';

export interface ClientIdentity {
  /** The certificate's CN: who the server takes us for. */
  name: string;
  /** Its OU: admin, user or viewer. */
  role: string;
  validTo: Date;
}

export interface ClientTls {
  credentials: ChannelCredentials;
  options: Partial<ClientOptions>;
  identity: ClientIdentity;
  /** The same TLS settings, for a plain TLS connection (tls-probe.ts). */
  secureContext: SecureContext;
  serverName: string | undefined;
  checkServerIdentity: (name: string, peer: PeerCertificate) => Error | undefined;
}

const WHAT: Record<'cert' | 'key' | 'ca', string> = {
  cert: 'client certificate',
  key: 'client key',
  ca: 'CA certificate',
};

function readSetting(what: 'cert' | 'key' | 'ca', setting: Setting): Buffer {
  try {
    return readFileSync(setting.value);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : (code ?? String(error));
    const hint =
      code === 'EACCES' && setting.source.startsWith('the dev stack')
        ? "; the development stack's keys belong to root: sudo npx jobctl …"
        : '';
    throw new CliError(
      `cannot read the ${WHAT[what]} ${setting.value} (from ${setting.source}): ${reason}${hint}`,
    );
  }
}

function subjectField(subject: string, field: string): string {
  for (const line of subject.split('\n')) {
    if (line.startsWith(`${field}=`)) return line.slice(field.length + 1);
  }
  return '';
}

export function prepareClientTls(connection: Connection, now = new Date()): ClientTls {
  const certPem = readSetting('cert', connection.cert);
  const keyPem = readSetting('key', connection.key);
  const caPem = readSetting('ca', connection.ca);
  const parse = <T>(what: 'cert' | 'key' | 'ca', setting: Setting, make: () => T): T => {
    try {
      return make();
    } catch {
      const kind = what === 'key' ? 'PEM private key' : 'PEM certificate';
      throw new CliError(
        `the ${WHAT[what]} ${setting.value} (from ${setting.source}) is not a ${kind}`,
      );
    }
  };
  const cert = parse('cert', connection.cert, () => new X509Certificate(certPem));
  const key = parse('key', connection.key, () => createPrivateKey(keyPem));
  parse('ca', connection.ca, () => new X509Certificate(caPem));

  const identity: ClientIdentity = {
    name: subjectField(cert.subject, 'CN'),
    role: subjectField(cert.subject, 'OU'),
    validTo: new Date(cert.validTo),
  };
  const where = `${connection.cert.value} (from ${connection.cert.source})`;
  if (now > identity.validTo) {
    throw new CliError(
      `the client certificate ${where} expired on ${localTime(identity.validTo)}; ask for a new one`,
    );
  }
  const validFrom = new Date(cert.validFrom);
  if (now < validFrom) {
    throw new CliError(
      `the client certificate ${where} is not valid until ${localTime(validFrom)}; check this machine's clock`,
    );
  }
  if (!cert.checkPrivateKey(key)) {
    throw new CliError(
      `the client key ${connection.key.value} (from ${connection.key.source}) does not belong to the certificate ${where}`,
    );
  }

  const { address, tlsName } = connection;
  const verifyName = tlsName?.value ?? address.host;
  const secureContext = createSecureContext({
    ca: caPem,
    cert: certPem,
    key: keyPem,
    minVersion: 'TLSv1.3',
  });
  const options: Partial<ClientOptions> = {
    // Reconnect quickly when a dropped API comes back (logs -f, run): grpc-js waits up to 2 min.
    'grpc.initial_reconnect_backoff_ms': 200,
    'grpc.max_reconnect_backoff_ms': 2000,
    // grpc-js receives with HTTP/2's 64 KiB window unless told otherwise: output streams then
    // wait on a window update every 64 KiB. 4 MiB let a watcher go about twice as fast.
    'grpc-node.flow_control_window': 4 * 1024 * 1024,
  };
  const serverName = tlsName?.value ?? (address.isIp ? 'localhost' : undefined);
  if (serverName !== undefined) options['grpc.ssl_target_name_override'] = serverName;
  const verify = (_name: string, peer: PeerCertificate) => checkServerIdentity(verifyName, peer);
  return {
    credentials: credentials.createFromSecureContext(secureContext, {
      checkServerIdentity: verify,
    }),
    options,
    identity,
    secureContext,
    serverName,
    checkServerIdentity: verify,
  };
}
