// Every error jobctl can meet, as one line for a person that says what to do about it: a wrong
// CA, an expired certificate, a server that is down, a permission the role lacks. The raw error
// goes to `detail`, shown only with --verbose.
import { status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { CliError } from './cli-errors.ts';
import type { ClientIdentity } from './client-tls.ts';
import type { Connection } from './connection.ts';
import { isServiceError } from './job-api.ts';
import { flagForField } from './limit-flags.ts';

export interface Failure {
  message: string;
  /** undefined: the command's own failure code. */
  exitCode: number | undefined;
  detail: string | undefined;
}

export interface FailureContext {
  connection?: Connection | undefined;
  identity?: ClientIdentity | undefined;
}

function codeName(code: number): string {
  return (status as unknown as Record<number, string | undefined>)[code] ?? String(code);
}

/** What the TLS layer said went wrong with the server's certificate (checked by us). */
const SERVER_CERT_PROBLEMS: [RegExp, string][] = [
  [
    /self[- ]signed certificate|unable to get local issuer certificate|unable to verify the first certificate|certificate signature failure/i,
    'not signed by the CA we trust',
  ],
  [/certificate has expired/i, 'expired'],
  [/certificate is not yet valid/i, 'not valid yet'],
];

/** TLS alerts the server sends when it refuses our client certificate. */
const CLIENT_CERT_ALERTS: [RegExp, string][] = [
  [/alert unknown ca|alert number 48/i, 'it does not trust the CA that issued it'],
  [/alert certificate expired|alert number 45/i, 'it has expired'],
  [/alert certificate revoked|alert number 44/i, 'it has been revoked'],
  [/alert certificate required|alert number 116/i, 'none was sent'],
  [
    /alert bad certificate|alert number 42|alert unsupported certificate|alert number 43/i,
    'it is not a valid client certificate',
  ],
  [/alert decrypt error|alert number 51/i, 'its signature did not verify'],
];

function connectionFailure(error: ServiceError, context: FailureContext): string | undefined {
  const { connection, identity } = context;
  const text = error.details;
  const target = connection ? connection.address.target : 'the server';
  const server = connection ? `${target} (from ${connection.server.source})` : target;
  const ca = connection ? `${connection.ca.value} (from ${connection.ca.source})` : 'the CA';
  const cert = connection
    ? `${connection.cert.value}${identity ? `, CN ${identity.name}` : ''}`
    : '';

  if (/ECONNREFUSED/.test(text)) {
    return `cannot connect to the API at ${server}: connection refused; is it running? ('sudo npm start' runs a development stack)`;
  }
  if (/ENOTFOUND|EAI_AGAIN|Name resolution failed/i.test(text)) {
    return `cannot find the server ${server}: no such host name`;
  }
  if (/ETIMEDOUT|EHOSTUNREACH|ENETUNREACH/.test(text)) {
    return `cannot reach the API at ${server}: ${/E[A-Z]+/.exec(text)?.[0] === 'ETIMEDOUT' ? 'timed out' : 'no route to it'}`;
  }
  for (const [pattern, problem] of SERVER_CERT_PROBLEMS) {
    if (!pattern.test(text)) continue;
    if (problem === 'not signed by the CA we trust') {
      return `the server's certificate at ${target} is not signed by the CA ${ca}: wrong CA? give the one that issued the server's certificate with --ca`;
    }
    return `the server's certificate at ${target} has ${problem === 'expired' ? 'expired' : 'a start date in the future'}; the server needs a new one (or check this machine's clock)`;
  }
  if (/altnames|ERR_TLS_CERT_ALTNAME_INVALID|does not match certificate/i.test(text)) {
    const name = connection?.tlsName?.value ?? connection?.address.host ?? 'the server';
    return `the server's certificate at ${target} is not issued for ${name}; give the name it was issued for with --tls-name`;
  }
  for (const [pattern, reason] of CLIENT_CERT_ALERTS) {
    if (pattern.test(text)) {
      return `the server refused the client certificate ${cert}: ${reason}; check --cert and --key (or the context)`;
    }
  }
  if (
    /wrong version number|protocol version|no protocols available|unsupported protocol/i.test(text)
  ) {
    return `cannot speak TLS 1.3 with ${server}: is it a jobworker API?`;
  }
  if (
    /No connection established|failed to connect|Connection dropped|ECONNRESET|socket hang up/i.test(
      text,
    )
  ) {
    return `lost the connection to the API at ${server}; is it running?`;
  }
  return undefined;
}

function serviceFailure(error: ServiceError, context: FailureContext): string {
  const details = error.details || codeName(error.code);
  switch (error.code) {
    case status.UNAVAILABLE:
      return connectionFailure(error, context) ?? `the service is unavailable: ${details}`;
    case status.DEADLINE_EXCEEDED:
      return `no answer from the API at ${context.connection?.address.target ?? 'the server'} in time: is it reachable?`;
    case status.PERMISSION_DENIED: {
      const who = context.identity
        ? ` (you are ${context.identity.name}, role ${context.identity.role || 'none'})`
        : '';
      return `permission denied: ${details}${who}`;
    }
    case status.UNAUTHENTICATED:
      return `the server did not accept the client certificate: ${details}`;
    case status.NOT_FOUND:
      return details;
    case status.INVALID_ARGUMENT: {
      const colon = details.indexOf(': ');
      const flag = colon < 0 ? undefined : flagForField(details.slice(0, colon));
      return flag
        ? `the server refused ${flag}: ${details.slice(colon + 2)}`
        : `the server refused the request: ${details}`;
    }
    case status.RESOURCE_EXHAUSTED:
      return `the server is at a limit: ${details}`;
    case status.FAILED_PRECONDITION:
      return details;
    case status.OK:
    case status.CANCELLED:
    case status.UNKNOWN:
    case status.ALREADY_EXISTS:
    case status.ABORTED:
    case status.OUT_OF_RANGE:
    case status.UNIMPLEMENTED:
    case status.INTERNAL:
    case status.DATA_LOSS:
      return connectionFailure(error, context) ?? `the server failed: ${details}`;
  }
}

export function describeFailure(error: unknown, context: FailureContext = {}): Failure {
  if (error instanceof CliError) {
    return { message: error.message, exitCode: error.exitCode, detail: error.detail };
  }
  if (isServiceError(error)) {
    return {
      message: serviceFailure(error, context),
      exitCode: undefined,
      detail: `gRPC ${codeName(error.code)}: ${error.details}`,
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  return {
    message: `unexpected error: ${message}`,
    exitCode: undefined,
    detail: error instanceof Error ? error.stack : undefined,
  };
}
