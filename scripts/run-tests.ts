// The one test command (`npm test`): static checks, then the unit suite, then the root suite, each
// test file in its own uvu process so that one crash cannot hide the others. Ends with the line
// `N passed, N failed` so that a run that executed nothing is visible.
//
//   node --import tsx scripts/run-tests.ts all|unit|root|checks [file-filter]
import { spawn } from 'node:child_process';
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';

type Part = 'all' | 'unit' | 'root' | 'checks';
const part = (process.argv[2] ?? 'all') as Part;
const fileFilter = process.argv[3];
if (!['all', 'unit', 'root', 'checks'].includes(part)) {
  console.error(`usage: run-tests.ts all|unit|root|checks [file-filter]`);
  process.exit(2);
}

let passed = 0;
let failed = 0;
const failures: string[] = [];

/** Runs a command with inherited output plus a captured copy; resolves with exit code and text. */
function run(command: string, args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer, sink: NodeJS.WriteStream) => {
      output += chunk.toString('utf8');
      sink.write(chunk);
    };
    child.stdout.on('data', (chunk: Buffer) => collect(chunk, process.stdout));
    child.stderr.on('data', (chunk: Buffer) => collect(chunk, process.stderr));
    child.on('close', (code, signal) => resolve({ code: code ?? 128 + (signal ? 9 : 0), output }));
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

/** uvu prints "Total: N" and "Passed: N"; anything else (a crash, no summary) is a failure. */
async function suite(dir: string): Promise<void> {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.test.ts'))
    .filter((f) => !fileFilter || f.includes(fileFilter))
    .sort();
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
    await check('build helper', 'bash', ['scripts/build-helper.sh']);
    await suite('test/root');
  }
}

if (failures.length > 0) console.log(`\nfailed: ${failures.join(', ')}`);
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
