// The executor's Unix socket. It lives in a root-owned directory that only the socket group may
// enter (0750), and is itself root:<group> 0660: the API's supplementary group is the one key.
import { chmod, chown, mkdir, rm } from 'node:fs/promises';
import net from 'node:net';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { lookupGroup } from '../../shared/accounts.ts';
import type { ExecutorConfig } from '../config.ts';
import type { JobRuntime } from '../runtime/job-runtime.ts';
import { Connection } from './connection.ts';

export class ExecutorServer {
  private readonly runtime: JobRuntime;
  private readonly config: Readonly<ExecutorConfig>;
  private readonly logger: Logger;
  private readonly server: net.Server;
  private readonly connections = new Set<Connection>();
  private nextConnectionId = 1;

  constructor(runtime: JobRuntime, config: Readonly<ExecutorConfig>, logger: Logger) {
    this.runtime = runtime;
    this.config = config;
    this.logger = logger;
    this.server = net.createServer((socket) => this.accept(socket));
    this.server.maxConnections = config.maxConnections;
    this.server.on('drop', () =>
      logger.warn({ max: config.maxConnections }, 'connection refused: too many connections'),
    );
  }

  async listen(): Promise<void> {
    const { socketPath } = this.config;
    const gid = lookupGroup(this.config.socketGroup).id;
    const dir = dirname(socketPath);
    await mkdir(dir, { recursive: true, mode: 0o750 });
    await chown(dir, 0, gid);
    await chmod(dir, 0o750);
    await rm(socketPath, { force: true }); // a stale socket from an earlier run
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(socketPath, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    await chown(socketPath, 0, gid);
    await chmod(socketPath, 0o660);
    this.logger.info({ socket: socketPath, group: this.config.socketGroup }, 'executor listening');
  }

  private accept(socket: net.Socket): void {
    const connection = new Connection(
      socket,
      {
        runtime: this.runtime,
        logger: this.logger,
        maxRequestsInFlight: this.config.maxRequestsPerConnection,
      },
      this.nextConnectionId++,
    );
    this.connections.add(connection);
    socket.on('close', () => this.connections.delete(connection));
  }

  /** Stops accepting, ends every connection (streams stop at once) and removes the socket. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of this.connections) connection.destroy();
    await closed;
    await rm(this.config.socketPath, { force: true });
  }
}
