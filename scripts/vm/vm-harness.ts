// Runs a test suite in a small QEMU VM on a real cgroup-v2-only kernel, shared by the cgroup v2
// suite (run-v2-suite.ts) and the systemd suite (run-systemd-suite.ts): boots a Debian kernel
// with the busybox initramfs from build-image.sh (which mounts the host's root read-only over 9p;
// see init.sh), has the suite's command run in it, streams the VM's console here as it comes, and
// prints where the time went. A run passes only when the suite ran and passed: a VM that cannot
// boot, run or finish in time is a failure, never a skip.
//
// Environment: JOBWORKER_VM_ACCEL=kvm|tcg to force the accelerator (default: KVM where it boots
// the kernel, else QEMU's software emulation), JOBWORKER_VM_TIMEOUT_S (default: the suite's own):
// the hard limit on the VM's life, after which it is killed.
//
// Nothing outlives a run: the QEMU process is killed by its pid on a timeout, an error or a
// signal (and by the kernel when this process dies: PR_SET_PDEATHSIG), and the run's directory
// (.vm/runs/<id>: the disk image, the command, the status) is removed. A run whose harness was
// killed outright leaves that directory, which the next run removes.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { release } from 'node:os';
import { join, resolve } from 'node:path';

const CHECKOUT = resolve(import.meta.dirname, '../..');
const VM_DIR = join(CHECKOUT, '.vm');
const RUNS_DIR = join(VM_DIR, 'runs');
const KVM_VERDICT = join(VM_DIR, 'kvm-verdict');
const VCPUS = 2;
const MEMORY_MIB = 2048;
/** The virtio disk: the executors' state, the jobs' /job, io.max. */
const DISK_BYTES = 512 * 1024 * 1024;
/** Printed in the VM once the test root is up (init.sh, or the systemd suite's runner). */
const BOOTED = 'jobworker-vm: booted';
/** KVM that has not booted the kernel by then never will (TCG boots it in under 10 s here). */
const KVM_BOOT_LIMIT_MS = 30_000;

type Accel = 'kvm' | 'tcg';

export interface VmSuite {
  /** Names the suite in messages: `v2`, `systemd`. */
  name: string;
  /** The test files' directory, relative to the checkout. */
  testDir: string;
  /** Only files whose name contains it. */
  filter: string | undefined;
  /** What the kernel command line adds for this suite. */
  kernelArgs: string[];
  /** The shell command the VM runs in the checkout, given the host's node and the file names. */
  command(node: string, files: string[]): string;
  /** The hard limit on the VM's life unless JOBWORKER_VM_TIMEOUT_S says otherwise. */
  timeoutS: number;
}

interface VmRun {
  /** The command's exit status as the VM recorded it in the run share; null when it recorded none. */
  status: number | null;
  /** Milliseconds from QEMU's start to the test root being up; null when it never was. */
  bootMs: number | null;
  totalMs: number;
  why: string;
}

let suiteName = 'vm';

function fail(message: string): never {
  console.error(`run-${suiteName}-suite: ${message}`);
  process.exit(1);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function readPid(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Runs whose harness is gone (killed outright): their QEMU, if it still runs with that run's
 * directory on its command line, is killed by pid, and the directory removed.
 */
async function sweepAbandonedRuns(): Promise<void> {
  if (!existsSync(RUNS_DIR)) return;
  for (const name of readdirSync(RUNS_DIR)) {
    const dir = join(RUNS_DIR, name);
    const harness = readPid(join(dir, 'harness.pid'));
    if (harness !== null && pidAlive(harness)) continue; // another run, still going
    const qemu = readPid(join(dir, 'qemu.pid'));
    if (qemu !== null) {
      let cmdline = '';
      try {
        cmdline = readFileSync(`/proc/${qemu}/cmdline`, 'utf8');
      } catch {
        // gone already
      }
      if (cmdline.includes(dir)) process.kill(qemu, 'SIGKILL');
    }
    await rm(dir, { recursive: true, force: true });
    console.log(`run-${suiteName}-suite: removed abandoned run ${dir}`);
  }
}

function buildImage(): string {
  const built = spawnSync('bash', ['scripts/vm/build-image.sh'], {
    cwd: CHECKOUT,
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  if (built.status !== 0) fail('cannot build the VM image (scripts/vm/build-image.sh)');
  return built.stdout.trim();
}

function testFiles(testDir: string, filter: string | undefined): string[] {
  return readdirSync(join(CHECKOUT, testDir))
    .filter((f) => f.endsWith('.test.ts'))
    .filter((f) => !filter || f.includes(filter))
    .sort();
}

/** A sparse raw disk with a fresh ext4 on it, for this run only. */
async function makeDisk(path: string): Promise<void> {
  await writeFile(path, '');
  await truncate(path, DISK_BYTES);
  const made = spawnSync('mkfs.ext4', ['-q', '-F', '-L', 'jobworker-vm', path], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (made.status !== 0) throw new Error('mkfs.ext4 failed on the VM disk image');
}

function kvmUsable(): boolean {
  try {
    closeSync(openSync('/dev/kvm', 'r+'));
    return true;
  } catch {
    return false;
  }
}

/** KVM that failed to boot this kernel on this host is not tried again until either changes. */
function verdictKey(): string {
  return `${release()} ${readFileSync(join(VM_DIR, 'stamp'), 'utf8').trim()}`;
}

function qemuArgs(accel: Accel, runDir: string, kernelArgs: string[]): string[] {
  const share = (path: string, tag: string, readonly: boolean) => [
    '-virtfs',
    `local,path=${path},mount_tag=${tag},security_model=none,multidevs=remap` +
      (readonly ? ',readonly=on' : ''),
  ];
  return [
    ...['-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot'],
    ...['-serial', 'stdio', '-pidfile', join(runDir, 'qemu.pid')],
    ...['-machine', 'q35', '-smp', String(VCPUS), '-m', String(MEMORY_MIB)],
    ...(accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg', '-cpu', 'max']),
    ...['-kernel', join(VM_DIR, 'vmlinuz'), '-initrd', join(VM_DIR, 'initramfs.cpio.gz')],
    '-append',
    [
      'console=ttyS0 loglevel=3 panic=-1 cgroup_no_v1=all',
      `jobworker.checkout=${CHECKOUT}`,
      ...kernelArgs,
    ].join(' '),
    ...share('/', 'hostroot', true),
    ...share(CHECKOUT, 'checkout', true),
    ...share(runDir, 'run', false),
    ...['-drive', `file=${join(runDir, 'disk.img')},format=raw,if=virtio,cache=none`],
  ];
}

let qemuPid: number | undefined;

/** One boot. With KVM, gives up (and kills the VM) when it has not booted in KVM_BOOT_LIMIT_MS. */
async function boot(
  accel: Accel,
  runDir: string,
  kernelArgs: string[],
  timeoutMs: number,
): Promise<VmRun> {
  await rm(join(runDir, 'status'), { force: true });
  const started = Date.now();
  // setpriv makes the kernel kill QEMU when this process dies, however it dies.
  const qemu = spawn(
    'setpriv',
    ['--pdeathsig', 'KILL', '--', 'qemu-system-x86_64', ...qemuArgs(accel, runDir, kernelArgs)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  qemuPid = qemu.pid;
  let bootMs: number | null = null;
  let why = '';
  let pending = '';
  let errors = '';
  const killAfter = (ms: number, reason: string) =>
    setTimeout(() => {
      why = reason;
      qemu.kill('SIGKILL');
    }, ms);
  const hardLimit = killAfter(timeoutMs, `killed after the ${seconds(timeoutMs)} limit`);
  let bootLimit =
    accel === 'kvm' ? killAfter(KVM_BOOT_LIMIT_MS, 'KVM did not boot the kernel') : undefined;
  qemu.stdout.setEncoding('utf8');
  qemu.stdout.on('data', (text: string) => {
    pending += text.replaceAll('\r', '');
    const end = pending.lastIndexOf('\n') + 1;
    const lines = pending.slice(0, end);
    pending = pending.slice(end);
    if (bootMs === null && lines.includes(BOOTED)) {
      bootMs = Date.now() - started;
      clearTimeout(bootLimit);
      bootLimit = undefined;
    }
    process.stdout.write(lines);
  });
  qemu.stderr.setEncoding('utf8');
  qemu.stderr.on('data', (text: string) => {
    errors += text;
    process.stderr.write(text);
  });
  const exit = await new Promise<string>((done) => {
    qemu.on('error', (error) => done(`cannot run qemu-system-x86_64: ${error.message}`));
    qemu.on('close', (code, signal) => done(signal ? `killed by ${signal}` : `exit ${code}`));
  });
  clearTimeout(hardLimit);
  clearTimeout(bootLimit);
  qemuPid = undefined;
  if (pending) process.stdout.write(`${pending}\n`);
  const text = await readFile(join(runDir, 'status'), 'utf8').catch(() => '');
  const status = /^\d+$/.test(text.trim()) ? Number(text.trim()) : null;
  if (!why) why = status === null ? `no result from the VM (qemu ${exit})` : `qemu ${exit}`;
  if (errors.includes('kvm') && bootMs === null) why = `${why}: ${errors.trim().split('\n')[0]}`;
  return { status, bootMs, totalMs: Date.now() - started, why };
}

/** Boots the VM once for the suite's files; resolves with the exit status for this process. */
export async function runVmSuite(suite: VmSuite): Promise<number> {
  suiteName = suite.name;
  if (process.getuid?.() !== 0) {
    fail('must run as root (the kernel image and the host root shared with the VM)');
  }
  // The path travels on the kernel command line and into shell commands in the VM.
  if (!/^\/[\w./+-]+$/.test(CHECKOUT))
    fail(`the checkout path ${CHECKOUT} must be plain: A-Z a-z 0-9 _ . / + -`);
  const files = testFiles(suite.testDir, suite.filter);
  if (files.length === 0) fail(`no test file in ${suite.testDir} matches "${suite.filter ?? ''}"`);
  for (const tool of ['qemu-system-x86_64', 'mkfs.ext4', 'setpriv']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0) {
      fail(`${tool} is missing (sudo bash scripts/setup-debian.sh installs it)`);
    }
  }
  await sweepAbandonedRuns();
  const helper = spawnSync('bash', ['scripts/build-helper.sh'], {
    cwd: CHECKOUT,
    stdio: 'inherit',
  });
  if (helper.status !== 0) fail('cannot build the helper');
  const kernel = buildImage();

  await mkdir(RUNS_DIR, { recursive: true });
  const runDir = await mkdtemp(join(RUNS_DIR, 'run-'));
  const cleanUp = async () => {
    if (qemuPid !== undefined) process.kill(qemuPid, 'SIGKILL');
    await rm(runDir, { recursive: true, force: true });
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      void cleanUp().finally(() => process.exit(128 + (signal === 'SIGINT' ? 2 : 15)));
    });
  }
  try {
    await writeFile(join(runDir, 'harness.pid'), String(process.pid));
    await makeDisk(join(runDir, 'disk.img'));
    // Run in the VM (cwd: the checkout) with the host's /bin/sh and node.
    await writeFile(join(runDir, 'command'), `${suite.command(process.execPath, files)}\n`);

    let accel: Accel = process.env.JOBWORKER_VM_ACCEL === 'tcg' ? 'tcg' : 'kvm';
    let accelNote = '';
    if (process.env.JOBWORKER_VM_ACCEL === undefined) {
      if (!kvmUsable()) [accel, accelNote] = ['tcg', 'no usable /dev/kvm'];
      else if (existsSync(KVM_VERDICT) && readFileSync(KVM_VERDICT, 'utf8') === verdictKey()) {
        [accel, accelNote] = ['tcg', 'KVM cannot boot this kernel here, as .vm/kvm-verdict says'];
      }
    }
    const label = `${suite.name} VM`;
    console.log(
      `\n${label}: kernel ${kernel}, ${accel.toUpperCase()}${accelNote ? ` (${accelNote})` : ''}, ` +
        `${VCPUS} vCPUs, ${MEMORY_MIB} MiB; ${files.length} test files`,
    );
    const timeoutMs = Number(process.env.JOBWORKER_VM_TIMEOUT_S ?? suite.timeoutS) * 1000;
    let run = await boot(accel, runDir, suite.kernelArgs, timeoutMs);
    if (accel === 'kvm' && run.bootMs === null && process.env.JOBWORKER_VM_ACCEL === undefined) {
      console.log(`\n${label}: KVM did not boot the kernel (${run.why}); again with TCG`);
      [accel, accelNote] = ['tcg', 'KVM cannot boot this kernel here'];
      await makeDisk(join(runDir, 'disk.img'));
      run = await boot(accel, runDir, suite.kernelArgs, timeoutMs);
      // Remembered only when the same VM boots under TCG: then KVM was what failed.
      if (run.bootMs !== null) await writeFile(KVM_VERDICT, verdictKey());
    }
    const testsMs = run.bootMs === null ? null : run.totalMs - run.bootMs;
    console.log(
      `\n${label} summary: ${accel.toUpperCase()}${accelNote ? ` (${accelNote})` : ''}; ` +
        `boot ${run.bootMs === null ? 'failed' : seconds(run.bootMs)}, ` +
        `tests and power-off ${testsMs === null ? '-' : seconds(testsMs)}, ` +
        `whole VM ${seconds(run.totalMs)}; suite exit status ${run.status ?? 'none'} (${run.why})`,
    );
    return run.status === 0 ? 0 : 1;
  } finally {
    await cleanUp();
  }
}

/** A file name as a single-quoted shell word (test file names hold no quote). */
export function shellWords(names: string[]): string {
  return names.map((name) => `'${name}'`).join(' ');
}
