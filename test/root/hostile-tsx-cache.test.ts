// No root process of the dev stack, and no jobctl, loads code from a place another user could have
// created first. tsx keeps a compile cache in <tmpdir>/tsx-<euid> and runs what it finds there; a
// local user who makes /tmp/tsx-0 (root's) or /tmp/tsx-65534 (nobody's, the API's) first can fill
// it. This test does exactly that, in a private mount namespace with its own /tmp (the host's
// /tmp, which other processes use, is never touched): the directories are made by other users,
// world-writable, and filled with cache entries that tsx really would run (a control run shows
// that it does), each writing a marker file. Then `npm start`'s dev stack and jobctl run there,
// and no marker appears.
import { spawn } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
} from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { compiledPath, JOBCTL_BIN } from '../../shared/app-layout.ts';
import { CHECKOUT } from '../../shared/dev-layout.ts';
import { sleep, TEST_PREFIX } from './executor-kit.ts';
import { trackChild } from './executor-process-kit.ts';

const NOBODY = 65_534;
/** Another local user, with no account: the one who plants nobody's cache. */
const MALLORY = 4242;
/** The caches the old way would have used: root's (executor, npm start, jobctl) and nobody's (API). */
const CACHES = ['/tmp/tsx-0', `/tmp/tsx-${NOBODY}`];

/**
 * What the dev stack, the executor, the API and jobctl loaded through tsx before they were
 * compiled: importing these through tsx once fills the cache with an entry for each module.
 */
const OLD_ENTRY_POINTS = [
  'api/jobctl/main.ts',
  'api/api-server.ts',
  'executor/socket/executor-server.ts',
  'executor/config.ts',
  'shared/dev-layout.ts',
];

interface Context {
  /** /var/tmp/jobworker-test-hostile-cache-*: markers/, the dev stack's dir. */
  scratch: string;
  markers: string;
  /** Holds the private mount namespace (its /tmp is a fresh tmpfs) while it runs. */
  holder: ChildProcess;
  stack: ChildProcess | undefined;
}

const hostile = suite<Context>('a hostile tsx cache');

/**
 * Runs a command in the test's mount namespace, as root unless a uid is given, in `cwd` (nsenter
 * itself starts it in /).
 */
function inNamespace(
  context: Context,
  argv: string[],
  options: SpawnOptions & { uid?: number; cwd?: string } = {},
) {
  const { uid, cwd = '/', ...spawnOptions } = options;
  const asUser =
    uid === undefined
      ? []
      : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--'];
  const target = ['--target', String(context.holder.pid), '--mount', `--wd=${cwd}`];
  return spawn('nsenter', [...target, '--', ...asUser, ...argv], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    ...spawnOptions,
  });
}

async function runInNamespace(
  context: Context,
  argv: string[],
  options: SpawnOptions & { uid?: number; cwd?: string } = {},
): Promise<{ code: number | null; out: string }> {
  const child = trackChild(
    inNamespace(context, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...options }),
  );
  let out = '';
  child.stdout?.on('data', (data: Buffer) => (out += data.toString()));
  child.stderr?.on('data', (data: Buffer) => (out += data.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { code, out };
}

const markers = (context: Context) => readdirSync(context.markers);

/** node --import tsx loading the old entry points, with tsx's disk cache on unless told. */
async function loadThroughTsx(context: Context, env: Record<string, string> = {}): Promise<void> {
  const imports = OLD_ENTRY_POINTS.map(
    (file) => `await import(${JSON.stringify(join(CHECKOUT, file))});`,
  );
  // tsx writes its cache from its loader thread: a moment for the writes before the exit.
  const script = `${imports.join(' ')} await new Promise((done) => setTimeout(done, 500));`;
  const { code, out } = await runInNamespace(
    context,
    [process.execPath, '--import', 'tsx', '--input-type=module', '-e', script],
    { cwd: CHECKOUT, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } },
  );
  assert.is(code, 0, out);
}

/** Every entry of a cache directory, by name, size and time: to show nothing wrote there. */
async function cacheListing(context: Context): Promise<string> {
  const { code, out } = await runInNamespace(context, [
    'sh',
    '-c',
    'ls -la --time-style=full-iso "$@"',
    '-',
    ...CACHES,
  ]);
  assert.is(code, 0, out);
  return out;
}

hostile.before(async (context) => {
  context.scratch = mkdtempSync(`/var/tmp/${TEST_PREFIX}hostile-cache-`);
  chmodSync(context.scratch, 0o755);
  context.markers = join(context.scratch, 'markers');
  mkdirSync(context.markers);
  chmodSync(context.markers, 0o777); // so that code planted for nobody could leave its mark too
  context.holder = trackChild(
    spawn(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        '--',
        'sh',
        '-c',
        'mount -t tmpfs -o mode=1777 tmpfs /tmp && echo ready && exec sleep 600',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    ),
  );
  await new Promise<void>((resolve, reject) => {
    context.holder.stdout?.once('data', () => resolve());
    context.holder.once('exit', (code) => reject(new Error(`unshare exited ${code}`)));
  });
});

hostile.after(async (context) => {
  // Whatever still runs in the namespace (a failed test's stack) is stopped: the dev stack as
  // Ctrl-C would, then anything left, the executor with SIGTERM first so that it removes its
  // cgroups; then the namespace itself goes.
  const gone = (child: ChildProcess) =>
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : new Promise((resolve) => child.once('exit', resolve));
  if (context.stack && context.stack.exitCode === null && context.stack.signalCode === null) {
    context.stack.kill('SIGINT');
    await Promise.race([gone(context.stack), sleep(15_000)]);
  }
  const others = () =>
    processesInNamespace(context).filter(({ pid }) => pid !== String(context.holder.pid));
  const signal = (name: NodeJS.Signals) => {
    for (const { pid } of others()) {
      try {
        process.kill(Number(pid), name);
      } catch {
        // exited meanwhile
      }
    }
  };
  signal('SIGTERM');
  for (let waited = 0; others().length > 0 && waited < 10_000; waited += 100) await sleep(100);
  signal('SIGKILL');
  context.holder.kill('SIGKILL');
  await gone(context.holder);
  rmSync(context.scratch, { recursive: true, force: true });
});

hostile(
  'planted cache entries are run by a process that uses tsx with its cache (control)',
  async (context) => {
    // Other users make the caches first, world-writable.
    for (const [dir, uid] of [
      ['/tmp/tsx-0', NOBODY],
      [`/tmp/tsx-${NOBODY}`, MALLORY],
    ] as const) {
      const made = await runInNamespace(context, ['mkdir', '-m', '0777', dir], { uid });
      assert.is(made.code, 0, made.out);
    }
    // tsx (as root) fills root's cache with real entries; the owner of the directory then turns
    // every entry into code that leaves a marker, and the other user copies them into nobody's.
    await loadThroughTsx(context);
    const plant = `
    const fs = require('node:fs');
    const [from, to, markers] = process.argv.slice(1);
    const mark = 'process.getBuiltinModule("node:fs").writeFileSync(' +
      JSON.stringify(markers + '/') + ' + process.pid + "-" + process.getuid(), "ran");\\n';
    for (const name of fs.readdirSync(from)) {
      let entry;
      try {
        entry = JSON.parse(fs.readFileSync(from + '/' + name, 'utf8'));
      } catch {
        continue; // an entry tsx did not finish writing
      }
      entry.code = mark + entry.code;
      fs.writeFileSync(to + '/.' + name, JSON.stringify(entry));
      fs.renameSync(to + '/.' + name, to + '/' + name);
    }`;
    for (const [to, uid] of [
      ['/tmp/tsx-0', NOBODY],
      [`/tmp/tsx-${NOBODY}`, MALLORY],
    ] as const) {
      const planted = await runInNamespace(
        context,
        [process.execPath, '-e', plant, '/tmp/tsx-0', to, context.markers],
        { uid },
      );
      assert.is(planted.code, 0, planted.out);
    }
    const entries = await runInNamespace(context, ['sh', '-c', 'ls /tmp/tsx-0 | wc -l']);
    assert.ok(Number(entries.out) >= OLD_ENTRY_POINTS.length, `entries planted: ${entries.out}`);

    // The trap works: the same load, cache on, runs the planted code.
    await loadThroughTsx(context);
    assert.ok(markers(context).length > 0, 'tsx with its cache ran the planted code');
    rmSync(context.markers, { recursive: true });
    mkdirSync(context.markers);
    chmodSync(context.markers, 0o777);

    // The way the tests run tsx (TSX_DISABLE_CACHE=1, set by the npm scripts) does not.
    await loadThroughTsx(context, { TSX_DISABLE_CACHE: '1' });
    assert.equal(markers(context), [], 'with TSX_DISABLE_CACHE=1 nothing planted ran');
  },
);

/** Processes in the test's mount namespace, with their command line, name and maps. */
function processesInNamespace(
  context: Context,
): { pid: string; cmdline: string; comm: string; maps: string }[] {
  const ns = readlinkSync(`/proc/${context.holder.pid}/ns/mnt`);
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .flatMap((pid) => {
      try {
        if (readlinkSync(`/proc/${pid}/ns/mnt`) !== ns) return [];
        return [
          {
            pid,
            cmdline: readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' '),
            comm: readFileSync(`/proc/${pid}/comm`, 'utf8').trim(),
            maps: readFileSync(`/proc/${pid}/maps`, 'utf8'),
          },
        ];
      } catch {
        return []; // gone meanwhile
      }
    });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

hostile(
  'npm start and jobctl run beside the planted caches and load nothing from them',
  async (context) => {
    const before = await cacheListing(context);
    const port = await freePort();
    const dir = join(context.scratch, 'dev');
    // What `npm start` runs once built, with no TSX_DISABLE_CACHE to hide behind.
    const stack = trackChild(
      inNamespace(
        context,
        [
          process.execPath,
          compiledPath('scripts/dev-stack.ts'),
          '--dir',
          dir,
          '--listen',
          `127.0.0.1:${port}`,
          '--cgroup-name',
          `${TEST_PREFIX}hostile-cache-${randomBytes(3).toString('hex')}`,
        ],
        { cwd: CHECKOUT, stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    );
    context.stack = stack;
    let out = '';
    stack.stdout?.on('data', (data: Buffer) => (out += data.toString()));
    stack.stderr?.on('data', (data: Buffer) => (out += data.toString()));
    const exited = new Promise<number | null>((resolve) => stack.on('exit', resolve));
    const deadline = Date.now() + 60_000;
    while (!out.includes('Ctrl-C stops both processes.')) {
      assert.ok(
        stack.exitCode === null && Date.now() < deadline,
        `the dev stack did not start:\n${out}`,
      );
      await sleep(100);
    }
    assert.match(out, /hello from job-[0-9a-f]+ as uid \d+/, 'its first job ran, through jobctl');

    // jobctl as people run it: the bin, as root against the stack, and as nobody.
    const jobctl = JOBCTL_BIN;
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      JOBCTL_SERVER: `127.0.0.1:${port}`,
      JOBCTL_DEV_DIR: dir,
    };
    const ran = await runInNamespace(context, [jobctl, 'run', '--', 'echo', 'hello again'], {
      env,
    });
    assert.equal(ran, { code: 0, out: 'hello again\n' });
    const listed = await runInNamespace(context, [jobctl, 'list', '--all', '--quiet'], { env });
    assert.is(listed.code, 0, listed.out);
    assert.is(listed.out.trim().split('\n').length, 2);
    const version = await runInNamespace(context, [jobctl, 'version'], {
      uid: NOBODY,
      env: { PATH: env.PATH },
    });
    assert.match(version.out, /^jobctl \d+\.\d+\.\d+ /);

    assert.equal(markers(context), [], 'no planted code ran');
    // What runs there: node with compiled files, no tsx, no esbuild, no native addon.
    const running = processesInNamespace(context);
    const nodes = running.filter(({ comm }) => comm === 'node');
    assert.ok(
      nodes.some(({ cmdline }) => cmdline.includes('dist/executor/main.js')),
      'the executor',
    );
    assert.ok(
      nodes.some(({ cmdline }) => cmdline.includes('dist/api/main.js')),
      'the API',
    );
    for (const { cmdline, comm, maps } of running) {
      assert.not.match(cmdline, /(^|[\s/])tsx([\s/]|$)/, cmdline);
      assert.is.not(comm, 'esbuild');
      assert.not.match(maps, /\.node$/m, `${cmdline}: a native addon`);
    }

    stack.kill('SIGINT');
    assert.is(await exited, 0, out);
    assert.match(out, 'stopped');
    assert.equal(markers(context), [], 'no planted code ran');
    assert.is(await cacheListing(context), before, 'nothing wrote to the caches');
  },
);

hostile.run();
