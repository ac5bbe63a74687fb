// Watcher fan-out through the real API, against a plain Node TLS 1.3 server in the same run: 100
// watchers of one ended job's 64 MiB (aggregate delivered), and one watcher alone. Beside it, a
// bare grpc-js server sending the same messages to the same clients (plain-grpc-server.ts): the
// share of the gap that is gRPC's own (HTTP/2 in grpc-js, the gRPC client) rather than ours. The
// clients are independent of this code: Debian's python3-grpcio (gRPC's C core) for the API,
// Python's ssl (OpenSSL) for the plain server, each client on its own connection
// (bench/python/watch_clients.py). Printed as ratios to the baseline, with the targets beside
// them; never asserted.
//
//   sudo npm run bench      (or, after npm run build: sudo node --import tsx bench/watchers.ts)
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Job } from '../api/generated/jobworker/v1/jobworker.ts';
import { JobState } from '../api/generated/jobworker/v1/jobworker.ts';
import { sleep } from '../test/root/executor-kit.ts';
import { start, startStack, unary } from '../test/root/api-kit.ts';
import type { Stack } from '../test/root/api-kit.ts';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
const TARGET = 0.7;
const CASES = [
  { clients: 100, runs: 2, what: '100 watchers, aggregate', baseline: '100 TLS clients' },
  { clients: 1, runs: 5, what: 'one watcher', baseline: 'one TLS client' },
];

interface Measured {
  bytes: number;
  seconds: number;
  /** The client process's CPU time. */
  cpu_seconds: number;
}

/** CPU seconds a process has used so far (user + system), from /proc. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Runs the clients and measures the CPU the server's processes used meanwhile. */
async function measure(
  mode: 'grpc' | 'tls',
  args: string[],
  servers: (number | undefined)[],
): Promise<Measured & { serverCpu: number }> {
  const before = servers.map(cpuSeconds);
  const measured = await runClients(mode, args);
  let serverCpu = 0;
  for (const [i, pid] of servers.entries()) serverCpu += cpuSeconds(pid) - (before[i] ?? 0);
  return { ...measured, serverCpu };
}

function runClients(mode: 'grpc' | 'tls', args: string[]): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/python3', ['bench/python/watch_clients.py', mode, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (data: Buffer) => (out += data.toString()));
    child.stderr.on('data', (data: Buffer) => (err += data.toString()));
    child.on('close', (code) =>
      code === 0
        ? resolve(JSON.parse(out) as Measured)
        : reject(new Error(`watch_clients.py ${mode} exited ${code}:\n${err}`)),
    );
  });
}

/** A baseline server (plain-tls-server.ts or plain-grpc-server.ts), a process of its own. */
async function baselineServer(
  stack: Stack,
  script: string,
): Promise<{ port: number; pid: number | undefined; stop: () => void }> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      script,
      stack.pki.ca,
      join(stack.pki.dir, 'server.crt'),
      join(stack.pki.dir, 'private', 'server.key'),
      String(SIZE),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  return {
    port: Number(line.toString().trim()),
    pid: child.pid,
    stop: () => child.kill('SIGTERM'),
  };
}

async function endedJob(stack: Stack): Promise<string> {
  const ada = await stack.client('ada');
  const job = await start(ada, { argv: ['head', '-c', String(SIZE), '/dev/urandom'] });
  for (;;) {
    const record = await unary<{ id: string }, Job>(ada, 'getJob', { id: job.id });
    if (record.state !== JobState.JOB_STATE_RUNNING) return job.id;
    await sleep(100);
  }
}

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

const stack = await startStack(
  {
    maxWatchers: 200,
    maxWatchersPerIdentity: 200,
    quotas: { maxRunningJobs: 64, maxRunningJobsPerIdentity: 64 },
  },
  { maxOutputBytes: 2 * SIZE },
);
const baseline = await baselineServer(stack, 'bench/plain-tls-server.ts');
const bareGrpc = await baselineServer(stack, 'bench/plain-grpc-server.ts');
try {
  const jobId = await endedJob(stack);
  const ada = stack.pki.cert('ada');
  const common = ['--ca', stack.pki.ca, '--cert', ada.cert, '--key', ada.key];
  console.log(
    `\nwatcher fan-out (${SIZE / MiB} MiB of an ended job per watcher, python3-grpcio clients; ` +
      'baseline: a plain Node TLS 1.3 server, Python ssl clients; MiB/s, higher is better)',
  );
  const gib = (bytes: number) => bytes / (1024 * MiB);
  for (const { clients, runs, what, baseline: versus } of CASES) {
    const api: Measured[] = [];
    const plain: Measured[] = [];
    const bare: Measured[] = [];
    const cost = { api: 0, plain: 0, bare: 0, grpcClients: 0, sslClients: 0, bytes: 0 };
    // Alternated, so that both see the same machine.
    for (let run = 0; run < runs; run += 1) {
      const through = await measure(
        'grpc',
        [
          ...['--target', `127.0.0.1:${stack.port}`, '--job', jobId],
          ...['--clients', String(clients), ...common],
        ],
        [stack.api.pid, stack.executor.child.pid],
      );
      if (through.bytes < clients * SIZE)
        throw new Error(`the watchers received ${through.bytes} bytes of ${clients * SIZE}`);
      const direct = await measure(
        'tls',
        ['--target', `127.0.0.1:${baseline.port}`, '--clients', String(clients), ...common],
        [baseline.pid],
      );
      const grpcOnly = await measure(
        'grpc',
        [
          ...['--target', `127.0.0.1:${bareGrpc.port}`, '--job', jobId],
          ...['--clients', String(clients), ...common],
        ],
        [bareGrpc.pid],
      );
      api.push(through);
      plain.push(direct);
      bare.push(grpcOnly);
      cost.api += through.serverCpu;
      cost.plain += direct.serverCpu;
      cost.bare += grpcOnly.serverCpu;
      cost.grpcClients += through.cpu_seconds;
      cost.sslClients += direct.cpu_seconds;
      cost.bytes += clients * SIZE;
    }
    const rate = (runs: Measured[]) =>
      median(runs.map((measured) => (clients * SIZE) / MiB / measured.seconds));
    const ratio = rate(api) / rate(plain);
    const perGib = (seconds: number) => `${(seconds / gib(cost.bytes)).toFixed(2)} s`;
    const line = (name: string, value: string) => console.log(`  ${name.padEnd(58)} ${value}`);
    line(
      `baseline: plain TLS server, ${versus}`,
      `median ${rate(plain).toFixed(0).padStart(8)} MiB/s`,
    );
    line(`jobworker: ${what}`, `median ${rate(api).toFixed(0).padStart(8)} MiB/s`);
    line(
      `${what} / ${versus}`,
      `ratio  ${ratio.toFixed(2).padStart(8)}     target ≥ ${TARGET} (${ratio >= TARGET ? 'meets' : 'below'})`,
    );
    line(
      `  bare grpc-js server, same messages and clients`,
      `median ${rate(bare).toFixed(0).padStart(8)} MiB/s (ratio to the baseline ${(rate(bare) / rate(plain)).toFixed(2)})`,
    );
    line(
      `  ${what} / bare grpc-js server`,
      `ratio  ${(rate(api) / rate(bare)).toFixed(2).padStart(8)}`,
    );
    line(
      '  CPU per GiB: API + executor / plain server / bare grpc-js',
      `${perGib(cost.api)} / ${perGib(cost.plain)} / ${perGib(cost.bare)}`,
    );
    line(
      '  CPU per GiB: gRPC clients / ssl clients',
      `${perGib(cost.grpcClients)} / ${perGib(cost.sslClients)}`,
    );
  }
} finally {
  baseline.stop();
  bareGrpc.stop();
  await stack.close();
}
