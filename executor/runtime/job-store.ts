// Job records on disk, one directory per job under <stateDir>/jobs:
//   <id>/record.json   the JobRecord, replaced atomically (write + rename) on every change
//   <id>/output.*      the output log (output-log.ts)
//   <id>/work          the job's writable directory while it runs (removed when it ends)
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { JOB_ID } from '../../shared/executor-protocol.ts';
import type { JobRecord } from '../../shared/job.ts';

export class JobStore {
  readonly root: string;
  private readonly logger: Logger;

  constructor(stateDir: string, logger: Logger) {
    this.root = join(stateDir, 'jobs');
    this.logger = logger;
  }

  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
  }

  jobDir(id: string): string {
    if (!JOB_ID.test(id)) throw new Error(`not a job id: ${id}`);
    return join(this.root, id);
  }

  workDir(id: string): string {
    return join(this.jobDir(id), 'work');
  }

  async createJobDir(id: string): Promise<string> {
    const dir = this.jobDir(id);
    await mkdir(dir, { mode: 0o700 });
    return dir;
  }

  async save(record: JobRecord): Promise<void> {
    const dir = this.jobDir(record.id);
    const temporary = join(dir, 'record.json.tmp');
    await writeFile(temporary, JSON.stringify(record), { mode: 0o600 });
    await rename(temporary, join(dir, 'record.json'));
  }

  /** Every stored record; a directory without a readable record is logged and left alone. */
  async loadAll(): Promise<JobRecord[]> {
    const records: JobRecord[] = [];
    for (const name of await readdir(this.root)) {
      if (!JOB_ID.test(name)) continue;
      try {
        records.push(
          JSON.parse(await readFile(join(this.root, name, 'record.json'), 'utf8')) as JobRecord,
        );
      } catch (error) {
        this.logger.warn(
          { job: name, err: error },
          'skipping a job directory without a readable record',
        );
      }
    }
    return records;
  }

  async removeWorkDir(id: string): Promise<void> {
    // rm does not follow symlinks the job may have left in its directory.
    await rm(this.workDir(id), { recursive: true, force: true, maxRetries: 3 });
  }

  async remove(id: string): Promise<void> {
    await rm(this.jobDir(id), { recursive: true, force: true, maxRetries: 3 });
  }
}
