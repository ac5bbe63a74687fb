import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { openTestRuntime } from '../test/root/executor-kit.ts';
const MiB = 1024 * 1024;
const size = 1024 * MiB;
const t = await openTestRuntime({ maxOutputBytes: 4096 * MiB });
try {
  const s = performance.now();
  const job = await t.runtime.start({ argv: ['sh', '-c', `sleep 0.3; head -c ${size} /dev/zero`] }, 'b');
  const pid = readFileSync(`${t.config.stateDir}/jobs/${job.id}/keeper.id`, 'utf8').split(' ')[0];
  const st = spawn('strace', ['-c', '-p', pid!], { stdio: 'inherit' });
  const rec = await t.runtime.wait(job.id);
  console.log(`keeper ${(size / MiB / ((performance.now() - s - 300) / 1000)).toFixed(0)} MiB/s`, rec.usage);
  await new Promise((r) => st.on('exit', r));
} finally { await t.close(); }
