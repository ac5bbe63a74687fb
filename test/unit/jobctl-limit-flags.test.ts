// jobctl's flag values: Docker's units, the errors naming the flag, the request they make.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { UsageError } from '../../api/jobctl/cli-errors.ts';
import {
  flagForField,
  parseCount,
  parseCpuList,
  parseCpus,
  parseDuration,
  parseRate,
  parseSize,
  startRequestFromFlags,
  STORAGE_KIND_VALUES,
} from '../../api/jobctl/limit-flags.ts';
import { StorageKind } from '../../api/generated/jobworker/v1/jobworker.ts';

const units = suite('jobctl limit flags');
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

function refusal(make: () => unknown): string {
  try {
    make();
  } catch (error) {
    assert.instance(error, UsageError);
    return (error as Error).message;
  }
  throw new Error('accepted');
}

units('sizes read as Docker reads them: binary k, m, g, with or without b / ib', () => {
  const cases: [string, number][] = [
    ['512', 512],
    ['512b', 512],
    ['1k', KiB],
    ['1K', KiB],
    ['256m', 256 * MiB],
    ['256M', 256 * MiB],
    ['256mb', 256 * MiB],
    ['256MiB', 256 * MiB],
    ['1g', GiB],
    ['1.5g', 1.5 * GiB],
    ['2t', 2 * 1024 * GiB],
    ['10 mb', 10 * MiB],
    ['0.5k', 512],
  ];
  for (const [text, bytes] of cases) assert.is(parseSize('--memory', text), bytes, text);
});

units('a size that is not one is refused, naming the flag and the value', () => {
  for (const text of ['abc', '', '-1', '1x', '0x10', '1e9', 'm', '1.2.3m', '10 m b']) {
    assert.match(
      refusal(() => parseSize('--memory', text)),
      `--memory ${JSON.stringify(text)}: not a size`,
    );
  }
  assert.is(
    refusal(() => parseSize('--memory', '0')),
    '--memory "0": must be more than 0',
  );
  assert.match(
    refusal(() => parseSize('--memory', '99999999999p')),
    'too large',
  );
});

units('a disk rate is a size; naming a device the Docker way gets a hint', () => {
  assert.is(parseRate('--device-read-bps', '10mb'), 10 * MiB);
  assert.is(
    refusal(() => parseRate('--device-read-bps', '/dev/sda:10mb')),
    '--device-read-bps "/dev/sda:10mb": give only the rate (10mb): the server applies it to the disks under the job',
  );
});

units('durations: ms, s, m, h, together, or a bare number of seconds', () => {
  const cases: [string, number][] = [
    ['30s', 30_000],
    ['1m30s', 90_000],
    ['2h', 7_200_000],
    ['1h2m3s', 3_723_000],
    ['500ms', 500],
    ['1.5s', 1500],
    ['90', 90_000],
    ['0.25', 250],
  ];
  for (const [text, ms] of cases) assert.is(parseDuration('--timeout', text), ms, text);
  for (const text of ['abc', 's', '1d', '1m30', '30 s', '-5s', '']) {
    assert.match(
      refusal(() => parseDuration('--timeout', text)),
      `--timeout ${JSON.stringify(text)}: not a duration`,
    );
  }
  assert.is(
    refusal(() => parseDuration('--timeout', '0s')),
    '--timeout "0s": must be more than 0',
  );
  assert.is(parseDuration('--grace', '0', true), 0);
});

units('cpus, counts and cpu lists', () => {
  assert.is(parseCpus('--cpus', '0.5'), 0.5);
  assert.is(parseCpus('--cpus', '2'), 2);
  assert.is(parseCpus('--cpus', '.5'), 0.5);
  for (const text of ['abc', '0x1', '1e3', '-1', ''])
    assert.match(
      refusal(() => parseCpus('--cpus', text)),
      'not a number of CPUs',
    );
  assert.is(
    refusal(() => parseCpus('--cpus', '0')),
    '--cpus "0": must be more than 0',
  );
  assert.is(parseCount('--pids-limit', '100'), 100);
  for (const text of ['0', '-1', '1.5', '1e3', 'ten']) {
    assert.is(
      refusal(() => parseCount('--pids-limit', text)),
      `--pids-limit ${JSON.stringify(text)}: must be a whole number above 0`,
    );
  }
  assert.is(parseCpuList('--cpuset-cpus', '0-1,3'), '0-1,3');
  assert.match(
    refusal(() => parseCpuList('--cpuset-cpus', 'one')),
    '--cpuset-cpus "one": not a CPU list',
  );
  assert.is(
    refusal(() => parseCpuList('--cpuset-cpus', '3-1')),
    '--cpuset-cpus "3-1": the range 3-1 runs backwards',
  );
});

units('the flags make the request: limits in bytes, timeout as a Duration, argv untouched', () => {
  const argv = ['python3', '-c', 'print(1)', '', '  spaced  ', '-la', '--', 'ünï'];
  const request = startRequestFromFlags(
    {
      cpus: '0.5',
      memory: ['1g', '256m'], // given twice: the last counts
      memoryHigh: '200m',
      pidsLimit: '100',
      cpusetCpus: '0-1',
      deviceReadBps: '10mb',
      deviceWriteBps: '1g',
      deviceReadIops: '1000',
      deviceWriteIops: '500',
      storage: '2g',
      storageKind: 'disk',
      timeout: '1m30s',
      env: ['A=1', 'B=x=y', 'EMPTY=', 'FROM_HERE'],
      workdir: '/tmp',
    },
    argv,
    { FROM_HERE: 'local value' },
  );
  assert.equal(request, {
    argv,
    env: { A: '1', B: 'x=y', EMPTY: '', FROM_HERE: 'local value' },
    workingDir: '/tmp',
    limits: {
      cpus: 0.5,
      memoryBytes: 256 * MiB,
      memoryHighBytes: 200 * MiB,
      pids: 100,
      cpusetCpus: '0-1',
      ioReadBps: 10 * MiB,
      ioWriteBps: GiB,
      ioReadIops: 1000,
      ioWriteIops: 500,
      storageBytes: 2 * GiB,
    },
    storageKind: StorageKind.STORAGE_KIND_DISK,
    timeout: { seconds: 90, nanos: 0 },
  });
  assert.equal(startRequestFromFlags({}, ['true']), { argv: ['true'], env: {}, workingDir: '' });
});

units('a request the server would refuse is refused here, naming the flag', () => {
  const refuse = (options: Record<string, unknown>, argv = ['true']) =>
    refusal(() => startRequestFromFlags(options, argv, {}));
  assert.is(refuse({}, []), 'no command given: jobctl run [OPTIONS] -- COMMAND [ARG...]');
  assert.is(refuse({ memory: '1m' }), '--memory "1m": must be at least 4MiB');
  assert.is(refuse({ cpus: '5000' }), '--cpus "5000": must be at most 4096 cores');
  assert.is(
    refuse({ memory: '64m', memoryHigh: '128m' }),
    '--memory-high "128m": must not be above --memory',
  );
  assert.is(
    refuse({ memory: '64m', storage: '128m' }),
    '--storage "128m": must be at most --memory, 64MiB, for storage in memory: its pages count against the memory limit (disk storage may be larger)',
  );
  startRequestFromFlags({ memory: '64m', storage: '128m', storageKind: 'disk' }, ['true'], {});
  assert.is(refuse({ storage: '512k' }), '--storage "512k": must be at least 1MiB');
  assert.is(refuse({ storageKind: 'ssd' }), '--storage-kind "ssd": must be one of memory, disk');
  // jobctl writes the proto's values as numbers (the generated module would load gRPC at start).
  assert.equal(STORAGE_KIND_VALUES, {
    memory: StorageKind.STORAGE_KIND_MEMORY,
    disk: StorageKind.STORAGE_KIND_DISK,
  });
  assert.is(refuse({ workdir: 'relative' }), '--workdir: must be an absolute path');
  assert.is(
    refuse({ env: ['1BAD=x'] }),
    '--env: must be a name of letters, digits and _, not starting with a digit',
  );
  assert.is(
    refuse({ env: ['UNSET_HERE'] }),
    '--env "UNSET_HERE": is not set here; give NAME=VALUE',
  );
  assert.is(refuse({ env: ['=x'] }), '--env "=x": must be NAME=VALUE or NAME');
  assert.is(refuse({}, ['']), 'the command: must not be empty (it names the program)');
});

units('server field names map back to the flags that set them', () => {
  assert.is(flagForField('limits.memory_bytes'), '--memory');
  assert.is(flagForField('spec.limits.memoryBytes'), '--memory');
  assert.is(flagForField('limits.io_write_iops'), '--device-write-iops');
  assert.is(flagForField('limits.cpuset_cpus'), '--cpuset-cpus');
  assert.is(flagForField('timeout'), '--timeout');
  assert.is(flagForField('working_dir'), '--workdir');
  assert.is(flagForField('limits.storage_bytes'), '--storage');
  assert.is(flagForField('spec.limits.storageBytes'), '--storage');
  assert.is(flagForField('storage_kind'), '--storage-kind');
  assert.is(flagForField('argv[0]'), 'the command');
  assert.is(flagForField('page_token'), undefined);
});

units.run();
