// The helper's launcher, run as the executor runs it (fd 3 its link, a socket path as argument):
// it forks a keeper per root connection, refuses anyone else even where the socket's directory
// would let them in, and ends when the executor's end of its link closes.
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ExecutorClient } from '../../api/executor-client.ts';
import { EXECUTOR_DEFAULTS } from '../../executor/config.ts';
import { sleep, TEST_PREFIX } from './executor-kit.ts';
import {
  jobInitsOf,
  startExecutorProcess,
  trackChild,
  untilNoJobRunning,
} from './executor-process-kit.ts';
import { pythonAsNobody } from './external-command-kit.ts';

interface Launcher {
  dir: string;
  socketPath: string;
  child: ChildProcess;
  link: net.Socket;
  said: () => string;
  exited: Promise<number | null>;
}

async function startLauncher(
  socketName = 'launcher.sock',
  maskPaths: string[] = [],
): Promise<Launcher> {
  const dir = await mkdtemp(`/var/tmp/${TEST_PREFIX}`);
  const socketPath = join(dir, socketName);
  const child = trackChild(
    spawn(EXECUTOR_DEFAULTS.helperPath, ['launcher', socketPath, ...maskPaths], {
      stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
      env: {},
    }),
  );
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const link = child.stdio[3] as net.Socket;
  let said = '';
  link.setEncoding('utf8');
  link.on('data', (text: string) => (said += text));
  const deadline = Date.now() + 5000;
  while (!said.includes('\n') && child.exitCode === null && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { dir, socketPath, child, link, said: () => said, exited };
}

async function stopLauncher(launcher: Launcher): Promise<void> {
  launcher.link.destroy();
  await launcher.exited;
  await rm(launcher.dir, { recursive: true, force: true });
}

/** The first line a connection to the launcher gets, or "" when it is closed without one. */
function firstLine(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath);
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('\n')) {
        socket.destroy();
        resolve(text.slice(0, text.indexOf('\n')));
      }
    });
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

const launcher = suite('keeper launcher');

launcher('says ready, and forks a keeper for each root connection', async () => {
  const l = await startLauncher();
  try {
    assert.is(l.said(), 'ready\n');
    const hellos = await Promise.all([firstLine(l.socketPath), firstLine(l.socketPath)]);
    const pids = hellos.map((hello) => {
      assert.match(hello, /^keeper \d+ \d+$/);
      return Number(hello.split(' ')[1]);
    });
    assert.is(new Set(pids).size, 2, 'a keeper of its own per connection');
    assert.not.ok(pids.includes(l.child.pid ?? 0), 'keepers are not the launcher itself');
  } finally {
    await stopLauncher(l);
  }
});

/** A keeper's spec as the executor frames it: u32 length, then "key\0value\0" pairs. */
function specFrame(pairs: [string, string][]): Buffer {
  const body = Buffer.from(pairs.map(([key, value]) => `${key}\0${value}\0`).join(''));
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length);
  return Buffer.concat([header, body]);
}

/**
 * Gives a keeper of `l` a job in `jobDir` (made here unless it exists) running `argv` as an
 * unused uid, with `record` as its record, then says its cgroups are ready (or, `giveUp`, ends
 * the connection instead); resolves with the keeper's hello and everything it said until it
 * closed the connection.
 */
async function runKeeper(
  l: Launcher,
  jobDir: string,
  record: string,
  argv: string[],
  { giveUp = false } = {},
): Promise<{ pid: string; startTime: string; said: string }> {
  if (!existsSync(jobDir)) mkdirSync(jobDir, { mode: 0o700 });
  const socket = net.createConnection(l.socketPath);
  let said = '';
  socket.setEncoding('utf8');
  socket.on('data', (text: string) => (said += text));
  // A keeper that ends before its init read "ready" leaves it unread: the connection is reset
  // after what the keeper said, as the executor's would be.
  socket.on('error', () => undefined);
  const closed = new Promise((resolve) => socket.on('close', resolve));
  try {
    while (!said.includes('\n')) await sleep(5);
    const [, pid = '', startTime = ''] = /^keeper (\d+) (\d+)\n/.exec(said) ?? [];
    assert.ok(pid && startTime, said);
    socket.write(
      specFrame([
        ['job-dir', jobDir],
        ['uid', '199998'],
        ['gid', '199998'],
        ['hostname', 'probe'],
        ['storage', 'memory'],
        ['storage-bytes', String(1 << 20)],
        ['storage-inodes', '256'],
        ['cwd', '/job'],
        ['tmp-size', String(1 << 20)],
        ['output-max', String(1 << 20)],
        ['timeout-ms', '0'],
        ['timeout-grace-ms', '1000'],
        ['nofile', '1024'],
        ['record', record],
        ...argv.map((arg): [string, string] => ['arg', arg]),
      ]),
    );
    if (giveUp) socket.end();
    else socket.write('ready\n');
    await closed;
    return { pid, startTime, said };
  } finally {
    socket.destroy();
  }
}

launcher("a keeper saves the job's record and its own identity before the job runs", async () => {
  const l = await startLauncher();
  try {
    const jobDir = join(l.dir, 'job');
    // JSON as the executor writes it; the keeper stores the text as given.
    const record = JSON.stringify({ id: 'probe', argv: ['/no/such/program'], note: 'é\u0001' });
    const { pid, startTime, said } = await runKeeper(l, jobDir, record, ['/no/such/program']);
    assert.match(said, /\nstart-error 2 exec\n/, 'the program was tried, and could not be run');
    assert.is(readFileSync(join(jobDir, 'record.json'), 'utf8'), record);
    assert.is(readFileSync(join(jobDir, 'keeper.id'), 'utf8'), `${pid} ${startTime}\n`);
    assert.not.ok(existsSync(join(jobDir, 'record.json.tmp')), 'no temporary file is left');
  } finally {
    await stopLauncher(l);
  }
});

launcher('a job whose record cannot be saved never runs', async () => {
  const l = await startLauncher();
  try {
    const jobDir = join(l.dir, 'job');
    mkdirSync(jobDir, { mode: 0o700 });
    // The record's temporary name taken by a directory: the keeper cannot write it.
    mkdirSync(join(jobDir, 'record.json.tmp'));
    const { said } = await runKeeper(l, jobDir, '{}', ['/bin/echo', 'ran']);
    // The start fails, saying why; the init, given no go, never forks the job.
    assert.match(said, /\nstart-error 21 create record\.json\.tmp\n/);
    assert.not.match(said, /\nstarted\n/);
    assert.not.ok(existsSync(join(jobDir, 'record.json')));
  } finally {
    await stopLauncher(l);
  }
});

launcher('a keeper whose executor gives up before the cgroups are ready runs nothing', async () => {
  const l = await startLauncher();
  try {
    const jobDir = join(l.dir, 'job');
    const { pid, said } = await runKeeper(l, jobDir, '{}', ['/bin/echo', 'ran'], { giveUp: true });
    // The init, waiting for "ready", reads the end of the connection instead: it fails at that
    // first step (the keeper relays why), builds nothing, never forks the job, and both end.
    assert.match(said, /\nstart-error 32 read cgroups ready\n/);
    assert.not.match(said, /\nstarted\n/);
    const init = /\ninit (\d+)\n/.exec(said)?.[1] ?? '';
    assert.ok(init, said);
    const deadline = Date.now() + 2_000;
    const alive = () => [pid, init].filter((process) => existsSync(`/proc/${process}`));
    while (alive().length > 0 && Date.now() < deadline) await sleep(10);
    assert.equal(alive(), [], 'the keeper and its init have ended');
    assert.is(readFileSync(join(jobDir, 'output.bin')).length, 0, 'nothing of the job ran');
  } finally {
    await stopLauncher(l);
  }
});

launcher(
  'a connection from another uid is closed unanswered, even where the directory lets it in',
  async () => {
    const l = await startLauncher();
    try {
      chmodSync(l.dir, 0o755);
      chmodSync(l.socketPath, 0o777);
      const probe = [
        'import socket',
        `s = socket.socket(socket.AF_UNIX); s.connect(${JSON.stringify(l.socketPath)})`,
        'print("closed" if s.recv(200) == b"" else "answered")',
      ].join('\n');
      const asNobody = await pythonAsNobody(probe);
      assert.is(asNobody.stdout, 'closed\n', asNobody.stderr);
      assert.match(await firstLine(l.socketPath), /^keeper \d+ \d+$/, 'root is still served');
    } finally {
      await stopLauncher(l);
    }
  },
);

launcher('ends when the executor closes its link, leaving its socket file', async () => {
  const l = await startLauncher();
  l.link.destroy();
  assert.is(await l.exited, 0);
  assert.ok(existsSync(l.socketPath), 'the next executor may already have bound a new one');
  await rm(l.dir, { recursive: true, force: true });
});

launcher('a socket path it cannot use is a start error on its link', async () => {
  const l = await startLauncher(`${'x'.repeat(120)}.sock`);
  try {
    assert.match(l.said(), /^start-error 22 launcher socket path\n$/);
    assert.is(await l.exited, 1);
  } finally {
    await stopLauncher(l);
  }
});

launcher('a mask path that is not absolute and clean is a start error naming it', async () => {
  const l = await startLauncher('launcher.sock', ['/etc/../root']);
  try {
    assert.match(l.said(), /^start-error 22 launcher mask \/etc\/\.\.\/root\n$/);
    assert.is(await l.exited, 1);
    assert.not.ok(existsSync(l.socketPath), 'it never listened');
  } finally {
    await stopLauncher(l);
  }
});

launcher('without the launcher argument the helper refuses to run', () => {
  const ran = spawnSync(EXECUTOR_DEFAULTS.helperPath, [], { encoding: 'utf8' });
  assert.is(ran.status, 2);
  assert.match(ran.stderr, /started by the jobworker executor only/);
});

/** Pids of live launchers serving `socketPath` (their command line names it). */
function launchersOf(socketPath: string): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        return argv[1] === 'launcher' && argv[2] === socketPath;
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
}

async function untilGone(pids: number[]): Promise<void> {
  const deadline = Date.now() + 5000;
  const alive = () => pids.filter((pid) => existsSync(`/proc/${pid}`));
  while (alive().length > 0 && Date.now() < deadline) await sleep(20);
  assert.equal(alive(), [], 'the launcher is gone');
}

launcher(
  'the executor starts its launcher again when it died; a running job is not touched',
  async () => {
    const x = await startExecutorProcess();
    const client = new ExecutorClient(x.socketPath);
    try {
      const running = await client.startJob({ argv: ['sleep', '60'] }, 'tester');
      const socketPath = join(x.stateDir, 'state', 'launcher.sock');
      const first = launchersOf(socketPath);
      assert.is(first.length, 1, 'one launcher');
      const keeper = readFileSync(
        join(x.stateDir, 'state', 'jobs', running.id, 'keeper.id'),
        'utf8',
      );
      const keeperArgv = readFileSync(`/proc/${keeper.split(' ')[0]}/cmdline`, 'utf8');
      assert.equal(
        keeperArgv.split('\0').filter((arg) => arg !== ''),
        [EXECUTOR_DEFAULTS.helperPath, 'keeper'],
        'a keeper says what it is',
      );
      process.kill(first[0] ?? 0, 'SIGKILL');
      await untilGone(first);
      const next = await client.startJob({ argv: ['true'] }, 'tester');
      assert.is(next.state, 'RUNNING');
      assert.is(launchersOf(socketPath).length, 1, 'a new launcher');
      assert.match(x.log(), /the keeper launcher ended; the next job start starts another/);
      assert.is((await client.getJob(running.id)).state, 'RUNNING');
    } finally {
      client.close();
      await x.remove();
    }
  },
);

/** The launcher's children: the keepers it forked that are still alive. */
function keepersOf(launcherPid: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        return (
          /^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ===
          String(launcherPid)
        );
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
}

launcher('a start refused after its keeper was asked for leaves no keeper behind', async () => {
  const x = await startExecutorProcess();
  const client = new ExecutorClient(x.socketPath);
  try {
    await client.startJob({ argv: ['true'] }, 'tester'); // the launcher runs from here on
    const [launcherPid = 0] = launchersOf(join(x.stateDir, 'state', 'launcher.sock'));
    for (let i = 0; i < 5; i += 1) {
      // Refused while the job's cgroups are planned: after the keeper was asked for.
      const refused = await client
        .startJob({ argv: ['true'], limits: { cpusetCpus: '0-4095' } }, 'tester')
        .then(
          () => null,
          (error: Error) => error,
        );
      assert.match(refused?.message ?? '', /limits\.cpusetCpus: CPU .* is not available/);
    }
    const deadline = Date.now() + 5000;
    while (keepersOf(launcherPid).length > 0 && Date.now() < deadline) await sleep(20);
    assert.equal(keepersOf(launcherPid), [], 'no keeper is left waiting for a job');
  } finally {
    client.close();
    await x.remove();
  }
});

launcher('a killed executor takes its launcher with it, not its jobs', async () => {
  const x = await startExecutorProcess();
  const client = new ExecutorClient(x.socketPath);
  try {
    const running = await client.startJob({ argv: ['sleep', '60'] }, 'tester');
    client.close();
    const socketPath = join(x.stateDir, 'state', 'launcher.sock');
    const launchers = launchersOf(socketPath);
    assert.is(launchers.length, 1);
    await x.stop('SIGKILL');
    await untilGone(launchers);
    assert.ok(jobInitsOf(x.stateDir) > 0, `job ${running.id} still runs`);
  } finally {
    await x.remove();
  }
});

launcher(
  'a keeper sends its status, the same as its file, with "ended": the executor reads no file',
  async () => {
    const x = await startExecutorProcess();
    const client = new ExecutorClient(x.socketPath);
    try {
      const job = await client.startJob(
        { argv: ['sh', '-c', 'echo hi; sleep 0.5; exit 3'] },
        'tester',
      );
      const jobDir = join(x.stateDir, 'state', 'jobs', job.id);
      // As a restarted executor would: keeper.sock, then "watch" until the keeper is done.
      const said = await new Promise<string>((resolve, reject) => {
        const socket = net.createConnection(join(jobDir, 'keeper.sock'));
        let text = '';
        socket.setEncoding('utf8');
        socket.on('connect', () => socket.write('watch\n'));
        socket.on('data', (chunk: string) => (text += chunk));
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
      });
      const lines = said.trimEnd().split('\n');
      assert.is(lines.at(-1), 'ended', said);
      const status = lines
        .filter((line) => line.startsWith('status '))
        .map((line) => line.slice(7));
      assert.equal(status.slice(0, 2), ['result exited 3', 'output 3 0'], said);
      assert.match(status[2] ?? '', /^ended \d+$/);
      assert.is(`${status.join('\n')}\n`, readFileSync(join(jobDir, 'keeper.status'), 'utf8'));
      // The executor's own channel closed at the same moment: its record follows shortly.
      await untilNoJobRunning(join(x.stateDir, 'state'));
      const record = await client.getJob(job.id);
      assert.equal([record.state, record.exitCode, record.outputBytes], ['FAILED', 3, 3]);
    } finally {
      client.close();
      await x.remove();
    }
  },
);

launcher.run();
