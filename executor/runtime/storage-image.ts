// The image behind a job's disk-backed /job: an ext4 filesystem in one file in the job's
// root-only directory, made here before the job starts. The job's init reserves its blocks,
// attaches it to a loop device and unlinks it (executor/helper/jobworker-helper.c,
// attach_storage_image): the whole filesystem then goes away with the job's mount namespace, and
// what could be left behind (a start that failed before the attach) is one file.
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { JobError } from '../../shared/errors.ts';
import { checkTrustedExecutable } from '../trusted-executable.ts';

const run = promisify(execFile);

/**
 * ext4's block size in the image; its size is a whole number of these. The helper gives the loop
 * device the same logical block size (STORAGE_BLOCK_BYTES; helper-constants.test.ts).
 */
export const STORAGE_BLOCK_BYTES = 4096;
/** Where Debian (and most distributions) keep e2fsprogs' mke2fs. */
const MKE2FS_PATHS = ['/usr/sbin/mke2fs', '/sbin/mke2fs'];
const LOOP_CONTROL = '/dev/loop-control';
/** mke2fs on a sparse file takes milliseconds; one stuck this long is killed. */
const MKE2FS_TIMEOUT_MS = 30_000;

/**
 * The trusted mke2fs that makes images, or a JobError saying why this host cannot give jobs
 * disk storage (no e2fsprogs, or no loop devices: a sandbox without /dev/loop-control).
 */
export async function findImageMaker(): Promise<string> {
  let mke2fs: string | undefined;
  for (const path of MKE2FS_PATHS) {
    if (
      await access(path, constants.X_OK).then(
        () => true,
        () => false,
      )
    ) {
      mke2fs = path;
      break;
    }
  }
  if (mke2fs === undefined)
    throw unavailable(`mke2fs (e2fsprogs) is not installed (${MKE2FS_PATHS.join(', ')})`);
  try {
    await access(LOOP_CONTROL, constants.R_OK | constants.W_OK);
  } catch (error) {
    throw unavailable(`${LOOP_CONTROL}: ${(error as NodeJS.ErrnoException).code ?? 'unusable'}`);
  }
  // Root runs it: it and every directory above it must be root's alone, as for the helper.
  return checkTrustedExecutable(mke2fs);
}

function unavailable(why: string): JobError {
  return new JobError(
    'failed-precondition',
    `storageKind: disk storage is not available on this executor: ${why}`,
  );
}

/**
 * Makes a new ext4 image of `bytes` (sparse: the init reserves its blocks) with at least `inodes`
 * inodes, its root directory owned by the job. No journal (nothing survives a crash anyway) and
 * no reserved blocks (the job gets the whole cap).
 */
export async function makeStorageImage(
  mke2fs: string,
  path: string,
  storage: { bytes: number; inodes: number; uid: number },
): Promise<void> {
  const file = await open(path, 'wx', 0o600);
  try {
    await file.truncate(storage.bytes);
  } finally {
    await file.close();
  }
  const blocks = Math.floor(storage.bytes / STORAGE_BLOCK_BYTES);
  await run(
    mke2fs,
    [
      '-q',
      '-F',
      '-t',
      'ext4',
      '-O',
      '^has_journal',
      '-b',
      String(STORAGE_BLOCK_BYTES),
      '-m',
      '0',
      '-N',
      String(storage.inodes),
      '-E',
      `root_owner=${storage.uid}:${storage.uid},lazy_itable_init=1,nodiscard`,
      '--',
      path,
      String(blocks),
    ],
    { env: {}, timeout: MKE2FS_TIMEOUT_MS, killSignal: 'SIGKILL' },
  );
}

/**
 * Loop devices still backed by a file under `root` (an image of a job's disk storage). Each
 * detaches itself once its last user is gone (autoclear); one found at start is held by a mount
 * or an open file outside any job the executor knows, and is only reported.
 */
export async function loopDevicesUnder(root: string, sysRoot = '/sys'): Promise<string[]> {
  const block = join(sysRoot, 'block');
  const names = await readdir(block).catch(() => [] as string[]);
  const found: string[] = [];
  for (const name of names.filter((entry) => /^loop\d+$/.test(entry))) {
    const backing = await readFile(join(block, name, 'loop/backing_file'), 'utf8').catch(() => '');
    if (backing.startsWith(`${root}/`)) found.push(`/dev/${name} (${backing.trim()})`);
  }
  return found;
}
