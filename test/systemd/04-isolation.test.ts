// What a job sees of the machine when the executor runs under its unit's sandbox
// (PrivateNetwork=, PrivateDevices=, ProtectSystem=strict, …): only its own loopback, its own
// processes, its own uid, no capability; the host read-only; the configuration, keys and state
// masked. Probed from inside jobs started through the installed API.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ensureRunning, jobShell, PKI, STATE_DIR, withJournal } from './kit.ts';

const isolation = suite('systemd: isolation seen from inside jobs');
isolation.before(ensureRunning);

/** `name: value` lines a probe script printed. */
function answers(stdout: Buffer): Record<string, string> {
  const found: Record<string, string> = {};
  for (const line of stdout.toString().split('\n')) {
    const at = line.indexOf(': ');
    if (at > 0) found[line.slice(0, at)] = line.slice(at + 2);
  }
  return found;
}

/** A TCP connection from the job to itself over 127.0.0.1 and ::1: prints what came across. */
const loopbackEcho = [
  'import socket',
  'for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):',
  '    server = socket.socket(family); server.bind((host, 0)); server.listen()',
  '    client = socket.create_connection(server.getsockname()[:2]); peer, _ = server.accept()',
  '    client.sendall(host.encode()); print("loopback:", peer.recv(64).decode())',
].join('\n');

isolation(
  'only lo (which works), only the job’s own processes, a job uid, no capability in any set',
  withJournal(async () => {
    const ran = await jobShell(
      [
        'echo "links: $(ls /sys/class/net | tr "\\n" " ")"',
        'echo "lo: $(cat /sys/class/net/lo/operstate)"',
        'echo "processes: $(ps -e -o comm= | sort | tr "\\n" " ")"',
        'echo "uid: $(id -u) gid: $(id -g) groups: $(id -G)"',
        'grep -E "^Cap(Inh|Prm|Eff|Bnd|Amb)" /proc/self/status | tr -s "\\t" " " | sed "s/:/: /"',
        'echo "NoNewPrivs: $(grep NoNewPrivs /proc/self/status | cut -f2)"',
        `python3 -c '${loopbackEcho}'`,
      ].join('\n'),
    );
    assert.is(ran.code, 0, ran.stderr);
    const seen = answers(ran.stdout);
    assert.is(seen.links, 'lo ');
    assert.ok(['unknown', 'up'].includes(seen.lo ?? ''), `lo is ${seen.lo}`);
    // The unit's IPAddressAllow=localhost (BPF on its cgroup) reaches the job's loopback too.
    assert.match(ran.stdout.toString(), /^loopback: 127\.0\.0\.1\nloopback: ::1\n/m);
    // The job's init, its shells and the pipeline: nothing of the host's.
    const names = new Set(seen.processes?.trim().split(' '));
    assert.equal([...names].sort(), ['jobworker-init', 'ps', 'sh', 'sort', 'tr'], seen.processes);
    const [uid, gid, groups] =
      /^(\d+) gid: (\d+) groups: (\d+)$/.exec(seen.uid ?? '')?.slice(1) ?? [];
    assert.ok(Number(uid) >= 200_000, `uid ${seen.uid}`);
    assert.equal([gid, groups], [uid, uid]);
    for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) {
      assert.is(seen[set]?.trim(), '0000000000000000', `${set}\n${ran.stdout.toString()}`);
    }
    assert.is(seen.NoNewPrivs, '1');
  }),
);

isolation(
  'the host is read-only; /etc/jobworker (keys, configuration) is masked, the state unreadable',
  withJournal(async () => {
    const ran = await jobShell(
      [
        'touch /usr/jobworker-probe 2>/dev/null && echo "usr: writable" || echo "usr: read-only"',
        'touch /var/tmp/jobworker-probe 2>/dev/null && echo "var-tmp: writable" || echo "var-tmp: read-only"',
        'echo x >/job/probe && echo "job: writable"',
        `echo "etc-jobworker: $(ls -A /etc/jobworker 2>&1 | head -1)"`,
        `cat ${PKI}/private/server.key >/dev/null 2>&1 && echo "key: readable" || echo "key: hidden"`,
        `cat ${PKI}/private/ca.key >/dev/null 2>&1 && echo "ca-key: readable" || echo "ca-key: hidden"`,
        `ls ${STATE_DIR}/jobs >/dev/null 2>&1 && echo "state: readable" || echo "state: hidden"`,
        'ls /run/jobworker >/dev/null 2>&1 && echo "socket-dir: readable" || echo "socket-dir: hidden"',
      ].join('\n'),
    );
    assert.is(ran.code, 0, ran.stderr);
    const seen = answers(ran.stdout);
    assert.equal([seen.usr, seen['var-tmp'], seen.job], ['read-only', 'read-only', 'writable']);
    assert.match(seen['etc-jobworker'] ?? '', /Permission denied/);
    assert.equal(
      [seen.key, seen['ca-key'], seen.state, seen['socket-dir']],
      ['hidden', 'hidden', 'hidden', 'hidden'],
    );
  }),
);

isolation.run();
