// `npm start` (as root): the whole local stack. npm start builds first (scripts/build.sh); this
// script, itself compiled, makes a development PKI on first run, starts the compiled executor as
// root and the compiled API as nobody with plain node (no transpiler in any of them), says how to
// run a first job, and on Ctrl-C stops both, leaving nothing running.
//
//   sudo npm start [-- --listen 127.0.0.1:50051] [--dir .state/dev] [--cgroup-name jobworker-dev]
//
// Layout of DIR (default <checkout>/.state/dev; jobctl run from the checkout finds it):
//   pki/                     CA, server certificate (localhost, 127.0.0.1, ::1), clients/dev.*
//   executor.json, api.json  the configs both processes were started with
//   state/, run/             the executor's state and socket
//   executor.log, api.log    their logs (JSON lines)
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, createWriteStream, existsSync } from 'node:fs';
import { chmod, mkdir, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { compiledPath, JOBCTL_BIN, SERVICE_NODE_FLAGS } from '../shared/app-layout.ts';
import { CHECKOUT, DEV_CLIENT, DEV_DIR, DEV_LISTEN } from '../shared/dev-layout.ts';

/** A group number no account uses: only the API gets it, and only it may open the socket. */
const DEV_SOCKET_GID = '61100';

interface Launched {
  child: ChildProcess;
  logPath: string;
  /** The start of its log (stderr). */
  earlyLog(): string;
}

/** Every process started here; none may outlive `npm start`, whatever happens. */
const children: ChildProcess[] = [];

function fail(message: string): never {
  console.error(`npm start: ${message}`);
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  process.exit(1);
}

async function waitFor(
  what: string,
  launched: Launched,
  ready: () => boolean | Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await ready())) {
    if (launched.child.exitCode !== null || Date.now() > deadline) {
      const last = launched.earlyLog().trim().split('\n').at(-1) ?? '';
      fail(`the ${what} did not start${last ? `: ${last}` : ''}; see ${launched.logPath}`);
    }
    await new Promise((done) => setTimeout(done, 100));
  }
}

/**
 * The API, as nobody, must pass through every directory above the socket's own (which does the
 * access control). Our own state directories get search permission; anything else is refused.
 */
async function ensureSearchable(dir: string): Promise<void> {
  for (let at = dir; at !== dirname(at); at = dirname(at)) {
    const mode = (await stat(at)).mode & 0o7777;
    if (mode & 0o001) continue;
    if (!at.startsWith(join(CHECKOUT, '.state'))) {
      fail(
        `${at} is not searchable by others: the API (as nobody) could not reach the executor socket below it; use --dir`,
      );
    }
    await chmod(at, mode | 0o011);
  }
}

function canConnect(path: string): Promise<boolean> {
  return new Promise((done) => {
    const socket = net.createConnection(path);
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

/** Shows what a job sees: its own identity, hostname, processes, network and limits. */
const FIRST_JOB = [
  'sh',
  '-c',
  'echo "hello from $(hostname) as uid $(id -u)"; ps -e; ip -br link; grep -E "CapEff|NoNewPrivs" /proc/self/status',
];

/** Runs the first job with jobctl, which finds this dev stack (its PKI and address) by itself. */
function firstJob(listen: string, dir: string): Promise<void> {
  return new Promise((resolve) => {
    const jobctl = spawn(
      process.execPath,
      [JOBCTL_BIN, 'run', '--memory', '64m', '--cpus', '0.5', '--', ...FIRST_JOB],
      {
        stdio: ['ignore', 'inherit', 'inherit'],
        env: { ...process.env, JOBCTL_SERVER: listen, JOBCTL_DEV_DIR: dir },
      },
    );
    children.push(jobctl);
    jobctl.on('exit', (code) => {
      if (code !== 0) console.error(`(the first job ended with exit code ${code})`);
      resolve();
    });
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      listen: { type: 'string', default: DEV_LISTEN },
      dir: { type: 'string', default: DEV_DIR },
      'cgroup-name': { type: 'string', default: 'jobworker-dev' },
    },
  });
  const dir = resolve(values.dir);
  if (process.getuid?.() !== 0)
    fail('run as root (sudo npm start): the executor creates cgroups and namespaces');

  // Traversable (0755) so that the API, as nobody, reaches the socket directory inside; the
  // socket directory itself, the state and the keys are closed to everyone else.
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await ensureSearchable(dir);
  const pki = join(dir, 'pki');
  if (!existsSync(join(pki, 'ca.crt'))) {
    console.log(`creating a development PKI in ${pki}`);
    const run = (...args: string[]) =>
      execFileSync('bash', [join(CHECKOUT, 'scripts/pki.sh'), ...args], {
        stdio: ['ignore', 'ignore', 'inherit'],
      });
    run('ca', pki);
    run('server', pki, 'server', 'DNS:localhost', 'IP:127.0.0.1', 'IP:::1');
    run('client', pki, DEV_CLIENT, 'admin');
  }

  const socketPath = join(dir, 'run', 'executor.sock');
  const executorConfig = join(dir, 'executor.json');
  const apiConfig = join(dir, 'api.json');
  await writeFile(
    executorConfig,
    JSON.stringify(
      {
        stateDir: join(dir, 'state'),
        socketPath,
        socketGroup: DEV_SOCKET_GID,
        cgroupName: values['cgroup-name'],
        maskPaths: [dir],
      },
      null,
      2,
    ),
  );
  await writeFile(
    apiConfig,
    JSON.stringify(
      {
        listen: values.listen,
        tls: {
          caFile: join(pki, 'ca.crt'),
          certFile: join(pki, 'server.crt'),
          keyFile: join(pki, 'private', 'server.key'),
          crlFile: join(pki, 'crl.pem'),
        },
        executorSocket: socketPath,
        user: 'nobody',
        socketGroup: DEV_SOCKET_GID,
      },
      null,
      2,
    ),
  );

  /**
   * The compiled entry point with plain node, as the systemd units run it, and the environment
   * they give it: PATH and what the unit sets, nothing inherited from whoever ran npm start.
   */
  const launch = (
    name: string,
    entry: string,
    config: string,
    env: Record<string, string> = {},
  ): Launched => {
    const logPath = join(dir, `${name}.log`);
    const child = spawn(
      process.execPath,
      [...SERVICE_NODE_FLAGS, compiledPath(entry), '--config', config],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        cwd: CHECKOUT,
        env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...env },
      },
    );
    children.push(child);
    let early = '';
    child.stderr?.on('data', (data: Buffer) => {
      if (early.length < 65_536) early += data.toString();
    });
    // Logs name jobs, owners and errors: root's to read, as the journal would be (also a log an
    // earlier version left readable).
    if (existsSync(logPath)) chmodSync(logPath, 0o600);
    child.stderr?.pipe(createWriteStream(logPath, { flags: 'a', mode: 0o600 }));
    return { child, logPath, earlyLog: () => early };
  };
  // As its unit does: msgpackr's optional native decoder is never loaded by the root process.
  const executor = launch('executor', 'executor/main.ts', executorConfig, {
    MSGPACKR_NATIVE_ACCELERATION_DISABLED: 'true',
  });
  await waitFor('executor', executor, () => canConnect(socketPath));
  const api = launch('api', 'api/main.ts', apiConfig);
  await waitFor('API', api, () => api.earlyLog().includes('"msg":"api listening"'));

  console.log(`
jobworker is running: API on ${values.listen} (TLS 1.3, client certificates), executor as root.
  logs:   ${executor.logPath}, ${api.logPath}
  client: ${join(pki, 'clients', `${DEV_CLIENT}.crt`)} (CN ${DEV_CLIENT}, role admin)

A first job, through jobctl, the API and the executor:
  $ jobctl run --memory 64m --cpus 0.5 -- ${FIRST_JOB.map((arg) => (arg.includes(' ') ? `'${arg}'` : arg)).join(' ')}
`);
  await firstJob(values.listen, dir);
  console.log(`
More, from this checkout in another terminal, as root (or with sudo):
  npx jobctl run -- uname -a
  npx jobctl list --all
  npx jobctl --help

Ctrl-C stops both processes.`);

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    console.log('\nstopping the API, every job (a drain), then the executor');
    const exited = (child: ChildProcess) =>
      new Promise<void>((done) =>
        child.exitCode !== null ? done() : child.once('exit', () => done()),
      );
    api.child.kill('SIGTERM');
    void exited(api.child)
      .then(() => {
        // Jobs outlive the executor; a development stack leaves nothing running: drain first.
        const drain = launch('drain', 'executor/drain.ts', executorConfig);
        return exited(drain.child);
      })
      .then(() => {
        executor.child.kill('SIGTERM');
        return exited(executor.child);
      })
      .then(() => {
        console.log('stopped');
        process.exit(0);
      });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const died = (name: string) => () => {
    if (!stopping) {
      console.error(`npm start: the ${name} exited unexpectedly; stopping`);
      stop();
    }
  };
  api.child.on('exit', died('API'));
  executor.child.on('exit', died('executor'));
}

await main().catch((error: unknown) => fail((error as Error).stack ?? String(error)));
