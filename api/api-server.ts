// The gRPC server: mutual TLS 1.3, the authorization interceptor ahead of every handler, the job
// and health services, bounded request sizes.
import { Server } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { authorizationInterceptor } from './authorization-interceptor.ts';
import type { ApiConfig } from './config.ts';
import type { ExecutorClient } from './executor-client.ts';
import { HealthService } from './generated/grpc/health/v1/health.ts';
import { JobServiceService } from './generated/jobworker/v1/jobworker.ts';
import { HealthMonitor } from './health-service.ts';
import { jobService } from './job-service.ts';
import { StartQuotas } from './start-quotas.ts';
import type { MutualTls13Credentials } from './tls-credentials.ts';

export interface ApiServer {
  port: number;
  health: HealthMonitor;
  /** Stops accepting calls, ends streams, waits up to `graceMs` for calls in flight. */
  close(graceMs?: number): Promise<void>;
}

export interface ApiServerParts {
  config: Readonly<ApiConfig>;
  credentials: MutualTls13Credentials;
  executor: ExecutorClient;
  logger: Logger;
  audit: Logger;
}

export function createApiServer(parts: ApiServerParts): { server: Server; health: HealthMonitor } {
  const { config, executor, logger } = parts;
  const server = new Server({
    interceptors: [authorizationInterceptor({ executor, logger, audit: parts.audit })],
    'grpc.max_receive_message_length': config.maxRequestBytes,
    // Idle clients are not kept forever; live ones are pinged.
    'grpc.keepalive_time_ms': 60_000,
    'grpc.keepalive_timeout_ms': 20_000,
    'grpc.max_connection_idle_ms': 30 * 60_000,
  });
  const health = new HealthMonitor(executor, logger);
  server.addService(
    JobServiceService,
    jobService({
      executor,
      logger,
      quotas: new StartQuotas(executor, config.quotas),
      maxWatchers: config.maxWatchers,
    }),
  );
  server.addService(HealthService, health.service());
  return { server, health };
}

export async function bindApiServer(
  server: Server,
  health: HealthMonitor,
  parts: ApiServerParts,
): Promise<ApiServer> {
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(parts.config.listen, parts.credentials, (error, bound) =>
      error ? reject(error) : resolve(bound),
    );
  });
  await health.start();
  return {
    port,
    health,
    async close(graceMs = 5000) {
      health.stop();
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    },
  };
}
