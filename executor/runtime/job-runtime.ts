// The job runtime ("worker library"): start, stop, get, list and read output of jobs. Used by the
// executor's socket handlers, and usable in-process (the root tests drive it directly too).
import { randomBytes } from 'node:crypto';
import { realpath, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import type {
  JobOwner,
  ListArgs,
  ListResult,
  OutputChunk,
  RunQuota,
} from '../../shared/executor-protocol.ts';
import { MAX_LIST_LIMIT } from '../../shared/executor-protocol.ts';
import { JOB_DEFAULT_PATH, JOB_DIR } from '../../shared/in-job-paths.ts';
import { JOB_ID } from '../../shared/job-id.ts';
import { encodedSize, MAX_FRAME_BYTES } from '../../shared/framing.ts';
import { JobError } from '../../shared/errors.ts';
import { storageInodes } from '../../shared/job.ts';
import type { JobLimits, JobRecord, JobSpec, JobState, StorageKind } from '../../shared/job.ts';
import { resolveBlockDevices } from '../cgroup/block-device.ts';
import type { BlockDevice, CgroupDriver, JobCgroupInMaking } from '../cgroup/cgroup-driver.ts';
import type { ExecutorConfig } from '../config.ts';
import { CoalescedTask } from './coalesced-task.ts';
import { clampToHost, readHostCapacity } from './host-capacity.ts';
import { describeStartError, startStage } from './job-end.ts';
import { JobStore } from './job-store.ts';
import { KeeperLauncher } from './keeper-launcher.ts';
import { connectKeeper, killKeeper, reconnectKeeper } from './keeper-link.ts';
import type { KeeperStorage } from './keeper-link.ts';
import { readKeeperStatus } from './keeper-status.ts';
import { OutputLog } from './output-log.ts';
import { jobsToDelete } from './retention.ts';
import { RunningJob } from './running-job.ts';
import { findImageMaker, loopDevicesUnder, makeStorageImage } from './storage-image.ts';
import { UidPool } from './uid-pool.ts';

/**
 * How long a drain or close waits for starts under way: a start's own bound (its keeper's
 * setup), and a margin.
 */
const STARTS_SETTLE_MS = 35_000;
/** How often ended jobs are checked against the retention policy (also after every job). */
const RETENTION_INTERVAL_MS = 60_000;
const RETENTION_COALESCE_MS = 500;
/** The keeper launcher's socket, in the root-only state directory. */
const LAUNCHER_SOCKET = 'launcher.sock';

/** Below this much free space on the state filesystem, new jobs are refused (records, status). */
const MIN_FREE_STATE_BYTES = 1024 * 1024;
/** A list page leaves a quarter of the frame for the envelope and one oversized record. */
const LIST_PAGE_BYTES = (MAX_FRAME_BYTES * 3) / 4;

/** Records up to this size stay in memory; larger ones (a long argv) are read from disk. */
const CACHED_RECORD_BYTES = 4096;

/** What the executor keeps of every job in memory, whatever the size of its record. */
interface JobSummary {
  id: string;
  owner: string;
  state: JobState;
  createdAt: number;
  endedAt: number | null;
  outputBytes: number;
  /** Bytes of the record on disk (retention bounds their sum). */
  recordBytes: number;
}

interface JobEntry {
  summary: JobSummary;
  /** The full record: while the job runs, or when small enough to keep; else on disk only. */
  record: JobRecord | null;
  running: RunningJob | null;
  /** The live log, kept open after the job ends only while readers still use it. */
  liveLog: OutputLog | null;
}

function entryFor(record: JobRecord, recordBytes: number): JobEntry {
  const entry: JobEntry = {
    summary: summarize(record, recordBytes),
    record,
    running: null,
    liveLog: null,
  };
  if (record.state !== 'RUNNING' && recordBytes > CACHED_RECORD_BYTES) entry.record = null;
  return entry;
}

function summarize(record: JobRecord, recordBytes: number): JobSummary {
  const { id, owner, state, createdAt, endedAt, outputBytes } = record;
  return { id, owner, state, createdAt, endedAt, outputBytes, recordBytes };
}

/** A start the op table has checked: the spec, and the limits and timeout that apply to it. */
export interface StartRequest {
  spec: JobSpec;
  owner: string;
  /** The API's quotas, checked here with the start: concurrent starts cannot both pass them. */
  quota?: RunQuota | undefined;
  limits: JobLimits;
  storageKind: StorageKind;
  timeoutMs: number | null;
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

function isDiskFull(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

const STATE_FULL =
  "the executor's state filesystem is full; no job can be started until space is freed";

export class JobRuntime {
  private readonly settings: Readonly<ExecutorConfig>;
  private readonly cgroups: CgroupDriver;
  private readonly logger: Logger;
  private readonly store: JobStore;
  private readonly uids: UidPool;
  private readonly launcher: KeeperLauncher;
  private readonly jobs = new Map<string, JobEntry>();
  private ioDevices = new Map<StorageKind, Promise<BlockDevice[]>>();
  /** mke2fs, once found (disk storage was asked for); a rejection says why there is none. */
  private imageMaker: Promise<string> | null = null;
  /** Starts between their cap check and their entry in `jobs`: the running-job cap counts them. */
  private starting = 0;
  /** Entries in `jobs` with a RunningJob: each start's cap check must not walk every ended job. */
  private running = 0;
  /** Starts not yet settled (started or failed), each resolving when it has. */
  private readonly startsUnderWay = new Set<Promise<void>>();
  /** Jobs starting or running, per owner: what a per-owner quota counts. */
  private readonly activeByOwner = new Map<string, number>();
  private closing = false;
  private sweeping = false;
  private retentionTimer: NodeJS.Timeout | undefined;
  /** A sweep soon after jobs end, at most one per RETENTION_COALESCE_MS however many end. */
  private readonly retentionAfterEnd = new CoalescedTask(
    () => this.applyRetention(),
    RETENTION_COALESCE_MS,
  );

  private constructor(parts: RuntimeParts, maskPaths: readonly string[]) {
    this.settings = parts.config;
    this.cgroups = parts.cgroups;
    this.logger = parts.logger;
    this.store = new JobStore(parts.config.stateDir, parts.logger);
    this.uids = new UidPool(parts.config.jobUids);
    this.launcher = new KeeperLauncher(
      parts.config.helperPath,
      join(parts.config.stateDir, LAUNCHER_SOCKET),
      maskPaths,
      parts.logger,
    );
  }

  /**
   * Loads stored jobs and takes over what an earlier executor left: a job whose keeper still runs
   * is followed again; one that ended meanwhile is recorded from its keeper's status file; one
   * whose keeper is gone (killed, or the host restarted) is recorded executor-restarted. Then job
   * cgroups of no live job are swept.
   */
  static async open(parts: RuntimeParts): Promise<JobRuntime> {
    const { config, clamped } = clampToHost(parts.config, await readHostCapacity());
    if (clamped.length > 0)
      parts.logger.warn({ clamped }, "configured limits above this host's capacity were clamped");
    // Hidden inside every job: the executor's socket directory and configured paths (keys,
    // config). Resolved here so that the launcher's view template masks what the job would
    // really reach. The state directory needs no mask: it is root's alone (JobStore.init), so a
    // job meets a permission error there, and its mount table does not name it.
    const wanted = [dirname(config.socketPath), ...config.maskPaths];
    const resolved = await Promise.all(wanted.map(existingRealPath));
    const maskPaths = [...new Set(resolved.filter((path): path is string => path !== null))];
    const runtime = new JobRuntime({ ...parts, config }, maskPaths);
    await runtime.store.init();
    const stored = await runtime.store.loadAll();
    const adopted = new Set<string>();
    const settling: Promise<unknown>[] = [];
    for (const { record, bytes } of stored) {
      const entry = entryFor(record, bytes);
      runtime.jobs.set(record.id, entry);
      if (record.state !== 'RUNNING') continue;
      const running = await runtime.takeOver(entry);
      if (running) adopted.add(record.id);
      else settling.push(runtime.settleOrphan(entry));
    }
    // Only now are the cgroups of jobs that are gone swept: the orphans' cleanup reads theirs.
    await Promise.all(settling);
    await runtime.sweepStorage(adopted);
    const swept = await parts.cgroups.prepare(adopted);
    if (swept.length > 0)
      parts.logger.warn({ jobs: swept }, 'killed and removed job cgroups of no live job');
    if (adopted.size > 0) parts.logger.info({ jobs: adopted.size }, 'took over running jobs');
    await runtime.applyRetention();
    runtime.retentionTimer = setInterval(
      () => void runtime.applyRetention(),
      RETENTION_INTERVAL_MS,
    ).unref();
    return runtime;
  }

  /**
   * Discards what is left of ended jobs' storage (an image never attached, an older executor's
   * directory) and reports loop devices still backed by images here: each detaches itself once
   * its last user is gone, so one that is still there is held outside any job.
   */
  private async sweepStorage(adopted: ReadonlySet<string>): Promise<void> {
    for (const id of this.jobs.keys()) {
      if (adopted.has(id)) continue;
      await this.store
        .discardStorage(id)
        .catch((error: unknown) =>
          this.logger.error({ job: id, err: error }, 'cannot discard the storage of an ended job'),
        );
    }
    const held = await loopDevicesUnder(this.store.root);
    if (held.length > 0)
      this.logger.warn(
        { devices: held },
        "loop devices still backed by jobs' storage images (held open outside any job)",
      );
  }

  /** Finds the keeper of a job recorded as running and follows the job again; null if gone. */
  private async takeOver(entry: JobEntry): Promise<RunningJob | null> {
    const { id } = entry.summary;
    if ((await readKeeperStatus(this.store.jobDir(id)).catch(() => null)) !== null) return null;
    const identity = await this.store.loadKeeperIdentity(id);
    const link = identity && (await reconnectKeeper(this.store.jobDir(id), identity, this.logger));
    if (!identity || !link) return null;
    const { uid } = await link.job;
    this.uids.claim(uid);
    const running = await RunningJob.adopt(
      this.jobParts(await this.recordOf(entry)),
      link,
      identity,
    );
    entry.running = running;
    this.running += 1;
    entry.liveLog = running.log;
    this.countActive(entry.summary.owner, 1);
    void running.settled.then(() => this.onEnded(entry, uid));
    return running;
  }

  /**
   * Records a job that was running when an earlier executor stopped and whose keeper is gone or
   * does not answer (then it is killed, its job with it: nothing may run that no one accounts for).
   */
  private async settleOrphan(entry: JobEntry): Promise<void> {
    const identity = await this.store.loadKeeperIdentity(entry.summary.id);
    if (identity) await killKeeper(identity);
    const record = await RunningJob.settleWithoutKeeper(this.jobParts(await this.recordOf(entry)));
    this.remember(entry, record);
  }

  private jobParts(record: JobRecord) {
    return {
      logger: this.logger,
      store: this.store,
      cgroup: this.cgroups.existing(record.id),
      record,
    };
  }

  /** Deletes the ended jobs the retention policy no longer keeps: their records and output. */
  async applyRetention(): Promise<string[]> {
    if (this.sweeping) return [];
    this.sweeping = true;
    try {
      const doomed = jobsToDelete(
        [...this.jobs.values()].map((entry) => entry.summary),
        this.config.retention,
        Date.now(),
      );
      for (const id of doomed) {
        // A reader still streaming the job keeps its open files; the kernel frees them after.
        this.jobs.delete(id);
        await this.store
          .remove(id)
          .catch((error: unknown) =>
            this.logger.error({ job: id, err: error }, 'retention: cannot delete a job'),
          );
      }
      if (doomed.length > 0)
        this.logger.info({ deleted: doomed.length }, 'retention: deleted ended jobs');
      return doomed;
    } finally {
      this.sweeping = false;
    }
  }

  /** Jobs with a RunningJob (counted where one is set and cleared, not by a walk of all jobs). */
  get runningCount(): number {
    return this.running;
  }

  /** The configuration in force: the file's, with limits clamped to this host. */
  get config(): Readonly<ExecutorConfig> {
    return this.settings;
  }

  /**
   * Starts a job from a request the op table has checked. Resolves with its record once the
   * program was exec'd. A program that cannot be exec'd throws start-failed (the job is recorded,
   * FAILED with reason start-failed, details.jobId names it).
   */
  start(request: StartRequest): Promise<JobRecord> {
    if (this.closing)
      return Promise.reject(new JobError('failed-precondition', 'the executor is shutting down'));
    const started = this.startJob(request);
    const underWay = started.then(
      () => undefined,
      () => undefined,
    );
    this.startsUnderWay.add(underWay);
    void underWay.then(() => this.startsUnderWay.delete(underWay));
    return started;
  }

  /**
   * Until the starts under way have started their jobs or failed (and cleaned up after
   * themselves), at most STARTS_SETTLE_MS: a drain or close that came meanwhile then finds every
   * job, and no half-made one.
   */
  private async startsSettled(): Promise<void> {
    if (this.startsUnderWay.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, STARTS_SETTLE_MS)));
    await Promise.race([Promise.all(this.startsUnderWay), late]);
    clearTimeout(timer);
  }

  private async startJob({
    spec,
    owner,
    quota,
    limits,
    storageKind,
    timeoutMs,
  }: StartRequest): Promise<JobRecord> {
    // The caps are taken before the first await: concurrent starts cannot all pass the checks.
    const active = this.runningCount + this.starting;
    if (active >= this.config.maxRunningJobs) {
      throw new JobError(
        'resource-exhausted',
        `the executor already runs its maximum of ${this.config.maxRunningJobs} jobs`,
      );
    }
    if (quota && active >= quota.running) {
      throw new JobError(
        'resource-exhausted',
        `the server already runs its maximum of ${quota.running} jobs`,
      );
    }
    if (quota && (this.activeByOwner.get(owner) ?? 0) >= quota.runningPerOwner) {
      throw new JobError(
        'resource-exhausted',
        `${owner} already runs the maximum of ${quota.runningPerOwner} jobs per identity`,
      );
    }
    this.starting += 1;
    this.countActive(owner, 1);
    let counted = true;
    const uncount = () => {
      if (counted) this.starting -= 1;
      counted = false;
    };
    const id = randomBytes(16).toString('hex');
    let uid: number | null = null;
    const workingDir = spec.workingDir ?? JOB_DIR;
    let cgroups: JobCgroupInMaking | null = null;
    let created = false;
    // The keeper comes while the job's directory and first cgroup are made.
    const keeper = connectKeeper(this.launcher, this.logger);
    keeper.catch(() => undefined); // its failure is the launch's to report, once awaited
    let keeperTaken = false;
    try {
      uid = this.uids.acquire();
      const jobUid = uid;
      const record: JobRecord = {
        id,
        owner,
        argv: spec.argv,
        envNames: Object.keys(spec.env ?? {}),
        workingDir,
        limits,
        storageKind,
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
      // The job's directory and the cgroup its init is born into do not depend on each other:
      // make them at once. The directory comes first: its trips to the thread pool are under way
      // while the cgroup is made, which does not yield. The keeper saves the record in it before
      // the job runs: a restart always finds a record for a running job. The other cgroups are
      // made while the keeper clones the init (RunningJob.launch).
      created = true;
      const [files, begun] = await Promise.allSettled([
        this.prepareJobFiles(id, jobUid, storageKind, limits),
        this.ioDevicesFor(limits, storageKind).then((devices) =>
          this.cgroups.begin(id, limits, devices),
        ),
      ]);
      if (begun.status === 'fulfilled') cgroups = begun.value;
      if (files.status === 'rejected') throw files.reason;
      if (begun.status === 'rejected') throw begun.reason;
      const { cgroup: jobCgroup } = begun.value;
      const env = { PATH: JOB_DEFAULT_PATH, HOME: JOB_DIR, ...spec.env };
      const entry = entryFor(record, 0);
      keeperTaken = true;
      const { job, result } = await RunningJob.launch(
        { logger: this.logger, store: this.store, record },
        begun.value,
        keeper,
        {
          uid: jobUid,
          gid: jobUid,
          hostname: `job-${id.slice(0, 12)}`,
          storage: files.value,
          cwd: workingDir,
          tmpSizeBytes: this.config.tmpSizeBytes,
          outputMaxBytes: this.config.maxOutputBytes,
          timeoutMs,
          timeoutGraceMs: this.config.stopGraceMs,
          openFiles: this.config.jobOpenFiles,
          cgroupDirs: jobCgroup.joinDirs.filter((dir) => dir !== jobCgroup.v2Dir),
          cgroup2Dir: jobCgroup.v2Dir,
          argv: spec.argv,
          env: Object.entries(env).map(([name, value]) => `${name}=${value}`),
          record: JSON.stringify(record),
        },
      );
      cgroups = null; // owned by the running job from here on
      entry.running = job;
      this.running += 1;
      entry.liveLog = job.log;
      this.jobs.set(id, entry);
      uncount();
      void job.settled.then(() => this.onEnded(entry, jobUid));
      if (!result.started) {
        await job.settled;
        if (result.error.errno === 'ENOSPC') throw new JobError('resource-exhausted', STATE_FULL);
        throw new JobError(
          'start-failed',
          describeStartError(result.error, spec.argv[0] ?? '', workingDir),
          {
            jobId: id,
            errno: result.error.errno,
            stage: startStage(result.error),
          },
        );
      }
      this.logger.debug({ job: id, owner }, 'job started');
      return structuredClone(record);
    } catch (error) {
      uncount();
      // A keeper that never got its job ends when its connection closes.
      if (!keeperTaken)
        void keeper.then(
          ({ link }) => link.close(),
          () => undefined,
        );
      if (!this.jobs.has(id)) {
        // Failed before the job existed: undo everything, record nothing.
        this.countActive(owner, -1);
        if (uid !== null) this.uids.release(uid);
        await cgroups
          ?.removeMade()
          .catch((cause: unknown) =>
            this.logger.error({ err: cause, job: id }, 'cannot remove cgroup'),
          );
        if (created)
          await this.store
            .remove(id)
            .catch((cause: unknown) =>
              this.logger.error(
                { err: cause, job: id },
                'cannot remove the directory of a job that did not start',
              ),
            );
      }
      if (isDiskFull(error)) throw new JobError('resource-exhausted', STATE_FULL);
      throw error;
    }
  }

  /**
   * The job's state directory, and what its /job needs from the executor: its caps and, on disk,
   * a new image in that directory. In memory, the job's init mounts a tmpfs: nothing to make.
   * Refuses the start while the state filesystem has no room for the job's record and status
   * (and its image).
   */
  private async prepareJobFiles(
    id: string,
    uid: number,
    kind: StorageKind,
    limits: JobLimits,
  ): Promise<KeeperStorage> {
    const bytes = limits.storageBytes;
    // effectiveLimits always sets it; a job without a cap on /job must never start.
    if (bytes === undefined) throw new Error('storage: no size cap');
    const inodes = storageInodes(bytes);
    // The directory is made while the free space is read: an empty directory needs no room worth
    // checking first, and one trip to the thread pool is not waited for after the other.
    const [fs] = await Promise.all([statfs(this.config.stateDir), this.store.createJobDir(id)]);
    if (fs.bavail * fs.bsize < MIN_FREE_STATE_BYTES || (fs.files > 0 && fs.ffree < 16))
      throw new JobError('resource-exhausted', STATE_FULL);
    if (kind === 'memory') return { kind, bytes, inodes, image: null };
    if (fs.bavail * fs.bsize < bytes + MIN_FREE_STATE_BYTES) {
      throw new JobError(
        'resource-exhausted',
        `the executor's state filesystem has no room for ${bytes} bytes of disk storage now`,
      );
    }
    // Looked up once; a failure is tried again at the next request (e2fsprogs installed since).
    this.imageMaker ??= findImageMaker().catch((error: unknown) => {
      this.imageMaker = null;
      throw error;
    });
    const mke2fs = await this.imageMaker;
    const image = this.store.storageImage(id);
    await makeStorageImage(mke2fs, image, { bytes, inodes, uid });
    return { kind, bytes, inodes, image };
  }

  /**
   * The disks io limits apply to: those under the job's filesystems. / (the host's root, read
   * only), and for disk storage the state directory's disk, which holds the image: the loop
   * device does direct IO on it in the job's cgroup. Looked up once: they do not change.
   */
  private async ioDevicesFor(limits: JobLimits, kind: StorageKind): Promise<BlockDevice[]> {
    if (!hasIoLimits(limits)) return [];
    let resolved = this.ioDevices.get(kind);
    if (resolved === undefined) {
      resolved = resolveBlockDevices(kind === 'disk' ? [this.config.stateDir, '/'] : ['/']);
      this.ioDevices.set(kind, resolved);
    }
    const devices = await resolved;
    if (devices.length === 0) {
      throw new JobError(
        'failed-precondition',
        "spec.limits: io limits cannot be applied: no block device is under the job's filesystems on this host",
      );
    }
    return devices;
  }

  private onEnded(entry: JobEntry, uid: number): void {
    if (entry.running) {
      this.remember(entry, entry.running.record);
      this.running -= 1;
    }
    entry.running = null;
    this.countActive(entry.summary.owner, -1);
    this.uids.release(uid);
    this.closeLiveLogIfIdle(entry);
    this.retentionAfterEnd.request();
  }

  private countActive(owner: string, change: 1 | -1): void {
    const count = (this.activeByOwner.get(owner) ?? 0) + change;
    if (count > 0) this.activeByOwner.set(owner, count);
    else this.activeByOwner.delete(owner);
  }

  /** Keeps the summary of an ended job, and its record only when it is small. */
  private remember(entry: JobEntry, record: JobRecord): void {
    const bytes = Buffer.byteLength(JSON.stringify(record));
    Object.assign(entry, entryFor(record, bytes), {
      running: entry.running,
      liveLog: entry.liveLog,
    });
  }

  /** The job's full record: in memory while it runs or when small, else read from disk. */
  private async recordOf(entry: JobEntry): Promise<JobRecord> {
    const inMemory = entry.running?.record ?? entry.record;
    if (inMemory) return inMemory;
    try {
      return await this.store.load(entry.summary.id);
    } catch {
      // Deleted by retention meanwhile, or unreadable: as good as gone.
      throw new JobError('not-found', `job ${entry.summary.id} not found`);
    }
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
  async stop(id: string, graceMs: number): Promise<JobRecord> {
    const entry = this.entry(id);
    if (entry.running) {
      const running = entry.running;
      await running.stop(graceMs);
      // A stop answers once nothing of the job is left (only a watcher's end is hurried).
      await running.settled;
    }
    return structuredClone(await this.recordOf(entry));
  }

  /**
   * Resolves with the job's final record once it has ended and nothing of it is left but its
   * record and output (at once for an ended job).
   */
  async wait(id: string): Promise<JobRecord> {
    const entry = this.entry(id);
    if (entry.running) await entry.running.settled;
    return structuredClone(await this.recordOf(entry));
  }

  /** Whose the job is. */
  ownerOf(id: string): JobOwner {
    return { owner: this.entry(id).summary.owner };
  }

  /** The job's record; for a running job with its usage and output size so far. */
  async get(id: string): Promise<JobRecord> {
    const entry = this.entry(id);
    const record = structuredClone(await this.recordOf(entry));
    const running = entry.running;
    if (running && !running.hasEnded) {
      record.usage = await running.cgroup.readUsage().catch(() => null);
      record.outputBytes = running.log?.size ?? 0;
      record.outputTruncated = running.log?.truncated ?? false;
    }
    return record;
  }

  /**
   * Matching records, oldest first, one page at a time: at most `limit` records and at most
   * LIST_PAGE_BYTES of them encoded, so that a page always fits one frame whatever the argv sizes.
   */
  async list(filter: ListArgs = {}): Promise<ListResult> {
    const matching = [...this.jobs.values()]
      .filter(({ summary }) => filter.owner === undefined || summary.owner === filter.owner)
      // A job ending right now is already final in its record, before its summary catches up.
      .filter(
        (entry) =>
          filter.state === undefined ||
          (entry.running?.record.state ?? entry.summary.state) === filter.state,
      )
      .sort(
        (a, b) =>
          a.summary.createdAt - b.summary.createdAt || a.summary.id.localeCompare(b.summary.id),
      );
    let start = 0;
    if (filter.after !== undefined) {
      const position = matching.findIndex(({ summary }) => summary.id === filter.after);
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
      const entry = matching[index] as JobEntry;
      const { running } = entry;
      const copy = structuredClone(await this.recordOf(entry));
      if (running?.log) copy.outputBytes = running.log.size;
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
    let log = live;
    if (!log) {
      const record = await this.recordOf(entry);
      // Nothing past the offset of an ended job (a watcher that read it all, a job that wrote
      // nothing): the end is the record's, no file need be opened for it.
      if (record.state !== 'RUNNING' && offset === record.outputBytes) return;
      log = await this.openEndedLog(record);
    }
    if (log === null) {
      // A job that failed before its keeper made any output files has no output.
      if (offset > 0)
        throw new JobError(
          'invalid-argument',
          `offset: ${offset} is beyond the end of the output (0 bytes so far)`,
          { field: 'offset' },
        );
      return;
    }
    try {
      yield* log.read(offset, signal);
    } finally {
      if (live) this.closeLiveLogIfIdle(entry);
      else await log.close();
    }
  }

  private async openEndedLog(record: JobRecord): Promise<OutputLog | null> {
    try {
      return await OutputLog.open(this.store.jobDir(record.id), {
        size: record.outputBytes,
        truncated: record.outputTruncated,
        finished: true,
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' && record.state !== 'RUNNING')
        return null;
      throw error;
    }
  }

  /** Output totals for a job whose output has been read to the end. */
  async outputSummary(id: string): Promise<{ outputBytes: number; truncated: boolean }> {
    const entry = this.entry(id);
    const log = entry.running?.log;
    if (log) return { outputBytes: log.size, truncated: log.truncated };
    const record = await this.recordOf(entry);
    return { outputBytes: record.outputBytes, truncated: record.outputTruncated };
  }

  /**
   * Stops every running job (SIGTERM, grace, kill) and waits until each is recorded: for a host
   * shutdown or decommissioning, and the tests. New starts are refused from here on.
   */
  async drain(graceMs = this.config.stopGraceMs): Promise<void> {
    this.closing = true;
    await this.startsSettled();
    const running = [...this.jobs.values()].flatMap((entry) =>
      entry.running ? [entry.running] : [],
    );
    await Promise.all(running.map((job) => job.stop(graceMs).then(() => job.settled)));
  }

  /**
   * Lets go of everything: running jobs carry on under their keepers, for the next executor to
   * take over. Job cgroup parents are removed only when no job is left in them.
   */
  async close(): Promise<void> {
    this.closing = true;
    await this.startsSettled();
    clearInterval(this.retentionTimer);
    this.retentionAfterEnd.cancel();
    this.store.close();
    await this.launcher.close();
    let detached = 0;
    const recording: Promise<unknown>[] = [];
    for (const entry of this.jobs.values()) {
      if (!entry.running) continue;
      // A job whose keeper is already done is recorded first: there is no keeper to hand it to.
      if (entry.running.isFinishing) recording.push(entry.running.settled);
      else {
        entry.running.detach();
        detached += 1;
      }
    }
    await Promise.all(recording);
    if (detached > 0) {
      this.logger.info({ jobs: detached }, 'left running jobs to their keepers');
      return;
    }
    await this.cgroups.close();
  }
}
