// SIGTERM to each process while it is busy: it stops cleanly and no output a job writes is lost;
// the executor leaves its jobs to their keepers, and a drain ends them with nothing left behind.
import { existsSync, readFileSync } from 'node:fs';
import { status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ExecutorClient } from '../../api/executor-client.ts';
import type { OutputChunk } from '../../api/generated/jobworker/v1/jobworker.ts';
import { cgroupDirsNamed, sleep } from './executor-kit.ts';
import { drainKeepers } from '../../executor/runtime/keeper-drain.ts';
import { createLogger } from '../../shared/logger.ts';
import { jobInitsOf, startExecutorProcess, untilNoJobRunning } from './executor-process-kit.ts';
import { codeOf, start, startStack } from './api-kit.ts';

const shutdown = suite('shutdown under load');

shutdown(
  'SIGTERM to a busy executor: it exits 0, its jobs run on; a drain stops them, output kept, nothing left',
  async () => {
    const x = await startExecutorProcess({ stopGraceMs: 1000 });
    try {
      let client = new ExecutorClient(x.socketPath);
      const jobs = [];
      for (let i = 0; i < 4; i += 1) {
        jobs.push(
          await client.startJob(
            { argv: ['sh', '-c', `i=0; while :; do i=$((i+1)); echo "job${i} line $i"; done`] },
            'tester',
          ),
        );
      }
      const received = new Map<string, Buffer[]>();
      const watchers = jobs.map(async (job) => {
        const chunks: Buffer[] = [];
        received.set(job.id, chunks);
        try {
          for await (const event of client.readOutput(job.id, 0))
            if ('chunk' in event) chunks.push(Buffer.from(event.chunk.data));
        } catch {
          // the executor went away mid-stream
        }
      });
      await sleep(500);
      assert.ok(jobInitsOf(x.stateDir) === 4, 'four jobs running');
      const { code } = await x.stop('SIGTERM');
      await Promise.all(watchers);
      client.close();
      assert.is(code, 0, x.log());
      assert.not.ok(existsSync(x.socketPath));
      assert.is(jobInitsOf(x.stateDir), 4, 'the jobs run on under their keepers');

      const again = await x.restart();
      client = new ExecutorClient(again.socketPath);
      try {
        await drainKeepers(`${x.stateDir}/state`, 1000, createLogger('test-drain', 'error'));
        await untilNoJobRunning(`${x.stateDir}/state`);
        assert.is(jobInitsOf(x.stateDir), 0);
        for (const job of jobs) {
          const record = await client.getJob(job.id);
          assert.is(record.state, 'STOPPED');
          const seen = Buffer.concat(received.get(job.id) ?? []);
          assert.ok(seen.length > 0, 'the watcher saw output before the executor stopped');
          const stored: Buffer[] = [];
          for await (const event of client.readOutput(job.id, 0))
            if ('chunk' in event) stored.push(Buffer.from(event.chunk.data));
          const all = Buffer.concat(stored);
          assert.ok(
            all.length > seen.length,
            `stored ${all.length} bytes, more than the ${seen.length} a watcher saw before`,
          );
          assert.ok(
            all.subarray(0, seen.length).equals(seen),
            'what a watcher saw is what was stored',
          );
          assert.is(record.outputBytes, all.length);
        }
      } finally {
        client.close();
        assert.is((await again.stop()).code, 0);
      }
      assert.is(cgroupDirsNamed(x.cgroupName), '');
      assert.not.match(readFileSync('/proc/self/mountinfo', 'utf8'), new RegExp(x.stateDir));
    } finally {
      await x.remove();
    }
  },
);

shutdown('SIGTERM to a busy API: streams end UNAVAILABLE, it exits 0, the jobs go on', async () => {
  const stack = await startStack();
  try {
    const ada = await stack.client('ada');
    const job = await start(ada, { argv: ['sh', '-c', 'while :; do echo tick; sleep 0.01; done'] });
    const endings = Array.from({ length: 10 }, () => {
      const stream = ada.watchJobOutput({ id: job.id, offset: 0 });
      return new Promise<status>((resolve) => {
        stream.on('data', (_chunk: OutputChunk) => undefined);
        stream.on('error', (error: ServiceError) => resolve(error.code));
        stream.on('end', () => resolve(status.OK));
      });
    });
    await sleep(300);
    const exited = new Promise<number | null>((resolve) =>
      stack.api.once('exit', (code) => resolve(code)),
    );
    stack.api.kill('SIGTERM');
    assert.is(await exited, 0);
    assert.equal(new Set(await Promise.all(endings)), new Set([status.UNAVAILABLE]));
    await stack.restartApi();
    const again = await stack.client('ada');
    assert.is(await codeOf(start(again, { argv: ['true'] })), status.OK);
    const client = new ExecutorClient(stack.executor.socketPath);
    assert.is((await client.getJob(job.id)).state, 'RUNNING');
    client.close();
  } finally {
    await stack.close();
  }
});

shutdown(
  'SIGHUP to the executor is logged and changes nothing (its config is read at start)',
  async () => {
    const x = await startExecutorProcess();
    try {
      x.child.kill('SIGHUP');
      const deadline = Date.now() + 10_000;
      while (!/SIGHUP: /.test(x.log()) && Date.now() < deadline) await sleep(20);
      assert.is(x.child.exitCode, null);
      assert.match(x.log(), /SIGHUP: the executor reads its configuration at start only/);
      const client = new ExecutorClient(x.socketPath);
      assert.ok(Array.isArray((await client.listJobs({ limit: 1 })).jobs));
      client.close();
    } finally {
      await x.remove();
    }
  },
);

shutdown.run();
