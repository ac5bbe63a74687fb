// Benchmarks, printed side by side with baselines run in this same process tree, never asserted.
//
//   sudo npm run bench
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { detectCgroupDriver } from '../executor/cgroup/detect.ts';
import { parseExecutorConfig } from '../executor/config.ts';
import { JobRuntime } from '../executor/runtime/job-runtime.ts';
import { FrameDecoder } from '../shared/framing.ts';
import { outputChunkFrameHead } from '../shared/output-chunk-frame.ts';
import { createLogger } from '../shared/logger.ts';
import { drain, start, startStack } from '../test/root/api-kit.ts';
import { startJob } from '../test/root/executor-kit.ts';

const MiB = 1024 * 1024;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function row(name: string, samples: number[], unit = 'ms'): void {
  const sorted = [...samples].sort((a, b) => a - b);
  const cells = [percentile(sorted, 50), percentile(sorted, 90)].map(
    (v) => `${v.toFixed(2).padStart(8)} ${unit}`,
  );
  console.log(`  ${name.padEnd(58)} median ${cells[0]}   p90 ${cells[1]}`);
}

function median(samples: number[]): number {
  return percentile(
    [...samples].sort((a, b) => a - b),
    50,
  );
}

/** A figure as a ratio to its same-run baseline, with the target beside it (higher is better). */
function ratioRow(name: string, ratio: number, target: number): void {
  const verdict = ratio >= target ? 'meets' : 'below';
  console.log(
    `  ${name.padEnd(58)} ratio  ${ratio.toFixed(2).padStart(8)}     target ≥ ${target} (${verdict})`,
  );
}

function spawnAndWait(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', () => resolve());
  });
}

async function timeEach(runs: number, action: () => Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < runs; i += 1) {
    const started = performance.now();
    await action();
    samples.push(performance.now() - started);
  }
  return samples;
}

if (process.getuid?.() !== 0) {
  console.error('bench: run as root (sudo npm run bench): it starts real jobs');
  process.exit(1);
}

const stateDir = await mkdtemp('/var/tmp/jobworker-bench-');
const cgroupName = `jobworker-bench-${randomBytes(4).toString('hex')}`;
const config = parseExecutorConfig({
  stateDir,
  socketPath: `${stateDir}/run/executor.sock`,
  cgroupName,
  maxOutputBytes: 4096 * MiB,
  retention: { maxJobs: 0 },
  logLevel: 'error',
});
const runtime = await JobRuntime.open({
  config,
  cgroups: await detectCgroupDriver({ name: cgroupName }),
  logger: createLogger('bench', 'error'),
});

try {
  const runs = 40;
  console.log(
    `\nstart latency (${runs} sequential runs each; jobworker = cgroups + 5 namespaces + helper + exec)`,
  );
  await timeEach(5, () =>
    startJob(runtime, { argv: ['true'] }, 'bench').then((job) => runtime.wait(job.id)),
  );
  row(
    'baseline: Node spawn(/bin/true) to exit',
    await timeEach(runs, () => spawnAndWait('/bin/true', [])),
  );
  row(
    'baseline: Node spawn(unshare -pf --mount-proc -n -u -i true) to exit',
    await timeEach(runs, () =>
      spawnAndWait('unshare', ['-pf', '--mount-proc', '-n', '-u', '-i', 'true']),
    ),
  );
  const startToExec: number[] = [];
  const startToEnd: number[] = [];
  for (let i = 0; i < runs; i += 1) {
    const started = performance.now();
    const job = await startJob(runtime, { argv: ['true'] }, 'bench');
    startToExec.push(performance.now() - started);
    await runtime.wait(job.id);
    startToEnd.push(performance.now() - started);
  }
  row("jobworker: start() until the program was exec'd", startToExec);
  row('jobworker: start() until ended, recorded, cleaned up', startToEnd);

  const size = 1024 * MiB;
  console.log(
    `\noutput throughput (a job writing ${size / MiB} MiB of zeros; MiB/s, higher is better)`,
  );
  // Alternating runs, so that whatever else loads the machine weighs on both alike. Each job's
  // output is deleted once it has ended (retention keeps none), so the figure is the keeper's
  // path into the page cache, not the disk's own writeback speed.
  const pipeRates: number[] = [];
  const drainRates: number[] = [];
  for (let i = 0; i < 5; i += 1) {
    let started = performance.now();
    const child = spawn('head', ['-c', String(size), '/dev/zero'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    for await (const _chunk of child.stdout) {
      // read and drop, as fast as Node can
    }
    pipeRates.push(size / MiB / ((performance.now() - started) / 1000));
    started = performance.now();
    const job = await startJob(
      runtime,
      { argv: ['head', '-c', String(size), '/dev/zero'] },
      'bench',
    );
    await runtime.wait(job.id);
    drainRates.push(size / MiB / ((performance.now() - started) / 1000));
    await runtime.applyRetention();
  }
  row('baseline: Node reading the same bytes from a plain pipe', pipeRates, 'MiB/s');
  row('jobworker: drained to disk by its keeper, nobody watching', drainRates, 'MiB/s');
  ratioRow('drained to disk / plain pipe', median(drainRates) / median(pipeRates), 0.8);
  const readers = 10;
  const watched = await timeEach(3, async () => {
    const job = await startJob(
      runtime,
      { argv: ['head', '-c', String(size), '/dev/zero'] },
      'bench',
    );
    await Promise.all(
      Array.from({ length: readers }, async () => {
        for await (const _chunk of runtime.readOutput(job.id, 0)) {
          // each reader gets every byte
        }
      }),
    );
  });
  row(
    `jobworker: ${readers} live readers, aggregate delivered`,
    watched.map((ms) => (readers * size) / MiB / (ms / 1000)),
    'MiB/s',
  );

  const frames = 4096;
  const chunk = Buffer.alloc(64 * 1024, 7);
  console.log(
    `\nexecutor socket (${frames} × 64 KiB over a Unix socket pair, one direction; MiB/s)`,
  );
  const overSocket = async (framed: boolean): Promise<number> => {
    const server = net.createServer();
    const path = `${stateDir}/bench.sock`;
    await new Promise<void>((resolve) => server.listen(path, resolve));
    const received = new Promise<number>((resolve) => {
      server.once('connection', (socket) => {
        const decoder = new FrameDecoder();
        let count = 0;
        let bytes = 0;
        const started = performance.now();
        socket.on('data', (data: Buffer) => {
          if (framed) count += decoder.push(data).length;
          else bytes += data.length;
          if ((framed && count === frames) || (!framed && bytes === frames * chunk.length)) {
            resolve(performance.now() - started);
            socket.destroy();
          }
        });
      });
    });
    const client = net.createConnection(path);
    await new Promise((resolve) => client.once('connect', resolve));
    for (let i = 0; i < frames; i += 1) {
      let ok: boolean;
      if (framed) {
        // As the executor sends output: the frame's head, then the bytes as read, one write.
        client.cork();
        client.write(
          outputChunkFrameHead(1, { stream: 'stdout', offset: i * chunk.length, data: chunk }),
        );
        ok = client.write(chunk);
        client.uncork();
      } else {
        ok = client.write(chunk);
      }
      if (!ok) await new Promise((resolve) => client.once('drain', resolve));
    }
    const ms = await received;
    client.destroy();
    await new Promise((resolve) => server.close(resolve));
    return (frames * chunk.length) / MiB / (ms / 1000);
  };
  row(
    'baseline: raw bytes',
    [await overSocket(false), await overSocket(false), await overSocket(false)],
    'MiB/s',
  );
  row(
    'output chunk frames (head + bytes as read; decoded)',
    [await overSocket(true), await overSocket(true), await overSocket(true)],
    'MiB/s',
  );
} finally {
  await runtime.drain(100);
  await runtime.close();
  await rm(stateDir, { recursive: true, force: true });
}

// The whole path a client sees: mutual TLS, the API, the executor socket, the executor.
const stack = await startStack(
  { quotas: { maxRunningJobs: 64, maxRunningJobsPerIdentity: 64 } },
  { maxOutputBytes: 4096 * MiB },
);
try {
  const client = await stack.client('ada');
  const runs = 40;
  console.log(
    `\nthrough the API (${runs} sequential StartJob calls; mutual TLS 1.3 + API + executor socket)`,
  );
  for (let i = 0; i < 5; i += 1) await start(client, { argv: ['true'] });
  row(
    "api: StartJob until the program was exec'd",
    await timeEach(runs, () => start(client, { argv: ['true'] })),
  );

  const size = 256 * MiB;
  const watchers = 10;
  const clients = await Promise.all(Array.from({ length: watchers }, () => stack.client('ada')));
  const delivered = await timeEach(3, async () => {
    const job = await start(client, { argv: ['head', '-c', String(size), '/dev/zero'] });
    await Promise.all(clients.map((watcher) => drain(watcher, job.id)));
  });
  row(
    `api: ${watchers} WatchJobOutput streams of ${size / MiB} MiB, aggregate delivered`,
    delivered.map((ms) => (watchers * size) / MiB / (ms / 1000)),
    'MiB/s',
  );
} finally {
  await stack.close();
}
await import('./jobctl-startup.ts');
await import('./start-path.ts');
await import('./watchers.ts');
