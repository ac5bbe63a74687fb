// Which ended jobs to delete, so the state directory never grows without bound: those ended
// longer ago than maxAgeMs, then the oldest beyond maxJobs, then the oldest until the stored
// output fits maxOutputBytes. Running jobs are never chosen. A pure function, tested alone.
import type { JobRecord } from '../../shared/job.ts';

export interface RetentionPolicy {
  /** Ended jobs older than this (by end time) are deleted. */
  maxAgeMs: number;
  /** At most this many ended jobs are kept. */
  maxJobs: number;
  /** The ended jobs' stored output, in all, stays below this. */
  maxOutputBytes: number;
}

export function jobsToDelete(
  records: readonly JobRecord[],
  policy: RetentionPolicy,
  now: number,
): string[] {
  const ended = records
    .filter(
      (record): record is JobRecord & { endedAt: number } =>
        record.state !== 'RUNNING' && record.endedAt !== null,
    )
    .sort((a, b) => a.endedAt - b.endedAt || a.id.localeCompare(b.id));
  const doomed = new Set<string>();
  for (const record of ended) if (now - record.endedAt > policy.maxAgeMs) doomed.add(record.id);
  let kept = ended.filter((record) => !doomed.has(record.id));
  for (const record of kept.slice(0, Math.max(0, kept.length - policy.maxJobs)))
    doomed.add(record.id);
  kept = kept.filter((record) => !doomed.has(record.id));
  let bytes = kept.reduce((total, record) => total + record.outputBytes, 0);
  for (const record of kept) {
    if (bytes <= policy.maxOutputBytes) break;
    doomed.add(record.id);
    bytes -= record.outputBytes;
  }
  return [...doomed];
}
