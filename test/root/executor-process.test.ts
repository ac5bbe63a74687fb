// The executor as it runs in production: its own process, its socket, its restarts.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmdirSync, statSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ExecutorClient } from '../../api/executor-client.ts';
import type { JobError } from '../../shared/errors.ts';
import { encodeFrame, FrameDecoder } from '../../shared/framing.ts';
import { cgroupDirsNamed, sleep } from './executor-kit.ts';
import { spawnService, startExecutorProcess, TEST_SOCKET_GID } from './executor-process-kit.ts';
import type { ExecutorProcess } from './executor-process-kit.ts';
import { compiledPath } from '../../shared/app-layout.ts';

const executor = suite<{ x: ExecutorProcess; client: ExecutorClient }>('executor process');
executor.before(async (context) => {
  context.x = await startExecutorProcess();
  context.client = new ExecutorClient(context.x.socketPath);
});
executor.after(async ({ x, client }) => {
  client.close();
  await x.remove();
});

/** Raw frames over a fresh connection: what a broken or hostile client would send. */
async function exchange(
  path: string,
  bytes: Buffer,
  waitMs = 300,
): Promise<{ replies: unknown[]; closed: boolean }> {
  const socket = net.createConnection(path);
  const decoder = new FrameDecoder();
  const replies: unknown[] = [];
  let closed = false;
  socket.on('data', (data: Buffer) => replies.push(...decoder.push(data)));
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(bytes);
  const deadline = Date.now() + waitMs * 5;
  while (!closed && Date.now() < deadline && replies.length === 0) await sleep(10);
  await sleep(waitMs);
  socket.destroy();
  return { replies, closed };
}

async function collect(
  client: ExecutorClient,
  id: string,
  offset = 0,
): Promise<{ text: string; end: unknown }> {
  let text = '';
  let end: unknown = null;
  for await (const event of client.readOutput(id, offset)) {
    if ('chunk' in event) text += Buffer.from(event.chunk.data).toString();
    else end = event.end;
  }
  return { text, end };
}

executor('the socket is root:<group> 0660 in a root:<group> 0750 directory', ({ x }) => {
  const socket = statSync(x.socketPath);
  const dir = statSync(dirname(x.socketPath));
  assert.equal([socket.uid, socket.gid, socket.mode & 0o777], [0, TEST_SOCKET_GID, 0o660]);
  assert.equal([dir.uid, dir.gid, dir.mode & 0o777], [0, TEST_SOCKET_GID, 0o750]);
});

executor(
  'only the socket group may connect: nobody is refused, nobody + the group is served',
  async ({ x }) => {
    const attempt = (groups: number[]) =>
      new Promise<string>((resolve) => {
        const child = spawn(
          'python3',
          [
            '-c',
            `import os, socket\nos.setgroups(${JSON.stringify(groups)})\nos.setgid(65534)\nos.setuid(65534)\ns = socket.socket(socket.AF_UNIX)\ntry:\n  s.connect(${JSON.stringify(x.socketPath)}); print('connected')\nexcept OSError as e: print(e.strerror)`,
          ],
          { stdio: ['ignore', 'pipe', 'inherit'] },
        );
        let out = '';
        child.stdout.on('data', (data: Buffer) => (out += data.toString()));
        child.on('close', () => resolve(out.trim()));
      });
    assert.is(await attempt([]), 'Permission denied');
    assert.is(await attempt([TEST_SOCKET_GID]), 'connected');
  },
);

executor('start, get, list, read-output and stop work through the socket', async ({ client }) => {
  const owner = `owner-${randomBytes(3).toString('hex')}`;
  const job = await client.startJob(
    { argv: ['sh', '-c', 'echo hello; echo oops >&2; exit 4'] },
    owner,
  );
  assert.is(job.owner, owner);
  const { text, end } = await collect(client, job.id);
  assert.is(text, 'hello\noops\n');
  assert.equal(end, { outputBytes: 11, truncated: false });
  const record = await client.getJob(job.id);
  assert.equal([record.state, record.endReason, record.exitCode], ['FAILED', 'exited', 4]);
  assert.equal(
    (await client.listJobs({ owner })).jobs.map((j) => j.id),
    [job.id],
  );

  const long = await client.startJob({ argv: ['sleep', '60'] }, owner);
  const stopped = await client.stopJob(long.id, 1000);
  assert.equal([stopped.state, stopped.endReason], ['STOPPED', 'stopped']);
});

executor('errors cross the socket with their code and message', async ({ client }) => {
  const expectError = async (promise: Promise<unknown>, code: string, message: RegExp) => {
    try {
      await promise;
      assert.unreachable();
    } catch (error) {
      assert.is((error as JobError).code, code);
      assert.match((error as Error).message, message);
    }
  };
  await expectError(
    client.startJob({ argv: ['no-such-program'] }, 'x'),
    'start-failed',
    /^exec "no-such-program": no such file or directory$/,
  );
  await expectError(
    client.startJob({ argv: [] }, 'x'),
    'invalid-argument',
    /^spec\.argv: must not be empty$/,
  );
  await expectError(client.getJob('f'.repeat(32)), 'not-found', /not found/);
  await expectError(client.getJob('../../etc/passwd'), 'invalid-argument', /^id: must be a job id/);
});

executor(
  'malformed and oversize frames get an error, the connection is closed, the executor keeps serving',
  async ({ x, client }) => {
    const oversize = Buffer.alloc(4);
    oversize.writeUInt32BE(64 * 1024 * 1024);
    const garbage = Buffer.concat([Buffer.from([0, 0, 0, 3]), Buffer.from([0xd4, 0x7f, 0x00])]);
    const cases: [string, Buffer, RegExp][] = [
      ['oversize header', oversize, /frame length 67108864 exceeds the maximum of 1048576/],
      ['undecodable body', garbage, /undecodable frame/],
      ['not an object', encodeFrame('hello'), /request: must be an object/],
      [
        'unknown op',
        encodeFrame({ id: 7, op: 'exec-as-root', args: {} }),
        /op: must be one of start, stop, get, owner, list, read-output/,
      ],
      ['missing args', encodeFrame({ id: 8, op: 'get' }), /args: is required/],
      [
        'extra key',
        encodeFrame({ id: 9, op: 'get', args: { id: 'a'.repeat(32) }, sudo: true }),
        /sudo: is not a known field/,
      ],
      ['the 0xc1 byte', Buffer.from([0, 0, 0, 1, 0xc1]), /request: must be a plain object/],
    ];
    for (const [name, bytes, message] of cases) {
      const { replies, closed } = await exchange(x.socketPath, bytes);
      assert.is(replies.length, 1, name);
      const reply = replies[0] as { error: { code: string; message: string } };
      assert.is(reply.error.code, 'protocol-error', name);
      assert.match(reply.error.message, message, name);
      assert.ok(closed, `${name}: connection closed`);
    }
    assert.is(x.child.exitCode, null, 'executor still running');
    assert.is((await client.listJobs({ limit: 1 })).jobs.length, 1);
    assert.match(x.log(), /protocol error; closing connection/);
  },
);

executor('bad arguments get invalid-argument and the connection stays usable', async ({ x }) => {
  const frames = Buffer.concat([
    encodeFrame({
      id: 1,
      op: 'start',
      args: { spec: { argv: ['true'], limits: { cpus: -1 } }, owner: 'x' },
    }),
    encodeFrame({ id: 2, op: 'list', args: { limit: 1 } }),
  ]);
  const { replies, closed } = await exchange(x.socketPath, frames);
  assert.not.ok(closed);
  const [first, second] = replies as [
    { id: number; error: { code: string; message: string } },
    { id: number; ok: unknown },
  ];
  assert.equal(
    [first.id, first.error.code, first.error.message],
    [1, 'invalid-argument', 'spec.limits.cpus: must be at least 0.01 cores'],
  );
  assert.is(second.id, 2);
  assert.ok('ok' in second);
});

executor('many concurrent watchers over the socket get identical output', async ({ client }) => {
  const job = await client.startJob({ argv: ['seq', '-w', '1', '2000000'] }, 'watcher');
  const expected = execFileSync('sh', ['-c', 'seq -w 1 2000000 | sha256sum'], {
    encoding: 'utf8',
  }).split(' ')[0];
  const { createHash } = await import('node:crypto');
  const digests = await Promise.all(
    Array.from({ length: 20 }, async () => {
      const hash = createHash('sha256');
      for await (const event of client.readOutput(job.id, 0))
        if ('chunk' in event) hash.update(event.chunk.data);
      return hash.digest('hex');
    }),
  );
  assert.equal(new Set(digests), new Set([expected]));
});

executor.run();

const lifecycle = suite('executor process lifecycle');

lifecycle(
  'drain stops every job and records it; then SIGTERM removes socket and cgroups, exits 0',
  async () => {
    const x = await startExecutorProcess();
    const client = new ExecutorClient(x.socketPath);
    try {
      const jobs = await Promise.all(
        [1, 2, 3].map(() => client.startJob({ argv: ['sleep', '60'] }, 'tester')),
      );
      const drain = spawnSync(
        process.execPath,
        [compiledPath('executor/drain.ts'), '--config', x.configPath, '--grace', '200ms'],
        { encoding: 'utf8' },
      );
      assert.is(drain.status, 0, drain.stderr);
      assert.is(drain.stdout.trim(), 'drain: 3 job(s) stopped');
      for (const job of jobs) {
        let record = await client.getJob(job.id);
        while (record.state === 'RUNNING') record = await client.getJob(job.id);
        assert.equal([record.state, record.endReason], ['STOPPED', 'stopped']);
      }
      client.close();
      const { code } = await x.stop('SIGTERM');
      assert.is(code, 0, x.log());
      assert.not.ok(existsSync(x.socketPath));
      assert.is(cgroupDirsNamed(x.cgroupName), '');
    } finally {
      client.close();
      await x.remove();
    }
  },
);

lifecycle('a stop that cannot remove its cgroups says why in its log and exits 1', async () => {
  const x = await startExecutorProcess();
  // A cgroup the executor did not make, in one of its parents: that parent cannot be removed.
  const [parent = ''] = cgroupDirsNamed(x.cgroupName).split('\n');
  const stray = join(parent, 'stray');
  mkdirSync(stray);
  try {
    const { code } = await x.stop('SIGTERM');
    assert.is(code, 1, x.log());
    assert.match(x.log(), /"msg":"stopping did not finish cleanly"/);
    assert.match(x.log(), /cannot remove [^"]+: job cgroups are still in it/);
  } finally {
    rmdirSync(stray);
    await x.remove();
  }
});

lifecycle(
  'SIGTERM while it starts: the start finishes, then it stops as usual (exit 0, no cgroup left)',
  async () => {
    const x = await startExecutorProcess();
    try {
      assert.is((await x.stop()).code, 0, x.log());
      const again = spawnService('executor/main.ts', x.configPath);
      // Its first line comes before it has made its cgroups, listened or set up its signals.
      while (!again.log().includes('"msg":"cgroups detected"')) await sleep(1);
      again.child.kill('SIGTERM');
      assert.equal(await again.exited, { code: 0, signal: null }, again.log());
      assert.match(again.log(), /"msg":"still starting: stopping once started"/);
      assert.match(again.log(), /"msg":"executor stopped"/);
      assert.is(cgroupDirsNamed(x.cgroupName), '');
    } finally {
      await x.remove();
    }
  },
);

lifecycle('drain refuses a bad grace by name and needs no running executor', async () => {
  const x = await startExecutorProcess();
  try {
    const bad = spawnSync(
      process.execPath,
      [compiledPath('executor/drain.ts'), '--config', x.configPath, '--grace', 'soon'],
      { encoding: 'utf8' },
    );
    assert.is(bad.status, 78);
    assert.match(bad.stderr, /--grace: "soon" is not a duration such as 10s/);
    const client = new ExecutorClient(x.socketPath);
    const job = await client.startJob({ argv: ['sleep', '60'] }, 'tester');
    client.close();
    await x.stop('SIGKILL');
    const drain = spawnSync(
      process.execPath,
      [compiledPath('executor/drain.ts'), '--config', x.configPath, '--grace', '0s'],
      { encoding: 'utf8' },
    );
    assert.is(drain.status, 0, drain.stderr);
    assert.is(drain.stdout.trim(), 'drain: 1 job(s) stopped');
    const again = await x.restart();
    const after = new ExecutorClient(again.socketPath);
    const record = await after.getJob(job.id);
    assert.equal(
      [record.state, record.endReason, record.signal],
      ['STOPPED', 'stopped', 'SIGKILL'],
    );
    after.close();
    await again.stop();
  } finally {
    await x.remove();
  }
});

lifecycle.run();
