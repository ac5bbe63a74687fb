// A job's /job on cgroup v2: in memory, its pages are the job's (memory.stat counts them as
// shmem) and filling it is ENOSPC, never an OOM kill; on disk, the image's loop device does its
// IO in the job's cgroup, and both the image and the loop device are gone once the job is.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  FILL_JOB_DIR,
  loopDevicesBackedBy,
  runToEnd,
  startJob,
  stopJob,
  strangersInJobDir,
} from '../root/executor-kit.ts';
import { keyed, logged, MiB, openV2Runtime, requireV2Vm, type V2Runtime } from './kit.ts';

const storage = suite<{ t: V2Runtime }>('v2 job storage');
storage.before(
  logged(async (context) => {
    requireV2Vm();
    context.t = await openV2Runtime();
  }),
);
storage.after(async ({ t }) => {
  await t?.close();
});

storage(
  '/job in memory: its pages count in the job’s memory cgroup; full is ENOSPC, not an OOM kill',
  async ({ t }) => {
    const started = await startJob(t.runtime, {
      argv: ['python3', '-c', `${FILL_JOB_DIR}\nimport time\ntime.sleep(120)`],
      limits: { memoryBytes: 96 * MiB, storageBytes: 32 * MiB },
    });
    let output = '';
    for await (const chunk of t.runtime.readOutput(started.id, 0)) {
      output += Buffer.from(chunk.data).toString();
      if (output.includes('\n')) break;
    }
    const dir = t.driver.trace(started.id).dir;
    const stat = keyed(await readFile(join(dir, 'memory.stat'), 'utf8'));
    const record = await stopJob(t.runtime, started.id, 0);
    console.log(`  ${output.trim()}; memory.stat shmem ${stat.shmem}`);
    assert.is(output.trim(), `ENOSPC ${32 * MiB}`);
    assert.ok((stat.shmem ?? 0) >= 32 * MiB, `shmem ${stat.shmem}`);
    assert.is(record.endReason, 'stopped', 'not oom-killed');
    assert.match(t.driver.trace(record.id).final['memory.events'] ?? '', /^oom_kill 0$/m);
  },
);

storage(
  '/job on disk: ENOSPC at its cap; the image and the loop device go with the job',
  async ({ t }) => {
    const { stdout, stderr, record } = await runToEnd(t.runtime, {
      argv: ['python3', '-c', FILL_JOB_DIR],
      storageKind: 'disk',
      limits: { storageBytes: 32 * MiB, ioWriteBps: 64 * MiB },
    });
    assert.is(record.state, 'COMPLETED', stderr);
    const [errno, bytes] = stdout.trim().split(' ');
    assert.is(errno, 'ENOSPC');
    assert.ok(Number(bytes) > 28 * MiB && Number(bytes) <= 32 * MiB, `${bytes} bytes`);
    await t.runtime.wait(record.id);
    const stat = t.driver.trace(record.id).final['io.stat'] ?? '';
    console.log(`  wrote ${bytes} bytes; io.stat:\n    ${stat.replaceAll('\n', '\n    ')}`);
    // The loop device (major 7) and the disk under it both count the image's IO: usage is the
    // disk's alone.
    const disk = stat.split('\n').find((line) => !line.startsWith('7:')) ?? '';
    assert.is(record.usage?.ioWriteBytes, Number(/wbytes=(\d+)/.exec(disk)?.[1]));
    assert.equal(await strangersInJobDir(t.config.stateDir, record.id), []);
    // Nothing else in the VM uses loop devices.
    assert.equal(await loopDevicesBackedBy(''), [], 'no loop device attached');
  },
);

storage.run();
