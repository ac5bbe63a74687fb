// A job as people and scripts see it: the `status` page, a `list` row, and the --json object.
import {
  EndReason,
  JobState,
  StorageKind,
  type Job,
  type Limits,
} from '../generated/jobworker/v1/jobworker.ts';
import { durationToMs } from '../../shared/proto-duration.ts';
import { commandLine, humanBytes, humanDuration, localTime, timeAgo, truncate } from './format.ts';

const STATE_NAMES: Record<JobState, string> = {
  [JobState.JOB_STATE_UNSPECIFIED]: 'unknown',
  [JobState.JOB_STATE_RUNNING]: 'running',
  [JobState.JOB_STATE_COMPLETED]: 'completed',
  [JobState.JOB_STATE_FAILED]: 'failed',
  [JobState.JOB_STATE_STOPPED]: 'stopped',
};

/** The words of --storage-kind; null where the server said nothing (older jobs). */
const STORAGE_KIND_NAMES: Record<StorageKind, string | null> = {
  [StorageKind.STORAGE_KIND_UNSPECIFIED]: null,
  [StorageKind.STORAGE_KIND_MEMORY]: 'memory',
  [StorageKind.STORAGE_KIND_DISK]: 'disk',
};

function storageKindName(job: Job): string | null {
  return job.storageKind === undefined ? null : (STORAGE_KIND_NAMES[job.storageKind] ?? null);
}

/** /job's size and what backs it: "256 MiB in memory", "10 GiB on disk". */
function storageText(job: Job): string | null {
  const bytes = job.limits?.storageBytes;
  if (bytes === undefined) return null;
  const kind = storageKindName(job);
  const where = kind === 'memory' ? ' in memory' : kind === 'disk' ? ' on disk' : '';
  return `${humanBytes(bytes)}${where}`;
}

/** The same names the executor records use. */
const REASON_NAMES: Record<EndReason, string | null> = {
  [EndReason.END_REASON_UNSPECIFIED]: null,
  [EndReason.END_REASON_EXITED]: 'exited',
  [EndReason.END_REASON_KILLED_BY_SIGNAL]: 'killed-by-signal',
  [EndReason.END_REASON_OOM_KILLED]: 'oom-killed',
  [EndReason.END_REASON_TIMED_OUT]: 'timed-out',
  [EndReason.END_REASON_STOPPED]: 'stopped',
  [EndReason.END_REASON_START_FAILED]: 'start-failed',
  [EndReason.END_REASON_EXECUTOR_RESTARTED]: 'executor-restarted',
};

export const STATE_BY_NAME: Record<string, JobState> = {
  running: JobState.JOB_STATE_RUNNING,
  completed: JobState.JOB_STATE_COMPLETED,
  failed: JobState.JOB_STATE_FAILED,
  stopped: JobState.JOB_STATE_STOPPED,
};

export function stateName(job: Job): string {
  return STATE_NAMES[job.state] ?? 'unknown';
}

export function reasonName(job: Job): string | null {
  return REASON_NAMES[job.endReason] ?? null;
}

function durationMs(job: Job, now: Date): number | null {
  if (!job.startedAt) return null;
  return (job.endedAt ?? now).getTime() - job.startedAt.getTime();
}

/** "0", "3", "SIGKILL", "oom-killed (SIGKILL)", "timed-out (SIGTERM)", "" while running. */
export function exitOrReason(job: Job): string {
  const reason = reasonName(job);
  if (reason === null) return '';
  const status = job.exitCode !== undefined ? String(job.exitCode) : job.signal;
  if (reason === 'exited' || reason === 'killed-by-signal' || reason === 'stopped') {
    return status || reason;
  }
  return status ? `${reason} (${status})` : reason;
}

/** The State line of `status`: "failed (exit code 3)", "stopped (SIGTERM)", "failed: oom-killed (SIGKILL)". */
function stateLine(job: Job): string {
  const state = stateName(job);
  const reason = reasonName(job);
  if (reason === null) return state;
  const status = job.exitCode !== undefined ? `exit code ${job.exitCode}` : job.signal;
  if (reason === 'exited' || reason === 'stopped') return status ? `${state} (${status})` : state;
  if (reason === 'killed-by-signal') return `${state} (killed by ${job.signal || 'a signal'})`;
  return status ? `${state}: ${reason} (${status})` : `${state}: ${reason}`;
}

export const LIST_HEADERS = [
  'ID',
  'OWNER',
  'STATE',
  'EXIT/REASON',
  'STARTED',
  'DURATION',
  'COMMAND',
];

export function listRow(job: Job, now: Date, full: boolean): string[] {
  const ms = durationMs(job, now);
  const command = commandLine(job.argv);
  return [
    full ? job.id : job.id.slice(0, 12),
    job.owner,
    stateName(job),
    exitOrReason(job),
    job.startedAt ? timeAgo(job.startedAt, now) : '',
    ms === null ? '' : humanDuration(ms),
    full ? command : truncate(command, 40),
  ];
}

const LIMIT_WORDS: [keyof Limits, string, (value: number) => string][] = [
  ['cpus', 'cpus', String],
  ['memoryBytes', 'memory', humanBytes],
  ['memoryHighBytes', 'memory-high', humanBytes],
  ['pids', 'pids', String],
  ['ioReadBps', 'read', (value) => `${humanBytes(value)}/s`],
  ['ioWriteBps', 'write', (value) => `${humanBytes(value)}/s`],
  ['ioReadIops', 'read', (value) => `${value} IOPS`],
  ['ioWriteIops', 'write', (value) => `${value} IOPS`],
];

function limitsText(limits: Limits | undefined): string {
  if (!limits) return 'none';
  const parts: string[] = [];
  for (const [field, word, show] of LIMIT_WORDS) {
    const value = limits[field];
    if (typeof value === 'number') parts.push(`${word} ${show(value)}`);
  }
  if (limits.cpusetCpus) parts.push(`cpuset ${limits.cpusetCpus}`);
  return parts.length > 0 ? parts.join(', ') : 'none';
}

/** The `status` page: one "Field: value" line each. */
export function statusText(job: Job, now: Date): string {
  const ms = durationMs(job, now);
  const lines: [string, string][] = [
    ['ID', job.id],
    ['Owner', job.owner],
    ['Command', commandLine(job.argv)],
    ['State', stateLine(job)],
  ];
  if (job.startedAt)
    lines.push(['Started', `${localTime(job.startedAt)} (${timeAgo(job.startedAt, now)})`]);
  if (job.endedAt) lines.push(['Ended', localTime(job.endedAt)]);
  if (ms !== null) lines.push([job.endedAt ? 'Duration' : 'Running for', humanDuration(ms)]);
  if (job.workingDir) lines.push(['Workdir', job.workingDir]);
  if (job.envNames.length > 0) lines.push(['Env', job.envNames.join(', ')]);
  lines.push(['Limits', limitsText(job.limits)]);
  const storage = storageText(job);
  if (storage !== null) lines.push(['Storage', storage]);
  if (job.timeout) lines.push(['Timeout', humanDuration(Math.round(durationToMs(job.timeout)))]);
  if (job.usage) {
    const usage = job.usage;
    lines.push([
      'Usage',
      `cpu ${humanDuration(usage.cpuSeconds * 1000)}, memory peak ${humanBytes(usage.memoryPeakBytes)}, ` +
        `read ${humanBytes(usage.ioReadBytes)}, write ${humanBytes(usage.ioWriteBytes)}`,
    ]);
  }
  lines.push([
    'Output',
    `${humanBytes(job.outputBytes)}${job.outputTruncated ? ' (truncated: the rest was not kept)' : ''}`,
  ]);
  if (job.error) lines.push(['Error', job.error]);
  const width = Math.max(...lines.map(([name]) => name.length)) + 2;
  return lines.map(([name, value]) => `${`${name}:`.padEnd(width)}${value}`).join('\n');
}

/** A job for scripts: every field always present (null when unset), names as in `status`. */
export function jobJson(job: Job, now: Date): Record<string, unknown> {
  const limits = job.limits ?? {};
  const ms = durationMs(job, now);
  return {
    id: job.id,
    owner: job.owner,
    argv: job.argv,
    envNames: job.envNames,
    workingDir: job.workingDir || null,
    state: stateName(job),
    endReason: reasonName(job),
    exitCode: job.exitCode ?? null,
    signal: job.signal || null,
    error: job.error || null,
    startedAt: job.startedAt?.toISOString() ?? null,
    endedAt: job.endedAt?.toISOString() ?? null,
    durationSeconds: ms === null ? null : ms / 1000,
    timeoutSeconds: job.timeout ? Math.round(durationToMs(job.timeout)) / 1000 : null,
    limits: {
      cpus: limits.cpus ?? null,
      memoryBytes: limits.memoryBytes ?? null,
      memoryHighBytes: limits.memoryHighBytes ?? null,
      pids: limits.pids ?? null,
      ioReadBps: limits.ioReadBps ?? null,
      ioWriteBps: limits.ioWriteBps ?? null,
      ioReadIops: limits.ioReadIops ?? null,
      ioWriteIops: limits.ioWriteIops ?? null,
      cpusetCpus: limits.cpusetCpus ?? null,
      storageBytes: limits.storageBytes ?? null,
    },
    storageKind: storageKindName(job),
    usage: job.usage ? { ...job.usage } : null,
    outputBytes: job.outputBytes,
    outputTruncated: job.outputTruncated,
  };
}
