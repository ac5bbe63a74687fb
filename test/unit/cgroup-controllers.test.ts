// Pins every [file, value, limit] list the controllers produce: the files, their order and the
// kernel units, without a kernel.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { JobLimits } from '../../shared/job.ts';
import * as cpu from '../../executor/cgroup/cpu.ts';
import * as cpuset from '../../executor/cgroup/cpuset.ts';
import * as io from '../../executor/cgroup/io.ts';
import * as memory from '../../executor/cgroup/memory.ts';
import * as pids from '../../executor/cgroup/pids.ts';

const ALL: JobLimits = {
  cpus: 0.5,
  memoryBytes: 268_435_456,
  memoryHighBytes: 201_326_592,
  pids: 64,
  ioReadBps: 1_048_576,
  ioWriteBps: 2_097_152,
  ioReadIops: 100,
  ioWriteIops: 200,
  cpusetCpus: '0',
};
const DISKS = [
  { major: 254, minor: 0, name: 'vda' },
  { major: 8, minor: 16, name: 'sdb' },
];
const PARENT = { effectiveCpus: '0-3\n', effectiveMems: '0\n' };

test('unset limits write nothing (the kernel default is unlimited)', () => {
  assert.equal(cpu.v1Files({}), []);
  assert.equal(cpu.v2Files({}), []);
  assert.equal(memory.v1Files({}, { hasMemsw: true }), []);
  assert.equal(pids.v1Files({}), []);
  assert.equal(pids.v2Files({}), []);
  assert.equal(io.v1Files({}, DISKS), []);
  assert.equal(io.v2Files({}, DISKS), []);
  assert.equal(cpuset.v2Files({}, PARENT), []);
});

test('cpu v1: period, then quota', () => {
  assert.equal(cpu.v1Files(ALL), [
    ['cpu.cfs_period_us', '100000', 'cpus'],
    ['cpu.cfs_quota_us', '50000', 'cpus'],
  ]);
});

test('cpu v2: cpu.max "quota period"', () => {
  assert.equal(cpu.v2Files(ALL), [['cpu.max', '50000 100000', 'cpus']]);
  assert.equal(cpu.v2Files({ cpus: 3 }), [['cpu.max', '300000 100000', 'cpus']]);
});

test('memory v1: limit_in_bytes before memsw (same value), then the soft limit', () => {
  assert.equal(memory.v1Files(ALL, { hasMemsw: true }), [
    ['memory.limit_in_bytes', '268435456', 'memoryBytes'],
    ['memory.memsw.limit_in_bytes', '268435456', 'memoryBytes'],
    ['memory.soft_limit_in_bytes', '201326592', 'memoryHighBytes'],
  ]);
});

test('memory v1: no memsw write without swap accounting', () => {
  assert.equal(memory.v1Files(ALL, { hasMemsw: false }), [
    ['memory.limit_in_bytes', '268435456', 'memoryBytes'],
    ['memory.soft_limit_in_bytes', '201326592', 'memoryHighBytes'],
  ]);
});

test('memory v2: max, high, swap off, OOM kills the whole job', () => {
  assert.equal(memory.v2Files(ALL, { hasSwapMax: true }), [
    ['memory.max', '268435456', 'memoryBytes'],
    ['memory.high', '201326592', 'memoryHighBytes'],
    ['memory.swap.max', '0'],
    ['memory.oom.group', '1'],
  ]);
  assert.equal(memory.v2Files({}, { hasSwapMax: false }), [['memory.oom.group', '1']]);
});

test('pids: the limit plus the job’s init (its keeper stays outside the job’s cgroups)', () => {
  assert.is(pids.HELPER_PROCESSES, 1);
  assert.equal(pids.v1Files(ALL), [['pids.max', '65', 'pids']]);
  assert.equal(pids.v2Files({ pids: 1 }), [['pids.max', '2', 'pids']]);
  assert.throws(() => pids.v1Files({ pids: 0 }), /^limits\.pids: must be a whole number above 0/);
  assert.throws(
    () => pids.v1Files({ pids: -1 }),
    /^limits\.pids: must be a whole number above 0, got -1/,
  );
});

test('io v1: one "MAJ:MIN value" per limit and disk', () => {
  assert.equal(io.v1Files(ALL, DISKS), [
    ['blkio.throttle.read_bps_device', '254:0 1048576', 'ioReadBps'],
    ['blkio.throttle.read_bps_device', '8:16 1048576', 'ioReadBps'],
    ['blkio.throttle.write_bps_device', '254:0 2097152', 'ioWriteBps'],
    ['blkio.throttle.write_bps_device', '8:16 2097152', 'ioWriteBps'],
    ['blkio.throttle.read_iops_device', '254:0 100', 'ioReadIops'],
    ['blkio.throttle.read_iops_device', '8:16 100', 'ioReadIops'],
    ['blkio.throttle.write_iops_device', '254:0 200', 'ioWriteIops'],
    ['blkio.throttle.write_iops_device', '8:16 200', 'ioWriteIops'],
  ]);
});

test('io v2: one io.max line per disk with the limits that are set', () => {
  const limit = 'ioReadBps, ioWriteBps, ioReadIops, ioWriteIops';
  assert.equal(io.v2Files(ALL, DISKS), [
    ['io.max', '254:0 rbps=1048576 wbps=2097152 riops=100 wiops=200', limit],
    ['io.max', '8:16 rbps=1048576 wbps=2097152 riops=100 wiops=200', limit],
  ]);
  assert.equal(io.v2Files({ ioWriteIops: 7 }, DISKS.slice(0, 1)), [
    ['io.max', '254:0 wiops=7', 'ioWriteIops'],
  ]);
});

test('io: no disk (tmpfs, overlay, 9p) means no throttle', () => {
  assert.equal(io.v1Files(ALL, []), []);
  assert.equal(io.v2Files(ALL, []), []);
});

test('cpuset v1: cpus and mems always, the parent’s cpus when none were asked for', () => {
  assert.equal(cpuset.v1Files(ALL, PARENT), [
    ['cpuset.cpus', '0', 'cpusetCpus'],
    ['cpuset.mems', '0'],
  ]);
  assert.equal(cpuset.v1Files({}, PARENT), [
    ['cpuset.cpus', '0-3', 'cpusetCpus'],
    ['cpuset.mems', '0'],
  ]);
  assert.equal(cpuset.v1ParentFiles({ effectiveCpus: '0-1\n', effectiveMems: '0\n' }), [
    ['cpuset.cpus', '0-1'],
    ['cpuset.mems', '0'],
  ]);
});

test('cpuset v2: cpuset.cpus only when asked for, in canonical form', () => {
  assert.equal(cpuset.v2Files({ cpusetCpus: '3,0,1' }, PARENT), [
    ['cpuset.cpus', '0-1,3', 'cpusetCpus'],
  ]);
});

test('cpu usage: v2 cpu.stat usage_usec, v1 cpuacct.usage nanoseconds', () => {
  const stat = 'usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n';
  assert.is(cpu.USAGE_SECONDS.v2.file, 'cpu.stat');
  assert.is(cpu.USAGE_SECONDS.v2.parse(stat), 2.5);
  assert.is(cpu.USAGE_SECONDS.v2.parse('user_usec 1\n'), 0);
  assert.is(cpu.USAGE_SECONDS.v1.file, 'cpuacct.usage');
  assert.is(cpu.USAGE_SECONDS.v1.parse('1500000000\n'), 1.5);
});

test('memory peak and OOM kills', () => {
  assert.is(memory.PEAK_BYTES.v1.file, 'memory.max_usage_in_bytes');
  assert.is(memory.PEAK_BYTES.v2.file, 'memory.peak');
  assert.is(memory.PEAK_BYTES.v2.parse('1048576\n'), 1_048_576);
  assert.is(memory.OOM_KILLED.v1.file, 'memory.oom_control');
  assert.is(memory.OOM_KILLED.v1.parse('oom_kill_disable 0\nunder_oom 0\noom_kill 1\n'), true);
  assert.is(memory.OOM_KILLED.v1.parse('oom_kill_disable 0\nunder_oom 0\noom_kill 0\n'), false);
  assert.is(memory.OOM_KILLED.v2.file, 'memory.events');
  const events = (kill: number, group: number) =>
    `low 0\nhigh 3\nmax 9\noom 1\noom_kill ${kill}\noom_group_kill ${group}\n`;
  assert.is(memory.OOM_KILLED.v2.parse(events(0, 0)), false);
  assert.is(memory.OOM_KILLED.v2.parse(events(1, 0)), true);
  assert.is(memory.OOM_KILLED.v2.parse(events(0, 1)), true);
});

test('io bytes: v2 io.stat and v1 io_service_bytes_recursive, summed over disks', () => {
  // A loop device (major 7) is not counted: its IO reaches the disk under it and counts there.
  const ioStat =
    '254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n' +
    '7:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n' +
    '8:16 rbytes=100 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n';
  assert.is(io.USAGE_BYTES.v2.file, 'io.stat');
  assert.equal(io.USAGE_BYTES.v2.parse(ioStat), { readBytes: 4196, writeBytes: 8192 });
  const blkio =
    '254:0 Read 4096\n254:0 Write 8192\n254:0 Sync 0\n254:0 Async 12288\n254:0 Discard 0\n' +
    '254:0 Total 12288\n8:16 Read 1\n8:16 Write 2\n7:3 Read 5\n7:3 Write 5\nTotal 12301\n';
  assert.is(io.USAGE_BYTES.v1.file, 'blkio.throttle.io_service_bytes_recursive');
  assert.equal(io.USAGE_BYTES.v1.parse(blkio), { readBytes: 4097, writeBytes: 8194 });
  assert.equal(io.USAGE_BYTES.v1.parse('Total 0\n'), { readBytes: 0, writeBytes: 0 });
});

test.run();
