// A job's footprint stays the job's: what it could otherwise take from the host and from every
// other job, observed from inside real jobs. Its init keeps no privilege once set up; host-wide
// tables (open files, AIO contexts) are bounded or closed to it; it sees no host cgroup path;
// socket families no network namespace isolates are refused; limits above the host are refused.
import { readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { JobError } from '../../shared/errors.ts';
import { openTestRuntime, shell, startJob } from './executor-kit.ts';
import type { TestRuntime } from './executor-kit.ts';

const footprint = suite<{ t: TestRuntime }>('job footprint');
footprint.before(async (context) => {
  context.t = await openTestRuntime({ jobOpenFiles: 512 });
});
footprint.after(async ({ t }) => {
  await t.close();
});

footprint(
  "the job's init runs as the job's uid: no capabilities, no_new_privs, the seccomp filter",
  async ({ t }) => {
    const { stdout, record } = await shell(
      t.runtime,
      'id -u; grep -E "^(Uid|Gid|CapPrm|CapEff|CapBnd|NoNewPrivs|Seccomp):" /proc/1/status',
    );
    assert.is(record.state, 'COMPLETED', stdout);
    const [uid, ...lines] = stdout.trim().split('\n');
    const status: Record<string, string> = Object.fromEntries(
      lines.map((line) => line.split(/:\s+/) as [string, string]),
    );
    assert.is(status.Uid, [uid, uid, uid, uid].join('\t'));
    assert.is(status.Gid, [uid, uid, uid, uid].join('\t'));
    for (const set of ['CapPrm', 'CapEff', 'CapBnd']) assert.is(status[set], '0000000000000000');
    assert.is(status.NoNewPrivs, '1');
    assert.is(status.Seccomp, '2');
  },
);

footprint('the job can neither kill its init nor read its memory or environment', async ({ t }) => {
  const { stdout } = await shell(
    t.runtime,
    'kill -KILL 1; sleep 0.2; ps -o pid=,comm= -p 1; cat /proc/1/environ 2>&1 >/dev/null',
  );
  assert.is(stdout, '      1 jobworker-init\ncat: /proc/1/environ: Permission denied\n');
});

footprint('each job process may have at most jobOpenFiles open files', async ({ t }) => {
  const { stdout } = await shell(t.runtime, 'ulimit -Sn; ulimit -Hn');
  assert.is(stdout, '512\n512\n');
});

footprint("the host's AIO contexts are closed to jobs (io_setup is refused)", async ({ t }) => {
  const { stdout } = await shell(
    t.runtime,
    `python3 -c 'import ctypes, ctypes.util
libc = ctypes.CDLL(None, use_errno=True)
ctx = ctypes.c_ulong(0)
print(libc.syscall(206, 65536, ctypes.byref(ctx)), ctypes.get_errno())'`,
  );
  assert.is(stdout, '-1 1\n'); // EPERM
});

footprint(
  'only unix, inet, inet6 and netlink sockets: vsock and the kernel crypto API are refused',
  async ({ t }) => {
    const { stdout } = await shell(
      t.runtime,
      `python3 -c 'import socket
for family in (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK, socket.AF_VSOCK, socket.AF_ALG):
    kind = socket.SOCK_SEQPACKET if family == socket.AF_ALG else socket.SOCK_DGRAM if family == socket.AF_NETLINK else socket.SOCK_STREAM
    try:
        socket.socket(family, kind).close(); print(family, "ok")
    except OSError as e:
        print(family, e.errno)'`,
    );
    assert.is(stdout, '1 ok\n2 ok\n10 ok\n16 ok\n40 97\n38 97\n'); // EAFNOSUPPORT
  },
);

footprint("the job's cgroup namespace shows no host cgroup path", async ({ t }) => {
  const { stdout } = await shell(t.runtime, 'cat /proc/self/cgroup');
  const lines = stdout.trim().split('\n');
  assert.ok(lines.length > 0);
  for (const line of lines) assert.match(line, /^\d+:[^:]*:\/$/, stdout);
  assert.not.match(stdout, /jobworker/);
});

footprint("the job's mount table does not name the executor's state directory", async ({ t }) => {
  const { stdout } = await shell(t.runtime, 'cat /proc/1/mountinfo /proc/self/mountinfo');
  assert.ok(stdout.length > 0);
  assert.not.ok(stdout.includes(t.config.stateDir), stdout);
});

footprint("a pids limit above the host's pid_max is refused, naming it", async ({ t }) => {
  const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  const asked = Math.min(pidMax + 1, 65_536);
  if (asked <= pidMax) return; // the configured maximum is below this host's pid_max anyway
  const error = await startJob(
    t.runtime,
    { argv: ['true'], limits: { pids: asked } },
    'tester',
  ).catch((e: unknown) => e as JobError);
  assert.is((error as JobError).code, 'invalid-argument');
  assert.is(
    (error as JobError).message,
    `spec.limits.pids: ${asked} is above this executor's maximum of ${pidMax}`,
  );
});

footprint.run();
