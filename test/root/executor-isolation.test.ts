// Isolation, observed from inside real jobs: namespaces, identity, capabilities, filesystem view.
import { hostname } from 'node:os';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import {
  openTestRuntime,
  runToEnd,
  shell,
  sleep,
  startJob,
  stopJob,
  TEST_PREFIX,
} from './executor-kit.ts';
import type { TestRuntime } from './executor-kit.ts';

const isolation = suite<{ t: TestRuntime; keys: string }>('job isolation');
isolation.before(async (context) => {
  // Stands for /etc/jobworker (keys, config): a directory the operator lists in maskPaths.
  context.keys = await mkdtemp(`/var/tmp/${TEST_PREFIX}keys-`);
  await chmod(context.keys, 0o755);
  await writeFile(`${context.keys}/server.key`, 'secret', { mode: 0o644 });
  context.t = await openTestRuntime({ maskPaths: [context.keys] });
});
isolation.after(async ({ t, keys }) => {
  await t.close();
  await rm(keys, { recursive: true, force: true });
});

isolation("ps shows only the job's own processes: its init and itself", async ({ t }) => {
  const { stdout, record } = await shell(t.runtime, 'ps -e -o pid=,comm=');
  assert.is(record.state, 'COMPLETED');
  const processes = stdout
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/));
  assert.equal(
    processes.map(([pid]) => pid),
    ['1', '2', processes[2]?.[0]],
    stdout,
  );
  assert.equal(
    processes.map(([, comm]) => comm),
    ['jobworker-init', 'sh', 'ps'],
    stdout,
  );
});

isolation("the hostname is the job's, not the host's", async ({ t }) => {
  const { stdout, record } = await shell(t.runtime, 'hostname');
  assert.is(stdout.trim(), `job-${record.id.slice(0, 12)}`);
  assert.is.not(stdout.trim(), hostname());
});

isolation('only the loopback interface exists, and it is up', async ({ t }) => {
  const { stdout } = await shell(t.runtime, 'ip -o link show; ip -o addr show lo');
  const links = stdout.split('\n').filter((line) => /^\d+: /.test(line) && line.includes('link/'));
  assert.is(links.length, 1, stdout);
  assert.match(links[0] ?? '', /^1: lo: <LOOPBACK,UP,LOWER_UP>/);
  assert.match(stdout, /inet 127\.0\.0\.1\/8/);
});

isolation(
  'jobs started at once each get a network namespace of their own, with only lo, up',
  async ({ t }) => {
    const jobs = await Promise.all(
      [1, 2, 3].map(() =>
        shell(t.runtime, 'readlink /proc/self/ns/net; ip -o link show | wc -l; sleep 0.3'),
      ),
    );
    const seen = jobs.map(({ stdout }) => stdout.trim().split('\n'));
    for (const [, links] of seen) assert.is(links, '1', 'only lo');
    const namespaces = seen.map(([namespace]) => namespace);
    assert.is(new Set(namespaces).size, 3, namespaces.join(' '));
    assert.not.ok(namespaces.includes(readlinkSync('/proc/self/ns/net')), "not the host's");
  },
);

isolation(
  'the job runs under an unprivileged uid and gid with no supplementary groups',
  async ({ t }) => {
    const { stdout } = await shell(
      t.runtime,
      'id -u; id -g; id -G; grep -E "^(Uid|Gid|Groups):" /proc/self/status',
    );
    const [uid, gid, groups] = stdout.trim().split('\n');
    assert.ok(
      Number(uid) >= t.config.jobUids.first &&
        Number(uid) < t.config.jobUids.first + t.config.jobUids.count,
      stdout,
    );
    assert.is(gid, uid);
    assert.is(groups, gid);
    assert.match(stdout, /Groups:\s*\n|Groups:\s*$/m);
    assert.not.match(stdout, /\b0\b/);
  },
);

isolation('no capabilities in any set, no_new_privs, seccomp filter on', async ({ t }) => {
  const { stdout } = await shell(
    t.runtime,
    'grep -E "^(Cap|NoNewPrivs|Seccomp)" /proc/self/status',
  );
  for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) {
    assert.match(stdout, new RegExp(`${set}:\\s+0000000000000000`), `${set} in\n${stdout}`);
  }
  assert.match(stdout, /NoNewPrivs:\s+1/);
  assert.match(stdout, /Seccomp:\s+2/);
});

isolation('two jobs at once get different uids', async ({ t }) => {
  const [a, b] = await Promise.all([
    shell(t.runtime, 'sleep 0.3; id -u'),
    shell(t.runtime, 'sleep 0.3; id -u'),
  ]);
  assert.is.not(a.stdout.trim(), b.stdout.trim());
});

isolation("the executor's state directory and socket directory are not readable", async ({ t }) => {
  const { stdout } = await shell(
    t.runtime,
    `ls ${t.config.stateDir} >/dev/null 2>&1 && echo state-readable || echo state-denied
     ls ${t.config.stateDir}/jobs >/dev/null 2>&1 && echo jobs-readable || echo jobs-denied
     cat ${t.config.stateDir}/jobs/*/record.json >/dev/null 2>&1 && echo records-readable || echo records-denied`,
  );
  assert.equal(stdout.trim().split('\n'), ['state-denied', 'jobs-denied', 'records-denied']);
});

isolation(
  'configured paths (keys, config) are masked even where anyone may read them',
  async ({ t, keys }) => {
    const { stdout } = await shell(
      t.runtime,
      `cat ${keys}/server.key 2>/dev/null || echo key-hidden; ls -A ${keys} 2>&1 | head -1`,
    );
    assert.is(stdout.split('\n')[0], 'key-hidden');
    assert.match(stdout, /Permission denied/);
  },
);

isolation(
  "each job sees the host's mounts and top-level entries as they are at its start",
  async ({ t }) => {
    // Made after the executor and its launcher started (the first tests ran jobs already).
    const mountPoint = await mkdtemp(`/var/tmp/${TEST_PREFIX}mount-`);
    await chmod(mountPoint, 0o755);
    const topLevel = `/${TEST_PREFIX}top-${randomBytes(4).toString('hex')}`;
    const see = `cat ${mountPoint}/mounted 2>&1; touch ${mountPoint}/x 2>/dev/null && echo writable || echo read-only; ls -d ${topLevel} 2>&1`;
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'none', mountPoint]);
      await writeFile(`${mountPoint}/mounted`, 'from the host\n');
      await mkdir(topLevel);
      const { stdout } = await shell(t.runtime, see);
      assert.equal(stdout.trim().split('\n'), ['from the host', 'read-only', topLevel]);
      execFileSync('umount', [mountPoint]);
      await rm(topLevel, { recursive: true });
      const after = await shell(t.runtime, see);
      assert.match(after.stdout, /^cat: .*mounted: No such file or directory\n/, after.stdout);
      assert.match(after.stdout, /ls: cannot access .*: No such file or directory\n$/);
    } finally {
      spawnSync('umount', [mountPoint]);
      await rm(topLevel, { recursive: true, force: true });
      await rm(mountPoint, { recursive: true, force: true });
    }
  },
);

isolation(
  'a filesystem unmounted on the host is let go of at once, not held until the next start',
  async ({ t }) => {
    const dir = await mkdtemp(`/var/tmp/${TEST_PREFIX}loop-`);
    const image = join(dir, 'image');
    const mountPoint = join(dir, 'mnt');
    await mkdir(mountPoint);
    execFileSync('truncate', ['-s', '8M', image]);
    execFileSync('mkfs.ext4', ['-q', image]);
    const device = execFileSync('losetup', ['--find', '--show', image], { encoding: 'utf8' });
    const loop = device.trim();
    const attached = `/sys/block/${basename(loop)}/loop/backing_file`;
    try {
      execFileSync('mount', [loop, mountPoint]);
      // A start after the mount: the launcher's view template now holds it too.
      await shell(t.runtime, 'true');
      execFileSync('umount', [mountPoint]);
      // Busy, the device is only marked to detach once its last user lets go.
      execFileSync('losetup', ['-d', loop]);
      const deadline = Date.now() + 3_000;
      while (existsSync(attached) && Date.now() < deadline) await sleep(20);
      assert.not.ok(existsSync(attached), `${loop} is still held`);
    } finally {
      spawnSync('umount', [mountPoint]);
      spawnSync('losetup', ['-d', loop]);
      await rm(dir, { recursive: true, force: true });
    }
  },
);

isolation(
  "neither a running job's keeper nor its init holds the launcher's view template",
  async ({ t }) => {
    const job = await startJob(t.runtime, { argv: ['sleep', '30'] });
    try {
      const keeper = readFileSync(`${t.config.stateDir}/jobs/${job.id}/keeper.id`, 'utf8');
      const keeperPid = keeper.split(' ')[0] ?? '';
      const init = readFileSync(`/proc/${keeperPid}/task/${keeperPid}/children`, 'utf8').trim();
      assert.match(init, /^\d+$/, 'the keeper has one child, the init');
      for (const pid of [keeperPid, init]) {
        const held = readdirSync(`/proc/${pid}/fd`).map((fd) =>
          readlinkSync(`/proc/${pid}/fd/${fd}`),
        );
        assert.equal(
          held.filter((target) => target.startsWith('mnt:')),
          [],
          `${pid} holds ${held.join(' ')}`,
        );
      }
    } finally {
      await stopJob(t.runtime, job.id, 0);
      await t.runtime.wait(job.id);
    }
  },
);

isolation('no core dumps: the core size limit is 0', async ({ t }) => {
  const { stdout } = await shell(
    t.runtime,
    'ulimit -c; grep "Max core file size" /proc/self/limits',
  );
  assert.match(stdout, /^0\nMax core file size\s+0\s+0\s+bytes/);
});

isolation(
  'the host root is read-only; /job, /tmp and /dev/shm are writable and private',
  async ({ t }) => {
    const { stdout } = await shell(
      t.runtime,
      `touch /etc/jobworker-test 2>/dev/null && echo etc-writable || echo etc-ro
     touch /var/tmp/jobworker-test 2>/dev/null && echo vartmp-writable || echo vartmp-ro
     echo x > /job/file && echo job-ok
     echo x > /tmp/file && echo tmp-ok
     echo x > /dev/shm/file && echo shm-ok
     pwd; echo $HOME`,
    );
    assert.equal(stdout.trim().split('\n'), [
      'etc-ro',
      'vartmp-ro',
      'job-ok',
      'tmp-ok',
      'shm-ok',
      '/job',
      '/job',
    ]);
    const second = await shell(t.runtime, 'ls -A /tmp /job /dev/shm');
    // A second job starts with all three empty: nothing of the first one's survives.
    assert.equal(second.stdout.trim().split('\n').filter(Boolean), ['/dev/shm:', '/job:', '/tmp:']);
  },
);

isolation('the job cannot mount, create a user namespace or load a module', async ({ t }) => {
  const { stdout } = await shell(
    t.runtime,
    `unshare -U true 2>/dev/null && echo userns || echo no-userns
     unshare -r true 2>/dev/null && echo rootmap || echo no-rootmap
     mount -t tmpfs none /tmp 2>/dev/null && echo mounted || echo no-mount
     python3 -c 'import ctypes,sys; l=ctypes.CDLL(None, use_errno=True); r=l.syscall(272, 0x10000000); sys.stdout.write("unshare-allowed\\n" if r==0 else "unshare-errno-%d\\n" % ctypes.get_errno())'`,
  );
  assert.equal(stdout.trim().split('\n'), [
    'no-userns',
    'no-rootmap',
    'no-mount',
    'unshare-errno-1',
  ]);
});

isolation(
  'only descriptors 0, 1 and 2 are open; stdin is /dev/null; >/dev/stderr works',
  async ({ t }) => {
    const result = await shell(
      t.runtime,
      'ls /proc/self/fd; readlink /proc/self/fd/0; echo to-stderr > /dev/stderr; head -c 5 /dev/stdin | wc -c',
    );
    const lines = result.stdout.trim().split('\n');
    // ls itself holds one more descriptor (the directory it reads), numbered 3.
    assert.equal(lines.slice(0, 4), ['0', '1', '2', '3']);
    assert.is(lines[4], '/dev/null');
    assert.is(lines[5], '0');
    assert.is(result.stderr, 'to-stderr\n');
  },
);

isolation(
  "the job's environment holds only what was asked for, plus PATH and HOME",
  async ({ t }) => {
    process.env.JOBWORKER_TEST_SECRET = 'must-not-leak';
    const { stdout } = await shell(t.runtime, 'env | sort', {
      env: { GREETING: 'hello world', EMPTY: '' },
    });
    delete process.env.JOBWORKER_TEST_SECRET;
    const names = stdout
      .trim()
      .split('\n')
      .map((line) => line.split('=')[0]);
    assert.equal(
      names.filter((name) => !['PWD', 'SHLVL', '_'].includes(name ?? '')),
      ['EMPTY', 'GREETING', 'HOME', 'PATH'],
    );
    assert.match(stdout, /^GREETING=hello world$/m);
  },
);

isolation('argv reaches the program untouched: no shell, no splitting', async ({ t }) => {
  const argv = ['printf', '[%s]\\n', 'two words', '"quoted"', '$HOME', '*', '', 'ünïcödé', '-la'];
  const result = await runToEnd(t.runtime, { argv });
  assert.is(result.stdout, '[two words]\n["quoted"]\n[$HOME]\n[*]\n[]\n[ünïcödé]\n[-la]\n');
});

isolation.run();
