// The README's install section, done as written on a machine whose PID 1 is systemd: install.sh,
// daemon-reload, enable --now; then what systemd and the kernel say of the running units, a first
// job through the installed API and jobctl, and the units' security exposure.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  API,
  CRL_TIMER,
  EXECUTOR,
  EXECUTOR_CGROUP,
  JOBS,
  JOBS_CGROUP,
  cgroupOf,
  childCgroups,
  enableNow,
  install,
  jobShell,
  mintClient,
  must,
  OPERATOR,
  property,
  requireSystemdVm,
  systemctl,
  waitForApi,
  withJournal,
} from './kit.ts';

const units = suite('systemd: install and start');
units.before(() => requireSystemdVm());

/** `Uid:`, `Groups:`, `CapEff:` … of /proc/<pid>/status. */
function processStatus(pid: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const at = line.indexOf(':');
    if (at > 0) fields[line.slice(0, at)] = line.slice(at + 1).trim();
  }
  return fields;
}

units(
  'install.sh installs the app, configuration, PKI and units; systemd loads them',
  withJournal(async () => {
    const installed = await install();
    assert.is(installed.code, 0, installed.stderr);
    assert.match(installed.stdout.toString(), /systemctl daemon-reload/);
    await systemctl('daemon-reload');
    for (const unit of [EXECUTOR, API, 'jobworker-crl.service', CRL_TIMER]) {
      assert.is(await property(unit, 'LoadState'), 'loaded', unit);
      assert.is(await property(unit, 'FragmentPath'), `/etc/systemd/system/${unit}`);
    }
  }),
);

units(
  'enable --now: the executor and the API are active only once ready (Type=notify), the timer is armed',
  withJournal(async () => {
    await enableNow();
    for (const unit of [EXECUTOR, API, CRL_TIMER]) {
      assert.is(await systemctl('is-enabled', unit), 'enabled', unit);
      assert.is(await systemctl('is-active', unit), 'active', unit);
    }
    // Type=notify: `enable --now` returned once the executor said READY=1, after its socket
    // listened; so the socket is there now, in the runtime directory systemd made.
    assert.is(await property(EXECUTOR, 'Type'), 'notify');
    assert.is(await property(API, 'Type'), 'notify');
    const socket = statSync('/run/jobworker/executor.sock');
    assert.ok(socket.isSocket());
    assert.is((statSync('/run/jobworker').mode & 0o777).toString(8), '750');
    assert.not.match(await property(CRL_TIMER, 'NextElapseUSecRealtime'), /^(n\/a)?$/);
    await waitForApi();
  }),
);

units(
  'the API runs as nobody with the jobworker group, no capability, no_new_privs, seccomp',
  withJournal(async () => {
    const api = processStatus(await property(API, 'MainPID'));
    const group = (await must('getent', ['group', 'jobworker'])).split(':')[2];
    assert.is(api.Uid?.split(/\s+/)[0], '65534');
    // nobody's own group (nogroup, 65534) and jobworker: nothing else.
    assert.equal(api.Groups?.split(/\s+/).sort(), [group, '65534'].sort());
    for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) {
      assert.is(api[set], '0000000000000000', set);
    }
    assert.equal([api.NoNewPrivs, api.Seccomp], ['1', '2']);
  }),
);

units(
  'the job controllers are enabled in jobworker-jobs.service’s cgroup, none in the executor’s',
  withJournal(async () => {
    assert.is(await property(JOBS, 'Delegate'), 'yes');
    const holder = await property(JOBS, 'MainPID');
    assert.is(cgroupOf(Number(holder)), `${JOBS_CGROUP}/holder`);
    assert.equal(childCgroups(JOBS_CGROUP), ['holder', 'jobworker']);
    const enabled = readFileSync(`${JOBS_CGROUP}/cgroup.subtree_control`, 'utf8');
    assert.equal(enabled.trim().split(' ').sort(), ['cpu', 'cpuset', 'io', 'memory', 'pids']);
    // The executor's own cgroup enables nothing: systemd can always start it there again.
    const main = await property(EXECUTOR, 'MainPID');
    assert.is(cgroupOf(Number(main)), EXECUTOR_CGROUP);
    assert.is(readFileSync(`${EXECUTOR_CGROUP}/cgroup.subtree_control`, 'utf8').trim(), '');
    const executor = processStatus(main);
    // CAP_SYS_ADMIN … CAP_SYS_CHROOT, the unit's bounding set: 10 capabilities.
    const bounding = BigInt(`0x${executor.CapBnd}`).toString(2).replaceAll('0', '').length;
    assert.is(bounding, 10);
  }),
);

units(
  'a client minted with pki.sh runs a first job through the installed API and jobctl',
  withJournal(async () => {
    await mintClient(OPERATOR, 'admin');
    assert.ok(existsSync(`/etc/jobworker/pki/clients/${OPERATOR}.key`));
    const ran = await jobShell('echo hello from $(hostname)');
    assert.is(ran.code, 0, ran.stderr);
    assert.match(ran.stdout.toString(), /^hello from job-[0-9a-f]+\n$/);
  }),
);

units(
  'systemd-analyze security rates both units as loaded (printed beside the unit files’ rating)',
  withJournal(async () => {
    for (const unit of [EXECUTOR, API]) {
      const level = (text: string) => {
        const found = /Overall exposure level for \S+: (\d+\.\d+) (\S+)/.exec(text);
        assert.ok(found, `${unit}: ${text}`);
        return `${found[1]} ${found[2]}`;
      };
      const loaded = level(await must('systemd-analyze', ['security', '--no-pager', unit]));
      const file = level(
        await must('systemd-analyze', [
          'security',
          '--no-pager',
          '--offline=yes',
          `/etc/systemd/system/${unit}`,
        ]),
      );
      console.log(`  systemd-analyze security ${unit}: ${loaded} (unit file offline: ${file})`);
    }
  }),
);

units.run();
