// Which disks the io throttles apply to: the executor works them out from paths (the job's
// working directory), never from a device a client names.
import { readFile, realpath, stat } from 'node:fs/promises';
import { posix } from 'node:path';
import type { BlockDevice } from './cgroup-driver.ts';

/** Linux's dev_t encoding (glibc gnu_dev_major/minor), on the bigint form of st_dev. */
export function splitDeviceNumber(dev: bigint): { major: number; minor: number } {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & 0xfffff000n);
  const minor = (dev & 0xffn) | ((dev >> 12n) & 0xffffff00n);
  return { major: Number(major), minor: Number(minor) };
}

/**
 * The whole disks under the given paths, deduplicated. Filesystems without a block device
 * (major 0: tmpfs, overlay, 9p, btrfs subvolumes, …) give none; a partition gives its disk,
 * because the throttles only apply to whole disks.
 */
export async function resolveBlockDevices(
  paths: readonly string[],
  sysRoot = '/sys',
): Promise<BlockDevice[]> {
  const devices = new Map<string, BlockDevice>();
  for (const path of paths) {
    const { major, minor } = splitDeviceNumber((await stat(path, { bigint: true })).dev);
    if (major === 0) continue;
    const device = await wholeDisk(sysRoot, major, minor);
    if (device !== undefined) devices.set(`${device.major}:${device.minor}`, device);
  }
  return [...devices.values()];
}

async function wholeDisk(
  sysRoot: string,
  major: number,
  minor: number,
): Promise<BlockDevice | undefined> {
  let dir: string;
  try {
    dir = await realpath(posix.join(sysRoot, 'dev/block', `${major}:${minor}`));
  } catch {
    return undefined; // not a block device the kernel lists (e.g. an anonymous device)
  }
  const isPartition = await readFile(posix.join(dir, 'partition'), 'utf8').then(
    () => true,
    () => false,
  );
  const diskDir = isPartition ? posix.dirname(dir) : dir;
  const dev = (await readFile(posix.join(diskDir, 'dev'), 'utf8')).trim();
  const match = /^(\d+):(\d+)$/.exec(dev);
  if (match === null) throw new Error(`cgroup: unexpected ${diskDir}/dev: ${JSON.stringify(dev)}`);
  return { major: Number(match[1]), minor: Number(match[2]), name: posix.basename(diskDir) };
}
