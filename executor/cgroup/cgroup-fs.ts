// The only code that touches cgroup files. Every path is checked against the executor's own
// cgroup directories (one per hierarchy) before use, so a bug elsewhere cannot make the root
// executor write into a cgroup it does not own: `/`, `..`, relative paths and anything not strictly
// below one of those roots are refused before any system call.
//
// Reads (and existence checks) are synchronous: a cgroup file is made by the kernel from memory
// when read, never waits for a disk, and takes microseconds, while each asynchronous read costs
// four trips through libuv's thread pool (open, fstat, read, close). A job's start and end read
// a dozen of them; done synchronously, the executor spends about a quarter less CPU per job.
// So are mkdir and the writes into a job's new cgroup (`fresh`): no process is in it yet, so
// no write can start memory reclaim or wait for one (they can wait for the kernel's cgroup_mutex,
// which a process migration elsewhere on the host holds for an RCU grace period: milliseconds).
// So is rmdir: the kernel removes an empty cgroup's files from memory and leaves the rest of its
// teardown to a work queue; while it still holds on to the cgroup, rmdir fails with EBUSY at once
// (retried after a sleep, by the caller). A job's end removes a directory in each of up to six
// hierarchies: synchronously that takes half the CPU that six trips to the thread pool took.
// Other writes stay asynchronous: a limit lowered under a cgroup's usage starts reclaim.
import {
  accessSync,
  closeSync,
  constants,
  mkdirSync,
  openSync,
  readFileSync,
  rmdirSync,
  writeSync,
} from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { posix } from 'node:path';

/** One limit write: the file (relative to the cgroup), its value, and the limit it came from. */
export type FileWrite = readonly [file: string, value: string, limit?: string];

/** A statistics file and how to read it; a missing file means the kernel does not keep it. */
export interface StatFile<T> {
  file: string;
  parse: (text: string) => T;
}

/** The same statistic as v1 and v2 name it. */
export interface VersionedStat<T> {
  v1: StatFile<T>;
  v2: StatFile<T>;
}

/** A failed cgroup file operation; errno is the kernel's code (EBUSY, ENOENT, …). */
export class CgroupFsError extends Error {
  readonly errno: string;
  readonly path: string;

  constructor(message: string, errno: string, path: string) {
    super(message);
    this.name = 'CgroupFsError';
    this.errno = errno;
    this.path = path;
  }
}

export function errnoOf(error: unknown): string | undefined {
  if (error instanceof CgroupFsError) return error.errno;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * The number after `key ` in a flat-keyed cgroup file (cpu.stat, memory.events, cgroup.events,
 * memory.oom_control); 0 when absent or not a number.
 */
export function keyedValue(text: string, key: string): number {
  for (const line of text.split('\n')) {
    const [name, value] = line.trim().split(/\s+/);
    if (name === key) {
      const n = Number(value);
      return Number.isFinite(n) ? n : 0;
    }
  }
  return 0;
}

/** Files the executor may write in its own cgroup (not below it): only v2 delegation needs one. */
const OWN_CGROUP_WRITABLE = new Set(['cgroup.subtree_control']);
const EINTR_RETRIES = 10;

export class CgroupFs {
  readonly roots: readonly string[];

  /** roots: the executor's own cgroup directory in each hierarchy it uses. */
  constructor(roots: readonly string[]) {
    for (const root of roots) {
      if (!isCleanAbsolute(root) || root === '/') {
        throw new Error(`cgroup: refusing cgroup root ${JSON.stringify(root)}`);
      }
    }
    this.roots = [...roots];
  }

  /**
   * Throws unless path is absolute, normalized and strictly below one of the roots. Writes to files
   * of a root itself are limited to OWN_CGROUP_WRITABLE.
   */
  checkPath(path: string, use: 'read' | 'write' | 'dir'): void {
    if (!isCleanAbsolute(path)) refusePath(path, use, 'not a clean absolute path');
    if (!this.roots.some((r) => path.startsWith(`${r}/`))) {
      refusePath(path, use, 'not below the executor’s own cgroups');
    }
    // A directory strictly below a root is one of ours; a file directly in a root belongs to the
    // executor's own cgroup, which it may only delegate from.
    const inOwnCgroup = this.roots.includes(posix.dirname(path));
    if (use === 'write' && inOwnCgroup && !OWN_CGROUP_WRITABLE.has(posix.basename(path))) {
      refusePath(path, use, 'that is the executor’s own cgroup, not one it created');
    }
  }

  async read(path: string): Promise<string> {
    this.checkPath(path, 'read');
    return fsCall(`read ${path}`, path, () => readFileSync(path, 'utf8'));
  }

  /** Like read, but a missing file is undefined: stat files differ between kernels. */
  async readOptional(path: string): Promise<string | undefined> {
    this.checkPath(path, 'read');
    const read = () => readFileSync(path, 'utf8');
    return fsCall(`read ${path}`, path, read, { errno: 'ENOENT', fallback: undefined });
  }

  async exists(path: string): Promise<boolean> {
    this.checkPath(path, 'read');
    const found = () => {
      accessSync(path, constants.F_OK);
      return true;
    };
    return fsCall(`look for ${path}`, path, found, { errno: 'ENOENT', fallback: false });
  }

  /**
   * Writes value with one write(2) and without O_CREAT/O_TRUNC, as cgroup files expect;
   * synchronously when `fresh`: only into a cgroup no process is in yet (see the top).
   */
  async write(path: string, value: string, { fresh = false } = {}): Promise<void> {
    this.checkPath(path, 'write');
    if (value.includes('\0')) throw new Error(`cgroup: refusing NUL in value for ${path}`);
    const writeNow = () => {
      const fd = openSync(path, constants.O_WRONLY);
      try {
        writeSync(fd, value);
      } finally {
        closeSync(fd);
      }
    };
    await fsCall(`write ${JSON.stringify(value)} to ${path}`, path, () =>
      fresh ? writeNow() : writeFile(path, value, { flag: constants.O_WRONLY }),
    );
  }

  /** Creates a cgroup directory; returns false when it already existed. */
  async mkdir(path: string): Promise<boolean> {
    this.checkPath(path, 'dir');
    const create = () => {
      mkdirSync(path);
      return true;
    };
    return fsCall(`create ${path}`, path, create, { errno: 'EEXIST', fallback: false });
  }

  /** Removes a cgroup directory; returns false when it did not exist. */
  async rmdir(path: string): Promise<boolean> {
    this.checkPath(path, 'dir');
    const remove = () => {
      rmdirSync(path);
      return true;
    };
    return fsCall(`remove ${path}`, path, remove, { errno: 'ENOENT', fallback: false });
  }

  /** Names of the child cgroups of path; none when path does not exist. */
  async childCgroups(path: string): Promise<string[]> {
    this.checkPath(path, 'dir');
    const list = async () => {
      const entries = await readdir(path, { withFileTypes: true });
      return entries.filter((e) => e.isDirectory()).map((e) => e.name);
    };
    return fsCall(`list ${path}`, path, list, { errno: 'ENOENT', fallback: [] });
  }
}

function refusePath(path: string, use: string, why: string): never {
  throw new Error(`cgroup: refusing ${use} of ${JSON.stringify(path)}: ${why}`);
}

function isCleanAbsolute(path: string): boolean {
  if (!path.startsWith('/') || path.includes('\0')) return false;
  if (path === '/') return true;
  const segments = path.slice(1).split('/');
  return segments.every((s) => s !== '' && s !== '.' && s !== '..');
}

/**
 * Runs one file operation (synchronous or not), retrying EINTR. The error it throws names the operation, the file
 * and the value; an error with the `tolerated` errno (a file already as wanted) gives `fallback`.
 */
async function fsCall<T>(
  what: string,
  path: string,
  op: () => T | Promise<T>,
  tolerated?: { errno: string; fallback: T },
): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await op();
    } catch (error) {
      const errno = errnoOf(error) ?? 'EIO';
      if (errno === 'EINTR' && attempt < EINTR_RETRIES) continue;
      if (tolerated !== undefined && errno === tolerated.errno) return tolerated.fallback;
      const reason = error instanceof Error ? error.message.replace(/,.*$/, '') : String(error);
      throw new CgroupFsError(`cgroup: cannot ${what}: ${reason}`, errno, path);
    }
  }
}
