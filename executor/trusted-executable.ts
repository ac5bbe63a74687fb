// Root runs the helper for every job, so whoever can change that file, or rename or replace any
// directory on the way to it, runs code as root. A program root runs is trusted only if the file
// and every directory its path passes through (symbolic links followed, each link checked too)
// are root's and writable by no one else: not by group, not by others, sticky or not. The
// executor checks at start, and before each launch, since a careless chmod can make a path that
// was safe at start unsafe later.
import { lstat, readlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';

/** Links followed before a path counts as a loop (the kernel's own limit). */
const MAX_LINKS = 40;

export class UntrustedExecutableError extends Error {
  /** The file, directory or link that failed the check. */
  readonly offendingPath: string;
  /** What is wrong with it: "does not exist", "is owned by uid 1000, not root", … */
  readonly problem: string;

  constructor(executable: string, offendingPath: string, problem: string) {
    super(
      `${executable}: ${offendingPath} ${problem}; root runs this program, so it and every ` +
        `directory above it must be owned by root and writable by no one else`,
    );
    this.name = 'UntrustedExecutableError';
    this.offendingPath = offendingPath;
    this.problem = problem;
  }
}

function writableByOthers(info: Stats): boolean {
  return (info.mode & 0o022) !== 0;
}

function mode(info: Stats): string {
  return `0${(info.mode & 0o7777).toString(8)}`;
}

/**
 * Resolves with the path as checked (links resolved) when `executable` is a regular, executable
 * file that root owns, reached only through directories and links root owns, none writable by
 * group or others. Otherwise throws UntrustedExecutableError naming the first offending path.
 */
export async function checkTrustedExecutable(executable: string): Promise<string> {
  const refuse = (at: string, problem: string) =>
    new UntrustedExecutableError(executable, at, problem);
  if (!isAbsolute(executable)) throw refuse(executable, 'is not an absolute path');
  const inspect = async (at: string) => {
    try {
      return await lstat(at);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      throw refuse(at, code === 'ENOENT' ? 'does not exist' : `cannot be examined (${code})`);
    }
  };
  const checkDirectory = (at: string, info: Stats) => {
    if (!info.isDirectory()) throw refuse(at, 'is not a directory');
    if (info.uid !== 0) throw refuse(at, `is owned by uid ${info.uid}, not root`);
    if (writableByOthers(info)) throw refuse(at, `is writable by group or others (${mode(info)})`);
  };

  checkDirectory('/', await inspect('/'));
  let current = '/';
  let pending = executable.split('/').filter((part) => part !== '');
  let links = 0;
  while (pending.length > 0) {
    const name = pending.shift() ?? '';
    if (name === '.') continue;
    // `current` is the resolved path walked so far: its parent has been checked already.
    if (name === '..') {
      current = dirname(current);
      continue;
    }
    const at = join(current, name);
    const info = await inspect(at);
    if (info.isSymbolicLink()) {
      // A link's own mode means nothing; who may replace it is decided by its directory (checked).
      if (info.uid !== 0) throw refuse(at, `is a symbolic link owned by uid ${info.uid}, not root`);
      links += 1;
      if (links > MAX_LINKS) throw refuse(executable, 'has too many levels of symbolic links');
      const target = await readlink(at);
      if (isAbsolute(target)) current = '/';
      pending = [...target.split('/').filter((part) => part !== ''), ...pending];
      continue;
    }
    if (pending.length > 0) {
      checkDirectory(at, info);
      current = at;
      continue;
    }
    if (!info.isFile()) throw refuse(at, 'is not a regular file');
    if (info.uid !== 0) throw refuse(at, `is owned by uid ${info.uid}, not root`);
    if (writableByOthers(info)) throw refuse(at, `is writable by group or others (${mode(info)})`);
    if ((info.mode & 0o111) === 0) throw refuse(at, `is not executable (${mode(info)})`);
    return at;
  }
  throw refuse(executable, 'names a directory, not a program');
}
