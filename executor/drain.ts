// Stops every job of this host's executor and waits until each has ended and is recorded: what an
// operator runs before a host shutdown or decommissioning (stopping the executor leaves jobs
// running, for a restart). Run as root; the API should be stopped first so no job starts meanwhile.
//
//   drain [--config /etc/jobworker/executor.json] [--grace 10s]
import { parseArgs } from 'node:util';
import { createLogger } from '../shared/logger.ts';
import { loadExecutorConfig } from './config.ts';
import { drainKeepers } from './runtime/keeper-drain.ts';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000 };

function parseGrace(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(text);
  if (!match) throw new Error(`--grace: ${JSON.stringify(text)} is not a duration such as 10s`);
  return Math.round(Number(match[1]) * (UNIT_MS[match[2] ?? 's'] ?? 1000));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { config: { type: 'string' }, grace: { type: 'string' } },
  });
  let config;
  let graceMs;
  try {
    config = loadExecutorConfig(values.config);
    graceMs = values.grace === undefined ? config.stopGraceMs : parseGrace(values.grace);
  } catch (error) {
    console.error(`drain: ${(error as Error).message}`);
    process.exit(78); // EX_CONFIG
  }
  if (process.getuid?.() !== 0) {
    console.error('drain: run as root (job keepers answer root only)');
    process.exit(77); // EX_NOPERM
  }
  const logger = createLogger('drain', config.logLevel);
  const { stopped, killed } = await drainKeepers(config.stateDir, graceMs, logger);
  console.log(
    `drain: ${stopped} job(s) stopped${killed > 0 ? `, ${killed} keeper(s) killed` : ''}`,
  );
  process.exit(killed > 0 ? 1 : 0);
}

await main();
