// What every command works with: the connection (resolved, and the API client made, only when a
// command first needs it, so a bad flag never reaches the network), jobctl's own messages on
// stderr, and output written with back-pressure.
import type { Writable } from 'node:stream';
import { status } from '@grpc/grpc-js';
import { CliError } from './cli-errors.ts';
import { prepareClientTls } from './client-tls.ts';
import type { ClientIdentity, ClientTls } from './client-tls.ts';
import type { FailureContext } from './failures.ts';
import { isServiceError } from './job-api.ts';
import { probeTls } from './tls-probe.ts';
import { resolveConnection } from './connection.ts';
import type { Connection, ConnectionFlags } from './connection.ts';
import { JobApi } from './job-api.ts';
import { writeTo } from './write-to.ts';

export interface SessionOptions {
  flags: ConnectionFlags;
  env: NodeJS.ProcessEnv;
  verbose: boolean;
  stdout: Writable;
  stderr: Writable;
}

export class Session {
  readonly options: SessionOptions;
  connection: Connection | undefined;
  identity: ClientIdentity | undefined;
  #tls: ClientTls | undefined;
  #api: JobApi | undefined;

  constructor(options: SessionOptions) {
    this.options = options;
  }

  get verbose(): boolean {
    return this.options.verbose;
  }

  api(): JobApi {
    if (this.#api) return this.#api;
    this.connection = resolveConnection({ flags: this.options.flags, env: this.options.env });
    const tls = prepareClientTls(this.connection);
    this.#tls = tls;
    this.identity = tls.identity;
    if (this.verbose) {
      const { server, cert, ca, tlsName } = this.connection;
      this.note(`server ${this.connection.address.target} (from ${server.source})`);
      this.note(
        `as ${tls.identity.name}, role ${tls.identity.role || 'none'}: ${cert.value} (from ${cert.source})`,
      );
      this.note(
        `trusting the CA ${ca.value} (from ${ca.source})${tlsName ? `, server name ${tlsName.value} (from ${tlsName.source})` : ''}`,
      );
    }
    this.#api = new JobApi(this.connection.address.target, tls);
    return this.#api;
  }

  /**
   * A connection failure grpc-js could not explain, explained when possible: a server that
   * closes the connection right after the TLS handshake refused our client certificate.
   */
  async explain(error: unknown): Promise<unknown> {
    const connection = this.connection;
    const tls = this.#tls;
    if (!connection || !tls || !isServiceError(error) || error.code !== status.UNAVAILABLE)
      return error;
    if (!/Failed to connect|Connection dropped|ECONNRESET|socket hang up/i.test(error.details))
      return error;
    if ((await probeTls(connection.address, tls)) !== 'closed-after-handshake') return error;
    return new CliError(
      `the API at ${connection.address.target} did not accept the client certificate ${connection.cert.value} ` +
        `(CN ${tls.identity.name}, from ${connection.cert.source}): it closed the connection after the TLS handshake; ` +
        `was the certificate issued by the CA the server trusts, and not revoked?`,
      { detail: `gRPC UNAVAILABLE: ${error.details}` },
    );
  }

  failureContext(): FailureContext {
    return { connection: this.connection, identity: this.identity };
  }

  /** One line of jobctl's own on stderr. */
  note(message: string): void {
    this.options.stderr.write(`jobctl: ${message}\n`);
  }

  out(data: Uint8Array | string): Promise<void> {
    return writeTo(this.options.stdout, data);
  }

  err(data: Uint8Array | string): Promise<void> {
    return writeTo(this.options.stderr, data);
  }

  close(): void {
    this.#api?.close();
  }
}
