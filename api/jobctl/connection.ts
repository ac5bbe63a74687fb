// Where jobctl connects and with which certificates. Each setting comes from the first of:
//
//   1. a flag                 --server --cert --key --ca --tls-name
//   2. the environment        JOBCTL_SERVER JOBCTL_CERT JOBCTL_KEY JOBCTL_CA JOBCTL_TLS_NAME
//   3. the selected context   --context, else JOBCTL_CONTEXT, else the file's currentContext
//   4. the development stack  when no context is selected and `npm start` has made its PKI
//                             (<checkout>/.state/dev, or JOBCTL_DEV_DIR like `npm start -- --dir`)
//   5. the server only: 127.0.0.1:50051, the API's default listen address
//
// Every setting remembers where it came from, so that an error can say which one to fix.
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { DEV_DIR, DEV_LISTEN, devPki } from '../../shared/dev-layout.ts';
import { CliError, UsageError } from './cli-errors.ts';
import { configFilePath, CONTEXT_NAME, readJobctlConfig } from './contexts.ts';
import type { ContextSettings } from './contexts.ts';

export const DEFAULT_PORT = 50051;

export interface ConnectionFlags {
  server?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  ca?: string | undefined;
  tlsName?: string | undefined;
  context?: string | undefined;
}

export interface Setting {
  value: string;
  /** Where it came from, as a person would look for it: "--ca", "JOBCTL_CA", "context prod (…)". */
  source: string;
}

export interface ServerAddress {
  host: string;
  port: number;
  /** host:port as gRPC takes it ([v6]:port). */
  target: string;
  isIp: boolean;
}

export interface Connection {
  server: Setting;
  address: ServerAddress;
  cert: Setting;
  key: Setting;
  ca: Setting;
  tlsName: Setting | undefined;
  /** The context in use, if any. */
  context: string | undefined;
  configFile: string;
}

export interface ConnectionInputs {
  flags: ConnectionFlags;
  env: NodeJS.ProcessEnv;
  /** Defaults to $XDG_CONFIG_HOME/jobctl/config.json. */
  configFile?: string;
  /** Defaults to JOBCTL_DEV_DIR, else the checkout's .state/dev. */
  devDir?: string;
}

type Key = 'server' | 'cert' | 'key' | 'ca' | 'tlsName';
const FLAG: Record<Key, string> = {
  server: '--server',
  cert: '--cert',
  key: '--key',
  ca: '--ca',
  tlsName: '--tls-name',
};
const ENV: Record<Key, string> = {
  server: 'JOBCTL_SERVER',
  cert: 'JOBCTL_CERT',
  key: 'JOBCTL_KEY',
  ca: 'JOBCTL_CA',
  tlsName: 'JOBCTL_TLS_NAME',
};

/** "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 address; the port defaults to 50051. */
export function parseServerAddress(text: string): ServerAddress | undefined {
  let host: string;
  let port = String(DEFAULT_PORT);
  const bracketed = /^\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?$/.exec(text);
  const plain = /^([A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(text);
  if (bracketed?.[1] && isIP(bracketed[1]) === 6) {
    host = bracketed[1];
    port = bracketed[2] ?? port;
  } else if (isIP(text) === 6) {
    host = text;
  } else if (plain?.[1]) {
    host = plain[1];
    port = plain[2] ?? port;
  } else {
    return undefined;
  }
  const number = Number(port);
  if (number < 1 || number > 65535) return undefined;
  return {
    host,
    port: number,
    target: host.includes(':') ? `[${host}]:${number}` : `${host}:${number}`,
    isIp: isIP(host) !== 0,
  };
}

/** The dev stack's settings, when `npm start` has made its PKI in devDir. */
export function devStackSettings(devDir: string): ContextSettings | undefined {
  const pki = devPki(devDir);
  if (!existsSync(pki.ca) || !existsSync(pki.cert)) return undefined;
  let server = DEV_LISTEN;
  try {
    // `npm start -- --listen …` records where the API really listens.
    const listen = (JSON.parse(readFileSync(`${devDir}/api.json`, 'utf8')) as { listen?: unknown })
      .listen;
    if (typeof listen === 'string') {
      server = listen.replace(/^0\.0\.0\.0:/, '127.0.0.1:').replace(/^\[::\]:/, '[::1]:');
    }
  } catch {
    // no readable api.json: the default address
  }
  return { server, ca: pki.ca, cert: pki.cert, key: pki.key };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

export function resolveConnection(inputs: ConnectionInputs): Connection {
  const { flags, env } = inputs;
  const configFile = inputs.configFile ?? configFilePath(env);
  const devDir = inputs.devDir ?? nonEmpty(env.JOBCTL_DEV_DIR) ?? DEV_DIR;
  const config = readJobctlConfig(configFile, env);

  let contextName: string | undefined;
  let contextFrom = '';
  if (nonEmpty(flags.context) !== undefined)
    [contextName, contextFrom] = [flags.context, '--context'];
  else if (nonEmpty(env.JOBCTL_CONTEXT) !== undefined)
    [contextName, contextFrom] = [env.JOBCTL_CONTEXT, 'JOBCTL_CONTEXT'];
  else if (config?.currentContext !== undefined)
    [contextName, contextFrom] = [config.currentContext, `currentContext in ${configFile}`];

  let context: ContextSettings | undefined;
  if (contextName !== undefined) {
    if (!CONTEXT_NAME.test(contextName))
      throw new UsageError(`${contextFrom} ${JSON.stringify(contextName)}: not a context name`);
    context = config?.contexts[contextName];
    if (context === undefined) {
      const known = Object.keys(config?.contexts ?? {});
      throw new CliError(
        `no context ${JSON.stringify(contextName)} (from ${contextFrom}) in ${configFile}` +
          (config === undefined
            ? ' (the file does not exist)'
            : known.length > 0
              ? `; known: ${known.join(', ')}`
              : ''),
      );
    }
  }
  const dev = contextName === undefined ? devStackSettings(devDir) : undefined;

  const pick = (key: Key): Setting | undefined => {
    const flag = nonEmpty(flags[key]);
    if (flag !== undefined) return { value: flag, source: FLAG[key] };
    const fromEnv = nonEmpty(env[ENV[key]]);
    if (fromEnv !== undefined) return { value: fromEnv, source: ENV[key] };
    const fromContext = context?.[key];
    if (fromContext !== undefined)
      return { value: fromContext, source: `context ${contextName} in ${configFile}` };
    const fromDev = dev?.[key];
    if (fromDev !== undefined) return { value: fromDev, source: `the dev stack in ${devDir}` };
    return undefined;
  };
  const missing = (what: string, keys: Key[]) =>
    new CliError(
      `no ${what}: give ${keys.map((key) => FLAG[key]).join(' and ')}, set ${keys.map((key) => ENV[key]).join(' and ')}, ` +
        `or add a context to ${configFile}` +
        (contextName === undefined
          ? " (from a checkout, 'sudo npm start' makes a development stack that is found without flags)"
          : ''),
    );

  const server = pick('server') ?? { value: DEV_LISTEN, source: 'the default' };
  const address = parseServerAddress(server.value);
  if (!address) {
    throw new UsageError(
      `${server.source} ${JSON.stringify(server.value)}: not a server address; use host:port (jobs.example.com:50051, 127.0.0.1:50051, [::1]:50051)`,
    );
  }
  const cert = pick('cert');
  const key = pick('key');
  if (!cert || !key) throw missing('client certificate', ['cert', 'key']);
  const ca = pick('ca');
  if (!ca) throw missing('CA certificate to check the server with', ['ca']);
  return {
    server,
    address,
    cert,
    key,
    ca,
    tlsName: pick('tlsName'),
    context: contextName,
    configFile,
  };
}
