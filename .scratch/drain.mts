import { spawn } from 'node:child_process';
import { openTestRuntime } from '../test/root/executor-kit.ts';
const MiB = 1024 * 1024;
const size = 1024 * MiB;
const t = await openTestRuntime({ maxOutputBytes: 4096 * MiB, retention: { maxJobs: 0 } });
try {
  for (let i = 0; i < 3; i++) {
    let s = performance.now();
    const child = spawn('head', ['-c', String(size), '/dev/zero'], { stdio: ['ignore', 'pipe', 'ignore'] });
    for await (const _c of child.stdout) {}
    const base = size / MiB / ((performance.now() - s) / 1000);
    s = performance.now();
    const job = await t.runtime.start({ argv: ['head', '-c', String(size), '/dev/zero'] }, 'b');
    await t.runtime.wait(job.id);
    const ours = size / MiB / ((performance.now() - s) / 1000);
    console.log(`pipe ${base.toFixed(0)} MiB/s, keeper ${ours.toFixed(0)} MiB/s, ratio ${(ours / base).toFixed(2)}`);
  }
} finally { await t.close(); }
