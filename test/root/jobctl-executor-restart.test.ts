// An executor killed mid-stream, as an operator or the OOM killer might: the job runs on under its
// keeper, `jobctl list` shows it RUNNING once the executor is back, and `jobctl logs -f` (which
// resumes from its last byte) prints exactly what the job wrote, as a watcher that never lost
// its connection would have.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openJobctlKit } from './jobctl-kit.ts';
import type { JobctlKit } from './jobctl-kit.ts';

const restart = suite<{ kit: JobctlKit }>('jobctl across executor restarts');
restart.before(async (context) => {
  context.kit = await openJobctlKit();
});
restart.after(async ({ kit }) => {
  await kit.close();
});

/** 64 KiB of every byte value, then a gate, then 64 KiB more; a line on stderr for each part. */
function twoParts(kit: JobctlKit, gate: string): string[] {
  const part = (n: number) =>
    `python3 -c 'import sys; sys.stdout.buffer.write(bytes((i * ${n}) % 256 for i in range(65536)))'; echo part ${n} >&2`;
  return ['sh', '-c', `${part(1)}; ${kit.waitFor(gate)}; ${part(7)}`];
}

function expectedStdout(): Buffer {
  const part = (n: number) => Buffer.from(Array.from({ length: 65536 }, (_, i) => (i * n) % 256));
  return Buffer.concat([part(1), part(7)]);
}

restart(
  'kill -9 of the executor: logs -f goes on byte for byte, list shows the job running',
  async ({ kit }) => {
    const started = await kit.run(['start', '--', ...twoParts(kit, 'executor')]);
    const id = started.stdout.toString().trim();
    const logs = kit.spawn(['logs', '-f', id]);
    const watcher = kit.spawn(['logs', '-f', id]);
    for (const follower of [logs, watcher])
      await follower.until(
        'the first part',
        (out, err) => out.length === 65536 && err.includes('part 1'),
      );
    await kit.stack.executor.stop('SIGKILL');
    await kit.stack.restartExecutor();
    const listed = await kit.run(['list', '--no-trunc']);
    assert.match(listed.stdout.toString(), new RegExp(`^${id} +ada +running `, 'm'));
    await kit.open('executor');
    const [ran, other] = await Promise.all([logs.done, watcher.done]);
    assert.is(ran.code, 0, ran.stderr);
    assert.ok(ran.stdout.equals(expectedStdout()), `stdout: ${ran.stdout.length} bytes`);
    assert.ok(
      other.stdout.equals(ran.stdout),
      `other watcher: code ${other.code}, ${other.stdout.length} bytes, ${other.stderr}`,
    );
    assert.is(ran.stderr, 'part 1\npart 7\n');
    const status = await kit.run(['status', '--json', id]);
    const job = JSON.parse(status.stdout.toString()) as { state: string; exitCode: number };
    assert.equal([job.state, job.exitCode], ['completed', 0]);
    const again = await kit.run(['logs', id]);
    assert.ok(again.stdout.equals(ran.stdout), 'what was stored is what logs -f printed');
  },
);

restart.run();
