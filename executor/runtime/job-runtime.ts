// The job runtime ("worker library"): start, stop, get, list and read output of jobs. Used by the
// executor's socket handlers, and usable in-process (the root tests drive it directly too).
import { randomBytes } from 'node:crypto';
import { chown, mkdir, realpath } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { ListArgs, ListResult, OutputChunk } from '../../shared/executor-protocol.ts';
import { JOB_ID, MAX_LIST_LIMIT } from '../../shared/executor-protocol.ts';
import { encodedSize, MAX_FRAME_BYTES } from '../../shared/framing.ts';
import { JobError } from '../../shared/errors.ts';
import type { JobLimits, JobRecord, JobSpec } from '../../shared/job.ts';
import { jobSpecSchema } from '../../shared/job-spec-schema.ts';
import { resolveBlockDevices } from '../cgroup/block-device.ts';
import type { BlockDevice, CgroupDriver, JobCgroup } from '../cgroup/cgroup-driver.ts';
import type { ExecutorConfig } from '../config.ts';
import { effectiveLimits, effectiveTimeout } from './effective-limits.ts';
import { describeStartError } from './job-end.ts';
import { JobStore } from './job-store.ts';
import { OutputLog } from './output-log.ts';
import { jobsToDelete } from './retention.ts';
import { RunningJob } from './running-job.ts';
import { UidPool } from './uid-pool.ts';

/** How often ended jobs are checked against the retention policy (also after every job). */
const RETENTION_INTERVAL_MS = 60_000;

/** Inside every job: the writable directory, also the default working directory and $HOME. */
export const JOB_DIR = '/job';
/** A list page leaves a quarter of the frame for the envelope and one oversized record. */
const LIST_PAGE_BYTES = (MAX_FRAME_BYTES * 3) / 4;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

interface JobEntry {
  record: JobRecord;
  running: RunningJob | null;
  /** The live log, kept open after the job ends only while readers still use it. */
  liveLog: OutputLog | null;
}

export interface RuntimeParts {
  config: Readonly<ExecutorConfig>;
  cgroups: CgroupDriver;
  logger: Logger;
}

function hasIoLimits(limits: JobLimits): boolean {
  return [limits.ioReadBps, limits.ioWriteBps, limits.ioReadIops, limits.ioWriteIops].some(
    (value) => value !== undefined,
  );
}

async function existingRealPath(path: string): Promise<string | null> {
  try {
    return await realpath(path);
  } catch {
    return null;
  }
}

export class JobRuntime {
  private readonly config: Readonly<ExecutorConfig>;
  private readonly cgroups: CgroupDriver;
  private readonly logger: Logger;
  private readonly store: JobStore;
  private readonly uids: UidPool;
  private readonly jobs = new Map<string, JobEntry>();
  private maskPaths: string[] = [];
  private ioDevices: Promise<BlockDevice[]> | null = null;
  private closing = false;
  private sweeping = false;
  private retentionTimer: NodeJS.Timeout | undefined;

  private constructor(parts: RuntimeParts) {
    this.config = parts.config;
    this.cgroups = parts.cgroups;
    this.logger = parts.logger;
    this.store = new JobStore(parts.config.stateDir, parts.logger);
    this.uids = new UidPool(parts.config.jobUids);
  }

  /**
   * Loads stored jobs and sweeps what an earlier executor left: its running jobs are recorded as
   * ended (executor-restarted), their processes killed and cgroups removed, their output kept.
   */
  static async open(parts: RuntimeParts): Promise<JobRuntime> {
    const runtime = new JobRuntime(parts);
    await runtime.store.init();
    const swept = await parts.cgroups.prepare();
    if (swept.length > 0)
      parts.logger.warn({ jobs: swept }, 'killed and removed job cgroups left by an earlier run');
    for (const record of await runtime.store.loadAll()) {
      if (record.state === 'RUNNING') {
        const log = await OutputLog.openFinished(
          runtime.store.jobDir(record.id),
          record.outputTruncated,
        ).catch(() => null);
        Object.assign(record, {
          state: 'FAILED',
          endReason: 'executor-restarted',
          endedAt: Date.now(),
          outputBytes: log?.size ?? record.outputBytes,
        } satisfies Partial<JobRecord>);
        await log?.close();
        await runtime.store.removeWorkDir(record.id);
        await runtime.store.save(record);
        parts.logger.warn(
          { job: record.id },
          'job was running when the executor stopped; marked executor-restarted',
        );
      }
      runtime.jobs.set(record.id, { record, running: null, liveLog: null });
    }
    // Hidden inside every job: the executor's state, its socket directory and configured paths
    // (keys, config). Resolved here so that the helper masks what the job would really reach.
    const wanted = [
      parts.config.stateDir,
      dirname(parts.config.socketPath),
      ...parts.config.maskPaths,
    ];
    const resolved = await Promise.all(wanted.map(existingRealPath));
    runtime.maskPaths = [...new Set(resolved.filter((path): path is string => path !== null))];
    await runtime.applyRetention();
    runtime.retentionTimer = setInterval(
      () => void runtime.applyRetention(),
      RETENTION_INTERVAL_MS,
    ).unref();
    return runtime;
  }

  /** Deletes the ended jobs the retention policy no longer keeps: their records and output. */
  async applyRetention(): Promise<string[]> {
    if (this.sweeping) return [];
    this.sweeping = true;
    try {
      const doomed = jobsToDelete(
        [...this.jobs.values()].map((entry) => entry.record),
        this.config.retention,
        Date.now(),
      );
      for (const id of doomed) {
        // A reader still streaming the job keeps its open files; the kernel frees them after.
        this.jobs.delete(id);
        await this.store.remove(id);
      }
      if (doomed.length > 0)
        this.logger.info({ deleted: doomed.length }, 'retention: deleted ended jobs');
      return doomed;
    } finally {
      this.sweeping = false;
    }
  }

  get runningCount(): number {
    let count = 0;
    for (const entry of this.jobs.values()) if (entry.running) count += 1;
    return count;
  }

  /**
   * Starts a job. Resolves with its record once the program was exec'd. Bad input throws
   * invalid-argument (nothing is created); a program that cannot be exec'd throws start-failed
   * (the job is recorded, FAILED with reason start-failed, details.jobId names it).
   */
  async start(rawSpec: unknown, owner: string): Promise<JobRecord> {
    if (this.closing) throw new JobError('failed-precondition', 'the executor is shutting down');
    const spec: JobSpec = jobSpecSchema(rawSpec, 'spec');
    if (this.runningCount >= this.config.maxRunningJobs) {
      throw new JobError(
        'resource-exhausted',
        `the executor already runs its maximum of ${this.config.maxRunningJobs} jobs`,
      );
    }
    const limits = effectiveLimits(spec.limits ?? {}, this.config);
    const timeoutMs = effectiveTimeout(spec, this.config);
    const id = randomBytes(16).toString('hex');
    const uid = this.uids.acquire();
    const workingDir = spec.workingDir ?? JOB_DIR;
    let cgroup: JobCgroup | null = null;
    let log: OutputLog | null = null;
    try {
      // The job's directories and its cgroups do not depend on each other: make them at once.
      const [files, cgroups] = await Promise.allSettled([
        this.prepareJobFiles(id, uid),
        this.ioDevicesFor(limits).then((devices) => this.cgroups.create(id, limits, devices)),
      ]);
      if (cgroups.status === 'fulfilled') cgroup = cgroups.value;
      if (files.status === 'fulfilled') log = files.value.log;
      if (files.status === 'rejected') throw files.reason;
      if (cgroups.status === 'rejected') throw cgroups.reason;
      const { workDir } = files.value;
      const createdCgroup = cgroups.value;
      const record: JobRecord = {
        id,
        owner,
        argv: spec.argv,
        envNames: Object.keys(spec.env ?? {}),
        workingDir,
        limits,
        timeoutMs,
        state: 'RUNNING',
        endReason: null,
        exitCode: null,
        signal: null,
        error: null,
        createdAt: Date.now(),
        endedAt: null,
        usage: null,
        outputBytes: 0,
        outputTruncated: false,
      };
      await this.store.save(record);
      const env = { PATH: DEFAULT_PATH, HOME: JOB_DIR, ...spec.env };
      const job = new RunningJob({
        config: this.config,
        logger: this.logger,
        store: this.store,
        cgroup: createdCgroup,
        log: files.value.log,
        record,
        helperSpec: {
          uid,
          gid: uid,
          hostname: `job-${id.slice(0, 12)}`,
          workdir: workDir,
          cwd: workingDir,
          tmpSizeBytes: this.config.tmpSizeBytes,
          cgroupDirs: createdCgroup.joinDirs,
          maskPaths: this.maskPaths,
          argv: spec.argv,
          env: Object.entries(env).map(([name, value]) => `${name}=${value}`),
        },
      });
      const entry: JobEntry = { record, running: job, liveLog: files.value.log };
      this.jobs.set(id, entry);
      cgroup = null; // owned by the running job from here on
      log = null;
      const result = await job.launch();
      void job.ended.then(() => this.onEnded(entry, uid));
      if (!result.started) {
        await job.ended;
        throw new JobError(
          'start-failed',
          describeStartError(result.error, spec.argv[0] ?? '', workingDir),
          {
            jobId: id,
            errno: result.error.errno,
          },
        );
      }
      return structuredClone(record);
    } catch (error) {
      if (cgroup || log || !this.jobs.has(id)) {
        // Failed before the job existed: undo everything, record nothing.
        this.uids.release(uid);
        await log?.close();
        await cgroup
          ?.remove()
          .catch((cause: unknown) =>
            this.logger.error({ err: cause, job: id }, 'cannot remove cgroup'),
          );
        await this.store.remove(id).catch(() => undefined);
      }
      throw error;
    }
  }

  /** The job's state directory, its writable directory (owned by its uid) and its output log. */
  private async prepareJobFiles(
    id: string,
    uid: number,
  ): Promise<{ workDir: string; log: OutputLog }> {
    const dir = await this.store.createJobDir(id);
    const workDir = this.store.workDir(id);
    await mkdir(workDir, { mode: 0o700 });
    await chown(workDir, uid, uid);
    return { workDir, log: await OutputLog.create(dir, this.config.maxOutputBytes) };
  }

  /**
   * The disks io limits apply to: those under the job's writable directory (inside the state
   * directory, so resolved from it) and under /. Looked up once: they do not change.
   */
  private async ioDevicesFor(limits: JobLimits): Promise<BlockDevice[]> {
    if (!hasIoLimits(limits)) return [];
    this.ioDevices ??= resolveBlockDevices([this.config.stateDir, '/']);
    const devices = await this.ioDevices;
    if (devices.length === 0) {
      throw new JobError(
        'failed-precondition',
        "spec.limits: io limits cannot be applied: no block device is under the job's filesystems on this host",
      );
    }
    return devices;
  }

  private onEnded(entry: JobEntry, uid: number): void {
    entry.running = null;
    this.uids.release(uid);
    this.closeLiveLogIfIdle(entry);
    void this.applyRetention();
  }

  private closeLiveLogIfIdle(entry: JobEntry): void {
    if (entry.running === null && entry.liveLog && entry.liveLog.activeReaders === 0) {
      void entry.liveLog.close();
      entry.liveLog = null;
    }
  }

  private entry(id: unknown): JobEntry {
    const entry = typeof id === 'string' && JOB_ID.test(id) ? this.jobs.get(id) : undefined;
    if (!entry) throw new JobError('not-found', `job ${String(id)} not found`);
    return entry;
  }

  /** Stops a running job and resolves with its final record; an ended job's record is returned as is. */
  async stop(id: string, graceMs = this.config.stopGraceMs): Promise<JobRecord> {
    const entry = this.entry(id);
    if (graceMs > this.config.maxStopGraceMs) {
      throw new JobError(
        'invalid-argument',
        `graceMs: must be at most ${this.config.maxStopGraceMs}`,
        { field: 'graceMs' },
      );
    }
    if (entry.running) await entry.running.stop('stopped', graceMs);
    return structuredClone(entry.record);
  }

  /** Resolves with the job's final record once it has ended (at once for an ended job). */
  async wait(id: string): Promise<JobRecord> {
    const entry = this.entry(id);
    if (entry.running) await entry.running.ended;
    return structuredClone(entry.record);
  }

  /** The job's record; for a running job with its usage and output size so far. */
  async get(id: string): Promise<JobRecord> {
    const entry = this.entry(id);
    const record = structuredClone(entry.record);
    const running = entry.running;
    if (running) {
      record.usage = await running.cgroup.readUsage().catch(() => null);
      record.outputBytes = running.log.size;
      record.outputTruncated = running.log.truncated;
    }
    return record;
  }

  /**
   * Matching records, oldest first, one page at a time: at most `limit` records and at most
   * LIST_PAGE_BYTES of them encoded, so that a page always fits one frame whatever the argv sizes.
   */
  list(filter: ListArgs = {}): ListResult {
    const matching = [...this.jobs.values()]
      .filter(({ record }) => filter.owner === undefined || record.owner === filter.owner)
      .filter(({ record }) => filter.state === undefined || record.state === filter.state)
      .sort(
        (a, b) => a.record.createdAt - b.record.createdAt || a.record.id.localeCompare(b.record.id),
      );
    let start = 0;
    if (filter.after !== undefined) {
      const position = matching.findIndex(({ record }) => record.id === filter.after);
      if (position < 0)
        throw new JobError(
          'invalid-argument',
          `after: job ${filter.after} is not in this listing`,
          { field: 'after' },
        );
      start = position + 1;
    }
    const limit = Math.min(filter.limit ?? MAX_LIST_LIMIT, MAX_LIST_LIMIT);
    const jobs: JobRecord[] = [];
    let bytes = 0;
    let index = start;
    for (; index < matching.length && jobs.length < limit; index += 1) {
      const { record, running } = matching[index] as JobEntry;
      const copy = structuredClone(record);
      if (running) copy.outputBytes = running.log.size;
      bytes += encodedSize(copy);
      if (bytes > LIST_PAGE_BYTES && jobs.length > 0) break;
      jobs.push(copy);
    }
    return { jobs, more: index < matching.length };
  }

  /**
   * The job's output from `offset`, following it live until the job has ended and every byte was
   * delivered. Ends early when `signal` aborts (the reader went away).
   */
  async *readOutput(id: string, offset: number, signal?: AbortSignal): AsyncGenerator<OutputChunk> {
    const entry = this.entry(id);
    const live = entry.liveLog;
    const log =
      live ?? (await OutputLog.openFinished(this.store.jobDir(id), entry.record.outputTruncated));
    try {
      yield* log.read(offset, signal);
    } finally {
      if (live) this.closeLiveLogIfIdle(entry);
      else await log.close();
    }
  }

  /** Output totals for a job whose output has been read to the end. */
  outputSummary(id: string): { outputBytes: number; truncated: boolean } {
    const { record, running } = this.entry(id);
    return running
      ? { outputBytes: running.log.size, truncated: running.log.truncated }
      : { outputBytes: record.outputBytes, truncated: record.outputTruncated };
  }

  /** Stops every running job (grace, then kill), waits for their clean-up, removes the cgroups. */
  async shutdown(graceMs = this.config.stopGraceMs): Promise<void> {
    this.closing = true;
    clearInterval(this.retentionTimer);
    const running = [...this.jobs.values()].flatMap((entry) =>
      entry.running ? [entry.running] : [],
    );
    await Promise.all(running.map((job) => job.stop('stopped', graceMs)));
    await this.cgroups.close();
  }
}
