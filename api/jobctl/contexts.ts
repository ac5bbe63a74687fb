// jobctl's config file: named contexts, one per server, so that `--context prod` picks a server
// and the certificates for it. $XDG_CONFIG_HOME/jobctl/config.json (~/.config/jobctl/config.json):
//
//   {
//     "currentContext": "prod",
//     "contexts": {
//       "prod": { "server": "jobs.example.com:50051", "ca": "prod/ca.crt",
//                 "cert": "prod/me.crt", "key": "prod/me.key" },
//       "lab":  { "server": "10.0.0.7", "tlsName": "lab.internal", "ca": "~/lab/ca.crt", … }
//     }
//   }
//
// Relative paths are relative to the file's directory, "~/" is the home directory. Unknown keys
// are refused by name, as in every config file of the project.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { ConfigError, readConfigFile } from '../../shared/config-file.ts';
import { object, optional, record, string } from '../../shared/schema.ts';
import { CliError } from './cli-errors.ts';

export interface ContextSettings {
  server?: string;
  ca?: string;
  cert?: string;
  key?: string;
  tlsName?: string;
}

export interface JobctlConfig {
  currentContext?: string;
  contexts: Readonly<Record<string, Readonly<ContextSettings>>>;
}

export const CONTEXT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const contextName = string({
  minLength: 1,
  maxBytes: 64,
  pattern: CONTEXT_NAME,
  patternRule: 'a name of letters, digits, ".", "_" and "-"',
});
const filePath = string({ minLength: 1, maxBytes: 4095 });
const hostName = string({ minLength: 1, maxBytes: 253 });

const configSchema = object({
  currentContext: optional(contextName),
  contexts: optional(
    record(
      contextName,
      object({
        server: optional(string({ minLength: 1, maxBytes: 300 })),
        ca: optional(filePath),
        cert: optional(filePath),
        key: optional(filePath),
        tlsName: optional(hostName),
      }),
      { maxEntries: 1000 },
    ),
  ),
});

/** $XDG_CONFIG_HOME/jobctl/config.json; XDG says a relative XDG_CONFIG_HOME is ignored. */
export function configFilePath(env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(env.HOME || homedir(), '.config');
  return join(base, 'jobctl', 'config.json');
}

function resolvePath(path: string, configDir: string, home: string): string {
  if (path === '~') return home;
  if (path.startsWith('~/')) return join(home, path.slice(2));
  return resolve(configDir, path);
}

/** The config file's contexts (none when the file does not exist); paths made absolute. */
export function readJobctlConfig(path: string, env: NodeJS.ProcessEnv): JobctlConfig | undefined {
  if (!existsSync(path)) return undefined;
  let raw;
  try {
    raw = readConfigFile(path, configSchema);
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message);
    throw error;
  }
  const home = env.HOME || homedir();
  const contexts: Record<string, ContextSettings> = {};
  for (const [name, settings] of Object.entries(raw.contexts ?? {})) {
    const context: ContextSettings = { ...settings };
    for (const key of ['ca', 'cert', 'key'] as const) {
      const value = settings[key];
      if (value !== undefined) context[key] = resolvePath(value, dirname(path), home);
    }
    contexts[name] = context;
  }
  const config: JobctlConfig = { contexts };
  if (raw.currentContext !== undefined) config.currentContext = raw.currentContext;
  return config;
}
