// Which ended jobs to delete, so the state directory and the executor's memory never grow
// without bound: those ended longer ago than maxAgeMs, then the oldest beyond maxJobs, then the
// oldest until the stored output fits maxOutputBytes and the stored records fit maxRecordBytes.
// Running jobs are never chosen. A pure function, tested alone.
import type { JobRecord } from '../../shared/job.ts';

export interface RetentionPolicy {
  /** Ended jobs older than this (by end time) are deleted. */
  maxAgeMs: number;
  /** At most this many ended jobs are kept. */
  maxJobs: number;
  /** The ended jobs' stored output, in all, stays below this. */
  maxOutputBytes: number;
  /** The ended jobs' records (JSON on disk; a large argv makes a large record), in all. */
  maxRecordBytes: number;
}

/** What retention looks at: a record, or the executor's summary of one. */
export type RetainedJob = Pick<JobRecord, 'id' | 'state' | 'endedAt' | 'outputBytes'> & {
  /** Bytes of the stored record; 0 when not known. */
  recordBytes?: number;
};

export function jobsToDelete(
  jobs: readonly RetainedJob[],
  policy: RetentionPolicy,
  now: number,
): string[] {
  const ended = jobs
    .filter(
      (job): job is RetainedJob & { endedAt: number } =>
        job.state !== 'RUNNING' && job.endedAt !== null,
    )
    .sort((a, b) => a.endedAt - b.endedAt || a.id.localeCompare(b.id));
  const doomed = new Set<string>();
  for (const job of ended) if (now - job.endedAt > policy.maxAgeMs) doomed.add(job.id);
  let kept = ended.filter((job) => !doomed.has(job.id));
  for (const job of kept.slice(0, Math.max(0, kept.length - policy.maxJobs))) doomed.add(job.id);
  for (const [size, max] of [
    [(job: RetainedJob) => job.outputBytes, policy.maxOutputBytes],
    [(job: RetainedJob) => job.recordBytes ?? 0, policy.maxRecordBytes],
  ] as const) {
    kept = kept.filter((job) => !doomed.has(job.id));
    let bytes = kept.reduce((total, job) => total + size(job), 0);
    for (const job of kept) {
      if (bytes <= max) break;
      doomed.add(job.id);
      bytes -= size(job);
    }
  }
  return [...doomed];
}
