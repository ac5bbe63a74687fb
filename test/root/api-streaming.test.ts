// WatchJobOutput on the real stack: many watchers, late watchers, resuming, flow control, and
// watchers that go away.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type {
  Job,
  JobServiceClient,
  OutputChunk,
} from '../../api/generated/jobworker/v1/jobworker.ts';
import { JobState, OutputStream } from '../../api/generated/jobworker/v1/jobworker.ts';
import { sleep } from './executor-kit.ts';
import { start, startStack, unary, watch } from './api-kit.ts';
import type { Stack } from './api-kit.ts';

const streaming = suite<{ stack: Stack; ada: JobServiceClient }>('output streaming');
streaming.before(async (context) => {
  // The executor logs each request it receives (op and connection).
  context.stack = await startStack({ maxWatchers: 100 }, { logLevel: 'debug' });
  context.ada = await context.stack.client('ada');
});
streaming.after(async ({ stack }) => {
  await stack.close();
});

const getJob = (client: JobServiceClient, id: string) =>
  unary<{ id: string }, Job>(client, 'getJob', { id });

/** The executor socket's connected peers, as the kernel counts them. */
function executorConnections(stack: Stack): number {
  const out = execFileSync('ss', ['-xH', 'state', 'connected'], { encoding: 'utf8' });
  return out.split('\n').filter((line) => line.includes(stack.executor.socketPath)).length;
}

/** The connection of each read-output request the executor has received so far. */
function readOutputRequests(stack: Stack): number[] {
  return stack.executor
    .log()
    .split('\n')
    .filter((line) => line.startsWith('{"') && line.includes('"msg":"request"'))
    .map((line) => JSON.parse(line) as { op?: string; connection?: number })
    .filter((request) => request.op === 'read-output')
    .map((request) => request.connection ?? -1);
}

streaming(
  '50 concurrent watchers of a running job get byte-identical output',
  async ({ stack, ada }) => {
    const lines = 2_000_000; // 18 MB of unique 9-byte lines
    const expected = execFileSync('sh', ['-c', `seq -w 1 ${lines} | sha256sum`], {
      encoding: 'utf8',
    }).split(' ')[0];
    const job = await start(ada, { argv: ['sh', '-c', `sleep 0.3; seq -w 1 ${lines}`] });
    const viewers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => stack.client(i % 2 ? 'ada' : 'vera')),
    );
    const results = await Promise.all(
      viewers.map(async (client) => {
        const hash = createHash('sha256');
        let next = 0;
        for await (const message of client.watchJobOutput({ id: job.id, offset: 0 })) {
          const chunk = message as OutputChunk;
          if (chunk.offset !== next)
            throw new Error(`gap: chunk at ${chunk.offset}, expected ${next}`);
          next += chunk.data.length;
          hash.update(chunk.data);
        }
        return { digest: hash.digest('hex'), bytes: next };
      }),
    );
    for (const result of results) assert.equal(result, { digest: expected, bytes: lines * 8 });
    assert.is((await getJob(ada, job.id)).state, JobState.JOB_STATE_COMPLETED);
  },
);

streaming(
  'a watcher that joins after the job ended still gets everything, tagged',
  async ({ ada }) => {
    const job = await start(ada, {
      argv: ['sh', '-c', 'echo out; sleep 0.05; echo err >&2; sleep 0.05; echo more'],
    });
    await watch(ada, job.id);
    const { chunks } = await watch(ada, job.id);
    assert.equal(
      chunks.map((chunk) => [chunk.stream, chunk.offset, chunk.data.toString()]),
      [
        [OutputStream.OUTPUT_STREAM_STDOUT, 0, 'out\n'],
        [OutputStream.OUTPUT_STREAM_STDERR, 4, 'err\n'],
        [OutputStream.OUTPUT_STREAM_STDOUT, 8, 'more\n'],
      ],
    );
  },
);

streaming('a watcher resuming from an offset gets exactly the rest', async ({ ada }) => {
  const job = await start(ada, { argv: ['seq', '1', '200000'] });
  const whole = (await watch(ada, job.id)).text;
  for (const offset of [1, 4096, 65_537, whole.length - 1, whole.length]) {
    assert.is((await watch(ada, job.id, offset)).text, whole.slice(offset));
  }
  // A stream dropped part-way, resumed from the last offset + length: nothing lost, nothing twice.
  let received = '';
  let resumeAt = 0;
  for await (const message of ada.watchJobOutput({ id: job.id, offset: 0 })) {
    const chunk = message as OutputChunk;
    received += chunk.data.toString();
    resumeAt = chunk.offset + chunk.data.length;
    if (received.length > 100_000) break;
  }
  received += (await watch(ada, job.id, resumeAt)).text;
  assert.is(received, whole);
});

streaming(
  'a slow watcher is held back by flow control; the job and the other watchers are not',
  async ({ stack, ada }) => {
    const size = 64 * 1024 * 1024;
    const job = await start(ada, { argv: ['head', '-c', String(size), '/dev/zero'] });
    const slowClient = await stack.client('vera');
    const slow = slowClient.watchJobOutput({ id: job.id, offset: 0 });
    let slowBytes = 0;
    slow.on('data', (chunk: OutputChunk) => {
      slowBytes += chunk.data.length;
    });
    slow.pause();
    const fast = await watch(ada, job.id);
    assert.is(
      fast.chunks.reduce((total, chunk) => total + chunk.data.length, 0),
      size,
    );
    const finished = await getJob(ada, job.id);
    assert.is(finished.state, JobState.JOB_STATE_COMPLETED);
    assert.ok(slowBytes < size, `the paused watcher had already received ${slowBytes} bytes`);
    const ended = new Promise<void>((resolve, reject) => {
      slow.on('end', resolve);
      slow.on('error', reject);
    });
    slow.resume();
    await ended;
    assert.is(slowBytes, size);
  },
);

streaming(
  'watchers of one job share one executor stream, freed at once when the last goes away',
  async ({ stack, ada }) => {
    const job = await start(ada, {
      argv: ['sh', '-c', 'while :; do echo tick; sleep 0.05; done'],
    });
    await sleep(100);
    const before = executorConnections(stack);
    const readsBefore = readOutputRequests(stack).length;
    const calls = [0, 1, 2].map(() => ada.watchJobOutput({ id: job.id, offset: 0 }));
    for (const call of calls) {
      call.on('error', () => undefined); // cancelled below
      await new Promise((resolve) => call.once('data', resolve));
    }
    assert.is(readOutputRequests(stack).length - readsBefore, 1, 'one executor stream for all');
    // Its connection is a new one, or one an earlier stream left idle.
    const during = executorConnections(stack);
    assert.ok(during - before <= 1, `${during - before} more connections`);
    const settled = async (expected: number) => {
      const deadline = Date.now() + 3000;
      while (executorConnections(stack) !== expected && Date.now() < deadline) await sleep(20);
      return executorConnections(stack);
    };
    calls[0]?.cancel();
    calls[1]?.cancel();
    assert.is(await settled(during), during, 'the third watcher still reads');
    calls[2]?.cancel();
    // A stream given up midway closes its connection: nothing half read is used again.
    assert.is(await settled(during - 1), during - 1);
    await unary(ada, 'stopJob', { id: job.id });
  },
);

streaming(
  'a stream that ended leaves its executor connection to the next: watches one after another open none',
  async ({ stack, ada }) => {
    const job = await start(ada, { argv: ['sh', '-c', 'seq 1 20000'] });
    const first = await watch(ada, job.id); // to its end, leaving its connection idle
    const before = executorConnections(stack);
    const readsBefore = readOutputRequests(stack).length;
    for (let i = 0; i < 5; i += 1) {
      const again = await watch(ada, job.id);
      assert.is(again.text, first.text);
      const resumed = await watch(ada, job.id, 100_000);
      assert.is(resumed.text, first.text.slice(100_000));
    }
    assert.is(executorConnections(stack), before, 'no new connection to the executor');
    const used = new Set(readOutputRequests(stack).slice(readsBefore));
    assert.is(used.size, 1, `ten streams, one after another, on ${used.size} connections`);
  },
);

streaming.run();
