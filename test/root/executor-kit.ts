// Shared set-up for the root tests of the job runtime: a real runtime on real cgroups, with its
// own state directory and cgroup name, removed again after the suite.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { CgroupDriver } from '../../executor/cgroup/cgroup-driver.ts';
import { detectCgroupDriver } from '../../executor/cgroup/detect.ts';
import { parseExecutorConfig } from '../../executor/config.ts';
import type { ExecutorConfig } from '../../executor/config.ts';
import { JobRuntime } from '../../executor/runtime/job-runtime.ts';
import { callOp } from '../../executor/socket/op-table.ts';
import type { JobRecord, JobSpec } from '../../shared/job.ts';
import { createLogger } from '../../shared/logger.ts';

/** Everything a test creates carries this prefix, so the leftovers check can find it. */
export const TEST_PREFIX = 'jobworker-test-';

export interface TestRuntime {
  runtime: JobRuntime;
  config: Readonly<ExecutorConfig>;
  close(): Promise<void>;
}

/** Every cgroup directory, in any hierarchy, whose name matches `name` (a `find -name` pattern). */
export function cgroupDirsNamed(name: string): string {
  return execFileSync('find', ['/sys/fs/cgroup', '-maxdepth', '6', '-type', 'd', '-name', name], {
    encoding: 'utf8',
  });
}

/**
 * What a closed executor must not leave: its cgroup parents. One still there means it let go of a
 * job it should have waited for, or its close failed; said here, by the test that left it, with
 * `log` (the executor's), rather than only by the leftovers check at the end of the run.
 */
export function assertCgroupsRemoved(cgroupName: string, log = ''): void {
  const left = cgroupDirsNamed(cgroupName);
  if (left !== '')
    throw new Error(
      `the executor's cgroup parents outlived it:\n${left}${log && `its log:\n${log}`}`,
    );
}

/**
 * `wrapCgroups` lets a test stand between the runtime and the real cgroup driver (to fail a step
 * of it on purpose).
 */
export async function openTestRuntime(
  overrides: Record<string, unknown> = {},
  wrapCgroups: (driver: CgroupDriver) => CgroupDriver = (driver) => driver,
): Promise<TestRuntime> {
  // Under /var/tmp, not /tmp: jobs see the host's /var read-only, so masking the state directory
  // is observable (the host's /tmp is replaced by a private one inside every job).
  const stateDir = await mkdtemp(`/var/tmp/${TEST_PREFIX}`);
  const cgroupName = `${TEST_PREFIX}${randomBytes(4).toString('hex')}`;
  const config = parseExecutorConfig({
    stateDir,
    socketPath: `${stateDir}/run/executor.sock`,
    cgroupName,
    logLevel: 'error',
    ...overrides,
  });
  const logger = createLogger('test-executor', config.logLevel);
  const cgroups = wrapCgroups(await detectCgroupDriver({ name: cgroupName }));
  const runtime = await JobRuntime.open({ config, cgroups, logger });
  return {
    runtime,
    config,
    async close() {
      await runtime.drain(200);
      await runtime.close();
      await rm(stateDir, { recursive: true, force: true });
      assertCgroupsRemoved(cgroupName);
    },
  };
}

/**
 * A start as the executor's socket hands it over: through the op table, the executor's one
 * validator (limits against the configured maxima, defaults filled in).
 */
export function startJob(runtime: JobRuntime, spec: unknown, owner = 'tester'): Promise<JobRecord> {
  return callOp('start', { spec, owner }, runtime);
}

/** A stop through the op table: the grace defaults to the executor's and is checked there. */
export function stopJob(runtime: JobRuntime, id: string, graceMs?: number): Promise<JobRecord> {
  return callOp('stop', graceMs === undefined ? { id } : { id, graceMs }, runtime);
}

export interface Finished {
  record: JobRecord;
  stdout: string;
  stderr: string;
}

/** Starts a job, collects its whole output and waits for its final record. */
export async function runToEnd(
  runtime: JobRuntime,
  spec: JobSpec,
  owner = 'tester',
): Promise<Finished> {
  const started = await startJob(runtime, spec, owner);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  for await (const chunk of runtime.readOutput(started.id, 0)) {
    (chunk.stream === 'stdout' ? out : err).push(Buffer.from(chunk.data));
  }
  const record = await runtime.wait(started.id);
  return { record, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

/** Runs `sh -c script` in a job and returns its stdout; fails the test with stderr on non-zero. */
export async function shell(
  runtime: JobRuntime,
  script: string,
  spec: Partial<JobSpec> = {},
): Promise<Finished> {
  return runToEnd(runtime, { argv: ['sh', '-c', script], ...spec });
}

/** A python3 program that fills /job until a write is refused; prints the errno's name and bytes. */
export const FILL_JOB_DIR = [
  'import errno, os',
  "fd = os.open('/job/fill', os.O_WRONLY | os.O_CREAT)",
  'written = 0',
  'try:',
  '    while True:',
  "        written += os.write(fd, b'x' * 65536)",
  'except OSError as e:',
  '    print(errno.errorcode[e.errno], written, flush=True)',
].join('\n');

/** What the executor and the keeper keep in a job's directory; never anything a job made. */
const JOB_DIR_FILES = new Set([
  'record.json',
  'keeper.id',
  'keeper.status',
  'output.bin',
  'output.idx',
]);

/** Entries of a job's directory in the state directory that are not the executor's or keeper's. */
export async function strangersInJobDir(stateDir: string, id: string): Promise<string[]> {
  return (await readdir(join(stateDir, 'jobs', id))).filter((name) => !JOB_DIR_FILES.has(name));
}

/**
 * Attached loop devices whose backing file's path starts with `prefix`, once they have had a
 * moment to detach (autoclear acts just after the last user is gone).
 */
export async function loopDevicesBackedBy(prefix: string): Promise<string[]> {
  const list = async () => {
    const found: string[] = [];
    for (const name of (await readdir('/sys/block')).filter((entry) => entry.startsWith('loop'))) {
      const backing = await readFile(`/sys/block/${name}/loop/backing_file`, 'utf8').catch(
        () => null,
      );
      if (backing?.startsWith(prefix)) found.push(`${name}: ${backing.trim()}`);
    }
    return found;
  };
  for (let waited = 0; waited < 10_000; waited += 50) {
    if ((await list()).length === 0) return [];
    await sleep(50);
  }
  return list();
}

export function processExists(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
