// run/start flags in the words Docker users know, turned into a StartJobRequest. Units, as
// Docker's: sizes take b, k, m, g, t, p (binary multiples: 1k = 1024; "mb", "MiB" also read as m);
// durations take ms, s, m, h, alone or together (1m30s), and a bare number is seconds.
//
// Every value is checked here, then the whole request against the same hard bounds the server
// applies (shared/job-spec-schema.ts), so a bad value is one line naming the flag and no request
// is sent. The server's own maxima can still refuse a request: its answer names the proto field,
// which flagForField() turns back into the flag.
import { JobError } from '../../shared/errors.ts';
import { CPU_LIST, jobSpecSchema } from '../../shared/job-spec-schema.ts';
import { STORAGE_KINDS } from '../../shared/job.ts';
import type { JobSpec, StorageKind as JobStorageKind } from '../../shared/job.ts';
import { msToDuration } from '../../shared/proto-duration.ts';
import type { Limits, StartJobRequest, StorageKind } from '../generated/jobworker/v1/jobworker.ts';
import { allStrings, lastString, optionKey } from './cli-args.ts';
import type { ParsedOptions } from './cli-args.ts';
import { UsageError } from './cli-errors.ts';
import { humanBytes } from './format.ts';

type Parse = (flag: string, text: string) => number | string;

export interface LimitFlag {
  flag: string;
  placeholder: string;
  field: keyof Limits;
  parse: Parse;
  description: string;
}

const MULTIPLIERS: Record<string, number> = {
  '': 1,
  k: 2 ** 10,
  m: 2 ** 20,
  g: 2 ** 30,
  t: 2 ** 40,
  p: 2 ** 50,
};
const SIZE = /^(\d+(?:\.\d+)?) ?(?:([kmgtp])(?:i?b)?|b)?$/i;

function bad(flag: string, text: string, rule: string): UsageError {
  return new UsageError(`${flag} ${JSON.stringify(text)}: ${rule}`);
}

/** "256m" → 268435456; Docker's RAMInBytes, rounded down to a whole byte. */
export function parseSize(flag: string, text: string): number {
  const match = SIZE.exec(text.trim());
  if (!match)
    throw bad(flag, text, 'not a size; use a number with an optional unit k, m, g (256m, 1.5g)');
  const bytes = Math.floor(Number(match[1]) * (MULTIPLIERS[(match[2] ?? '').toLowerCase()] ?? 1));
  if (!Number.isSafeInteger(bytes)) throw bad(flag, text, 'too large');
  if (bytes <= 0) throw bad(flag, text, 'must be more than 0');
  return bytes;
}

/** A whole number above 0 (pids, IO operations per second). */
export function parseCount(flag: string, text: string): number {
  if (!/^\d+$/.test(text.trim())) throw bad(flag, text, 'must be a whole number above 0');
  const count = Number(text.trim());
  if (!Number.isSafeInteger(count)) throw bad(flag, text, 'too large');
  if (count === 0) throw bad(flag, text, 'must be a whole number above 0');
  return count;
}

/**
 * A disk rate flag. Docker's names a device (/dev/sda:10mb); here the server picks the disks (those
 * under the job's filesystems), so only the rate is taken.
 */
function perDisk(
  parse: (flag: string, text: string) => number,
  example: string,
): (flag: string, text: string) => number {
  return (flag, text) => {
    if (text.includes(':')) {
      throw bad(
        flag,
        text,
        `give only the rate (${example}): the server applies it to the disks under the job`,
      );
    }
    return parse(flag, text);
  };
}

/** Bytes per second: a size (10mb). */
export const parseRate = perDisk(parseSize, '10mb');
/** IO operations per second: a count. */
export const parseIops = perDisk(parseCount, '1000');

/** "0.5" → 0.5 cores. */
export function parseCpus(flag: string, text: string): number {
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(text.trim())) {
    throw bad(flag, text, 'not a number of CPUs; use a decimal such as 0.5 or 2');
  }
  const cpus = Number(text.trim());
  if (cpus <= 0) throw bad(flag, text, 'must be more than 0');
  return cpus;
}

/** The kernel's cpu list syntax, ranges ascending: "0-1,3". */
export function parseCpuList(flag: string, text: string): string {
  const list = text.trim();
  if (!CPU_LIST.test(list))
    throw bad(flag, text, 'not a CPU list; use numbers and ranges such as 0-1,3');
  for (const range of list.split(',')) {
    const [first, last] = range.split('-').map(Number);
    if (last !== undefined && first !== undefined && last < first) {
      throw bad(flag, text, `the range ${range} runs backwards`);
    }
  }
  return list;
}

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|h|m|s)/gy;
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "1m30s" → 90000 ms; a bare number is seconds. 0 only where it means "at once" (--grace). */
export function parseDuration(flag: string, text: string, allowZero = false): number {
  const trimmed = text.trim();
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(trimmed)) {
    ms = Number(trimmed) * 1000;
  } else {
    ms = 0;
    DURATION_PART.lastIndex = 0;
    let end = 0;
    for (const match of trimmed.matchAll(DURATION_PART)) {
      ms += Number(match[1]) * (DURATION_MS[match[2] ?? ''] ?? 0);
      end = (match.index ?? 0) + match[0].length;
    }
    if (trimmed === '' || end !== trimmed.length) {
      throw bad(flag, text, 'not a duration; use a number with s, m or h (30s, 1m30s, 2h)');
    }
  }
  ms = Math.round(ms);
  if (ms < 0 || (ms === 0 && !allowZero)) throw bad(flag, text, 'must be more than 0');
  if (!Number.isSafeInteger(ms)) throw bad(flag, text, 'too long');
  return ms;
}

export const LIMIT_FLAGS: readonly LimitFlag[] = [
  {
    flag: '--cpus',
    placeholder: '<n>',
    field: 'cpus',
    parse: parseCpus,
    description: 'CPU time in cores: 0.5 = half a core',
  },
  {
    flag: '--memory',
    placeholder: '<size>',
    field: 'memoryBytes',
    parse: parseSize,
    description: 'Memory limit, no swap (256m, 1g); above it the job is OOM-killed',
  },
  {
    flag: '--memory-high',
    placeholder: '<size>',
    field: 'memoryHighBytes',
    parse: parseSize,
    description: 'Soft memory limit: above it the job is throttled and reclaimed',
  },
  {
    flag: '--pids-limit',
    placeholder: '<n>',
    field: 'pids',
    parse: parseCount,
    description: 'Processes and threads the job may have',
  },
  {
    flag: '--cpuset-cpus',
    placeholder: '<list>',
    field: 'cpusetCpus',
    parse: parseCpuList,
    description: 'CPUs the job may run on (0-1,3)',
  },
  {
    flag: '--device-read-bps',
    placeholder: '<rate>',
    field: 'ioReadBps',
    parse: parseRate,
    description: 'Disk read rate, bytes per second (10mb)',
  },
  {
    flag: '--device-write-bps',
    placeholder: '<rate>',
    field: 'ioWriteBps',
    parse: parseRate,
    description: 'Disk write rate, bytes per second (10mb)',
  },
  {
    flag: '--device-read-iops',
    placeholder: '<n>',
    field: 'ioReadIops',
    parse: parseIops,
    description: 'Disk read operations per second',
  },
  {
    flag: '--device-write-iops',
    placeholder: '<n>',
    field: 'ioWriteIops',
    parse: parseIops,
    description: 'Disk write operations per second',
  },
  {
    flag: '--storage',
    placeholder: '<size>',
    field: 'storageBytes',
    parse: parseSize,
    description:
      'Size of /job (1g); writing past it is ENOSPC. In memory, at most --memory: its pages count there',
  },
];

/** The other job flags, for registration and for naming fields in errors. */
export const JOB_FLAGS = {
  timeout: {
    flag: '--timeout',
    placeholder: '<duration>',
    description: 'Stop the job after this long (30s, 5m, 1h)',
  },
  env: {
    flag: '-e, --env',
    placeholder: '<NAME=VALUE>',
    description: 'Set an environment variable (repeatable); NAME alone passes the local value',
  },
  workdir: {
    flag: '-w, --workdir',
    placeholder: '<dir>',
    description: 'Working directory inside the job (default /job)',
  },
  storageKind: {
    flag: '--storage-kind',
    placeholder: '<kind>',
    description: "What backs /job: memory (default) or disk (the server's disk, reserved at start)",
  },
} as const;

/**
 * --storage-kind's words, as the proto's values: numbers here, because the generated module loads
 * gRPC, which jobctl loads only once it connects (a unit test holds them to the generated enum).
 */
export const STORAGE_KIND_VALUES = {
  memory: 1,
  disk: 2,
} as const satisfies Record<JobStorageKind, StorageKind>;

export function parseStorageKind(flag: string, text: string): JobStorageKind {
  const kind = STORAGE_KINDS.find((name) => name === text.trim());
  if (kind === undefined) throw bad(flag, text, `must be one of ${STORAGE_KINDS.join(', ')}`);
  return kind;
}

/** The flag that sets a request field, by the executor's (memoryBytes) or proto's (memory_bytes) name. */
export function flagForField(path: string): string | undefined {
  const last = path
    .replace(/^spec\./, '')
    .replace(/\[\d+\]$/, '')
    .replace(/ key ".*"$/, '')
    .replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
  const field = last.startsWith('limits.') ? last.slice('limits.'.length) : last;
  const limit = LIMIT_FLAGS.find((entry) => entry.field === field);
  if (limit) return limit.flag;
  if (field === 'timeoutMs' || field === 'timeout') return '--timeout';
  if (field === 'workingDir') return '--workdir';
  if (field === 'storageKind') return '--storage-kind';
  if (field.startsWith('env')) return '--env';
  if (field.startsWith('argv')) return 'the command';
  return undefined;
}

function parseEnv(values: readonly string[], localEnv: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const value of values) {
    const equals = value.indexOf('=');
    if (equals === 0) throw bad('--env', value, 'must be NAME=VALUE or NAME');
    if (equals > 0) {
      env[value.slice(0, equals)] = value.slice(equals + 1);
      continue;
    }
    const local = localEnv[value];
    if (local === undefined) throw bad('--env', value, 'is not set here; give NAME=VALUE');
    env[value] = local;
  }
  return env;
}

/** The StartJobRequest that run/start flags and the job's argv describe; throws UsageError. */
export function startRequestFromFlags(
  options: ParsedOptions,
  argv: readonly string[],
  localEnv: NodeJS.ProcessEnv = process.env,
): StartJobRequest {
  if (argv.length === 0)
    throw new UsageError('no command given: jobctl run [OPTIONS] -- COMMAND [ARG...]');
  const limits: Limits = {};
  const spec: JobSpec = { argv: [...argv] };
  /** What was typed for each flag, to quote it in errors. */
  const typed = new Map<string, string>();
  for (const entry of LIMIT_FLAGS) {
    const text = lastString(options, optionKey(entry.flag));
    if (text === undefined) continue;
    (limits as Record<string, unknown>)[entry.field] = entry.parse(entry.flag, text);
    typed.set(entry.flag, text);
  }
  const request: StartJobRequest = {
    argv: [...argv],
    env: parseEnv(allStrings(options, 'env'), localEnv),
    workingDir: lastString(options, 'workdir') ?? '',
  };
  if (Object.keys(limits).length > 0) {
    request.limits = limits;
    spec.limits = limits as NonNullable<JobSpec['limits']>;
  }
  const storageKind = lastString(options, 'storageKind');
  if (storageKind !== undefined) {
    spec.storageKind = parseStorageKind('--storage-kind', storageKind);
    request.storageKind = STORAGE_KIND_VALUES[spec.storageKind];
    typed.set('--storage-kind', storageKind);
  }
  const timeout = lastString(options, 'timeout');
  if (timeout !== undefined) {
    spec.timeoutMs = parseDuration('--timeout', timeout);
    typed.set('--timeout', timeout);
    request.timeout = msToDuration(spec.timeoutMs);
  }
  if (Object.keys(request.env).length > 0) spec.env = request.env;
  if (request.workingDir !== '') spec.workingDir = request.workingDir;
  try {
    jobSpecSchema(spec, 'spec');
  } catch (error) {
    if (!(error instanceof JobError)) throw error;
    const field = typeof error.details.field === 'string' ? error.details.field : '';
    const flag = flagForField(field) ?? field;
    const rule = error.message
      .slice(error.message.indexOf(': ') + 2)
      .replace(/(\d+) bytes/, (_, bytes: string) => humanBytes(Number(bytes)))
      .replace(/limits\.\w+/g, (name) => flagForField(name) ?? name);
    const text = typed.get(flag);
    throw new UsageError(`${flag}${text === undefined ? '' : ` ${JSON.stringify(text)}`}: ${rule}`);
  }
  return request;
}
