// Output: drained whether watched or not, stored in order with stream tags, read by any number
// of readers from any offset, live, with bounded memory, and capped by configuration.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { JobError } from '../../shared/errors.ts';
import { openTestRuntime, runToEnd, shell, startJob, stopJob } from './executor-kit.ts';
import type { TestRuntime } from './executor-kit.ts';

const MiB = 1024 * 1024;
const output = suite<{ t: TestRuntime }>('job output');
output.before(async (context) => {
  context.t = await openTestRuntime({ maxOutputBytes: 1024 * MiB });
});
output.after(async ({ t }) => {
  await t.close();
});

async function readAll(t: TestRuntime, id: string, offset = 0) {
  const chunks: { stream: string; offset: number; text: string }[] = [];
  for await (const chunk of t.runtime.readOutput(id, offset)) {
    chunks.push({
      stream: chunk.stream,
      offset: chunk.offset,
      text: Buffer.from(chunk.data).toString(),
    });
  }
  return chunks;
}

output(
  '20 concurrent readers of a job writing 200 MB each get identical output from offset 0 while it runs',
  async ({ t }) => {
    // Fixed-width lines ("00000001\n", 9 bytes each, 200 MB in all): every line is unique, so a
    // shifted or reordered chunk changes the hash.
    const lines = 22_222_223;
    const size = lines * (String(lines).length + 1);
    const expected = execFileSync('sh', ['-c', `seq -w 1 ${lines} | sha256sum`], {
      encoding: 'utf8',
    }).split(' ')[0];
    const job = await startJob(t.runtime, { argv: ['seq', '-w', '1', String(lines)] }, 'tester');
    const readers = Array.from({ length: 20 }, async () => {
      const hash = createHash('sha256');
      let bytes = 0;
      let next = 0;
      let sawRunning = false;
      for await (const chunk of t.runtime.readOutput(job.id, 0)) {
        assert.is(chunk.offset, next, 'chunks are contiguous');
        assert.is(chunk.stream, 'stdout');
        hash.update(chunk.data);
        bytes += chunk.data.length;
        next += chunk.data.length;
        if (!sawRunning && bytes > 10 * MiB)
          sawRunning = (await t.runtime.get(job.id)).state === 'RUNNING';
      }
      return { digest: hash.digest('hex'), bytes, sawRunning };
    });
    const results = await Promise.all(readers);
    const record = await t.runtime.wait(job.id);
    assert.is(record.state, 'COMPLETED');
    assert.is(record.outputBytes, size);
    for (const result of results) {
      assert.is(result.bytes, size);
      assert.is(result.digest, expected);
    }
    assert.ok(
      results.some((result) => result.sawRunning),
      'readers were following a running job',
    );
  },
);

output('stdout and stderr chunks are tagged and kept in order of arrival', async ({ t }) => {
  const { record } = await shell(
    t.runtime,
    'echo one; sleep 0.05; echo two >&2; sleep 0.05; echo three; sleep 0.05; echo four >&2',
  );
  const chunks = await readAll(t, record.id);
  assert.equal(
    chunks.map(({ stream, offset, text }) => [stream, offset, text]),
    [
      ['stdout', 0, 'one\n'],
      ['stderr', 4, 'two\n'],
      ['stdout', 8, 'three\n'],
      ['stderr', 14, 'four\n'],
    ],
  );
});

output('a reader resuming from an offset gets exactly the rest', async ({ t }) => {
  const { record, stdout } = await shell(t.runtime, 'seq 1 100000');
  for (const offset of [0, 1, 12345, record.outputBytes - 1, record.outputBytes]) {
    const rest = (await readAll(t, record.id, offset)).map((chunk) => chunk.text).join('');
    assert.is(rest, stdout.slice(offset), `from ${offset}`);
  }
});

output('an offset beyond the end is refused, naming the field', async ({ t }) => {
  const { record } = await shell(t.runtime, 'echo hi');
  try {
    await readAll(t, record.id, 4);
    assert.unreachable();
  } catch (error) {
    assert.is((error as JobError).code, 'invalid-argument');
    assert.match((error as Error).message, /^offset: 4 is beyond the end of the output \(3 bytes/);
  }
});

output('a reader at the end of an ended job ends at once, opening no file', async ({ t }) => {
  const { record } = await shell(t.runtime, 'echo hi');
  const dir = join(t.config.stateDir, 'jobs', record.id);
  const files = ['output.bin', 'output.idx'];
  for (const file of files) renameSync(join(dir, file), join(dir, `${file}.away`));
  try {
    assert.equal(await readAll(t, record.id, record.outputBytes), [], 'the end, from the record');
    assert.equal(await t.runtime.outputSummary(record.id), { outputBytes: 3, truncated: false });
  } finally {
    for (const file of files) renameSync(join(dir, `${file}.away`), join(dir, file));
  }
});

output('a job nobody watches never blocks on its output', async ({ t }) => {
  const job = await startJob(
    t.runtime,
    { argv: ['head', '-c', String(64 * MiB), '/dev/zero'] },
    'tester',
  );
  const record = await t.runtime.wait(job.id);
  assert.is(record.state, 'COMPLETED');
  assert.is(record.outputBytes, 64 * MiB);
});

output('a watcher that joins after the job ended still gets everything', async ({ t }) => {
  const { record, stdout, stderr } = await shell(t.runtime, 'seq 1 1000; seq 1 10 >&2');
  const chunks = await readAll(t, record.id);
  assert.is(
    chunks
      .filter((c) => c.stream === 'stdout')
      .map((c) => c.text)
      .join(''),
    stdout,
  );
  assert.is(
    chunks
      .filter((c) => c.stream === 'stderr')
      .map((c) => c.text)
      .join(''),
    stderr,
  );
});

output('a reader that goes away stops at once; the job goes on', async ({ t }) => {
  const job = await startJob(
    t.runtime,
    { argv: ['sh', '-c', 'while :; do echo tick; sleep 0.01; done'] },
    'tester',
  );
  const controller = new AbortController();
  let chunks = 0;
  for await (const _chunk of t.runtime.readOutput(job.id, 0, controller.signal)) {
    chunks += 1;
    if (chunks === 3) controller.abort();
  }
  assert.is(chunks, 3);
  assert.is((await t.runtime.get(job.id)).state, 'RUNNING');
  await stopJob(t.runtime, job.id, 1000);
});

output.run();

const capped = suite<{ t: TestRuntime }>('job output cap');
capped.before(async (context) => {
  context.t = await openTestRuntime({ maxOutputBytes: MiB });
});
capped.after(async ({ t }) => {
  await t.close();
});

capped(
  'past the cap, output is dropped (job keeps running), and the job is marked truncated',
  async ({ t }) => {
    const { record, stdout } = await runToEnd(t.runtime, { argv: ['seq', '-w', '1', '1000000'] });
    assert.is(record.state, 'COMPLETED');
    assert.is(record.outputBytes, MiB);
    assert.is(record.outputTruncated, true);
    assert.is(
      stdout,
      execFileSync('sh', ['-c', 'seq -w 1 1000000 | head -c 1048576'], { encoding: 'utf8' }),
    );
  },
);

capped('under the cap nothing is marked truncated', async ({ t }) => {
  const { record } = await shell(t.runtime, 'echo small');
  assert.is(record.outputTruncated, false);
});

capped.run();
