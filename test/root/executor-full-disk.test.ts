// A full state filesystem is the executor's problem to survive, not the jobs' to suffer: a job
// that writes far more than fits keeps running and ends normally, marked truncated; the executor
// stays up, refuses new starts with a clear RESOURCE_EXHAUSTED, restarts on the full disk, and
// recovers once space is freed; other jobs' records and output stay intact.
import { writeFileSync, rmSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ExecutorClient } from '../../api/executor-client.ts';
import type { JobError } from '../../shared/errors.ts';
import type { JobRecord } from '../../shared/job.ts';
import { sleep } from './executor-kit.ts';
import { startExecutorProcess } from './executor-process-kit.ts';
import type { ExecutorProcess } from './executor-process-kit.ts';

const full = suite('full state filesystem');
const MiB = 1024 * 1024;

async function untilEnded(client: ExecutorClient, id: string): Promise<JobRecord> {
  for (;;) {
    const record = await client.getJob(id);
    if (record.state !== 'RUNNING') return record;
    await sleep(20);
  }
}

async function outputOf(client: ExecutorClient, id: string): Promise<string> {
  let text = '';
  for await (const event of client.readOutput(id, 0))
    if ('chunk' in event) text += Buffer.from(event.chunk.data).toString();
  return text;
}

full(
  'a job writing far more than fits ends normally, truncated; starts are refused until space is freed',
  async () => {
    let x: ExecutorProcess = await startExecutorProcess(
      { maxOutputBytes: 256 * MiB },
      { stateTmpfsBytes: 16 * MiB },
    );
    const state = `${x.stateDir}/state`;
    try {
      let client = new ExecutorClient(x.socketPath);
      const small = await client.startJob({ argv: ['echo', 'kept'] }, 'tester');
      await untilEnded(client, small.id);
      // Room an operator can free later.
      writeFileSync(`${state}/filler`, Buffer.alloc(2 * MiB));

      const flood = await client.startJob(
        { argv: ['sh', '-c', 'head -c 100000000 /dev/zero; echo survived >&2'] },
        'tester',
      );
      const record = await untilEnded(client, flood.id);
      assert.equal(
        [record.state, record.endReason, record.exitCode, record.outputTruncated],
        ['COMPLETED', 'exited', 0, true],
      );
      assert.ok(
        record.outputBytes > 4 * MiB && record.outputBytes < 16 * MiB,
        `${record.outputBytes}`,
      );

      const refused = await client.startJob({ argv: ['true'] }, 'tester').catch((e: unknown) => e);
      assert.is((refused as JobError).code, 'resource-exhausted');
      assert.match(
        (refused as JobError).message,
        /^the executor's state filesystem is full; no job can be started until space is freed$/,
      );
      assert.is(x.child.exitCode, null, 'the executor is still up');
      client.close();

      // A restart on the full disk: it starts, and every record is still right.
      assert.is((await x.stop('SIGTERM')).code, 0);
      x = await x.restart();
      client = new ExecutorClient(x.socketPath);
      const after = await client.getJob(flood.id);
      assert.equal(
        [after.state, after.outputTruncated, after.outputBytes],
        ['COMPLETED', true, record.outputBytes],
      );
      assert.is((await client.getJob(small.id)).state, 'COMPLETED');
      assert.is(await outputOf(client, small.id), 'kept\n');

      rmSync(`${state}/filler`);
      const again = await client.startJob({ argv: ['echo', 'room again'] }, 'tester');
      await untilEnded(client, again.id);
      assert.is(await outputOf(client, again.id), 'room again\n');
      client.close();
    } finally {
      await x.remove();
    }
  },
);

full(
  'disk storage larger than the state filesystem has room for is refused, naming the limit',
  async () => {
    const x = await startExecutorProcess({}, { stateTmpfsBytes: 16 * MiB });
    try {
      const client = new ExecutorClient(x.socketPath);
      const refused = await client
        .startJob(
          { argv: ['true'], storageKind: 'disk', limits: { storageBytes: 64 * MiB } },
          'tester',
        )
        .catch((e: unknown) => e);
      assert.is((refused as JobError).code, 'resource-exhausted');
      assert.is(
        (refused as JobError).message,
        `the executor's state filesystem has no room for ${64 * MiB} bytes of disk storage now`,
      );
      const inMemory = await client.startJob(
        { argv: ['true'], limits: { storageBytes: 64 * MiB } },
        'tester',
      );
      assert.is(
        (await untilEnded(client, inMemory.id)).state,
        'COMPLETED',
        'memory storage is not on that disk',
      );
      client.close();
    } finally {
      await x.remove();
    }
  },
);

full.run();
