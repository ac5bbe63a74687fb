// io: read/write throttles in bytes and IOs per second on whole disks, and bytes moved.
import type { JobLimits } from '../../shared/job.ts';
import type { BlockDevice } from './cgroup-driver.ts';
import type { FileWrite, VersionedStat } from './cgroup-fs.ts';
import { kernelInteger } from './units.ts';

type IoLimitField = 'ioReadBps' | 'ioWriteBps' | 'ioReadIops' | 'ioWriteIops';

/** Each limit with its v1 file and its v2 io.max key, in the order both are written. */
const IO_LIMITS: readonly { field: IoLimitField; v1File: string; v2Key: string }[] = [
  { field: 'ioReadBps', v1File: 'blkio.throttle.read_bps_device', v2Key: 'rbps' },
  { field: 'ioWriteBps', v1File: 'blkio.throttle.write_bps_device', v2Key: 'wbps' },
  { field: 'ioReadIops', v1File: 'blkio.throttle.read_iops_device', v2Key: 'riops' },
  { field: 'ioWriteIops', v1File: 'blkio.throttle.write_iops_device', v2Key: 'wiops' },
];

function deviceName(device: BlockDevice): string {
  return `${device.major}:${device.minor}`;
}

/** v1: one `MAJ:MIN value` write per limit and device. */
export function v1Files(limits: JobLimits, devices: readonly BlockDevice[]): FileWrite[] {
  const writes: FileWrite[] = [];
  for (const { field, v1File } of IO_LIMITS) {
    const value = limits[field];
    if (value === undefined) continue;
    const text = kernelInteger(field, value);
    for (const device of devices) writes.push([v1File, `${deviceName(device)} ${text}`, field]);
  }
  return writes;
}

/** v2: one io.max line per device carrying every limit that is set. */
export function v2Files(limits: JobLimits, devices: readonly BlockDevice[]): FileWrite[] {
  const keys: string[] = [];
  const fields: string[] = [];
  for (const { field, v2Key } of IO_LIMITS) {
    const value = limits[field];
    if (value === undefined) continue;
    keys.push(`${v2Key}=${kernelInteger(field, value)}`);
    fields.push(field);
  }
  if (keys.length === 0) return [];
  const limit = fields.join(', ');
  return devices.map((device) => ['io.max', `${deviceName(device)} ${keys.join(' ')}`, limit]);
}

/**
 * Loop devices' IO is counted on the disk under them too (a job's disk-backed /job does direct IO
 * through one, in the job's cgroup): counting both would count every byte twice.
 */
const LOOP_MAJOR = '7';

function isLoopDevice(device: string): boolean {
  return device.split(':')[0] === LOOP_MAJOR;
}

export interface IoBytes {
  readBytes: number;
  writeBytes: number;
}

/** v2 io.stat: `MAJ:MIN rbytes=N wbytes=N rios=N …` per device, summed (loop devices aside). */
export function v2UsageBytes(ioStat: string): IoBytes {
  const sum = { readBytes: 0, writeBytes: 0 };
  for (const line of ioStat.split('\n')) {
    const [device = '', ...pairs] = line.trim().split(/\s+/);
    if (isLoopDevice(device)) continue;
    for (const pair of pairs) {
      const [key, value] = pair.split('=');
      const n = Number(value);
      if (!Number.isFinite(n)) continue;
      if (key === 'rbytes') sum.readBytes += n;
      if (key === 'wbytes') sum.writeBytes += n;
    }
  }
  return sum;
}

/**
 * v1 blkio.throttle.io_service_bytes_recursive: `MAJ:MIN Read N` / `MAJ:MIN Write N`, summed
 * (loop devices aside).
 */
export function v1UsageBytes(serviceBytes: string): IoBytes {
  const sum = { readBytes: 0, writeBytes: 0 };
  for (const line of serviceBytes.split('\n')) {
    const [device, op, value] = line.trim().split(/\s+/);
    const n = Number(value);
    if (device === undefined || !device.includes(':') || isLoopDevice(device)) continue;
    if (!Number.isFinite(n)) continue;
    if (op === 'Read') sum.readBytes += n;
    if (op === 'Write') sum.writeBytes += n;
  }
  return sum;
}

/** Bytes read and written by the job, as its cgroup's IO controller counts them. */
export const USAGE_BYTES: VersionedStat<IoBytes> = {
  v1: { file: 'blkio.throttle.io_service_bytes_recursive', parse: v1UsageBytes },
  v2: { file: 'io.stat', parse: v2UsageBytes },
};
