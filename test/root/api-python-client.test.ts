// An independent client: Debian's python3-grpcio (gRPC's C core, its own TLS and HTTP/2) and
// python3-protobuf, with no generated stubs: the script loads a descriptor set that buf builds
// from proto/ here, and calls the methods by their proto paths (python/jobworker_client.py).
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { start, startStack } from './api-kit.ts';
import type { Stack } from './api-kit.ts';
import { TEST_PREFIX } from './executor-kit.ts';
import { runCommand } from './external-command-kit.ts';

const SCRIPT = 'test/root/python/jobworker_client.py';

interface Context {
  stack: Stack;
  scratch: string;
  image: string;
  /** A job of bob's, which alice may not see. */
  bobsJob: string;
}

interface PythonJob {
  id: string;
  owner: string;
  argv: string[];
  state: string;
  end_reason?: string;
  exit_code?: number;
  output_bytes?: string;
}

interface PythonReport {
  grpc_version: string;
  health: string;
  started: PythonJob;
  chunks: { stream: string; offset: number; data: string }[];
  job: PythonJob;
  job_has_exit_code: boolean;
  foreign: { code: string; details?: string };
  listed: { id: string; owner: string }[];
}

const python = suite<Context>('python grpcio client');

python.before(async (context) => {
  context.stack = await startStack();
  context.scratch = await mkdtemp(`/var/tmp/${TEST_PREFIX}python-`);
  context.image = join(context.scratch, 'image.binpb');
  // A buf image is a FileDescriptorSet on the wire (its extra field is skipped as unknown).
  const built = await runCommand('node_modules/.bin/buf', ['build', '-o', context.image]);
  assert.is(built.code, 0, built.stderr);
  const bob = await context.stack.client('bob');
  context.bobsJob = (await start(bob, { argv: ['true'] })).id;
});

python.after(async ({ stack, scratch }) => {
  await stack?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** Runs the python client as alice (role user) with the job's argv; what it printed. */
async function runAsAlice(context: Context, argv: string[]): Promise<PythonReport> {
  const alice = context.stack.pki.cert('alice');
  const { code, stdout, stderr } = await runCommand('/usr/bin/python3', [
    SCRIPT,
    ...['--target', `127.0.0.1:${context.stack.port}`, '--image', context.image],
    ...['--ca', context.stack.pki.ca, '--cert', alice.cert, '--key', alice.key],
    ...['--foreign-job', context.bobsJob, '--', ...argv],
  ]);
  assert.is(code, 0, `python exited ${code}:\n${stderr}`);
  return JSON.parse(stdout) as PythonReport;
}

const text = (chunks: PythonReport['chunks'], stream: string) =>
  Buffer.concat(
    chunks.filter((chunk) => chunk.stream === stream).map((c) => Buffer.from(c.data, 'base64')),
  ).toString();

python(
  'starts a job, watches it to the end, reads it back COMPLETED; others’ jobs are NOT_FOUND',
  async (context) => {
    const argv = [
      'sh',
      '-c',
      'printf "<%s>\\n" "$@"; echo to-stderr >&2',
      'sh',
      'two  words ',
      'ünïcødé ☃ 日本',
    ];
    const report = await runAsAlice(context, argv);

    assert.is(report.health, 'SERVING');
    assert.is(report.started.owner, 'alice');
    assert.equal(report.started.argv, argv);
    assert.is(report.started.id.length, 32);

    // Every argument reached the job as one argument, byte for byte; both streams tagged.
    assert.is(text(report.chunks, 'OUTPUT_STREAM_STDOUT'), '<two  words >\n<ünïcødé ☃ 日本>\n');
    assert.is(text(report.chunks, 'OUTPUT_STREAM_STDERR'), 'to-stderr\n');
    let offset = 0;
    for (const chunk of report.chunks) {
      assert.is(chunk.offset, offset, 'chunks are contiguous');
      offset += Buffer.from(chunk.data, 'base64').length;
    }

    assert.is(report.job.id, report.started.id);
    assert.is(report.job.state, 'JOB_STATE_COMPLETED');
    assert.is(report.job.end_reason, 'END_REASON_EXITED');
    assert.is(report.job.exit_code, 0);
    assert.ok(report.job_has_exit_code, 'exit_code is set (present), not just zero by default');
    // uint64 is a string in protobuf's JSON mapping.
    assert.is(report.job.output_bytes, String(offset));

    assert.equal(report.foreign, {
      code: 'NOT_FOUND',
      details: `job ${context.bobsJob} not found`,
    });
    assert.equal(report.listed, [{ id: report.started.id, owner: 'alice' }]);
  },
);

python('reads back a failing job: FAILED, exited with its code', async (context) => {
  const report = await runAsAlice(context, ['sh', '-c', 'echo bye; exit 3']);
  assert.is(text(report.chunks, 'OUTPUT_STREAM_STDOUT'), 'bye\n');
  assert.is(report.job.state, 'JOB_STATE_FAILED');
  assert.is(report.job.end_reason, 'END_REASON_EXITED');
  assert.is(report.job.exit_code, 3);
  assert.is(report.listed.length, 2);
});

python.run();
