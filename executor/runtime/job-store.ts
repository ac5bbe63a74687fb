// Job records on disk, one directory per job under <stateDir>/jobs:
//   <id>/record.json     the JobRecord, replaced atomically (write + rename) on every change; a
//                        started job's first one is written by its keeper, from the spec
//   <id>/keeper.id       "<pid> <start time>" of the job's keeper, to find it again after a
//                        restart; written by the keeper
//   <id>/keeper.*, output.*   written by the keeper (executor/helper/jobworker-helper.c)
//   <id>/storage.img     a disk-backed /job's ext4 image, until the job's init attaches it to a
//                        loop device and unlinks it (executor/runtime/storage-image.ts)
// Every file here is the executor's or the keeper's, a flat handful: nothing the job shaped.
// On ext2/3/4 the <id> directories are spread over the block groups as top-level directories are
// (spread-job-directories.ts).
// (Executors before per-job filesystems kept the job's /job here too, as <id>/work: a tree the
// job built, which is removed by a child process, never walked in the event loop.)
import { execFile } from 'node:child_process';
import {
  chmod,
  chown,
  mkdir,
  readFile,
  readdir,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { JOB_ID } from '../../shared/job-id.ts';
import type { JobRecord } from '../../shared/job.ts';
import type { KeeperIdentity } from './keeper-link.ts';
import { spreadJobDirectories } from './spread-job-directories.ts';

const KEEPER_ID_FILE = 'keeper.id';
const STORAGE_IMAGE_FILE = 'storage.img';
/** An older executor's host directory for /job (see the top of this file). */
const LEGACY_WORK_DIR = 'work';

const run = promisify(execFile);
/** A record that could not be saved (a full disk) is tried again this often until it is. */
const SAVE_RETRY_MS = 5_000;

export class JobStore {
  readonly root: string;
  private readonly logger: Logger;
  /** Records whose latest version is not on disk yet, by id. */
  private readonly unsaved = new Map<string, JobRecord>();
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(stateDir: string, logger: Logger) {
    this.root = join(stateDir, 'jobs');
    this.logger = logger;
  }

  /**
   * Makes the state directory root's alone (0700): nothing in it is any job's or user's to read,
   * and jobs, which see the host's file system read-only, meet a permission error there without
   * a mask (one that would show the directory's path in their mount table).
   */
  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    await spreadJobDirectories(this.root, this.logger);
    const stateDir = dirname(this.root);
    await chown(stateDir, 0, 0);
    await chmod(stateDir, 0o700);
    await chmod(this.root, 0o700);
  }

  jobDir(id: string): string {
    if (!JOB_ID.test(id)) throw new Error(`not a job id: ${id}`);
    return join(this.root, id);
  }

  storageImage(id: string): string {
    return join(this.jobDir(id), STORAGE_IMAGE_FILE);
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
    this.unsaved.delete(record.id);
  }

  /** One stored record (the latest version, also when it is still waiting to be saved). */
  async load(id: string): Promise<JobRecord> {
    const waiting = this.unsaved.get(id);
    if (waiting) return waiting;
    return JSON.parse(await readFile(join(this.jobDir(id), 'record.json'), 'utf8')) as JobRecord;
  }

  /**
   * Saves the record, or, when the disk refuses (full), keeps it and tries again until it is
   * saved. Until then the keeper's status file still holds the job's end for a restart.
   */
  async saveOrRetry(record: JobRecord): Promise<void> {
    try {
      await this.save(record);
    } catch (error) {
      this.logger.error({ job: record.id, err: error }, 'cannot save a job record; will retry');
      this.unsaved.set(record.id, record);
      this.retryTimer ??= setInterval(() => void this.retryUnsaved(), SAVE_RETRY_MS).unref();
    }
  }

  private async retryUnsaved(): Promise<void> {
    for (const record of [...this.unsaved.values()]) {
      await this.save(record).catch(() => undefined);
    }
    if (this.unsaved.size === 0) {
      clearInterval(this.retryTimer);
      this.retryTimer = undefined;
    } else {
      this.logger.warn({ jobs: this.unsaved.size }, 'job records still not saved');
    }
  }

  /** Stops retrying; what is still unsaved is rebuilt from the keepers' status files at start. */
  close(): void {
    clearInterval(this.retryTimer);
    this.retryTimer = undefined;
  }

  async loadKeeperIdentity(id: string): Promise<KeeperIdentity | null> {
    const text = await readFile(join(this.jobDir(id), KEEPER_ID_FILE), 'utf8').catch(() => null);
    const match = text === null ? null : /^(\d+) (\d+)\n$/.exec(text);
    return match ? { pid: Number(match[1]), startTime: match[2] ?? '' } : null;
  }

  /**
   * Every stored record, with its size on disk; a directory without a readable record is logged
   * and left alone.
   */
  async loadAll(): Promise<{ record: JobRecord; bytes: number }[]> {
    const records: { record: JobRecord; bytes: number }[] = [];
    for (const name of await readdir(this.root)) {
      if (!JOB_ID.test(name)) continue;
      try {
        const text = await readFile(join(this.root, name, 'record.json'), 'utf8');
        records.push({ record: JSON.parse(text) as JobRecord, bytes: Buffer.byteLength(text) });
      } catch (error) {
        this.logger.warn(
          { job: name, err: error },
          'skipping a job directory without a readable record',
        );
      }
    }
    return records;
  }

  /**
   * What may be left of an ended job's /job: its image, when the job failed before its init
   * took it (one unlink), or an older executor's directory.
   */
  async discardStorage(id: string): Promise<void> {
    await rm(this.storageImage(id), { force: true });
    await removeLegacyTree(join(this.jobDir(id), LEGACY_WORK_DIR));
  }

  async remove(id: string): Promise<void> {
    this.unsaved.delete(id);
    await removeLegacyTree(join(this.jobDir(id), LEGACY_WORK_DIR));
    // What is left is flat: the record, the keeper's files and the output.
    await rm(this.jobDir(id), { recursive: true, force: true, maxRetries: 3 });
  }
}

/**
 * Removes a tree a job built, if there is one, in a child process: GNU rm walks any depth
 * (deeper than PATH_MAX too) at its own cost, never the event loop's; it stays on this
 * filesystem and follows no symlink.
 */
async function removeLegacyTree(path: string): Promise<void> {
  if (
    !(await stat(path).then(
      () => true,
      () => false,
    ))
  )
    return;
  await run('/bin/rm', ['-rf', '--one-file-system', '--', path], { env: {} });
}
