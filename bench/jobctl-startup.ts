// jobctl's start-up: `jobctl version` (the compiled bin with plain node, as a user runs it)
// against `node -e 0`, run alternately in this process tree so that both meet the same load.
// Its target is at most twice node's own start.
import { spawn } from 'node:child_process';
import { JOBCTL_BIN } from '../shared/app-layout.ts';

const RUNS = 40;
const TARGET_RATIO = 2;

/** From spawn to exit, in ms, with a plain environment (no NODE_OPTIONS, no loader). */
function timeRun(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, args, {
      stdio: 'ignore',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolve(performance.now() - started);
      else reject(new Error(`${args.join(' ')} exited ${code}`));
    });
  });
}

const median = (samples: number[]) => {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
};

const node = ['-e', '0'];
const jobctl = [JOBCTL_BIN, 'version'];
for (let i = 0; i < 3; i += 1) {
  await timeRun(node);
  await timeRun(jobctl);
}
const nodeMs: number[] = [];
const jobctlMs: number[] = [];
for (let i = 0; i < RUNS; i += 1) {
  nodeMs.push(await timeRun(node));
  jobctlMs.push(await timeRun(jobctl));
}
const ratio = median(jobctlMs) / median(nodeMs);
console.log(`\njobctl start-up (${RUNS} runs each, alternating with the baseline)`);
console.log(
  `  ${'baseline: node -e 0'.padEnd(58)} median ${median(nodeMs).toFixed(2).padStart(8)} ms`,
);
console.log(
  `  ${'jobctl version'.padEnd(58)} median ${median(jobctlMs).toFixed(2).padStart(8)} ms`,
);
console.log(
  `  ${'jobctl version / node -e 0'.padEnd(58)} ${ratio.toFixed(2).padStart(15)}×   target ≤ ${TARGET_RATIO}×`,
);
