// Where a job's files land on an ext2/3/4 state disk. The allocator puts a new directory's inode
// in its parent's block group and a file's in its directory's, so every job's directory and
// files would crowd one group: the one `jobs/` sits in. On ext4 without a journal that is costly:
// each new inode skips every free inode of its group deleted in the last seconds to minutes
// (recently_deleted() in fs/ext4/ialloc.c, one inode-table lookup each), and a crowded group
// holds thousands of them (the records replaced, the sockets unlinked, the jobs retention
// deleted). Measured here at 80 starts a second, that scan was more CPU than the rest of a job's
// file work, and the most of any one thing on the start path.
//
// The top-of-hierarchy attribute (`chattr +T`, FS_TOPDIR_FL) makes the allocator place each
// directory made in `jobs/` as it places top-level ones: spread over the groups, each in one with
// room to spare. Node has no ioctl, so chattr (e2fsprogs, on every Debian system) sets it, once
// per start, after the check every program root runs passes (trusted-executable.ts). Other file
// systems (xfs, btrfs, tmpfs) have no such attribute and no such scan: the attempt fails, the
// executor says so once, and nothing else changes.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { checkTrustedExecutable } from '../trusted-executable.ts';

const run = promisify(execFile);
const CHATTR = '/usr/bin/chattr';

/** Marks `dir` (root's own, made by the store) as a top of directory hierarchies; never throws. */
export async function spreadJobDirectories(dir: string, logger: Logger): Promise<void> {
  try {
    const chattr = await checkTrustedExecutable(CHATTR);
    await run(chattr, ['+T', dir], { env: {}, timeout: 10_000 });
  } catch (error) {
    const stderr = (error as { stderr?: unknown }).stderr;
    const reason =
      typeof stderr === 'string' && stderr.trim() !== '' ? stderr.trim() : (error as Error).message;
    logger.info(
      { dir, reason },
      'job directories are not spread over the file system (its allocator is left as it is)',
    );
  }
}
