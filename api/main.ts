// The API: the unprivileged gRPC front end. Reads its TLS material, drops to nobody (plus the
// socket group) before it reads any request, then serves.
//
//   api [--config /etc/jobworker/api.json]
import { parseArgs } from 'node:util';
import { createLogger } from '../shared/logger.ts';
import { notifySystemdReady } from '../shared/systemd-ready.ts';
import { ApiServer } from './api-server.ts';
import { loadApiConfig } from './config.ts';
import type { ApiConfig } from './config.ts';
import { ExecutorClient } from './executor-client.ts';
import { dropPrivileges } from './privileges.ts';
import { MutualTls13Credentials, readTlsMaterial } from './tls-credentials.ts';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string' } } });
  let config: Readonly<ApiConfig>;
  try {
    config = loadApiConfig(values.config);
  } catch (error) {
    console.error(`api: ${(error as Error).message}`);
    process.exit(78); // EX_CONFIG
  }
  const logger = createLogger('api', config.logLevel);
  const audit = logger.child({ audit: true });

  let credentials: MutualTls13Credentials;
  try {
    credentials = new MutualTls13Credentials(readTlsMaterial(config.tls));
  } catch (error) {
    logger.fatal((error as Error).message);
    process.exit(78);
  }
  // SIGHUP (`systemctl reload`) re-reads the TLS material. Installed before the first await, not
  // once the API listens: Node's default for SIGHUP is to exit, and systemd counts an exit by
  // SIGHUP as clean (no restart), so a reload that came while the API started ended it for good.
  process.on('SIGHUP', () => {
    try {
      credentials.reload(readTlsMaterial(config.tls));
      logger.info('reloaded TLS material');
    } catch (error) {
      logger.error(
        { err: (error as Error).message },
        'cannot reload TLS material; keeping the old',
      );
    }
  });
  const executor = new ExecutorClient(config.executorSocket);
  const api = new ApiServer({ config, credentials, executor, logger, audit });

  // Drop before binding, so that no request is ever read with root's privileges; a port below
  // 1024 needs root to bind, so then the drop follows the bind, before the event loop turns.
  const port = Number(config.listen.slice(config.listen.lastIndexOf(':') + 1));
  const privilegedPort = port > 0 && port < 1024;
  const drop = () => {
    const dropped = dropPrivileges(config.user, config.socketGroup);
    logger.info(dropped, 'running unprivileged');
  };
  try {
    if (!privilegedPort) drop();
    const bound = await api.listen();
    if (privilegedPort) drop();
    logger.info({ listen: config.listen, port: bound }, 'api listening');

    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) process.exit(1);
      stopping = true;
      logger.info({ signal }, 'stopping: no new calls, ending streams');
      void api.close().then(() => {
        executor.close();
        logger.info('api stopped');
        process.exit(0);
      });
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    // Under systemd (Type=notify), a start ends here: a reload queued meanwhile waits until now.
    notifySystemdReady(logger);
  } catch (error) {
    logger.fatal({ err: error }, 'cannot start');
    process.exit(1);
  }
}

await main();
