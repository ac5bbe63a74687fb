// A real stack for the API tests: a test PKI, the executor process, the API process (which drops
// to nobody), and typed gRPC clients for each identity.
import { execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmod, chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { credentials, Metadata, status } from '@grpc/grpc-js';
import type { Client, ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import { HealthClient } from '../../api/generated/grpc/health/v1/health.ts';
import type {
  HealthCheckResponse,
  HealthCheckResponse_ServingStatus as Serving,
} from '../../api/generated/grpc/health/v1/health.ts';
import { JobServiceClient } from '../../api/generated/jobworker/v1/jobworker.ts';
import type {
  Job,
  OutputChunk,
  StartJobRequest,
} from '../../api/generated/jobworker/v1/jobworker.ts';
import { TEST_PREFIX, sleep } from './executor-kit.ts';
import { spawnService, startExecutorProcess, TEST_SOCKET_GID } from './executor-process-kit.ts';
import type { ExecutorProcess } from './executor-process-kit.ts';

const PKI = 'scripts/pki.sh';

/** Everyone the tests talk as: name → role (OU). */
export const IDENTITIES = {
  ada: 'admin',
  alice: 'user',
  bob: 'user',
  vera: 'viewer',
  nora: 'guest', // a certificate whose OU is not a role
} as const;
export type Who = keyof typeof IDENTITIES;

export interface Pki {
  dir: string;
  ca: string;
  cert(name: string): { cert: string; key: string };
}

export async function makePki(): Promise<Pki> {
  const dir = await mkdtemp(`/var/tmp/${TEST_PREFIX}pki-`);
  const run = (...args: string[]) =>
    execFileSync('bash', [PKI, ...args], {
      encoding: 'utf8',
      env: { ...process.env, JOBWORKER_PKI_ANY_ROLE: '1' },
    });
  run('ca', dir);
  run('server', dir, 'server', 'DNS:localhost', 'IP:127.0.0.1');
  for (const [name, role] of Object.entries(IDENTITIES)) run('client', dir, name, role);
  return {
    dir,
    ca: join(dir, 'ca.crt'),
    cert: (name) => ({
      cert: join(dir, 'clients', `${name}.crt`),
      key: join(dir, 'clients', `${name}.key`),
    }),
  };
}

export interface Stack {
  pki: Pki;
  /** The executor process now running (replaced by restartExecutor). */
  readonly executor: ExecutorProcess;
  api: ChildProcess;
  port: number;
  apiLog(): string;
  client(who: Who | { cert: string; key: string; ca?: string }): Promise<JobServiceClient>;
  stopApi(): Promise<void>;
  restartApi(): Promise<void>;
  /** Starts the executor again (after executor.stop()), same state and socket. */
  restartExecutor(): Promise<void>;
  close(): Promise<void>;
}

export interface StackOptions {
  /**
   * Serve with the PKI's CRL, and make the CA, server certificate, key and CRL readable by the
   * API's group (as scripts/install.sh does), so that a SIGHUP can reload them after the drop.
   */
  crl?: boolean;
}

export async function startStack(
  apiConfig: Record<string, unknown> = {},
  executorConfig: Record<string, unknown> = {},
  options: StackOptions = {},
): Promise<Stack> {
  const pki = await makePki();
  if (options.crl) {
    for (const [path, mode] of [
      [pki.dir, 0o750],
      [join(pki.dir, 'private'), 0o750],
      [join(pki.dir, 'private', 'server.key'), 0o640],
    ] as const) {
      await chown(path, 0, TEST_SOCKET_GID);
      await chmod(path, mode);
    }
  }
  let executor = await startExecutorProcess(executorConfig).catch(async (error: unknown) => {
    await rm(pki.dir, { recursive: true, force: true });
    throw error;
  });
  const configPath = join(executor.stateDir, 'api.json');
  await writeFile(
    configPath,
    JSON.stringify({
      listen: '127.0.0.1:0',
      tls: {
        caFile: pki.ca,
        certFile: join(pki.dir, 'server.crt'),
        keyFile: join(pki.dir, 'private', 'server.key'),
        crlFile: options.crl ? join(pki.dir, 'crl.pem') : null,
      },
      executorSocket: executor.socketPath,
      user: 'nobody',
      socketGroup: String(TEST_SOCKET_GID),
      logLevel: 'info',
      ...apiConfig,
    }),
  );
  let api!: ChildProcess;
  let log = () => '';
  let port = 0;
  const launch = async (listen?: number) => {
    if (listen !== undefined) {
      const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
      await writeFile(configPath, JSON.stringify({ ...config, listen: `127.0.0.1:${listen}` }));
    }
    ({ child: api, log } = spawnService('api/main.ts', configPath));
    const deadline = Date.now() + 15_000;
    for (;;) {
      const text = log();
      const match = /"msg":"api listening"/.test(text)
        ? /"port":(\d+)/.exec(text.slice(text.indexOf('"api listening"') - 200))
        : null;
      if (match) {
        port = Number(match[1]);
        return;
      }
      if (api.exitCode !== null || Date.now() > deadline)
        throw new Error(`api did not start:\n${text}`);
      await sleep(50);
    }
  };
  try {
    await launch();
  } catch (error) {
    api.kill('SIGKILL');
    await executor.remove();
    await rm(pki.dir, { recursive: true, force: true });
    throw error;
  }
  const clients: JobServiceClient[] = [];
  const stopApi = async () => {
    for (const client of clients.splice(0)) client.close();
    if (api.exitCode === null && api.signalCode === null) {
      const exited = new Promise((resolve) => api.once('exit', resolve));
      api.kill('SIGTERM');
      await exited;
    }
  };
  return {
    pki,
    get executor() {
      return executor;
    },
    get api() {
      return api;
    },
    get port() {
      return port;
    },
    apiLog: () => log(),
    async client(who) {
      const files = typeof who === 'string' ? pki.cert(who) : who;
      const ca = typeof who === 'string' ? pki.ca : (who.ca ?? pki.ca);
      const client = new JobServiceClient(
        `127.0.0.1:${port}`,
        credentials.createSsl(
          await readFile(ca),
          await readFile(files.key),
          await readFile(files.cert),
        ),
        // The server certificate names localhost; Node warns about an IP as the TLS name.
        {
          'grpc.ssl_target_name_override': 'localhost',
          'grpc-node.flow_control_window': 4 * 1024 * 1024,
        },
      );
      clients.push(client);
      return client;
    },
    stopApi,
    restartApi: async () => {
      await stopApi();
      await launch(port);
    },
    restartExecutor: async () => {
      await executor.stop();
      executor = await executor.restart();
    },
    async close() {
      await stopApi();
      await executor.remove();
      await rm(pki.dir, { recursive: true, force: true });
    },
  };
}

/** A unary call as a promise; rejects with the ServiceError (code, details, metadata). */
export function unary<Request, Response>(
  client: JobServiceClient,
  method: 'startJob' | 'stopJob' | 'getJob' | 'listJobs',
  request: Request,
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const invoke = client[method].bind(client) as unknown as (
      request: Request,
      metadata: Metadata,
      callback: (error: ServiceError | null, response: Response) => void,
    ) => void;
    invoke(request, new Metadata(), (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

/**
 * A unary call with hand-made request bytes (the method by its path), for what no encoder would
 * write; resolves with the response's bytes.
 */
export function rawUnary(client: Client, path: string, request: Uint8Array): Promise<Buffer> {
  const identity = (bytes: Buffer) => bytes;
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      path,
      identity,
      identity,
      Buffer.from(request),
      (error: ServiceError | null, response?: Buffer) =>
        error ? reject(error) : resolve(response ?? Buffer.alloc(0)),
    );
  });
}

export const start = (client: JobServiceClient, request: Partial<StartJobRequest>) =>
  unary<StartJobRequest, Job>(client, 'startJob', {
    argv: [],
    env: {},
    workingDir: '',
    ...request,
  });

/** Everything a watch delivers, and how it ended. */
export async function watch(
  client: JobServiceClient,
  id: string,
  offset = 0,
): Promise<{ chunks: OutputChunk[]; text: string }> {
  const stream: ClientReadableStream<OutputChunk> = client.watchJobOutput({ id, offset });
  const chunks: OutputChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk as OutputChunk);
  return { chunks, text: Buffer.concat(chunks.map((chunk) => chunk.data)).toString() };
}

/** Reads a job's whole output and keeps only its length (for large outputs). */
export async function drain(client: JobServiceClient, id: string): Promise<number> {
  let bytes = 0;
  for await (const chunk of client.watchJobOutput({ id, offset: 0 }))
    bytes += (chunk as OutputChunk).data.length;
  return bytes;
}

/** The API's audit lines so far, parsed. */
export function auditLines(stack: Stack): Record<string, unknown>[] {
  return stack
    .apiLog()
    .split('\n')
    .filter((line) => line.includes('"audit":true'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** How a call ended, as `CODE: details` (or 'OK'). */
export async function outcomeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'OK';
  } catch (error) {
    return `${status[(error as ServiceError).code]}: ${(error as ServiceError).details}`;
  }
}

/** The gRPC status code a call failed with (or 'OK'). */
export async function codeOf(promise: Promise<unknown>): Promise<status> {
  try {
    await promise;
    return status.OK;
  } catch (error) {
    return (error as ServiceError).code;
  }
}

/** The health service's answer for the job service, asked as vera. */
export async function healthOf(stack: Stack): Promise<Serving> {
  const files = stack.pki.cert('vera');
  const client = new HealthClient(
    `127.0.0.1:${stack.port}`,
    credentials.createSsl(
      await readFile(stack.pki.ca),
      await readFile(files.key),
      await readFile(files.cert),
    ),
  );
  try {
    return await new Promise<Serving>((resolve, reject) =>
      client.check(
        { service: 'jobworker.v1.JobService' },
        (error: ServiceError | null, response: HealthCheckResponse) =>
          error ? reject(error) : resolve(response.status),
      ),
    );
  } finally {
    client.close();
  }
}

/** Polls `probe` until it returns `wanted`; throws after `timeoutMs`. */
export async function until<T>(
  what: string,
  probe: () => Promise<T>,
  wanted: T,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await probe();
    if (last === wanted) return;
    await sleep(100);
  }
  throw new Error(`${what}: still ${String(last)} after ${timeoutMs} ms`);
}
