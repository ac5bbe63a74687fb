// Runs last (files run in name order): after every other root test, nothing of theirs remains.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { EXECUTOR_DEFAULTS } from '../../executor/config.ts';
import { cgroupDirsNamed, TEST_PREFIX } from './executor-kit.ts';

const leftovers = suite('no leftovers');

function commandLines(): { pid: string; cmdline: string; comm: string }[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name) && Number(name) !== process.pid)
    .flatMap((pid) => {
      try {
        return [
          {
            pid,
            cmdline: readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' '),
            comm: readFileSync(`/proc/${pid}/comm`, 'utf8').trim(),
          },
        ];
      } catch {
        return [];
      }
    });
}

leftovers('no cgroup of a test remains in any hierarchy', () => {
  assert.is(cgroupDirsNamed(`${TEST_PREFIX}*`), '');
});

leftovers('no helper, job init, test executor or marked job process is running', async () => {
  const strays = () =>
    commandLines().filter(
      ({ cmdline, comm }) =>
        comm === 'jobworker-init' ||
        cmdline.startsWith(EXECUTOR_DEFAULTS.helperPath) ||
        cmdline.includes('jobworker-marker-') ||
        (cmdline.includes('executor/main.') && cmdline.includes(TEST_PREFIX)),
    );
  // A job init orphaned by a killed executor is reaped by the system's init, which may take a
  // moment: a process still exiting is not a leftover, one that stays is.
  const deadline = Date.now() + 5000;
  while (strays().length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.equal(strays(), []);
});

leftovers('no mount of a test is visible on the host', () => {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line.includes(TEST_PREFIX));
  assert.equal(mounts, []);
});

leftovers("no loop device is backed by a test's file (jobs' disk storage)", () => {
  const backed = readdirSync('/sys/block')
    .filter((name) => name.startsWith('loop'))
    .flatMap((name) => {
      try {
        return [readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').trim()];
      } catch {
        return []; // not attached
      }
    })
    .filter((file) => file.includes(TEST_PREFIX));
  assert.equal(backed, []);
});

leftovers('no state directory, socket or temporary file of a test remains', () => {
  const stateDirs = ['/var/tmp', '/var/lib'].flatMap((dir) =>
    readdirSync(dir).filter((name) => name.startsWith(TEST_PREFIX)),
  );
  const unitDirs = readdirSync(tmpdir()).filter(
    (name) => name.startsWith('jobworker-unit-') || name.startsWith(TEST_PREFIX),
  );
  assert.equal([...stateDirs, ...unitDirs], []);
  const sockets = execFileSync(
    'sh',
    ['-c', `ss -xlnp 2>/dev/null | grep -c ${TEST_PREFIX} || true`],
    { encoding: 'utf8' },
  );
  assert.is(sockets.trim(), '0');
});

leftovers.run();
