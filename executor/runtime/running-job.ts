// One job from launch to its final record: the helper process, the timers, the stop sequence
// (SIGTERM → grace → kill everything in the cgroup) and the clean-up that leaves nothing behind.
import type { Logger } from 'pino';
import type { JobRecord } from '../../shared/job.ts';
import type { JobCgroup } from '../cgroup/cgroup-driver.ts';
import type { ExecutorConfig } from '../config.ts';
import { HelperProcess } from './helper-process.ts';
import type { HelperSpec, StartError, StartResult } from './helper-process.ts';
import { classifyEnd, describeStartError } from './job-end.ts';
import type { StopReason } from './job-end.ts';
import type { JobStore } from './job-store.ts';
import type { OutputLog } from './output-log.ts';

/** Mounting, cloning and exec take milliseconds; a helper stuck longer is killed. */
const START_TIMEOUT_MS = 30_000;

export interface RunningJobParts {
  config: Readonly<ExecutorConfig>;
  logger: Logger;
  store: JobStore;
  cgroup: JobCgroup;
  log: OutputLog;
  record: JobRecord;
  helperSpec: HelperSpec;
}

export class RunningJob {
  readonly record: JobRecord;
  readonly log: OutputLog;
  readonly cgroup: JobCgroup;
  /** Resolves with the final record once the job has ended and everything is cleaned up. */
  readonly ended: Promise<JobRecord>;

  private readonly parts: RunningJobParts;
  private readonly logger: Logger;
  private helper: HelperProcess | null = null;
  private startError: StartError | null = null;
  private stopReason: StopReason | null = null;
  private timeoutTimer: NodeJS.Timeout | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private stopGraceMs = 0;
  private settle!: (ended: Promise<JobRecord>) => void;

  constructor(parts: RunningJobParts) {
    this.parts = parts;
    this.record = parts.record;
    this.log = parts.log;
    this.cgroup = parts.cgroup;
    this.logger = parts.logger.child({ job: parts.record.id });
    this.ended = new Promise((resolve) => (this.settle = resolve));
  }

  /** Starts the helper; resolves when the program was exec'd or failed to be. */
  async launch(): Promise<StartResult> {
    let helper: HelperProcess;
    try {
      helper = await HelperProcess.spawn(
        this.parts.config.helperPath,
        this.parts.helperSpec,
        this.log,
        this.logger,
      );
    } catch (error) {
      this.logger.error({ err: error }, 'cannot spawn the helper');
      const result: StartResult = {
        started: false,
        error: { errno: '', reason: (error as Error).message, stage: 'spawn helper' },
      };
      this.startError = result.error;
      this.settle(this.finish(null));
      return result;
    }
    this.helper = helper;
    this.settle(this.finish(helper));
    if (this.stopReason !== null) this.beginStop(); // a shutdown arrived while we were spawning
    const startTimer = setTimeout(() => {
      this.logger.error('job setup did not finish in time; killing the helper');
      helper.kill();
    }, START_TIMEOUT_MS);
    const result = await helper.started;
    clearTimeout(startTimer);
    if (!result.started) {
      this.startError = result.error;
    } else if (this.record.timeoutMs !== null) {
      this.timeoutTimer = setTimeout(
        () => void this.stop('timed-out', this.parts.config.stopGraceMs),
        this.record.timeoutMs,
      );
    }
    return result;
  }

  /**
   * SIGTERM to the job's process group (through the helper), then after `graceMs` everything in
   * the job's cgroup is killed. Resolves with the final record. A second call only waits.
   */
  stop(reason: StopReason, graceMs: number): Promise<JobRecord> {
    if (this.stopReason === null) {
      this.stopReason = reason;
      this.stopGraceMs = graceMs;
      this.logger.info({ reason, graceMs }, 'stopping job');
      if (this.helper) this.beginStop();
    }
    return this.ended;
  }

  private beginStop(): void {
    this.helper?.signal('SIGTERM');
    this.killTimer = setTimeout(() => void this.killEverything(), this.stopGraceMs);
  }

  private async killEverything(): Promise<void> {
    this.helper?.kill();
    try {
      await this.cgroup.killAll();
    } catch (error) {
      this.logger.error({ err: error }, 'cannot empty the job cgroup');
    }
  }

  private async finish(helper: HelperProcess | null): Promise<JobRecord> {
    const end = helper ? await helper.ended : null;
    clearTimeout(this.timeoutTimer);
    clearTimeout(this.killTimer);
    if (end?.diagnostics)
      this.logger.warn({ diagnostics: end.diagnostics.trim() }, 'helper diagnostics');
    // The namespace died with its init, so the cgroup should already be empty; make sure, because
    // usage must be read and the cgroup removed with nothing left in it.
    const attempt = async <T>(what: string, step: () => Promise<T>, fallback: T): Promise<T> => {
      try {
        return await step();
      } catch (error) {
        this.logger.error({ err: error }, `job clean-up: ${what} failed`);
        return fallback;
      }
    };
    await attempt('kill leftovers', () => this.cgroup.killAll(), undefined);
    const usage = await attempt('read usage', () => this.cgroup.readUsage(), null);
    const oomKilled = await attempt('read oom events', () => this.cgroup.wasOomKilled(), false);
    await attempt('remove cgroup', () => this.cgroup.remove(), undefined);
    await attempt('flush output', () => this.log.flushed(), undefined);
    await attempt(
      'remove work directory',
      () => this.parts.store.removeWorkDir(this.record.id),
      undefined,
    );

    const outcome = classifyEnd({
      startError: this.startError,
      oomKilled,
      stopReason: this.stopReason,
      exitCode: end?.exitCode ?? null,
      signal: end?.signal ?? null,
      helperSignal: end?.helperSignal ?? null,
    });
    const record = this.record;
    Object.assign(record, outcome, {
      endedAt: Date.now(),
      usage,
      outputBytes: this.log.size,
      outputTruncated: this.log.truncated,
      error: this.startError
        ? describeStartError(this.startError, record.argv[0] ?? '', record.workingDir)
        : null,
    });
    await attempt('save record', () => this.parts.store.save(record), undefined);
    // Only now do readers reach the end: whoever read all output and then asks for the job's
    // status sees its final record.
    this.log.finish();
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
}
