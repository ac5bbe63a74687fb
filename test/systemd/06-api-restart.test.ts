// `systemctl restart jobworker-api` while a watcher streams a running job: the job goes on (it is
// the executor's), the watcher resumes from its last byte once the new API listens, and what it
// printed is the job's output exactly.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  API,
  ensureRunning,
  jobctl,
  jobStatus,
  must,
  property,
  systemctl,
  waitForApi,
  withJournal,
} from './kit.ts';

const restart = suite<{ gates: string }>('systemd: API restart');
restart.before(async (context) => {
  await ensureRunning();
  // Jobs see the machine's root read-only, enough to wait for a file the test makes; but not its
  // /tmp or /var/tmp (the executor's unit has PrivateTmp=), nor /run (each job has its own).
  context.gates = await mkdtemp('/var/lib/jobworker-test-gates-');
  await chmod(context.gates, 0o755);
});
restart.after(async ({ gates }) => {
  await rm(gates, { recursive: true, force: true });
});

/** 64 KiB of every byte value, times n. */
const part = (n: number) => Buffer.from(Array.from({ length: 65536 }, (_, i) => (i * n) % 256));
const writePart = (n: number) =>
  `python3 -c 'import sys; sys.stdout.buffer.write(bytes((i * ${n}) % 256 for i in range(65536)))'`;

restart(
  'a reload right after a restart waits until the API is ready, and reloads it: the API runs on',
  withJournal(async () => {
    const before = await property(API, 'MainPID');
    await systemctl('restart', API);
    await systemctl('reload', API);
    const pid = await property(API, 'MainPID');
    assert.is.not(pid, before);
    assert.is(await systemctl('is-active', API), 'active');
    await waitForApi();
    // Its own lines in the journal (journald may write them a moment later): the reload came
    // once it listened.
    let lines = '';
    for (let tries = 0; tries < 50 && !lines.includes('reloaded TLS material'); tries += 1) {
      if (tries > 0) await new Promise((resolve) => setTimeout(resolve, 100));
      lines = await must('journalctl', ['--no-pager', '--output=cat', `_PID=${pid}`]);
    }
    assert.match(lines, /"msg":"api listening"(.|\n)*"msg":"reloaded TLS material"/);
    const listed = await jobctl(['list']).done;
    assert.is(listed.code, 0, listed.stderr);
  }),
);

restart(
  'a watcher (logs -f) resumes across the API restart; output complete, byte for byte',
  withJournal(async ({ gates }) => {
    const gate = join(gates, 'second-part');
    const script = `${writePart(1)}; while [ ! -e ${gate} ]; do sleep 0.1; done; ${writePart(7)}`;
    const started = await jobctl(['start', '--', 'sh', '-c', script]).done;
    assert.is(started.code, 0, started.stderr);
    const id = started.stdout.toString().trim();
    const watcher = jobctl(['logs', '-f', '--verbose', id]);
    await watcher.until('the first part', (out) => out.length === 65536);
    const before = await property(API, 'MainPID');
    await systemctl('restart', API);
    assert.is.not(await property(API, 'MainPID'), before);
    await waitForApi();
    await writeFile(gate, '');
    const watched = await watcher.done;
    assert.is(watched.code, 0, watched.stderr);
    assert.ok(
      watched.stdout.equals(Buffer.concat([part(1), part(7)])),
      `${watched.stdout.length} bytes`,
    );
    assert.match(watched.stderr, /lost the output stream at byte 65536 .*\n(.|\n)*reconnected/);
    assert.is((await jobStatus(id)).state, 'completed');
  }),
);

restart.run();
