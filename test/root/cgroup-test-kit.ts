// Shared by the cgroup root tests: real child processes started gated (so the test can put them
// into a job's cgroups before they run), and cleanup of everything below the test's unique
// instance name, independent of the driver under test. Ends only processes it started, by pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { JobCgroup } from '../../executor/cgroup/cgroup-driver.ts';
import { findHierarchies } from '../../executor/cgroup/detect.ts';

export const MiB = 1024 * 1024;

export function uniqueInstanceName(): string {
  return `jobworker-test-${randomBytes(4).toString('hex')}`;
}

export function newJobId(): string {
  return randomBytes(16).toString('hex');
}

/** `<own cgroup>/<name>` in every mounted hierarchy, worked out without the driver. */
export async function parentDirsOf(name: string): Promise<string[]> {
  const found = findHierarchies(
    await readFile('/proc/self/mountinfo', 'utf8'),
    await readFile('/proc/self/cgroup', 'utf8'),
  );
  return [...found.v1, ...(found.v2 ? [found.v2] : [])].map((h) => join(h.ownDir, name));
}

/** The job directories below the test's parents, in every hierarchy. */
export async function jobDirsOf(name: string): Promise<string[]> {
  const found: string[] = [];
  for (const parent of await parentDirsOf(name)) {
    if (!existsSync(parent)) continue;
    for (const entry of await readdir(parent, { withFileTypes: true })) {
      if (entry.isDirectory()) found.push(join(parent, entry.name));
    }
  }
  return found.sort();
}

/**
 * Removes whatever a failed test or a broken driver left below `<own>/<name>` (job directories
 * first, then the parents), and returns the directories that still exist afterwards.
 */
export async function removeLeftovers(name: string): Promise<string[]> {
  for (const dir of await jobDirsOf(name)) await rmdirRetry(dir);
  for (const parent of await parentDirsOf(name)) if (existsSync(parent)) await rmdirRetry(parent);
  return (await parentDirsOf(name)).filter((d) => existsSync(d));
}

/** rmdir of a cgroup says EBUSY for a moment after its last process died. */
async function rmdirRetry(dir: string): Promise<void> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      await rmdir(dir);
      return;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || attempt > 200) throw error;
      await sleep(10);
    }
  }
}

const started = new Set<ChildProcess>();

export interface GatedChild {
  pid: number;
  /** Resolves with the signal name (or exit code) the process ended with. */
  exited: Promise<NodeJS.Signals | number | null>;
  /** Puts the process into each directory's cgroup.procs, as the helper does for itself. */
  enter(dirs: readonly string[]): Promise<void>;
  /** Lets the script go on. */
  release(): void;
}

/** Starts `sh -c 'read _; <script>'`: it waits for one line on stdin before it goes on. */
export function startGated(script: string): GatedChild {
  const child = spawn('sh', ['-c', `read _; ${script}`], { stdio: ['pipe', 'ignore', 'ignore'] });
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start sh');
  started.add(child);
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.on('exit', (code, signal) => {
      started.delete(child);
      resolve(signal ?? code);
    }),
  );
  return {
    pid,
    exited,
    async enter(dirs) {
      for (const dir of dirs) await writeFile(join(dir, 'cgroup.procs'), String(pid));
    },
    release() {
      child.stdin.end('go\n');
    },
  };
}

/** SIGKILLs the processes this test file started that have not exited yet, by pid. */
export function killStartedChildren(): void {
  for (const child of started) {
    try {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

/** Waits until the process has exec'd the named program (its work before that is done). */
/** For after.each: kills and removes the jobs a test left (it failed part-way), emptying the list. */
export async function removeJobs(jobs: JobCgroup[]): Promise<void> {
  killStartedChildren();
  for (const job of jobs.splice(0)) {
    try {
      await job.killAll();
    } finally {
      await job.remove();
    }
  }
}

export async function waitForProgram(pid: number, comm: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while ((await readFile(`/proc/${pid}/comm`, 'utf8')).trim() !== comm) {
    if (Date.now() > deadline) throw new Error(`pid ${pid} did not get to ${comm} in ${ms} ms`);
    await sleep(20);
  }
}

export async function procsIn(dirs: readonly string[]): Promise<string[]> {
  const all: string[] = [];
  for (const dir of dirs) {
    all.push(...(await readFile(join(dir, 'cgroup.procs'), 'utf8')).split('\n').filter(Boolean));
  }
  return all;
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  const cancel = new AbortController();
  const timeout = sleep(ms, undefined, { signal: cancel.signal }).then(() => {
    throw new Error(`timed out after ${ms} ms waiting for ${what}`);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    cancel.abort();
  }
}

export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error('needs root: it creates real cgroups and moves its own children into them');
  }
}
