// The start path as a client sees it, through the real API (mutual TLS, the API, the executor
// socket, the executor, the job's keeper), timed by an independent client (python3-grpcio: gRPC's
// C core) beside the isolation floor run in the same loop: `unshare` with the same five namespaces
// and `setpriv` to a uid with no capabilities. Each figure is printed as a ratio to its baseline,
// with the target beside it. Then the memory and the listing cost that 1,000 finished jobs add.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ListJobsRequest } from '../api/generated/jobworker/v1/jobworker.ts';
import type { ListJobsResponse } from '../api/generated/jobworker/v1/jobworker.ts';
import { start, startStack, unary, watch } from '../test/root/api-kit.ts';

/** A uid no account uses, for the floor's privilege drop (outside the executor's job range). */
const FLOOR_UID = 199_999;
const LIFE_TARGET = 2; // a job's life at most twice the floor's
const RATE_TARGET = 0.5; // at least half the floor's jobs per second
/** Lives run before anything is timed: a freshly started service is still being compiled by V8. */
const WARMUP_LIVES = 400;
/** Lives per rate round (three, alternating with the floor's). */
const RATE_ROUND_LIVES = 200;
const FINISHED_JOBS = 1000;
/** USER_HZ: /proc's CPU times are in these ticks (100 on every Linux this runs on). */
const CLOCK_TICKS = 100;

interface LifeFigures {
  life_ms: { jobworker: number[]; baseline: number[] };
  per_second: { jobworker: number[]; baseline: number[] };
  /** One round of 40 right after the service started, before V8 compiled its code. */
  cold_per_second: { jobworker: number; baseline: number };
}

const median = (samples: number[]) => {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
};

function line(name: string, value: string): void {
  console.log(`  ${name.padEnd(58)} ${value}`);
}

function ratioLine(name: string, ratio: number, target: string, met: boolean): void {
  line(
    name,
    `ratio ${ratio.toFixed(2).padStart(8)}     target ${target} (${met ? 'meets' : 'below'})`,
  );
}

function runPython(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/python3', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (data: Buffer) => (out += data.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`job_life.py exited ${code}`)),
    );
  });
}

/** CPU seconds a process has used so far (user + system), from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** CPU seconds every core has spent busy (neither idle nor waiting for IO), from /proc/stat. */
function hostCpu(): number {
  const fields = (/^cpu\s+(.*)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1] ?? '')
    .split(/\s+/)
    .map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = fields;
  return (user + nice + system + irq + softirq) / CLOCK_TICKS;
}

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) / 1024;
}

const stack = await startStack(
  { quotas: { maxRunningJobs: 64, maxRunningJobsPerIdentity: 64 } },
  { retention: { maxJobs: 100_000 } },
);
const scratch = await mkdtemp('/var/tmp/jobworker-bench-');
try {
  const image = join(scratch, 'image.binpb');
  execFileSync('node_modules/.bin/buf', ['build', '-o', image]);
  const ada = stack.pki.cert('ada');
  const figures = JSON.parse(
    await runPython([
      'bench/python/job_life.py',
      ...['--target', `127.0.0.1:${stack.port}`, '--image', image, '--ca', stack.pki.ca],
      ...['--cert', ada.cert, '--key', ada.key, '--uid', String(FLOOR_UID)],
      ...['--warmup', String(WARMUP_LIVES), '--rate-jobs', String(RATE_ROUND_LIVES)],
    ]),
  ) as LifeFigures;

  // job_life.py times a warm service (see there): WARMUP_LIVES run before anything is timed.
  console.log(
    '\none job’s life through the API: StartJob → the program ran → WatchJobOutput ended (ms)',
  );
  const life = median(figures.life_ms.jobworker);
  const floor = median(figures.life_ms.baseline);
  line(
    'baseline: unshare (5 namespaces) + setpriv (a uid, no caps)',
    `median ${floor.toFixed(2).padStart(8)} ms`,
  );
  line('jobworker, p50', `median ${life.toFixed(2).padStart(8)} ms`);
  ratioLine('job life / floor', life / floor, `≤ ${LIFE_TARGET}`, life / floor <= LIFE_TARGET);

  console.log(`\njobs per second, 8 in flight (3 rounds of ${RATE_ROUND_LIVES} each, alternating)`);
  const rate = median(figures.per_second.jobworker);
  const floorRate = median(figures.per_second.baseline);
  line('baseline: the same floor, 8 at a time', `${floorRate.toFixed(1).padStart(8)} /s`);
  line('jobworker', `${rate.toFixed(1).padStart(8)} /s`);
  ratioLine(
    'jobworker / floor',
    rate / floorRate,
    `≥ ${RATE_TARGET}`,
    rate / floorRate >= RATE_TARGET,
  );
  const cold = figures.cold_per_second;
  line(
    'right after the start, 40 each (cold; not the target)',
    `${cold.jobworker.toFixed(1).padStart(8)} /s   ratio ${(cold.jobworker / cold.baseline).toFixed(2)}`,
  );

  // Memory and listing with many finished jobs: ListJobs should not grow with them.
  const client = await stack.client('ada');
  const listOnce = async () => {
    const started = performance.now();
    await unary<ListJobsRequest, ListJobsResponse>(
      client,
      'listJobs',
      ListJobsRequest.fromPartial({ pageSize: 100 }),
    );
    return performance.now() - started;
  };
  const listMedian = async () => {
    const samples: number[] = [];
    for (let i = 0; i < 30; i += 1) samples.push(await listOnce());
    return median(samples);
  };
  const before = await listMedian();
  const executorPid = stack.executor.child.pid ?? 0;
  const apiPid = stack.api.pid ?? 0;
  const cpuBefore = { executor: cpuSeconds(executorPid), api: cpuSeconds(apiPid), host: hostCpu() };
  let ended = 0;
  const worker = async () => {
    while (ended < FINISHED_JOBS) {
      ended += 1;
      const job = await start(client, { argv: ['true'] });
      await watch(client, job.id);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const perJobMs = (seconds: number) =>
    `${((seconds * 1000) / FINISHED_JOBS).toFixed(2).padStart(8)} ms`;
  const executorCpu = cpuSeconds(executorPid) - cpuBefore.executor;
  const apiCpu = cpuSeconds(apiPid) - cpuBefore.api;
  const hostCpuUsed = hostCpu() - cpuBefore.host;
  const after = await listMedian();
  console.log(`\nwith ${FINISHED_JOBS} more finished jobs`);
  line(
    'executor RSS',
    `${(await rssMiB(stack.executor.child.pid ?? 0)).toFixed(1).padStart(8)} MiB`,
  );
  line('API RSS', `${(await rssMiB(stack.api.pid ?? 0)).toFixed(1).padStart(8)} MiB`);
  line('ListJobs (a page of 100), before', `median ${before.toFixed(2).padStart(8)} ms`);
  line(
    `ListJobs (a page of 100), after ${FINISHED_JOBS} more`,
    `median ${after.toFixed(2).padStart(8)} ms`,
  );
  ratioLine('after / before', after / before, '≤ 2 (flat)', after / before <= 2);
  // Where a start's CPU goes (8 in flight, Node's gRPC client in this process): what bounds the
  // rate on a machine whose cores are all busy.
  console.log(
    `\nCPU per job while those ${FINISHED_JOBS} ran (8 in flight; the machine's, all cores)`,
  );
  line('executor', perJobMs(executorCpu));
  line('API', perJobMs(apiCpu));
  line(
    'everything else (keepers, jobs, kernel, this client)',
    perJobMs(hostCpuUsed - executorCpu - apiCpu),
  );
} finally {
  await rm(scratch, { recursive: true, force: true });
  await stack.close();
}
