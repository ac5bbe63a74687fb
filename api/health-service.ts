// The standard gRPC health service. The API serves while the executor answers it: it probes the
// executor every few seconds (which also re-establishes the connection after an outage) and
// reports NOT_SERVING while the executor is unreachable, or reachable but not answering (a
// stopped or wedged process), and SERVING again once it answers.
import { status } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  HealthCheckResponse_ServingStatus as ServingStatus,
  type HealthServer,
} from './generated/grpc/health/v1/health.ts';
import type { ExecutorClient } from './executor-client.ts';

/** "" is the server as a whole; the other is the job service. */
const KNOWN_SERVICES = new Set(['', 'jobworker.v1.JobService']);
const PROBE_INTERVAL_MS = 2000;

export class HealthMonitor {
  private current: ServingStatus = ServingStatus.NOT_SERVING;
  private readonly listeners = new Set<(status: ServingStatus) => void>();
  private timer: NodeJS.Timeout | undefined;
  private readonly executor: ExecutorClient;
  private readonly logger: Logger;

  constructor(executor: ExecutorClient, logger: Logger) {
    this.executor = executor;
    this.logger = logger;
  }

  get status(): ServingStatus {
    return this.current;
  }

  async start(): Promise<void> {
    await this.probe();
    this.timer = setInterval(() => void this.probe(), PROBE_INTERVAL_MS);
  }

  stop(): void {
    clearInterval(this.timer);
    this.set(ServingStatus.NOT_SERVING);
  }

  async probe(): Promise<void> {
    const result = await this.executor.probe();
    if (result !== 'answering' && this.current === ServingStatus.SERVING)
      this.logger.warn({ executor: result }, 'executor probe failed');
    this.set(result === 'answering' ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
  }

  private set(next: ServingStatus): void {
    if (next === this.current) return;
    this.logger.info({ status: ServingStatus[next] }, 'health changed');
    this.current = next;
    for (const listener of this.listeners) listener(next);
  }

  service(): HealthServer {
    return {
      check: (call, callback) => {
        if (!KNOWN_SERVICES.has(call.request.service)) {
          callback({ code: status.NOT_FOUND, details: `unknown service ${call.request.service}` });
          return;
        }
        callback(null, { status: this.current });
      },
      watch: (call) => {
        const known = KNOWN_SERVICES.has(call.request.service);
        const send = (next: ServingStatus) =>
          call.write({ status: known ? next : ServingStatus.SERVICE_UNKNOWN });
        send(this.current);
        if (!known) return;
        this.listeners.add(send);
        call.on('cancelled', () => this.listeners.delete(send));
        call.on('close', () => this.listeners.delete(send));
      },
    };
  }
}
