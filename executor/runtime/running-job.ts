// One job from its start, or from the moment a restarted executor finds its keeper again, to its
// final record. The keeper (the C helper) owns the job: it drains the output to disk, enforces the
// timeout and carries out stops, and records the end in keeper.status. This side launches or
// re-attaches to it, follows its size notices for live readers, asks it to stop, and when it is
// done turns its status and the cgroup's accounting into the record, leaving nothing behind.
import type { Logger } from 'pino';
import type { JobRecord } from '../../shared/job.ts';
import type { JobCgroup, JobCgroupInMaking } from '../cgroup/cgroup-driver.ts';
import { classifyEnd, describeStartError } from './job-end.ts';
import type { JobStore } from './job-store.ts';
import { killKeeper } from './keeper-link.ts';
import type {
  ConnectedKeeper,
  KeeperIdentity,
  KeeperLink,
  KeeperSpec,
  StartResult,
} from './keeper-link.ts';
import { parseKeeperStatus, readKeeperStatus } from './keeper-status.ts';
import type { KeeperStatus } from './keeper-status.ts';
import { OutputLog } from './output-log.ts';

/** Mounting, cloning and exec take milliseconds; a keeper stuck longer is killed. */
const START_TIMEOUT_MS = 30_000;
/** How long past a stop's grace a keeper may take to report the end before it is killed. */
const STOP_MARGIN_MS = 10_000;
/** How long a keeper told to give up a start may take to end before it is killed. */
const ABANDON_TIMEOUT_MS = 5_000;

export interface RunningJobParts {
  logger: Logger;
  store: JobStore;
  cgroup: JobCgroup;
  record: JobRecord;
}

export class RunningJob {
  readonly record: JobRecord;
  readonly cgroup: JobCgroup;
  /**
   * Resolves with the final record once the job has ended: its output is complete for readers
   * and its record final. Its cgroups, what is left of its storage and the record's save follow
   * (`settled`).
   */
  readonly ended: Promise<JobRecord>;
  /** Resolves once nothing of the ended job is left but its record and output. */
  readonly settled: Promise<void>;

  private readonly parts: RunningJobParts;
  private readonly logger: Logger;
  private readonly jobDir: string;
  private link: KeeperLink | null = null;
  private identity: KeeperIdentity | null = null;
  private outputLog: OutputLog | null = null;
  private detached = false;
  /** Started by this executor: none of an older version's leftovers can be in its directory. */
  private launchedHere = false;
  private finishing = false;
  private stopRequested = false;
  private watchdog: NodeJS.Timeout | undefined;
  private settle!: (ended: Promise<JobRecord>) => void;
  private cleanedUp!: () => void;

  private constructor(parts: RunningJobParts) {
    this.parts = parts;
    this.record = parts.record;
    this.cgroup = parts.cgroup;
    this.logger = parts.logger.child({ job: parts.record.id });
    this.jobDir = parts.store.jobDir(parts.record.id);
    this.ended = new Promise((resolve) => (this.settle = resolve));
    this.settled = new Promise((resolve) => (this.cleanedUp = resolve));
  }

  /** The job's output log; null only before a launched job's keeper has created it. */
  get log(): OutputLog | null {
    return this.outputLog;
  }

  /**
   * Gives a new job to its keeper (asked for with connectKeeper), which clones the job's init
   * and saves the job's record and its own identity (keeper.id, so that a restarted executor
   * can find it again) while the rest of its cgroups are made here. The init reads that they
   * are ready itself, joins them and sets the job up; the job runs only once the record is
   * saved too. Resolves when the program was exec'd or failed to be.
   * Cgroups that cannot be made fail the launch itself, with nothing of the job left running:
   * the caller removes them and the job's directory, as for a start that never began.
   */
  static async launch(
    parts: Omit<RunningJobParts, 'cgroup'>,
    cgroups: JobCgroupInMaking,
    keeper: Promise<ConnectedKeeper>,
    spec: KeeperSpec,
  ): Promise<{ job: RunningJob; result: StartResult }> {
    const jobDir = parts.store.jobDir(parts.record.id);
    let launched: ConnectedKeeper | null = null;
    let keeperError: unknown = null;
    try {
      launched = await keeper;
      launched.link.give(jobDir, spec);
    } catch (error) {
      keeperError = error;
    }
    try {
      await cgroups.makeTheRest();
    } catch (error) {
      if (launched) await abandon(launched);
      throw error;
    }
    const job = new RunningJob({ ...parts, cgroup: cgroups.cgroup });
    job.launchedHere = true;
    if (!launched) {
      job.logger.error({ err: keeperError }, 'cannot start the job keeper');
      const result: StartResult = {
        started: false,
        error: { errno: '', reason: (keeperError as Error).message, stage: 'start keeper' },
      };
      job.settle(job.finish(result));
      return { job, result };
    }
    launched.link.cgroupsReady();
    job.link = launched.link;
    job.identity = launched.identity;
    const startTimer = setTimeout(() => {
      job.logger.error('job setup did not finish in time; killing its keeper');
      void killKeeper(launched.identity);
    }, START_TIMEOUT_MS);
    const result = await launched.link.started;
    clearTimeout(startTimer);
    if (result.started) job.follow(launched.link, OutputLog.follow(job.jobDir));
    job.settle(job.whenKeeperDone(launched.link, result.started ? null : result));
    return { job, result };
  }

  /** Takes over a job whose keeper a restarted executor found again. */
  static async adopt(
    parts: RunningJobParts,
    link: KeeperLink,
    identity: KeeperIdentity,
  ): Promise<RunningJob> {
    const job = new RunningJob(parts);
    job.link = link;
    job.identity = identity;
    // What the keeper stored before this executor came is committed at once: the file's size.
    job.follow(link, await OutputLog.open(job.jobDir, { truncated: false, finished: false }));
    job.settle(job.whenKeeperDone(link, null));
    return job;
  }

  /**
   * Records a job whose keeper is gone: it ended while no executor ran (its status says how), or
   * its keeper was killed or the host restarted (no status: the end is unknown).
   */
  static async settleWithoutKeeper(parts: RunningJobParts): Promise<JobRecord> {
    const job = new RunningJob(parts);
    const record = await job.finish(null);
    await job.settled;
    return record;
  }

  /** Follows the log the keeper writes: keeps its committed size up to date. */
  private follow(link: KeeperLink, log: OutputLog): void {
    this.outputLog = log;
    link.onSize = (bytes, truncated) => this.outputLog?.grow(bytes, truncated);
    link.watch();
  }

  private async whenKeeperDone(
    link: KeeperLink,
    startFailure: StartResult | null,
  ): Promise<JobRecord> {
    // From the keeper's word that the job ended, not its exit after: the status came with it.
    const { status } = await link.done;
    clearTimeout(this.watchdog);
    if (this.detached) return new Promise<JobRecord>(() => undefined); // another executor's now
    this.finishing = true;
    return this.finish(startFailure, status);
  }

  /**
   * SIGTERM to the job's process group (through the keeper), then after `graceMs` everything of
   * the job is killed. Resolves with the final record. A second call may shorten the grace.
   */
  stop(graceMs: number): Promise<JobRecord> {
    if (this.link) {
      this.logger.info({ graceMs }, 'stopping job');
      this.stopRequested = true;
      this.link.stop(graceMs);
      clearTimeout(this.watchdog);
      // A keeper that does not report the end in time is killed, and its job with it.
      this.watchdog = setTimeout(() => void this.killHard(), graceMs + STOP_MARGIN_MS);
    }
    return this.ended;
  }

  /** True once the record is final (the rest of the clean-up may still be under way). */
  get hasEnded(): boolean {
    return this.record.state !== 'RUNNING';
  }

  /** True once the keeper is done and the end is being recorded: nothing is left to hand over. */
  get isFinishing(): boolean {
    return this.finishing;
  }

  /** Lets go of the keeper, which carries on with the job (the executor is stopping). */
  detach(): void {
    this.detached = true;
    clearTimeout(this.watchdog);
    this.link?.close();
    void this.outputLog?.close();
  }

  private async killHard(): Promise<void> {
    this.logger.error('the job keeper did not report the end of a stop; killing it');
    if (this.identity) await killKeeper(this.identity);
    await this.cgroup
      .killAll()
      .catch((error: unknown) => this.logger.error({ err: error }, 'cannot empty the job cgroup'));
  }

  /**
   * The final record, from the status the keeper sent as it ended (`reported`), or else its
   * status file, when there is one. A keeper that closed its channel without one was killed: its
   * job died with it (the init's parent-death signal) and how it ended is unknown.
   */
  private async finish(
    startFailure: StartResult | null,
    reported: string | null = null,
  ): Promise<JobRecord> {
    const attempt = async <T>(what: string, step: () => Promise<T>, fallback: T): Promise<T> => {
      try {
        return await step();
      } catch (error) {
        this.logger.error({ err: error }, `job clean-up: ${what} failed`);
        return fallback;
      }
    };
    const [status, [usage, oomKilled]] = await Promise.all([
      attempt('read keeper status', () => this.keeperStatus(reported), null),
      (async () => {
        // The job's processes died with its init; make sure before the cgroup is read.
        await attempt('kill leftovers', () => this.cgroup.killAll(), undefined);
        return Promise.all([
          attempt('read usage', () => this.cgroup.readUsage(), null),
          attempt('read oom events', () => this.cgroup.wasOomKilled(), false),
        ]);
      })(),
    ]);

    const record = this.record;
    const outcome = this.outcome(status, startFailure, oomKilled);
    if (outcome.endReason === 'executor-restarted')
      this.logger.warn({ error: outcome.error }, 'job keeper lost');
    Object.assign(record, outcome, {
      usage,
      outputBytes: status?.outputBytes ?? this.outputLog?.size ?? record.outputBytes,
      outputTruncated: status?.truncated ?? this.outputLog?.truncated ?? record.outputTruncated,
      endedAt: status?.endedAt ?? Date.now(),
    });
    // Only now do readers reach the end: whoever read all output and then asks for the job's
    // status sees its final record.
    this.outputLog?.finish(record.outputBytes, record.outputTruncated);
    // The rest is not on anyone's way: the answer does not wait for it. The record's save needs
    // no sync: a crash before it leaves the keeper's status file to say the same at the next start.
    void (async () => {
      await attempt('remove cgroup', () => this.cgroup.remove(), undefined);
      // /job went with the job's mount namespace; at most its unused image is left (none for
      // a job in memory that this executor started).
      if (this.record.storageKind === 'disk' || !this.launchedHere) {
        await attempt(
          'discard storage',
          () => this.parts.store.discardStorage(this.record.id),
          undefined,
        );
      }
      // A full state disk must not lose the end: the store keeps trying until it is saved.
      await this.parts.store.saveOrRetry(record);
      this.cleanedUp();
    })();
    this.logger.info(
      {
        state: record.state,
        endReason: record.endReason,
        exitCode: record.exitCode,
        signal: record.signal,
      },
      'job ended',
    );
    return record;
  }

  /** The status the keeper sent as it ended (its file's text, so no read), else its file. */
  private async keeperStatus(reported: string | null): Promise<KeeperStatus | null> {
    if (reported !== null) {
      try {
        return parseKeeperStatus(reported);
      } catch (error) {
        this.logger.warn({ err: error }, 'a keeper sent a bad status; reading its file');
      }
    }
    return readKeeperStatus(this.jobDir);
  }

  private outcome(
    status: KeeperStatus | null,
    startFailure: StartResult | null,
    oomKilled: boolean,
  ): Partial<JobRecord> {
    const startError =
      status?.result.kind === 'start-failed'
        ? status.result.error
        : startFailure && !startFailure.started
          ? startFailure.error
          : null;
    if (status === null && startError === null) {
      return {
        state: 'FAILED',
        endReason: 'executor-restarted',
        exitCode: null,
        signal: null,
        error: this.stopRequested
          ? 'the job keeper was killed during a stop; the job was killed with it'
          : "the job's keeper was gone when the executor looked for it (the host restarted, or the keeper was killed); the job was killed with it and its exit status is unknown",
      };
    }
    const outcome = classifyEnd({
      startError,
      oomKilled,
      stopReason: status?.stop ?? null,
      exitCode: status?.result.kind === 'exited' ? status.result.code : null,
      signal: status?.result.kind === 'signaled' ? status.result.signal : null,
    });
    return {
      ...outcome,
      error: startError
        ? describeStartError(startError, this.record.argv[0] ?? '', this.record.workingDir)
        : null,
    };
  }
}

/** Ends a keeper given a start that will not happen, and waits (bounded) until it has. */
async function abandon({ link, identity }: ConnectedKeeper): Promise<void> {
  const timer = setTimeout(() => void killKeeper(identity), ABANDON_TIMEOUT_MS);
  await link.abandon();
  clearTimeout(timer);
}
