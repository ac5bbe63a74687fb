// Shared by the systemd suite. Its files run only inside the systemd test VM
// (scripts/vm/run-systemd-suite.ts), whose PID 1 is Debian's own systemd with the unified cgroup
// v2 hierarchy and whose root is the host's, under a writable overlay in memory. They act on that
// machine as an operator would on a server: scripts/install.sh, systemctl, pki.sh and the
// installed jobctl; then they check what systemd, the kernel and the jobs themselves report.
// Files run in name order and build on each other (01 installs, 09 stops everything), but each
// one can also run alone: ensureRunning() brings the machine to where 01 leaves it.
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnCollected, type Ran, type Running } from '../root/spawn-collected.ts';

export type { Ran, Running };

export const APP = '/opt/jobworker';
/** The jobctl of the installed app (the package's bin: the compiled, bundled CLI). */
export const JOBCTL = join(APP, 'dist/jobctl/jobctl.cjs');
export const PKI = '/etc/jobworker/pki';
export const STATE_DIR = '/var/lib/jobworker';
export const EXECUTOR = 'jobworker-executor.service';
/** The unit whose cgroup holds every job's (jobsCgroup in the installed executor.json). */
export const JOBS = 'jobworker-jobs.service';
export const API = 'jobworker-api.service';
export const CRL_SERVICE = 'jobworker-crl.service';
export const CRL_TIMER = 'jobworker-crl.timer';
/** The executor's unit cgroup: the executor and the jobs' keepers. */
export const EXECUTOR_CGROUP = '/sys/fs/cgroup/system.slice/jobworker-executor.service';
/** jobworker-jobs.service's cgroup, delegated: its waiting process in a leaf, the job cgroups. */
export const JOBS_CGROUP = '/sys/fs/cgroup/system.slice/jobworker-jobs.service';
/** The installed api.json listens on 0.0.0.0:50051; the installed certificate names 127.0.0.1. */
export const API_HOST = '127.0.0.1';
export const API_PORT = 50051;
/** The client the files act as: an admin, minted with pki.sh once the units run. */
export const OPERATOR = 'alice';
/** Everything takes long in an emulated VM; past this a wait is a hang. */
const HANG_MS = 180_000;

/**
 * The suite installs jobworker on the machine it runs on: anywhere but its VM, it refuses. The
 * VM's kernel command line says jobworker.boot=systemd, and its PID 1 is systemd.
 */
export function requireSystemdVm(): void {
  const hint = 'the systemd suite runs in its VM only: sudo npm run test:systemd';
  const cmdline = readFileSync('/proc/cmdline', 'utf8').trim().split(/\s+/);
  if (!cmdline.includes('jobworker.boot=systemd')) throw new Error(`not the test VM; ${hint}`);
  if (!readlinkSync('/proc/1/exe').endsWith('/systemd/systemd')) {
    throw new Error(`PID 1 is not systemd; ${hint}`);
  }
}

/** A command started with its output collected. */
export function launch(
  file: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Running {
  return spawnCollected(file, args, env, HANG_MS);
}

export function run(file: string, args: readonly string[]): Promise<Ran> {
  return launch(file, args).done;
}

/** Runs a command that must succeed; its stdout, trimmed. */
export async function must(file: string, args: readonly string[]): Promise<string> {
  const ran = await run(file, args);
  if (ran.code !== 0) {
    throw new Error(`${file} ${args.join(' ')}: exit ${ran.code ?? ran.signal}\n${ran.stderr}`);
  }
  return ran.stdout.toString().trim();
}

export const systemctl = (...args: string[]) => must('systemctl', ['--no-pager', ...args]);

/** One property of a unit, as `systemctl show` gives it. */
export const property = (unit: string, name: string) =>
  systemctl('show', '--property', name, '--value', unit);

/** The installed jobctl, as the given client (its certificate from pki.sh), in the environment. */
export function jobctl(args: readonly string[], who = OPERATOR): Running {
  return launch(JOBCTL, args, {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    JOBCTL_SERVER: `${API_HOST}:${API_PORT}`,
    JOBCTL_CA: join(PKI, 'ca.crt'),
    JOBCTL_CERT: join(PKI, 'clients', `${who}.crt`),
    JOBCTL_KEY: join(PKI, 'clients', `${who}.key`),
  });
}

/** `jobctl run -- sh -c SCRIPT`: what the job printed and how it ended. */
export function jobShell(script: string, flags: readonly string[] = []): Promise<Ran> {
  return jobctl(['run', ...flags, '--', 'sh', '-c', script]).done;
}

/** `jobctl status --json ID`. */
export async function jobStatus(id: string): Promise<Record<string, unknown>> {
  const ran = await jobctl(['status', '--json', id]).done;
  if (ran.code !== 0) throw new Error(`jobctl status ${id}: ${ran.stderr}`);
  return JSON.parse(ran.stdout.toString()) as Record<string, unknown>;
}

/** The one job id a line of jobctl's output names. */
export function jobIdIn(text: string): string {
  const match = /\b[0-9a-f]{32}\b/.exec(text);
  if (!match) throw new Error(`no job id in: ${text}`);
  return match[0];
}

/** scripts/install.sh from this checkout, without options, as the README's install section. */
export const install = () => run('bash', ['scripts/install.sh']);

/** The README's next step: the executor, the API and the CRL timer, enabled and started. */
export const enableNow = () => systemctl('enable', '--now', JOBS, EXECUTOR, API, CRL_TIMER);

/**
 * A client retries until the port listens, and so does this. (A `systemctl start` or `restart`
 * of the API returns only once it listens: Type=notify.)
 */
export async function waitForApi(): Promise<void> {
  const deadline = Date.now() + HANG_MS;
  for (;;) {
    const listening = await new Promise<boolean>((resolve) => {
      const socket = connect(API_PORT, API_HOST);
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (listening) return;
    if (Date.now() > deadline) throw new Error(`the API does not listen on ${API_PORT}`);
    await sleep(200);
  }
}

/** A client certificate made with the installed pki.sh (CN = name, OU = role), once. */
export async function mintClient(name: string, role: 'admin' | 'user' | 'viewer'): Promise<void> {
  if (existsSync(join(PKI, 'clients', `${name}.crt`))) return;
  await must('bash', [join(APP, 'scripts/pki.sh'), 'client', PKI, name, role]);
}

/**
 * Where 01-install leaves the machine: installed, both units running, the operator's client. Each
 * step is taken only when needed (a daemon-reload costs seconds in the emulated VM).
 */
export async function ensureRunning(): Promise<void> {
  requireSystemdVm();
  if (!existsSync(`/etc/systemd/system/${EXECUTOR}`)) {
    const installed = await install();
    if (installed.code !== 0) throw new Error(`install.sh failed:\n${installed.stderr}`);
    await systemctl('daemon-reload');
    await enableNow();
  } else {
    await systemctl('start', JOBS, EXECUTOR, API); // nothing to do when they run
  }
  await waitForApi();
  await mintClient(OPERATOR, 'admin');
}

/** The last lines the jobworker units left in the journal since boot. */
export async function journal(): Promise<string> {
  const units = [JOBS, EXECUTOR, API, CRL_SERVICE].flatMap((unit) => ['-u', unit]);
  const ran = await run('journalctl', [
    '--boot',
    '--no-pager',
    '--output=short-monotonic',
    '--lines=300',
    ...units,
  ]);
  return `${ran.stdout.toString()}${ran.stderr}`;
}

/**
 * A test body that prints how long it took, and the units' journal when it fails (then fails as it
 * would have).
 */
export function withJournal<Context>(
  body: (context: Context) => Promise<void>,
): (context: Context) => Promise<void> {
  return async (context) => {
    const started = Date.now();
    try {
      await body(context);
      console.log(`  (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    } catch (error) {
      console.log(
        `\n── journalctl -u ${JOBS} -u ${EXECUTOR} -u ${API} -u ${CRL_SERVICE}, as the test failed:`,
      );
      console.log(await journal());
      throw error;
    }
  };
}

/** The directories right below a cgroup, sorted. */
export function childCgroups(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
}

/** A process's cgroup (cgroup v2 only: the one `0::` line), as a path below /sys/fs/cgroup. */
export function cgroupOf(pid: number | 'self'): string {
  return readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().replace(/^0::/, '/sys/fs/cgroup');
}

/** A running job's cgroup, below jobworker-jobs.service's. */
export const jobCgroup = (id: string) => join(JOBS_CGROUP, 'jobworker', id);

/** The pids in a running job's cgroup, once it holds at least `count` processes. */
export async function jobPids(id: string, count: number): Promise<string[]> {
  const procs = () =>
    readFileSync(join(jobCgroup(id), 'cgroup.procs'), 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean);
  for (let waited = 0; procs().length < count; waited += 100) {
    if (waited > HANG_MS) throw new Error(`job ${id} has only pids ${procs().join(' ')}`);
    await sleep(100);
  }
  return procs();
}
