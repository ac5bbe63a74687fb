// The executor as it runs in production, on cgroup v2: its own process, started alone in a
// delegated service cgroup, serving start → output → stop over its socket, and leaving nothing
// of its jobs once they are drained.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { drainKeepers } from '../../executor/runtime/keeper-drain.ts';
import { createLogger } from '../../shared/logger.ts';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ExecutorClient } from '../../api/executor-client.ts';
import { sleep } from '../root/executor-kit.ts';
import {
  cgroupFile,
  JOB_CONTROLLERS,
  logged,
  MiB,
  ownCgroupDir,
  pidsWhere,
  requireV2Vm,
  words,
} from './kit.ts';
import { startExecutorService, type ExecutorService } from './service-kit.ts';

const executor = suite<{ x: ExecutorService; client: ExecutorClient }>('v2 executor process');
executor.before(
  logged(async (context) => {
    context.x = await startExecutorService(requireV2Vm());
    context.client = new ExecutorClient(context.x.socketPath);
  }),
);
executor.after(async ({ x, client }) => {
  client?.close();
  await x?.remove();
});

/** `pid (comm) state ppid …`: the parent is the second field after the last ')'. */
function childrenOf(pid: number): number[] {
  return pidsWhere((read) => {
    const stat = read('stat');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] === String(pid);
  });
}

executor(
  'the executor moved itself and its processes into a leaf and delegated the controllers',
  ({ x }) => {
    const leaf = join(x.cgroupDir, `${x.cgroupName}-executor`);
    assert.is(ownCgroupDir(x.pid), leaf);
    // Any child it started before the cgroups were prepared moved with it (the compiled
    // executor starts none that early).
    const children = childrenOf(x.pid);
    for (const child of children) assert.is(ownCgroupDir(child), leaf, `child ${child}`);
    assert.is(cgroupFile(x.cgroupDir, 'cgroup.procs'), '');
    assert.equal(words(cgroupFile(x.cgroupDir, 'cgroup.subtree_control')), JOB_CONTROLLERS);
    const parent = join(x.cgroupDir, x.cgroupName);
    assert.equal(words(cgroupFile(parent, 'cgroup.subtree_control')), JOB_CONTROLLERS);
    console.log(`  executor ${x.pid} and ${children.length} child process(es) in ${leaf}`);
  },
);

executor(
  'start → output → stop through the socket, with the job’s cgroup limited and removed',
  async ({ x, client }) => {
    const started = Date.now();
    const job = await client.startJob(
      {
        argv: ['sh', '-c', 'echo hello; echo oops >&2; exec sleep 600'],
        limits: { memoryBytes: 64 * MiB, pids: 16, cpus: 0.5 },
      },
      'v2-tester',
    );
    const startMs = Date.now() - started;
    const dir = join(x.cgroupDir, x.cgroupName, job.id);
    assert.equal(words(cgroupFile(dir, 'cgroup.controllers')), JOB_CONTROLLERS);
    assert.is(cgroupFile(dir, 'memory.max'), String(64 * MiB));
    assert.is(cgroupFile(dir, 'pids.max'), '17');
    assert.is(cgroupFile(dir, 'cpu.max'), '50000 100000');
    assert.ok(words(cgroupFile(dir, 'cgroup.procs')).length >= 2, 'the init and the job');

    // Follow the live output until both lines are there; the job keeps running.
    let text = '';
    for await (const event of client.readOutput(job.id, 0)) {
      if ('chunk' in event) text += Buffer.from(event.chunk.data).toString();
      if (text.includes('hello\n') && text.includes('oops\n')) break;
    }
    assert.is((await client.getJob(job.id)).state, 'RUNNING');

    const stopped = await client.stopJob(job.id, 500);
    assert.equal([stopped.state, stopped.endReason], ['STOPPED', 'stopped']);
    assert.not.ok(existsSync(dir), 'the job’s cgroup was removed');
    const replay: string[] = [];
    for await (const event of client.readOutput(job.id, 0)) {
      if ('chunk' in event) replay.push(Buffer.from(event.chunk.data).toString());
      else assert.equal(event.end, { outputBytes: 11, truncated: false });
    }
    assert.is(replay.join(''), 'hello\noops\n');
    console.log(`  start answered in ${startMs} ms; whole path ${Date.now() - started} ms`);
  },
);

executor(
  'a drain stops every job and removes their cgroups; SIGTERM then removes the parent, exits 0',
  async ({ x, client }) => {
    const job = await client.startJob({ argv: ['sleep', '600'] }, 'v2-tester');
    const dir = join(x.cgroupDir, x.cgroupName, job.id);
    assert.ok(existsSync(dir));
    const { stopped } = await drainKeepers(x.stateDir, 200, createLogger('test-drain', 'error'));
    assert.is(stopped, 1);
    for (let i = 0; i < 100 && existsSync(dir); i += 1) await sleep(20);
    assert.not.ok(existsSync(dir), 'job cgroup removed');
    assert.is((await client.getJob(job.id)).state, 'STOPPED');
    client.close();
    const { code } = await x.stop();
    assert.is(code, 0, x.log());
    assert.not.ok(existsSync(join(x.cgroupDir, x.cgroupName)), 'the jobs’ parent removed');
    assert.match(x.log(), /"executor stopped"/);
  },
);

executor.run();

const apart = suite<{ x: ExecutorService }>('v2 executor restarts (jobs in a cgroup apart)');
apart.before(
  logged(async (context) => {
    context.x = await startExecutorService(requireV2Vm(), { jobsApart: true });
  }),
);
apart.after(async ({ x }) => {
  await x?.remove();
});

apart(
  'kill -9 and a restart in the same service cgroup: the job runs on and is taken over',
  async (context) => {
    const { x } = context;
    let client = new ExecutorClient(x.socketPath);
    const job = await client.startJob(
      { argv: ['sh', '-c', 'echo before; exec sleep 600'] },
      'v2-tester',
    );
    const dir = join(x.jobsDir ?? '', x.cgroupName, job.id);
    assert.ok(existsSync(dir), 'the job’s cgroup is below the jobs’ cgroup apart');
    assert.is(cgroupFile(x.cgroupDir, 'cgroup.subtree_control'), '', 'nothing enabled beside it');
    client.close();
    await x.stop('SIGKILL');
    context.x = await x.restart();
    client = new ExecutorClient(context.x.socketPath);
    assert.is((await client.getJob(job.id)).state, 'RUNNING', 'taken over');
    assert.match(context.x.log(), /took over running jobs/);
    const stopped = await client.stopJob(job.id, 200);
    assert.equal([stopped.state, stopped.endReason], ['STOPPED', 'stopped']);
    assert.not.ok(existsSync(dir), 'the job’s cgroup was removed');
    let text = '';
    for await (const event of client.readOutput(job.id, 0))
      if ('chunk' in event) text += Buffer.from(event.chunk.data).toString();
    assert.is(text, 'before\n');
    client.close();
  },
);

apart.run();
