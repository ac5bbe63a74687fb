import { openTestRuntime } from '../test/root/executor-kit.ts';
const MiB = 1024 * 1024;
const size = 1024 * MiB;
const t = await openTestRuntime({ maxOutputBytes: 4096 * MiB });
try {
  const s = performance.now();
  const job = await t.runtime.start({ argv: ['head', '-c', String(size), '/dev/zero'] }, 'b');
  await t.runtime.wait(job.id);
  console.log(`keeper ${(size / MiB / ((performance.now() - s) / 1000)).toFixed(0)} MiB/s`);
} finally { await t.close(); }
