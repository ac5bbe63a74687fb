// Following output across an API restart: `logs -f` and `run` resume from the last byte they
// received, so what they print is the job's output exactly, nothing lost and nothing twice.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openJobctlKit } from './jobctl-kit.ts';
import type { JobctlKit } from './jobctl-kit.ts';

const follow = suite<{ kit: JobctlKit }>('jobctl follow');
follow.before(async (context) => {
  context.kit = await openJobctlKit();
});
follow.after(async ({ kit }) => {
  await kit.close();
});

/** 64 KiB of every byte value, then a gate, then 64 KiB more; a line on stderr for each part. */
function twoParts(kit: JobctlKit, gate: string, exitCode = 0): string[] {
  const part = (n: number) =>
    `python3 -c 'import sys; sys.stdout.buffer.write(bytes((i * ${n}) % 256 for i in range(65536)))'; echo part ${n} >&2`;
  return ['sh', '-c', `${part(1)}; ${kit.waitFor(gate)}; ${part(7)}; exit ${exitCode}`];
}

function expectedStdout(): Buffer {
  const part = (n: number) => Buffer.from(Array.from({ length: 65536 }, (_, i) => (i * n) % 256));
  return Buffer.concat([part(1), part(7)]);
}

follow('logs -f resumes after the API restarts mid-stream, byte for byte', async ({ kit }) => {
  const started = await kit.run(['start', '--', ...twoParts(kit, 'logs')]);
  const id = started.stdout.toString().trim();
  const logs = kit.spawn(['logs', '-f', '--verbose', id]);
  await logs.until('the first part', (out, err) => out.length === 65536 && err.includes('part 1'));
  await kit.stack.restartApi();
  await kit.open('logs');
  const ran = await logs.done;
  assert.is(ran.code, 0, ran.stderr);
  assert.ok(ran.stdout.equals(expectedStdout()), `stdout: ${ran.stdout.length} bytes`);
  // The job's stderr, in order, and jobctl's own notes of the drop (it was --verbose): it
  // resumed after the 65536 bytes of stdout and the 7 of "part 1\n".
  assert.match(
    ran.stderr,
    /part 1\n(.|\n)*jobctl: lost the output stream at byte 65543 \(.*\); reconnecting…\n(.|\n)*jobctl: reconnected\npart 7\n$/,
  );
  // What the server stored is what logs -f printed.
  const again = await kit.run(['logs', id]);
  assert.ok(again.stdout.equals(ran.stdout));
  assert.is(again.stderr, 'part 1\npart 7\n');
});

follow('run rides out an API restart too, and still exits with the job code', async ({ kit }) => {
  const running = kit.spawn(['run', '--', ...twoParts(kit, 'run', 5)]);
  await running.until(
    'the first part',
    (out, err) => out.length === 65536 && err.includes('part 1'),
  );
  await kit.stack.restartApi();
  await kit.open('run');
  const ran = await running.done;
  assert.is(ran.code, 5, ran.stderr);
  assert.ok(ran.stdout.equals(expectedStdout()), `stdout: ${ran.stdout.length} bytes`);
  // Not a terminal and not --verbose: nothing of jobctl's own among the job's stderr.
  assert.is(ran.stderr, 'part 1\npart 7\n');
});

follow.run();
