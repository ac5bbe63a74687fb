// The one test command (`npm test`): static checks, then the unit suite, then the root suite, each
// test file in its own uvu process so that one crash cannot hide the others, then the cgroup v2
// suite and the systemd suite, each in a VM (scripts/vm/). Ends with the line `N passed, N failed`
// so that a run that executed nothing is visible.
//
//   npm test | npm run test:unit | npm run test:root -- [file-filter] | npm run test:v2 | npm run test:systemd
//   TSX_DISABLE_CACHE=1 node --import tsx scripts/run-tests.ts all|unit|root|v2|systemd|checks [file-filter]
//
// The tests run TypeScript through tsx, as root: tsx must never use its disk cache, which lives
// in <tmpdir>/tsx-<uid>, a directory any local user can create first and fill with code for root
// to run. The npm scripts set TSX_DISABLE_CACHE=1; every process started from here inherits it.
// The processes the tests start as the product (executor, API, jobctl) run the compiled build.
import { spawn } from 'node:child_process';
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';

type Part = 'all' | 'unit' | 'root' | 'v2' | 'systemd' | 'checks';
const part = (process.argv[2] ?? 'all') as Part;
const fileFilter = process.argv[3];
if (!['all', 'unit', 'root', 'v2', 'systemd', 'checks'].includes(part)) {
  console.error(`usage: run-tests.ts all|unit|root|v2|systemd|checks [file-filter]`);
  process.exit(2);
}
if (import.meta.url.endsWith('.ts') && !process.env.TSX_DISABLE_CACHE) {
  console.error(
    'run-tests: tsx is using its disk cache (<tmpdir>/tsx-<uid>, which another user can create first); ' +
      'run it through npm (npm test, npm run test:root -- FILTER) or with TSX_DISABLE_CACHE=1',
  );
  process.exit(2);
}

let passed = 0;
let failed = 0;
const failures: string[] = [];

/**
 * How long one test file (or one check, or one VM suite) may take before it counts as hung. A hung
 * file must fail on its own and let the others run, not hold the whole run until CI gives up.
 * The VM suites bound themselves more tightly (their harnesses stop the VM first).
 */
const FILE_TIME_LIMIT_MS = 10 * 60_000;
const VM_SUITE_TIME_LIMIT_MS = 25 * 60_000;

/**
 * The process group of the command running now. Each command runs in a group of its own (so that
 * a hung one can be stopped whole), which a terminal's Ctrl-C no longer reaches: SIGINT and
 * SIGTERM to this runner are passed on to it, and the runner stops once it has ended.
 */
let runningGroup: number | null = null;
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    stopping = true;
    if (runningGroup === null) process.exit(130);
    try {
      process.kill(-runningGroup, signal);
    } catch {
      // already gone
    }
  });
}

/**
 * Runs a command with inherited output plus a captured copy; resolves with exit code and text.
 * Past the time limit its whole process group gets SIGTERM (so executors and stacks it started
 * can clean up), and SIGKILL 15 s later.
 */
function run(
  command: string,
  args: string[],
  limitMs = FILE_TIME_LIMIT_MS,
): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    runningGroup = child.pid ?? null;
    let output = '';
    const collect = (chunk: Buffer, sink: NodeJS.WriteStream) => {
      output += chunk.toString('utf8');
      sink.write(chunk);
    };
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        // the group is gone
      }
    };
    let killer: NodeJS.Timeout | undefined;
    const limit = setTimeout(() => {
      const note = `\nrun-tests: ${command} ${args.join(' ')} ran past ${limitMs / 1000} s; stopping it\n`;
      collect(Buffer.from(note), process.stderr);
      signalGroup('SIGTERM');
      killer = setTimeout(() => signalGroup('SIGKILL'), 15_000);
    }, limitMs);
    child.stdout.on('data', (chunk: Buffer) => collect(chunk, process.stdout));
    child.stderr.on('data', (chunk: Buffer) => collect(chunk, process.stderr));
    child.on('close', (code, signal) => {
      clearTimeout(limit);
      clearTimeout(killer);
      runningGroup = null;
      if (stopping) process.exit(130);
      resolve({ code: code ?? 128 + (signal ? 9 : 0), output });
    });
  });
}

async function check(name: string, command: string, args: string[]): Promise<void> {
  console.log(`\n── ${name}: ${command} ${args.join(' ')}`);
  const { code } = await run(command, args);
  if (code === 0) passed += 1;
  else {
    failed += 1;
    failures.push(name);
  }
}

/** The compiled build the root and v2 suites run (the executor, API and jobctl), once a run. */
let built = false;
async function build(): Promise<void> {
  if (built) return;
  built = true;
  await check('build', 'bash', ['scripts/build.sh']);
}

function testFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.test.ts'))
    .filter((f) => !fileFilter || f.includes(fileFilter))
    .sort();
}

/** One part's own counts, on a line of their own. */
function partCounts(name: string, before: { passed: number; failed: number }): void {
  console.log(`\n${name}: ${passed - before.passed} passed, ${failed - before.failed} failed`);
}

/** uvu prints "Total: N" and "Passed: N"; anything else (a crash, no summary) is a failure. */
async function suite(dir: string): Promise<void> {
  const files = testFiles(dir);
  for (const file of files) {
    console.log(`\n── ${join(dir, file)}`);
    const escaped = file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const { code, output } = await run(process.execPath, [
      '--import',
      'tsx',
      'node_modules/uvu/bin.js',
      dir,
      `^${escaped}$`,
    ]);
    const plain = stripVTControlCharacters(output);
    const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? NaN);
    const ok = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? NaN);
    if (Number.isNaN(total) || Number.isNaN(ok) || total === 0) {
      failed += 1;
      failures.push(`${file} (no test summary, exit ${code})`);
      continue;
    }
    passed += ok;
    failed += total - ok;
    if (total !== ok || code !== 0) failures.push(file);
    if (code !== 0 && total === ok) {
      failed += 1; // the file passed its tests but still exited non-zero (hook or teardown error)
    }
  }
}

/**
 * The VM suites run every file of their directory in one boot of a VM with a cgroup-v2-only
 * kernel: test/v2 (scripts/vm/run-v2-suite.ts), test/systemd under systemd as PID 1
 * (scripts/vm/run-systemd-suite.ts). Each file's uvu summary comes back on the VM's console and
 * is counted like the others. A VM that could not run, or a file without a summary, is a failure.
 */
async function vmSuite(dir: string, script: string): Promise<void> {
  const files = testFiles(dir);
  const harness = ['--import', 'tsx', script, ...(fileFilter ? [fileFilter] : [])];
  console.log(`\n── ${dir} in a VM: ${script}`);
  const { code, output } = await run(process.execPath, harness, VM_SUITE_TIME_LIMIT_MS);
  const plain = stripVTControlCharacters(output);
  const totals = [...plain.matchAll(/Total:\s+(\d+)/g)].map((m) => Number(m[1]));
  const oks = [...plain.matchAll(/Passed:\s+(\d+)/g)].map((m) => Number(m[1]));
  const summaries = totals.flatMap((total, i) =>
    total > 0 && oks[i] !== undefined ? [[total, oks[i]]] : [],
  );
  for (const [total = 0, ok = 0] of summaries) {
    passed += ok;
    failed += total - ok;
  }
  const missing = files.length - summaries.length;
  if (missing > 0) {
    failed += missing;
    failures.push(
      `${dir} (${missing} of ${files.length} files gave no test summary, exit ${code})`,
    );
  } else if (summaries.some(([total, ok]) => total !== ok)) {
    failures.push(dir);
  } else if (code !== 0) {
    failed += 1; // every file passed, but the VM or its runner still failed
    failures.push(`${dir} (exit ${code})`);
  }
}

if (part === 'all' || part === 'checks') {
  await check('typecheck', 'npx', ['tsc', '--noEmit', '-p', 'tsconfig.json']);
  await check('lint', 'npx', ['eslint', '--max-warnings', '0', '.']);
  await check('format', 'npx', ['prettier', '--check', '.']);
  if (existsSync('scripts/gen-check.sh'))
    await check('generated code', 'bash', ['scripts/gen-check.sh']);
}
if (part === 'all' || part === 'unit') await suite('test/unit');
if (part === 'all' || part === 'root') {
  if (process.getuid?.() !== 0) {
    // The root suite is the proof that isolation and limits work; not running it is a failure.
    console.error('\nroot suite: must run as root (real cgroups, namespaces and setuid)');
    failed += 1;
    failures.push('root suite (not root)');
  } else {
    await build();
    const before = { passed, failed };
    await suite('test/root');
    partCounts('root suite (this host: cgroup v1/hybrid)', before);
  }
}
if (part === 'all' || part === 'v2') {
  const before = { passed, failed };
  if (process.getuid?.() !== 0) {
    console.error(
      '\nv2 suite: must run as root (the VM shares the host root and runs the executor)',
    );
    failed += 1;
    failures.push('v2 suite (not root)');
  } else {
    await build();
    await vmSuite('test/v2', 'scripts/vm/run-v2-suite.ts');
  }
  partCounts('v2 suite (VM: cgroup v2 only)', before);
}
if (part === 'all' || part === 'systemd') {
  const before = { passed, failed };
  if (process.getuid?.() !== 0) {
    console.error('\nsystemd suite: must run as root (the VM shares the host root)');
    failed += 1;
    failures.push('systemd suite (not root)');
  } else {
    await build();
    await vmSuite('test/systemd', 'scripts/vm/run-systemd-suite.ts');
  }
  partCounts('systemd suite (VM: systemd as PID 1, cgroup v2)', before);
}

if (failures.length > 0) console.log(`\nfailed: ${failures.join(', ')}`);
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
