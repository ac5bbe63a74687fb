import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { jobsToDelete } from '../../executor/runtime/retention.ts';
import type { JobRecord } from '../../shared/job.ts';

const retention = suite('retention policy');

function job(id: string, endedAt: number | null, outputBytes = 0): JobRecord {
  return {
    id,
    owner: 'x',
    argv: ['true'],
    envNames: [],
    workingDir: '/job',
    limits: {},
    timeoutMs: null,
    state: endedAt === null ? 'RUNNING' : 'COMPLETED',
    endReason: endedAt === null ? null : 'exited',
    exitCode: endedAt === null ? null : 0,
    signal: null,
    error: null,
    createdAt: 0,
    endedAt,
    usage: null,
    outputBytes,
    outputTruncated: false,
  };
}

const lenient = {
  maxAgeMs: 1_000_000,
  maxJobs: 1_000_000,
  maxOutputBytes: Number.MAX_SAFE_INTEGER,
  maxRecordBytes: Number.MAX_SAFE_INTEGER,
};

retention('ended jobs past the maximum age go; running jobs never', () => {
  const records = [job('old', 100), job('new', 900), job('run', null)];
  assert.equal(jobsToDelete(records, { ...lenient, maxAgeMs: 500 }, 1000), ['old']);
  assert.equal(
    jobsToDelete(
      [job('run', null)],
      { ...lenient, maxAgeMs: 0, maxJobs: 0, maxOutputBytes: 0 },
      1000,
    ),
    [],
  );
});

retention('beyond the maximum count, the oldest ended jobs go', () => {
  const records = [job('c', 300), job('a', 100), job('run', null), job('b', 200), job('d', 400)];
  assert.equal(jobsToDelete(records, { ...lenient, maxJobs: 2 }, 1000).sort(), ['a', 'b']);
});

retention('beyond the total output size, the oldest ended jobs go until it fits', () => {
  const records = [job('a', 100, 600), job('b', 200, 300), job('c', 300, 300)];
  assert.equal(jobsToDelete(records, { ...lenient, maxOutputBytes: 700 }, 1000), ['a']);
  assert.equal(jobsToDelete(records, { ...lenient, maxOutputBytes: 299 }, 1000), ['a', 'b', 'c']);
});

retention('the rules combine: age first, then count, then size', () => {
  const records = [job('a', 10, 5), job('b', 800, 50), job('c', 850, 50), job('d', 900, 50)];
  assert.equal(
    jobsToDelete(records, { ...lenient, maxAgeMs: 500, maxJobs: 2, maxOutputBytes: 60 }, 1000),
    ['a', 'b', 'c'],
  );
});

retention('beyond the total size of records, the oldest ended jobs go until they fit', () => {
  const jobs = [
    { ...job('a', 100), recordBytes: 600_000 },
    { ...job('b', 200), recordBytes: 300 },
    { ...job('run', null), recordBytes: 900_000 },
  ];
  assert.equal(jobsToDelete(jobs, { ...lenient, maxRecordBytes: 1000 }, 1000), ['a']);
});

retention.run();
