// keeper.status: how a job ended, as its keeper recorded it (written once, atomically, by
// write_status in executor/helper/jobworker-helper.c). It is what makes a job that ended while
// no executor was running reported exactly as one that ended under its eyes.
//
//   result exited <code> | result signaled <signal> | result start-failed <errno> <stage>
//   stop stopped | stop timed-out            (only when the keeper stopped the job)
//   output <bytes> <truncated 0|1>
//   ended <unix ms>
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StartError } from './keeper-link.ts';
import { parseStartError } from './keeper-link.ts';
import type { StopReason } from './job-end.ts';

export const STATUS_FILE = 'keeper.status';

export type KeeperResult =
  | { kind: 'exited'; code: number }
  | { kind: 'signaled'; signal: number }
  | { kind: 'start-failed'; error: StartError };

export interface KeeperStatus {
  result: KeeperResult;
  stop: StopReason | null;
  outputBytes: number;
  truncated: boolean;
  endedAt: number;
}

function count(word: string | undefined, what: string): number {
  const value = Number(word);
  if (word === undefined || !/^\d+$/.test(word) || !Number.isSafeInteger(value))
    throw new Error(`${STATUS_FILE}: bad ${what} ${JSON.stringify(word)}`);
  return value;
}

export function parseKeeperStatus(text: string): KeeperStatus {
  let result: KeeperResult | null = null;
  let stop: StopReason | null = null;
  let output: { bytes: number; truncated: boolean } | null = null;
  let endedAt: number | null = null;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const [key, ...words] = line.split(' ');
    if (key === 'result' && words[0] === 'exited')
      result = { kind: 'exited', code: count(words[1], 'exit code') };
    else if (key === 'result' && words[0] === 'signaled')
      result = { kind: 'signaled', signal: count(words[1], 'signal') };
    else if (key === 'result' && words[0] === 'start-failed')
      result = { kind: 'start-failed', error: parseStartError(words.slice(1)) };
    else if (key === 'stop' && (words[0] === 'stopped' || words[0] === 'timed-out'))
      stop = words[0];
    else if (key === 'output')
      output = { bytes: count(words[0], 'output size'), truncated: words[1] === '1' };
    else if (key === 'ended') endedAt = count(words[0], 'end time');
    else throw new Error(`${STATUS_FILE}: unexpected line ${JSON.stringify(line)}`);
  }
  if (result === null || output === null || endedAt === null)
    throw new Error(`${STATUS_FILE}: incomplete`);
  return { result, stop, outputBytes: output.bytes, truncated: output.truncated, endedAt };
}

/** The job's recorded end, or null while the keeper has not written one. */
export async function readKeeperStatus(jobDir: string): Promise<KeeperStatus | null> {
  const text = await readFile(join(jobDir, STATUS_FILE), 'utf8').catch(
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw error;
    },
  );
  return text === null ? null : parseKeeperStatus(text);
}
