// /job's size cap and storage kind through the real API: the request's fields reach the job, the
// Job message says what was applied, and a refused value is INVALID_ARGUMENT naming the field as
// the proto spells it.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Job, JobServiceClient } from '../../api/generated/jobworker/v1/jobworker.ts';
import { StorageKind } from '../../api/generated/jobworker/v1/jobworker.ts';
import { FILL_JOB_DIR } from './executor-kit.ts';
import { outcomeOf, start, startStack, unary, watch } from './api-kit.ts';
import type { Stack } from './api-kit.ts';

const MiB = 1024 * 1024;
const api = suite<{ stack: Stack; alice: JobServiceClient }>('storage through the API');
api.before(async (context) => {
  context.stack = await startStack();
  context.alice = await context.stack.client('alice');
});
api.after(async ({ stack }) => {
  await stack.close();
});

const get = (client: JobServiceClient, id: string) =>
  unary<{ id: string }, Job>(client, 'getJob', { id });

api(
  'storage_bytes caps /job (ENOSPC inside); the Job says the size and kind applied',
  async ({ alice }) => {
    const job = await start(alice, {
      argv: ['python3', '-c', FILL_JOB_DIR],
      limits: { storageBytes: 8 * MiB },
      storageKind: StorageKind.STORAGE_KIND_MEMORY,
    });
    assert.is((await watch(alice, job.id)).text, `ENOSPC ${8 * MiB}\n`);
    const ended = await get(alice, job.id);
    assert.is(ended.limits?.storageBytes, 8 * MiB);
    assert.is(ended.storageKind, StorageKind.STORAGE_KIND_MEMORY);

    const unasked = await start(alice, { argv: ['true'] });
    assert.is(unasked.limits?.storageBytes, 256 * MiB, "the server's default");
    assert.is(unasked.storageKind, StorageKind.STORAGE_KIND_MEMORY);

    const onDisk = await start(alice, {
      argv: ['sh', '-c', 'grep -c " /job ext4 " /proc/mounts'],
      limits: { storageBytes: 64 * MiB, memoryBytes: 16 * MiB },
      storageKind: StorageKind.STORAGE_KIND_DISK,
    });
    assert.is((await watch(alice, onDisk.id)).text, '1\n');
    assert.is(onDisk.storageKind, StorageKind.STORAGE_KIND_DISK);
    assert.is(onDisk.limits?.storageBytes, 64 * MiB, 'on disk, above the memory limit');
  },
);

api('refused storage values are INVALID_ARGUMENT naming the field', async ({ alice }) => {
  const cases: [() => Promise<unknown>, string][] = [
    [
      () =>
        start(alice, {
          argv: ['true'],
          limits: { memoryBytes: 64 * MiB, storageBytes: 128 * MiB },
        }),
      'INVALID_ARGUMENT: limits.storage_bytes: must be at most limits.memoryBytes, 67108864 bytes, for storage in memory: its pages count against the memory limit (disk storage may be larger)',
    ],
    [
      () => start(alice, { argv: ['true'], limits: { storageBytes: 4096 } }),
      'INVALID_ARGUMENT: limits.storage_bytes: must be at least 1048576 bytes',
    ],
    [
      () =>
        start(alice, {
          argv: ['true'],
          limits: { storageBytes: 32 * 1024 * MiB },
          storageKind: StorageKind.STORAGE_KIND_DISK,
        }),
      "INVALID_ARGUMENT: limits.storage_bytes: 34359738368 is above this executor's maximum of 17179869184",
    ],
    [
      () => start(alice, { argv: ['true'], storageKind: 9 as StorageKind }),
      'INVALID_ARGUMENT: storage_kind: is not a storage kind',
    ],
  ];
  for (const [call, expected] of cases) assert.is(await outcomeOf(call()), expected);
});

api.run();
