// The API's configuration: the schema, with every default beside it. A config file holds only
// what differs; unknown keys are refused by name; the result is frozen.
import { parseConfig, readConfigFile } from '../shared/config-file.ts';
import { LOG_LEVELS } from '../shared/logger.ts';
import type { LogLevel } from '../shared/logger.ts';
import { absolutePath } from '../shared/job-spec-schema.ts';
import { integer, invalid, object, oneOf, optional, string } from '../shared/schema.ts';
import type { Check } from '../shared/schema.ts';

export interface ApiConfig {
  /** host:port to listen on; an IPv6 host in brackets: [::1]:50051. */
  listen: string;
  tls: {
    /** The CA client certificates must chain to. */
    caFile: string;
    certFile: string;
    keyFile: string;
    /** A CRL (PEM) from that CA; revoked client certificates are refused. */
    crlFile: string | null;
  };
  /** The executor's socket (the API needs the socket group to open it). */
  executorSocket: string;
  /** The API drops to this user (never root) before it reads any request. */
  user: string;
  /** ...keeping this one supplementary group: the one allowed to open the executor socket. */
  socketGroup: string;
  quotas: {
    /** Running jobs in total, across all identities. */
    maxRunningJobs: number;
    /** Running jobs of one identity. */
    maxRunningJobsPerIdentity: number;
  };
  /** Concurrent WatchJobOutput streams. */
  maxWatchers: number;
  /** ...of one identity. */
  maxWatchersPerIdentity: number;
  /** Largest request message accepted. */
  maxRequestBytes: number;
  logLevel: LogLevel;
}

export const API_DEFAULTS: ApiConfig = {
  listen: '127.0.0.1:50051',
  tls: {
    caFile: '/etc/jobworker/pki/ca.crt',
    certFile: '/etc/jobworker/pki/server.crt',
    keyFile: '/etc/jobworker/pki/private/server.key',
    crlFile: null,
  },
  executorSocket: '/run/jobworker/executor.sock',
  user: 'nobody',
  socketGroup: 'jobworker',
  quotas: { maxRunningJobs: 64, maxRunningJobsPerIdentity: 16 },
  maxWatchers: 200,
  maxWatchersPerIdentity: 32,
  maxRequestBytes: 1024 * 1024,
  logLevel: 'info',
};

const account = string({
  minLength: 1,
  maxBytes: 32,
  pattern: /^[a-z_][a-z0-9_-]*\$?$|^\d+$/,
  patternRule: 'a user or group name or number',
});

const fileSchema = object({
  listen: optional(
    string({
      minLength: 1,
      maxBytes: 300,
      pattern: /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/,
      patternRule: 'host:port (an IPv6 host in brackets)',
    }),
  ),
  tls: optional(
    object({
      caFile: absolutePath,
      certFile: absolutePath,
      keyFile: absolutePath,
      crlFile: optional((value, field) => (value === null ? null : absolutePath(value, field))),
    }),
  ),
  executorSocket: optional(absolutePath),
  user: optional(account),
  socketGroup: optional(account),
  quotas: optional(
    object({
      maxRunningJobs: integer({ min: 1, max: 100_000 }),
      maxRunningJobsPerIdentity: integer({ min: 1, max: 100_000 }),
    }),
  ),
  maxWatchers: optional(integer({ min: 1, max: 100_000 })),
  maxWatchersPerIdentity: optional(integer({ min: 1, max: 100_000 })),
  maxRequestBytes: optional(integer({ min: 4096, max: 16 * 1024 * 1024, unit: 'bytes' })),
  logLevel: optional(oneOf(LOG_LEVELS)),
});

const apiConfigSchema: Check<ApiConfig> = (value, field) => {
  const file = fileSchema(value, field);
  const config: ApiConfig = {
    ...API_DEFAULTS,
    ...file,
    tls: file.tls ? { crlFile: null, ...file.tls } : API_DEFAULTS.tls,
  };
  if (config.user === 'root' || config.user === '0') throw invalid('user', 'must not be root');
  const port = Number(config.listen.slice(config.listen.lastIndexOf(':') + 1));
  // Port 0 asks the kernel for any free port (the bound one is logged).
  if (port > 65_535) throw invalid('listen', `port ${port} is not between 0 and 65535`);
  if (config.quotas.maxRunningJobsPerIdentity > config.quotas.maxRunningJobs) {
    throw invalid('quotas.maxRunningJobsPerIdentity', 'must be at most quotas.maxRunningJobs');
  }
  if (config.maxWatchersPerIdentity > config.maxWatchers)
    throw invalid('maxWatchersPerIdentity', 'must be at most maxWatchers');
  return config;
};

export function parseApiConfig(raw: unknown, source = 'api config'): Readonly<ApiConfig> {
  return parseConfig(raw, apiConfigSchema, source);
}

export function loadApiConfig(path: string | undefined): Readonly<ApiConfig> {
  return path === undefined
    ? parseApiConfig({}, 'defaults')
    : readConfigFile(path, apiConfigSchema);
}
