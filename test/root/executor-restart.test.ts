// Jobs outlive the executor: each job's keeper owns it and writes its output, so a killed or
// restarted executor loses no job and no byte, and a job that ends, times out or overflows its
// output cap while no executor runs is recorded exactly as if one had been watching.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ExecutorClient } from '../../api/executor-client.ts';
import type { JobRecord } from '../../shared/job.ts';
import { sleep } from './executor-kit.ts';
import { jobInitsOf, startExecutorProcess } from './executor-process-kit.ts';
import type { ExecutorProcess } from './executor-process-kit.ts';
import { pythonAsNobody } from './external-command-kit.ts';

const restart = suite('executor restarts');

/** Reads a job's output from `offset` until the stream ends or breaks; what arrived, and how. */
async function readFrom(
  client: ExecutorClient,
  id: string,
  offset: number,
): Promise<{ bytes: Buffer; ended: boolean }> {
  const chunks: Buffer[] = [];
  let ended = false;
  try {
    for await (const event of client.readOutput(id, offset)) {
      if ('chunk' in event) chunks.push(Buffer.from(event.chunk.data));
      else ended = true;
    }
  } catch {
    // the executor went away mid-stream
  }
  return { bytes: Buffer.concat(chunks), ended };
}

/**
 * A watcher as jobctl logs -f is one: reads, and on a broken stream resumes from its offset. It
 * gives up after a minute, so that a failed test ends instead of leaving it retrying forever.
 */
async function watchAcrossRestarts(socketPath: () => string, id: string): Promise<Buffer> {
  let received = Buffer.alloc(0);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const client = new ExecutorClient(socketPath());
    const { bytes, ended } = await readFrom(client, id, received.length);
    client.close();
    received = Buffer.concat([received, bytes]);
    if (ended) return received;
    await sleep(50);
  }
  throw new Error(`the watcher of ${id} never saw the end (${received.length} bytes)`);
}

async function untilEnded(client: ExecutorClient, id: string): Promise<JobRecord> {
  for (;;) {
    const record = await client.getJob(id);
    if (record.state !== 'RUNNING') return record;
    await sleep(20);
  }
}

const LINES = 400;
const counting = `i=0; while [ $i -lt ${LINES} ]; do i=$((i+1)); echo "line $i"; echo "err $i" >&2; sleep 0.005; done`;

restart(
  'kill -9 mid-stream: the job runs on, watchers resume to byte-identical output, the record is right',
  async () => {
    let x: ExecutorProcess = await startExecutorProcess();
    try {
      const client = new ExecutorClient(x.socketPath);
      const job = await client.startJob({ argv: ['sh', '-c', counting] }, 'tester');
      client.close();
      const current = () => x.socketPath;
      const watchers = Array.from({ length: 3 }, () => watchAcrossRestarts(current, job.id));
      await sleep(400);
      await x.stop('SIGKILL');
      assert.is(jobInitsOf(x.stateDir), 1, 'the job runs on while no executor does');
      await sleep(300);
      x = await x.restart();
      const again = new ExecutorClient(x.socketPath);
      assert.is((await again.getJob(job.id)).state, 'RUNNING', 'taken over, still running');
      const outputs = await Promise.all(watchers);
      const record = await untilEnded(again, job.id);
      const stored = (await readFrom(again, job.id, 0)).bytes;
      again.close();
      assert.equal([record.state, record.endReason, record.exitCode], ['COMPLETED', 'exited', 0]);
      assert.is(record.outputBytes, stored.length);
      const lines = stored.toString().split('\n').filter(Boolean);
      assert.is(lines.length, 2 * LINES, 'every line of both streams is stored');
      assert.is(lines.filter((line) => line.startsWith('line ')).length, LINES);
      const digest = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
      for (const output of outputs) assert.is(digest(output), digest(stored));
    } finally {
      await x.remove();
    }
  },
);

restart('SIGTERM leaves jobs to their keepers; the next executor takes them over', async () => {
  let x = await startExecutorProcess();
  try {
    let client = new ExecutorClient(x.socketPath);
    const job = await client.startJob({ argv: ['sleep', '60'] }, 'tester');
    client.close();
    const { code } = await x.stop('SIGTERM');
    assert.is(code, 0, x.log());
    assert.not.ok(existsSync(x.socketPath));
    assert.is(jobInitsOf(x.stateDir), 1, 'the job runs on');
    x = await x.restart();
    client = new ExecutorClient(x.socketPath);
    assert.is((await client.getJob(job.id)).state, 'RUNNING');
    assert.match(x.log(), /took over running jobs/);
    const stopped = await client.stopJob(job.id, 100);
    assert.equal(
      [stopped.state, stopped.endReason, stopped.signal],
      ['STOPPED', 'stopped', 'SIGTERM'],
    );
    client.close();
    assert.is(jobInitsOf(x.stateDir), 0);
  } finally {
    await x.remove();
  }
});

restart('a job that ends while no executor runs is recorded exactly when one is back', async () => {
  let x = await startExecutorProcess();
  try {
    let client = new ExecutorClient(x.socketPath);
    const job = await client.startJob(
      { argv: ['sh', '-c', 'sleep 0.5; echo done; head -c 100000 /dev/zero >&2; exit 7'] },
      'tester',
    );
    client.close();
    await x.stop('SIGKILL');
    await sleep(1500);
    assert.is(jobInitsOf(x.stateDir), 0, 'the job has ended meanwhile');
    x = await x.restart();
    client = new ExecutorClient(x.socketPath);
    const record = await client.getJob(job.id);
    assert.equal(
      [record.state, record.endReason, record.exitCode, record.outputBytes, record.outputTruncated],
      ['FAILED', 'exited', 7, 100_005, false],
    );
    assert.ok(record.endedAt !== null && record.endedAt < Date.now() - 500, 'ended while down');
    assert.ok((record.usage?.cpuSeconds ?? -1) >= 0, 'usage read from the cgroup');
    assert.is((await readFrom(client, job.id, 0)).bytes.length, 100_005);
    client.close();
  } finally {
    await x.remove();
  }
});

restart('a job times out while no executor runs: stopped on time, recorded timed-out', async () => {
  let x = await startExecutorProcess({ stopGraceMs: 200 });
  try {
    let client = new ExecutorClient(x.socketPath);
    const job = await client.startJob(
      { argv: ['sh', '-c', 'trap "" TERM; echo started; sleep 60'], timeoutMs: 400 },
      'tester',
    );
    client.close();
    await x.stop('SIGKILL');
    await sleep(1500);
    assert.is(jobInitsOf(x.stateDir), 0, 'the keeper enforced the timeout (and the grace) alone');
    x = await x.restart();
    client = new ExecutorClient(x.socketPath);
    const record = await client.getJob(job.id);
    assert.equal(
      [record.state, record.endReason, record.signal],
      ['FAILED', 'timed-out', 'SIGKILL'],
    );
    assert.ok((record.endedAt ?? 0) - record.createdAt < 1400, 'ended at timeout + grace');
    client.close();
  } finally {
    await x.remove();
  }
});

restart(
  'the output cap holds while no executor runs: the rest is dropped, marked truncated',
  async () => {
    let x = await startExecutorProcess({ maxOutputBytes: 4096 });
    try {
      let client = new ExecutorClient(x.socketPath);
      const job = await client.startJob(
        { argv: ['sh', '-c', 'sleep 0.3; head -c 5000000 /dev/zero; echo finished >&2'] },
        'tester',
      );
      client.close();
      await x.stop('SIGKILL');
      await sleep(1500);
      x = await x.restart();
      client = new ExecutorClient(x.socketPath);
      const record = await client.getJob(job.id);
      assert.equal(
        [record.state, record.outputBytes, record.outputTruncated],
        ['COMPLETED', 4096, true],
      );
      assert.is((await readFrom(client, job.id, 0)).bytes.length, 4096);
      client.close();
    } finally {
      await x.remove();
    }
  },
);

restart('an OOM kill while no executor runs is recorded oom-killed', async () => {
  let x = await startExecutorProcess();
  try {
    let client = new ExecutorClient(x.socketPath);
    const job = await client.startJob(
      {
        argv: ['python3', '-c', 'import time; time.sleep(0.5); b = bytearray(256 * 1024 * 1024)'],
        limits: { memoryBytes: 64 * 1024 * 1024 },
      },
      'tester',
    );
    client.close();
    await x.stop('SIGKILL');
    await sleep(2000);
    x = await x.restart();
    client = new ExecutorClient(x.socketPath);
    const record = await untilEnded(client, job.id);
    assert.equal(
      [record.state, record.endReason, record.signal],
      ['FAILED', 'oom-killed', 'SIGKILL'],
    );
    client.close();
  } finally {
    await x.remove();
  }
});

restart(
  'a killed keeper takes its job with it: recorded executor-restarted, saying why',
  async () => {
    const x = await startExecutorProcess();
    try {
      const client = new ExecutorClient(x.socketPath);
      const job = await client.startJob({ argv: ['sleep', '60'] }, 'tester');
      const [pid] = readFileSync(`${x.stateDir}/state/jobs/${job.id}/keeper.id`, 'utf8').split(' ');
      process.kill(Number(pid), 'SIGKILL');
      const record = await untilEnded(client, job.id);
      assert.equal([record.state, record.endReason], ['FAILED', 'executor-restarted']);
      assert.match(record.error ?? '', /keeper was gone .* the job was killed with it/);
      assert.is(jobInitsOf(x.stateDir), 0);
      client.close();
    } finally {
      await x.remove();
    }
  },
);

restart(
  'a keeper answers root only, closes a connection on any unknown line, and takes no more than four',
  async () => {
    const x = await startExecutorProcess();
    try {
      const client = new ExecutorClient(x.socketPath);
      const job = await client.startJob({ argv: ['sleep', '60'] }, 'tester');
      const socket = `${x.stateDir}/state/jobs/${job.id}/keeper.sock`;
      const asNobody = await pythonAsNobody(
        `import socket; socket.socket(socket.AF_UNIX).connect(${JSON.stringify(socket)})`,
      );
      assert.match(asNobody.stderr, /PermissionError/, asNobody.stderr);
      const probe = [
        'import socket, sys',
        `path = ${JSON.stringify(socket)}`,
        'hostile = socket.socket(socket.AF_UNIX); hostile.connect(path)',
        // The keeper's hello is two lines, which may come in two reads.
        'hello = b""',
        'while hello.count(b"\\n") < 2: hello += hostile.recv(200) or exit("closed early")',
        'hostile.sendall(b"stop -1\\n")',
        'print("closed" if hostile.recv(200) == b"" else "open")',
        'held = []',
        'for _ in range(6):',
        '    s = socket.socket(socket.AF_UNIX); s.connect(path); held.append(s)',
        'print(sum(1 for s in held if s.recv(200) != b""))',
      ].join('\n');
      const ran = spawnSync('python3', ['-c', probe], { encoding: 'utf8' });
      // The executor holds one connection (its launch channel): three more are served.
      assert.is(ran.stdout, 'closed\n3\n', ran.stderr);
      assert.is((await client.getJob(job.id)).state, 'RUNNING', 'the job is unharmed');
      client.close();
    } finally {
      await x.remove();
    }
  },
);

restart.run();
