// Runs the executor with a development config, sends it one job through its socket, streams the
// job's output, prints its record, and stops the executor again (nothing is left running).
//
//   sudo npm run demo                   a first job that shows its isolation
//   sudo npm run demo -- uname -a       any command, passed as argv (never through a shell)
import { spawn, execFileSync } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join, resolve } from 'node:path';
import { ExecutorClient } from '../api/executor-client.ts';
import { JobError } from '../shared/errors.ts';

const root = resolve(import.meta.dirname, '..');
const stateRoot = join(root, '.state', 'demo');
const socketPath = join(stateRoot, 'run', 'executor.sock');
const configPath = join(stateRoot, 'executor.json');
const logPath = join(stateRoot, 'executor.log');

const separator = process.argv.indexOf('--');
const argv =
  separator >= 0 && process.argv.length > separator + 1
    ? process.argv.slice(separator + 1)
    : process.argv.length > 2
      ? process.argv.slice(2)
      : [
          'sh',
          '-c',
          'echo "hello from $(hostname), uid $(id -u)"; echo "processes:"; ps -e; echo "network:"; ip -br link; echo "capabilities:"; grep CapEff /proc/self/status',
        ];

if (process.getuid?.() !== 0) {
  console.error(
    'demo: run as root (sudo npm run demo): the executor creates cgroups and namespaces',
  );
  process.exit(1);
}
execFileSync('bash', [join(root, 'scripts/build-helper.sh')], { stdio: 'inherit' });
await mkdir(stateRoot, { recursive: true, mode: 0o700 });
await writeFile(
  configPath,
  JSON.stringify(
    {
      stateDir: join(stateRoot, 'state'),
      socketPath,
      socketGroup: 'root',
      cgroupName: 'jobworker-demo',
      logLevel: 'info',
    },
    null,
    2,
  ),
);

console.log(`starting the executor (log: ${logPath})`);
const executor = spawn(
  process.execPath,
  ['--import', 'tsx', join(root, 'executor/main.ts'), '--config', configPath],
  {
    stdio: ['ignore', 'ignore', 'pipe'],
  },
);
executor.stderr.pipe(createWriteStream(logPath, { flags: 'a' }));
const exited = new Promise<number | null>((done) => executor.on('exit', (code) => done(code)));

async function listening(): Promise<boolean> {
  return new Promise((done) => {
    const socket = net.createConnection(socketPath);
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}
for (let waited = 0; !(await listening()); waited += 50) {
  if (executor.exitCode !== null || waited > 15_000) {
    console.error(`demo: the executor did not start; see ${logPath}`);
    process.exit(1);
  }
  await new Promise((done) => setTimeout(done, 50));
}

const client = new ExecutorClient(socketPath);
let status = 0;
try {
  console.log(`running: ${JSON.stringify(argv)}\n`);
  const job = await client.startJob(
    { argv, limits: { cpus: 0.5, memoryBytes: 256 * 1024 * 1024, pids: 64 } },
    'demo',
  );
  for await (const event of client.readOutput(job.id, 0)) {
    if ('chunk' in event)
      (event.chunk.stream === 'stdout' ? process.stdout : process.stderr).write(event.chunk.data);
  }
  const record = await client.getJob(job.id);
  console.log(
    `\njob ${record.id}: ${record.state} (${record.endReason}${record.exitCode !== null ? `, exit ${record.exitCode}` : ''}${record.signal ? `, ${record.signal}` : ''})`,
  );
  console.log(`limits applied: ${JSON.stringify(record.limits)}`);
  console.log(`usage: ${JSON.stringify(record.usage)}`);
  status = record.exitCode ?? 1;
} catch (error) {
  console.error(
    `demo: ${error instanceof JobError ? `${error.code}: ${error.message}` : String(error)}`,
  );
  status = 1;
} finally {
  client.close();
  executor.kill('SIGTERM');
  await exited;
  if (existsSync(socketPath)) console.error('demo: the executor left its socket behind');
}
process.exit(status);
