// The deployment: scripts/install.sh and the systemd units of deploy/systemd/, with the real tools
// (systemd-sysusers, openssl, cc, systemd-analyze). Every install goes into a temporary root under
// /var/tmp or /var/lib (--root), never into the host's own /: the host's /etc/group is checked
// untouched. The installed executor and API are started with their units' own command lines.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseApiConfig } from '../../api/config.ts';
import { ExecutorClient } from '../../api/executor-client.ts';
import { parseExecutorConfig } from '../../executor/config.ts';
import { SERVICE_NODE_FLAGS } from '../../shared/app-layout.ts';
import { CHECKOUT } from '../../shared/dev-layout.ts';
import { TEST_PREFIX, sleep } from './executor-kit.ts';
import { TEST_SOCKET_GID, trackChild } from './executor-process-kit.ts';

const UNITS = [
  'jobworker-executor.service',
  'jobworker-api.service',
  'jobworker-crl.service',
  'jobworker-crl.timer',
];
/**
 * `systemd-analyze security --offline` of the installed units, measured with systemd 252. The
 * API's 1.8 (1.6 before it became Type=notify) and part of the executor's are NotifyAccess=all:
 * each says it is ready through systemd-notify, a child process.
 */
const MEASURED_EXPOSURE = {
  'jobworker-api.service': 1.8,
  'jobworker-executor.service': 4.1,
  'jobworker-jobs.service': 1.7,
};

/**
 * The executor.json the install writes: the sample, with the job cgroups in
 * jobworker-jobs.service's (which the sample leaves null: no such unit without systemd).
 */
const installedExecutorConfig = () =>
  readFileSync('deploy/executor.sample.json', 'utf8').replace(
    '"jobsCgroup": null',
    '"jobsCgroup": "/system.slice/jobworker-jobs.service"',
  );
const SERVER_NAME = 'jobs.example.org';
const SERVER_IP = '192.0.2.10';
const NOBODY = 65_534;

/** Every temporary directory of this file; removed after the suite, and on any exit. */
const temporary: string[] = [];
const cleanUp = () => {
  for (const dir of temporary.splice(0)) rmSync(dir, { recursive: true, force: true });
};
process.on('exit', cleanUp);

/**
 * A new directory <base>/jobworker-test-deploy-*, traversable so that nobody reaches inside. An
 * app whose executor runs must be below /var/lib: below /var/tmp (world-writable) the executor
 * rightly refuses its helper.
 */
function newDir(base: '/var/tmp' | '/var/lib' = '/var/tmp'): string {
  const dir = mkdtempSync(`${base}/${TEST_PREFIX}deploy-`);
  temporary.push(dir);
  chmodSync(dir, 0o755);
  return dir;
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: readonly string[], cwd = CHECKOUT): Run {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 120_000 });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function install(root: string, ...args: string[]): Run {
  return run('bash', ['scripts/install.sh', '--root', root, ...args]);
}

/**
 * --use-checkout runs root's units from a checkout that must be root's and writable by no one
 * else all the way up to /, and outside /home and /root: this checkout may be neither (CI clones
 * wherever it likes). Those tests run from a copy of its tracked files in such a place, its
 * node_modules linked (install.sh neither follows nor checks links).
 */
let checkoutCopy: string | null = null;
function eligibleCheckout(): string {
  if (checkoutCopy !== null) return checkoutCopy;
  const dir = mkdtempSync(`/var/lib/${TEST_PREFIX}checkout-`);
  temporary.push(dir);
  chmodSync(dir, 0o755);
  const tracked = run('git', ['ls-files', '-z']).stdout.split('\0').filter(Boolean);
  for (const file of tracked) {
    if (!existsSync(join(CHECKOUT, file))) continue; // deleted in the work tree
    mkdirSync(dirname(join(dir, file)), { recursive: true, mode: 0o755 });
    copyFileSync(join(CHECKOUT, file), join(dir, file)); // keeps the mode
  }
  symlinkSync(join(CHECKOUT, 'node_modules'), join(dir, 'node_modules'));
  checkoutCopy = dir;
  return dir;
}

/** install.sh --use-checkout, run from the eligible copy. */
function installUsingCheckout(root: string, ...args: string[]): Run {
  const checkout = eligibleCheckout();
  return run(
    'bash',
    [join(checkout, 'scripts/install.sh'), '--root', root, '--use-checkout', ...args],
    checkout,
  );
}

function installOkUsingCheckout(root: string, ...args: string[]): string {
  const result = installUsingCheckout(root, ...args);
  assert.is(
    result.status,
    0,
    `install.sh --use-checkout ${args.join(' ')} failed:\n${result.stdout}${result.stderr}`,
  );
  return result.stdout;
}

function installOk(root: string, ...args: string[]): string {
  const result = install(root, ...args);
  assert.is(
    result.status,
    0,
    `install.sh ${args.join(' ')} failed:\n${result.stdout}${result.stderr}`,
  );
  return result.stdout;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Every path below root with its type, mode, owner and content hash (or link target). */
function listing(root: string): string[] {
  const entries: string[] = [];
  const walk = (rel: string) => {
    const path = join(root, rel);
    const stat = lstatSync(path);
    const kind = stat.isDirectory() ? 'd' : stat.isSymbolicLink() ? 'l' : stat.isFile() ? 'f' : '?';
    const content = stat.isFile()
      ? sha256(readFileSync(path))
      : stat.isSymbolicLink()
        ? readlinkSync(path)
        : '';
    // Tab-separated: some dependencies ship paths with spaces.
    entries.push(
      [rel || '.', kind, (stat.mode & 0o7777).toString(8), `${stat.uid}:${stat.gid}`, content].join(
        '\t',
      ),
    );
    if (stat.isDirectory()) {
      for (const name of readdirSync(path).sort()) walk(rel ? `${rel}/${name}` : name);
    }
  };
  walk('');
  return entries;
}

/** The change lines of install.sh's output (those starting with two spaces). */
const changeLines = (output: string) => output.split('\n').filter((line) => line.startsWith('  '));

function groupId(root: string): number {
  const lines = readFileSync(join(root, 'etc/group'), 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('jobworker:'));
  assert.is(lines.length, 1, 'exactly one jobworker group');
  return Number(lines[0]?.split(':')[2]);
}

function assertAttributes(root: string, path: string, mode: number, gid: number): void {
  const stat = lstatSync(join(root, path));
  assert.is(
    `${path} ${(stat.mode & 0o7777).toString(8)} ${stat.uid}:${stat.gid}`,
    `${path} ${mode.toString(8)} 0:${gid}`,
  );
}

const hostFiles = () => ['/etc/group', '/etc/gshadow'].map((file) => sha256(readFileSync(file)));
const hostBefore = hostFiles();

interface Context {
  /** A full install (a copy of the app) with a new PKI. */
  root: string;
  output: string;
  gid: number;
  /** Scratch space outside the installed trees. */
  aux: string;
}

const deploy = suite<Context>('deployment');

deploy.before((context) => {
  context.aux = newDir();
  context.root = newDir('/var/lib');
  context.output = installOk(context.root, '--server-name', SERVER_NAME, '--server-ip', SERVER_IP);
  context.gid = groupId(context.root);
});
deploy.after(cleanUp);

deploy(
  'a fresh install: the group, directories, owners and modes of the security model',
  ({ root, gid, output }) => {
    assert.match(output, /^\d+ changes made$/m);
    assert.match(output, 'create system group jobworker');
    assert.ok(gid > 0 && gid < 1000, `jobworker is a system group (gid ${gid})`);
    const table: [string, number, number][] = [
      ['etc/sysusers.d/jobworker.conf', 0o644, 0],
      ['etc/jobworker', 0o750, gid],
      ['etc/jobworker/executor.json', 0o600, 0],
      ['etc/jobworker/api.json', 0o640, gid],
      ['etc/jobworker/pki', 0o750, gid],
      ['etc/jobworker/pki/ca.crt', 0o644, 0],
      ['etc/jobworker/pki/server.crt', 0o644, 0],
      ['etc/jobworker/pki/crl.pem', 0o644, 0],
      ['etc/jobworker/pki/private', 0o750, gid],
      ['etc/jobworker/pki/private/server.key', 0o640, gid],
      ['etc/jobworker/pki/private/ca.key', 0o600, 0],
      ['var/lib/jobworker', 0o700, 0],
      ['opt/jobworker', 0o755, 0],
      ['opt/jobworker/executor/helper/build/jobworker-helper', 0o755, 0],
      ...UNITS.map((unit): [string, number, number] => [`etc/systemd/system/${unit}`, 0o644, 0]),
    ];
    for (const [path, mode, group] of table) assertAttributes(root, path, mode, group);
    // The socket directory is the executor's to make (root:jobworker 0750), at its start.
    assert.not.ok(existsSync(join(root, 'run')));
  },
);

deploy('the new PKI: a server certificate for the names given, signed by the CA', ({ root }) => {
  const pki = join(root, 'etc/jobworker/pki');
  const sans = run('openssl', [
    'x509',
    '-in',
    join(pki, 'server.crt'),
    '-noout',
    '-ext',
    'subjectAltName',
  ]);
  assert.match(sans.stdout, `DNS:${SERVER_NAME}`);
  assert.match(sans.stdout, `IP Address:${SERVER_IP}`);
  const verify = run('openssl', [
    'verify',
    '-purpose',
    'sslserver',
    '-crl_check',
    '-CAfile',
    join(pki, 'ca.crt'),
    '-CRLfile',
    join(pki, 'crl.pem'),
    join(pki, 'server.crt'),
  ]);
  assert.is(verify.status, 0, verify.stderr);
  // pki.sh keeps working on the target system: its openssl.cnf names the target's path.
  assert.match(readFileSync(join(pki, 'openssl.cnf'), 'utf8'), /^dir = \/etc\/jobworker\/pki$/m);
});

deploy('the configs are the samples, valid, and name files the install made', ({ root }) => {
  const read = (name: string) => readFileSync(join(root, 'etc/jobworker', name), 'utf8');
  assert.is(read('executor.json'), installedExecutorConfig());
  assert.is(read('api.json'), readFileSync('deploy/api.sample.json', 'utf8'));
  const executor = parseExecutorConfig(JSON.parse(read('executor.json')));
  assert.is(executor.stateDir, '/var/lib/jobworker');
  assert.is(executor.socketGroup, 'jobworker');
  const api = parseApiConfig(JSON.parse(read('api.json')));
  for (const file of [api.tls.caFile, api.tls.certFile, api.tls.keyFile, api.tls.crlFile]) {
    assert.ok(file !== null && existsSync(join(root, file)), `${file} exists`);
  }
});

deploy(
  'the app: tracked files and runtime dependencies only, all root-owned and read-only',
  ({ root }) => {
    const app = join(root, 'opt/jobworker');
    const writable = listing(app).filter((entry) => {
      const [, , mode = '', owner = ''] = entry.split('\t');
      return owner !== '0:0' || (Number.parseInt(mode, 8) & 0o022) !== 0;
    });
    assert.equal(writable, [], 'nothing in the app is writable by anyone but root');
    for (const present of ['@grpc/grpc-js', '@bufbuild/protobuf', 'msgpackr', 'pino', 'cac']) {
      assert.ok(
        existsSync(join(app, 'node_modules', present, 'package.json')),
        `${present} is there`,
      );
    }
    // No transpiler, no development tool, and no native decoder for a root process to load.
    for (const absent of [
      'tsx',
      'esbuild',
      'typescript',
      'eslint',
      'prettier',
      'uvu',
      'ts-proto',
      'msgpackr-extract',
      '@msgpackr-extract',
    ]) {
      assert.not.ok(existsSync(join(app, 'node_modules', absent)), `${absent} is not`);
    }
    // The compiled build the units run, exactly the checkout's.
    for (const compiled of ['executor/main.js', 'api/main.js', 'jobctl/jobctl.cjs']) {
      assert.ok(
        readFileSync(join(app, 'dist', compiled)).equals(
          readFileSync(join(CHECKOUT, 'dist', compiled)),
        ),
        `dist/${compiled}`,
      );
    }
    assertAttributes(root, 'opt/jobworker/dist/jobctl/jobctl.cjs', 0o755, 0);
    assertAttributes(root, 'opt/jobworker/scripts/pki.sh', 0o755, 0);
    assertAttributes(root, 'opt/jobworker/README.md', 0o644, 0);
    assert.not.ok(existsSync(join(app, '.git')));
  },
);

deploy(
  'the installed build loads with plain node from its own node_modules (nothing from the checkout)',
  ({ root }) => {
    const modules = [
      './dist/executor/socket/executor-server.js',
      './dist/executor/runtime/job-runtime.js',
      './dist/api/api-server.js',
      './dist/api/tls-credentials.js',
    ];
    const result = run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `${modules.map((module) => `await import('${module}');`).join(' ')} console.log('loaded');`,
      ],
      join(root, 'opt/jobworker'),
    );
    assert.is(result.stdout.trim(), 'loaded', result.stderr);
  },
);

interface UnitCommand {
  argv: string[];
  env: Record<string, string>;
  cwd: string;
}

/**
 * An installed unit's ExecStart=, Environment= and WorkingDirectory=, as systemd would run them,
 * with the install root put before the app's paths (the unit names them as the target system
 * sees them) and --config given another file.
 */
function unitCommand(root: string, unit: string, config: string): UnitCommand {
  const text = readFileSync(join(root, 'etc/systemd/system', unit), 'utf8');
  const setting = (name: string) =>
    text
      .split('\n')
      .filter((line) => line.startsWith(`${name}=`))
      .map((line) => line.slice(name.length + 1));
  const [execStart = '', ...more] = setting('ExecStart');
  assert.equal(more, [], `${unit}: one ExecStart=`);
  const app = '/opt/jobworker';
  const inRoot = (word: string) =>
    word === app || word.startsWith(`${app}/`) ? join(root, word) : word;
  const argv = execStart.split(' ').map(inRoot);
  const configAt = argv.indexOf('--config') + 1;
  assert.ok(configAt > 0, `${unit}: ExecStart= has --config`);
  argv[configAt] = config;
  const env = Object.fromEntries(
    setting('Environment').map((assignment) => assignment.split('=', 2) as [string, string]),
  );
  return { argv, env, cwd: inRoot(setting('WorkingDirectory')[0] ?? '/') };
}

/** What a running process has loaded: no tsx anywhere, no native addon, no esbuild child. */
function assertPlainNode(pid: number): void {
  const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  assert.not.ok(
    cmdline.some((arg) => arg.includes('tsx')),
    cmdline.join(' '),
  );
  const addons = readFileSync(`/proc/${pid}/maps`, 'utf8')
    .split('\n')
    .filter((line) => line.endsWith('.node'));
  assert.equal(addons, [], 'no native addon is loaded');
  const children = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .flatMap((name) => {
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        const ppid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
        return ppid === String(pid) ? [readFileSync(`/proc/${name}/comm`, 'utf8').trim()] : [];
      } catch {
        return [];
      }
    });
  assert.equal(children, [], 'no child process (no esbuild service)');
}

deploy(
  "the installed executor, run by its unit's command line, serves jobs from the compiled build",
  async ({ root, aux }) => {
    const config = join(aux, 'executor-test.json');
    const cgroupName = `${TEST_PREFIX}deploy-${process.pid}`;
    writeFileSync(
      config,
      JSON.stringify({
        stateDir: join(aux, 'executor-state'),
        socketPath: join(aux, 'executor-run', 'executor.sock'),
        socketGroup: String(TEST_SOCKET_GID),
        cgroupName,
        maskPaths: [aux],
        stopGraceMs: 500,
      }),
    );
    const command = unitCommand(root, 'jobworker-executor.service', config);
    assert.equal(command.env, { MSGPACKR_NATIVE_ACCELERATION_DISABLED: 'true' });
    const [program = '', ...args] = command.argv;
    const child = trackChild(
      spawn(program, args, {
        cwd: command.cwd,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...command.env },
        stdio: ['ignore', 'ignore', 'pipe'],
      }),
    );
    let log = '';
    child.stderr?.on('data', (data: Buffer) => (log += data.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const client = new ExecutorClient(join(aux, 'executor-run', 'executor.sock'));
    try {
      const deadline = Date.now() + 20_000;
      while (!log.includes('"executor listening"')) {
        assert.ok(
          child.exitCode === null && Date.now() < deadline,
          `the executor did not listen:\n${log}`,
        );
        await sleep(50);
      }
      assertPlainNode(child.pid ?? 0);
      const job = await client.startJob(
        { argv: ['echo', 'hello from the installed build'] },
        'deployer',
      );
      let output = '';
      for await (const event of client.readOutput(job.id, 0)) {
        if ('chunk' in event) output += Buffer.from(event.chunk.data).toString();
      }
      assert.is(output, 'hello from the installed build\n');
    } finally {
      client.close();
      child.kill('SIGTERM');
    }
    assert.is(await exited, 0, log);
  },
);

/** Starts the installed API as nobody with the given supplementary groups; resolves on exit. */
async function runApiAsNobody(
  context: Context,
  groups: number[],
): Promise<{ code: number | null; log: string; listened: boolean }> {
  const { root, aux } = context;
  const installed = JSON.parse(
    readFileSync(join(root, 'etc/jobworker/api.json'), 'utf8'),
  ) as Record<string, Record<string, string>>;
  const tls = Object.fromEntries(
    Object.entries(installed.tls ?? {}).map(([key, path]) => [key, join(root, path)]),
  );
  const configPath = join(aux, `api-${groups.length}.json`);
  writeFileSync(
    configPath,
    JSON.stringify({
      ...installed,
      listen: '127.0.0.1:0',
      executorSocket: join(aux, 'none.sock'),
      tls,
    }),
  );
  chmodSync(configPath, 0o644);
  const tmp = join(aux, 'tmp');
  mkdirSync(tmp, { recursive: true, mode: 0o1777 });
  chmodSync(tmp, 0o1777);
  const groupArgs = groups.length > 0 ? [`--groups=${groups.join(',')}`] : ['--clear-groups'];
  const command = unitCommand(root, 'jobworker-api.service', configPath);
  const child = trackChild(
    spawn(
      'setpriv',
      [
        `--reuid=${NOBODY}`,
        `--regid=${NOBODY}`,
        ...groupArgs,
        '--inh-caps=-all',
        '--no-new-privs',
        '--',
        ...command.argv,
      ],
      {
        cwd: command.cwd,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TMPDIR: tmp, ...command.env },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    ),
  );
  let log = '';
  child.stderr?.on('data', (data: Buffer) => (log += data.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let listened = false;
  const deadline = Date.now() + 20_000;
  while (child.exitCode === null && Date.now() < deadline) {
    if (log.includes('"msg":"api listening"')) {
      listened = true;
      child.kill('SIGTERM');
      break;
    }
    await sleep(50);
  }
  if (child.exitCode === null && !listened) child.kill('SIGKILL');
  return { code: await exited, log, listened };
}

deploy(
  'as nobody with the jobworker group (as the unit runs it), the installed API reads its key and serves',
  async (context) => {
    const { code, log, listened } = await runApiAsNobody(context, [context.gid]);
    assert.ok(listened, log);
    assert.match(log, `"msg":"running unprivileged"`);
    assert.match(log, `"uid":${NOBODY}`);
    assert.match(log, `"groups":[${context.gid}]`);
    assert.is(code, 0, 'SIGTERM ends it cleanly');
  },
);

deploy(
  'as nobody without the group, the API cannot read the private key and stops',
  async (context) => {
    const { code, log, listened } = await runApiAsNobody(context, []);
    assert.not.ok(listened);
    assert.is(code, 78, log);
    assert.match(log, /tls\.\w+: cannot read \S+: EACCES/);
  },
);

deploy('a second run changes nothing', ({ root }) => {
  const before = listing(root);
  const output = installOk(root, '--server-name', SERVER_NAME, '--server-ip', SERVER_IP);
  assert.equal(listing(root), before);
  assert.match(output, /^nothing to change$/m);
});

deploy('--dry-run changes nothing, and says what a real run would do', ({ root }) => {
  const before = listing(root);
  assert.match(installOk(root, '--dry-run'), /^nothing to change$/m);
  assert.equal(listing(root), before);

  const empty = newDir();
  const dry = installOk(empty, '--dry-run', '--server-name', SERVER_NAME);
  assert.equal(listing(empty), ['.\td\t755\t0:0\t']);
  assert.match(dry, 'would create system group jobworker');
  const real = installOk(empty, '--server-name', SERVER_NAME);
  assert.equal(
    changeLines(dry).map((line) => line.replace(/^ {2}would /, '  ')),
    changeLines(real),
    'the dry run lists exactly the changes the real run makes',
  );
});

deploy(
  'a run repairs what differs: a changed file, a wrong mode, a file no longer shipped',
  ({ root }) => {
    const before = listing(root);
    const app = join(root, 'opt/jobworker');
    writeFileSync(join(app, 'README.md'), 'changed\n');
    chmodSync(join(app, 'scripts/pki.sh'), 0o777);
    chmodSync(join(root, 'etc/jobworker/pki/private/server.key'), 0o644);
    mkdirSync(join(app, 'obsolete'));
    writeFileSync(join(app, 'obsolete/old.ts'), 'export {};\n');
    writeFileSync(
      join(app, '.jobworker-install-manifest'),
      `${readFileSync(join(app, '.jobworker-install-manifest'), 'utf8')}obsolete/old.ts\n`,
    );
    const output = installOk(root);
    assert.match(output, /0 new, 2 changed, 1 removed/);
    assert.match(output, 'set /etc/jobworker/pki/private/server.key to 0640 root:jobworker');
    assert.equal(listing(root), before);
  },
);

deploy('systemd-analyze verify passes on every installed unit', ({ root }) => {
  const units = UNITS.map((unit) => join(root, 'etc/systemd/system', unit));
  // Unit files given by path: their programs (node, kill, bash, systemctl) are checked on this
  // host, where the units would run; --man=no since they document themselves with file:// links.
  const verify = run('systemd-analyze', ['verify', '--man=no', ...units]);
  const complaints = verify.stderr
    .split('\n')
    .filter((line) => line !== '' && !line.includes('Special user nobody configured'));
  assert.equal(complaints, []);
  assert.is(verify.status, 0);
  // Every path the units name exists in the installed tree.
  for (const path of [
    'opt/jobworker/dist/executor/main.js',
    'opt/jobworker/dist/api/main.js',
    'opt/jobworker/scripts/pki.sh',
    'etc/jobworker/executor.json',
    'etc/jobworker/api.json',
    'etc/jobworker/pki',
  ]) {
    assert.ok(existsSync(join(root, path)), path);
  }
  // Both services run with the node flags every launcher here uses.
  const flags = SERVICE_NODE_FLAGS.join(' ');
  for (const service of ['executor', 'api']) {
    assert.match(
      readFileSync(join(root, 'etc/systemd/system', `jobworker-${service}.service`), 'utf8'),
      `ExecStart=${process.execPath} ${flags} /opt/jobworker/dist/${service}/main.js --config`,
    );
  }
});

deploy(
  'systemd-analyze verify does check: a unit whose program is missing fails',
  ({ aux, root }) => {
    const dir = join(aux, 'broken');
    mkdirSync(dir);
    const unit = readFileSync(join(root, 'etc/systemd/system/jobworker-executor.service'), 'utf8');
    writeFileSync(
      join(dir, 'jobworker-executor.service'),
      unit.replace(`ExecStart=${process.execPath}`, 'ExecStart=/nonexistent/node'),
    );
    const verify = run('systemd-analyze', [
      'verify',
      '--man=no',
      join(dir, 'jobworker-executor.service'),
    ]);
    assert.is.not(verify.status, 0);
    assert.match(verify.stderr, 'Command /nonexistent/node is not executable');
  },
);

deploy(
  'systemd-analyze security: the exposure of each unit is at most what was measured',
  ({ root }) => {
    for (const [unit, measured] of Object.entries(MEASURED_EXPOSURE)) {
      const result = run('systemd-analyze', [
        'security',
        '--offline=yes',
        join(root, 'etc/systemd/system', unit),
      ]);
      const level = /Overall exposure level for \S+: (\d+\.\d+) (\w+)/.exec(result.stdout);
      assert.ok(level, `${unit}: ${result.stdout}${result.stderr}`);
      assert.ok(
        Number(level[1]) <= measured,
        `${unit}: exposure ${level[1]}, measured ${measured}`,
      );
      assert.is(level[2], 'OK', unit);
    }
  },
);

/** A PKI made apart with pki.sh, in the layout --import-pki takes. */
function pkiToImport(aux: string, name: string): string {
  const made = join(aux, `${name}-pki`);
  const pki = (...args: string[]) => {
    const result = run('bash', ['scripts/pki.sh', ...args]);
    assert.is(result.status, 0, result.stderr);
  };
  pki('ca', made);
  pki('server', made, 'server', `DNS:${name}.example.org`);
  const dir = join(aux, `${name}-import`);
  mkdirSync(dir);
  copyFileSync(join(made, 'ca.crt'), join(dir, 'ca.crt'));
  copyFileSync(join(made, 'server.crt'), join(dir, 'server.crt'));
  copyFileSync(join(made, 'private/server.key'), join(dir, 'server.key'));
  return dir;
}

deploy(
  'an existing PKI is imported: its files, the modes, no CA key, a config without a CRL',
  ({ aux }) => {
    const source = pkiToImport(aux, 'imported');
    const root = newDir();
    // --use-checkout: the app is the checkout (tested above); this is about the PKI.
    installOkUsingCheckout(root, '--import-pki', source);
    const gid = groupId(root);
    const pki = join(root, 'etc/jobworker/pki');
    for (const [from, to] of [
      ['ca.crt', 'ca.crt'],
      ['server.crt', 'server.crt'],
      ['server.key', 'private/server.key'],
    ] as const) {
      assert.ok(readFileSync(join(source, from)).equals(readFileSync(join(pki, to))), to);
    }
    assertAttributes(root, 'etc/jobworker/pki/ca.crt', 0o644, 0);
    assertAttributes(root, 'etc/jobworker/pki/server.crt', 0o644, 0);
    assertAttributes(root, 'etc/jobworker/pki/private', 0o750, gid);
    assertAttributes(root, 'etc/jobworker/pki/private/server.key', 0o640, gid);
    assert.equal(readdirSync(pki).sort(), ['ca.crt', 'private', 'server.crt']);
    assert.equal(readdirSync(join(pki, 'private')), ['server.key']);
    const api = parseApiConfig(
      JSON.parse(readFileSync(join(root, 'etc/jobworker/api.json'), 'utf8')),
    );
    assert.is(api.tls.crlFile, null, 'no CRL imported: none configured');

    const before = listing(root);
    assert.match(installOkUsingCheckout(root, '--import-pki', source), /^nothing to change$/m);
    assert.equal(listing(root), before);

    // A PKI of another CA is refused, and changes nothing.
    const other = pkiToImport(aux, 'other');
    const refused = installUsingCheckout(root, '--import-pki', other);
    assert.is.not(refused.status, 0);
    assert.match(refused.stderr, 'holds a PKI of another CA');
    assert.equal(listing(root), before);
  },
);

deploy('an imported CRL is installed and configured', ({ aux }) => {
  const source = pkiToImport(aux, 'withcrl');
  copyFileSync(join(aux, 'withcrl-pki/crl.pem'), join(source, 'crl.pem'));
  const root = newDir();
  installOkUsingCheckout(root, '--import-pki', source);
  assertAttributes(root, 'etc/jobworker/pki/crl.pem', 0o644, 0);
  const api = parseApiConfig(
    JSON.parse(readFileSync(join(root, 'etc/jobworker/api.json'), 'utf8')),
  );
  assert.is(api.tls.crlFile, '/etc/jobworker/pki/crl.pem');
});

deploy("a key that is not the certificate's is refused before anything is installed", ({ aux }) => {
  const source = pkiToImport(aux, 'mismatched');
  copyFileSync(join(aux, 'imported-pki/private/server.key'), join(source, 'server.key'));
  const root = newDir();
  const refused = installUsingCheckout(root, '--import-pki', source);
  assert.is.not(refused.status, 0);
  assert.match(refused.stderr, 'server.key is not the key of server.crt');
  assert.equal(listing(root), ['.\td\t755\t0:0\t']);
});

deploy('an existing configuration is never overwritten (its owner and mode are set)', () => {
  const root = newDir();
  mkdirSync(join(root, 'etc/jobworker'), { recursive: true });
  const mine = '{ "listen": "127.0.0.1:6000" }\n';
  writeFileSync(join(root, 'etc/jobworker/api.json'), mine, { mode: 0o600 });
  const output = installOkUsingCheckout(root);
  assert.match(output, 'keep /etc/jobworker/api.json (exists; not overwritten)');
  assert.is(readFileSync(join(root, 'etc/jobworker/api.json'), 'utf8'), mine);
  assertAttributes(root, 'etc/jobworker/api.json', 0o640, groupId(root));
  assert.is(
    readFileSync(join(root, 'etc/jobworker/executor.json'), 'utf8'),
    installedExecutorConfig(),
  );
  // --use-checkout: the units run the checkout, and nothing is copied.
  const unit = readFileSync(join(root, 'etc/systemd/system/jobworker-executor.service'), 'utf8');
  assert.match(unit, ` ${eligibleCheckout()}/dist/executor/main.js --config`);
  assert.match(unit, `WorkingDirectory=${eligibleCheckout()}\n`);
  assert.not.ok(existsSync(join(root, 'opt')));
});

deploy("the host's own /etc/group and /etc/gshadow were never touched", () => {
  assert.equal(hostFiles(), hostBefore);
  assert.ok(statSync('/etc/group').isFile());
});

deploy.run();
