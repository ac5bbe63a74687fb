// The gRPC server: mutual TLS 1.3, the authorization interceptor ahead of every handler, the job
// and health services, bounded request sizes.
import { Server } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { authorizationInterceptor } from './authorization-interceptor.ts';
import type { ApiConfig } from './config.ts';
import type { ExecutorClient } from './executor-client.ts';
import { HealthMonitor } from './health-service.ts';
import { jobService } from './job-service.ts';
import { OutputFanout } from './output-fanout.ts';
import type { JobService } from './job-service.ts';
import { HEALTH_SERVICE, JOB_SERVICE } from './service-definitions.ts';
import type { MutualTls13Credentials } from './tls-credentials.ts';
import { WatcherSlots } from './watcher-slots.ts';

export interface ApiServerParts {
  config: Readonly<ApiConfig>;
  credentials: MutualTls13Credentials;
  executor: ExecutorClient;
  logger: Logger;
  audit: Logger;
}

export class ApiServer {
  readonly health: HealthMonitor;
  private readonly parts: ApiServerParts;
  private readonly server: Server;
  private readonly jobs: JobService;

  constructor(parts: ApiServerParts) {
    const { config, executor, logger } = parts;
    this.parts = parts;
    this.server = new Server({
      interceptors: [authorizationInterceptor({ executor, logger, audit: parts.audit })],
      'grpc.max_receive_message_length': config.maxRequestBytes,
      // Idle clients are not kept forever; live ones are pinged.
      'grpc.keepalive_time_ms': 60_000,
      'grpc.keepalive_timeout_ms': 20_000,
      'grpc.max_connection_idle_ms': 30 * 60_000,
    });
    this.health = new HealthMonitor(executor, logger);
    this.jobs = jobService({
      executor,
      logger,
      quota: {
        running: config.quotas.maxRunningJobs,
        runningPerOwner: config.quotas.maxRunningJobsPerIdentity,
      },
      watchers: new WatcherSlots(config.maxWatchers, config.maxWatchersPerIdentity),
      fanout: new OutputFanout(executor),
    });
    this.server.addService(JOB_SERVICE, this.jobs.handlers);
    this.server.addService(HEALTH_SERVICE, this.health.service());
  }

  /** Binds and starts serving; resolves with the bound port. */
  async listen(): Promise<number> {
    const port = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(this.parts.config.listen, this.parts.credentials, (error, bound) =>
        error ? reject(error) : resolve(bound),
      );
    });
    await this.health.start();
    return port;
  }

  /**
   * Stops accepting calls, ends every output stream at once (its watcher resumes elsewhere or
   * later from its last offset), and waits up to `graceMs` for unary calls in flight.
   */
  async close(graceMs = 5000): Promise<void> {
    this.health.stop();
    this.jobs.endStreams();
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}
