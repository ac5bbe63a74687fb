// The helper (C) and the executor (TypeScript) must agree on the paths a job sees and on the
// storage image's block size. C cannot import TypeScript, so this reads the helper's #defines and
// compares them with shared/in-job-paths.ts and executor/runtime/storage-image.ts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { APP_ROOT } from '../../shared/app-layout.ts';
import { JOB_DEFAULT_PATH, JOB_DIR } from '../../shared/in-job-paths.ts';
import { STORAGE_BLOCK_BYTES } from '../../executor/runtime/storage-image.ts';

const HELPER_SOURCE = join(APP_ROOT, 'executor/helper/jobworker-helper.c');
const source = readFileSync(HELPER_SOURCE, 'utf8');

/** The string a `#define NAME "…"` gives (no escapes in these). */
function defined(name: string): string | undefined {
  const matches = [
    ...source.matchAll(new RegExp(`^#define\\s+${name}\\s+"([^"\\\\]*)"\\s*$`, 'gm')),
  ];
  assert.is(matches.length, 1, `exactly one #define ${name} in ${HELPER_SOURCE}`);
  return matches[0]?.[1];
}

const constants = suite('helper constants');

constants('the helper mounts the job directory where the executor says it is', () => {
  assert.is(defined('JOB_DIR'), JOB_DIR);
});

constants("the helper's default PATH is the executor's", () => {
  assert.is(defined('DEFAULT_PATH'), JOB_DEFAULT_PATH);
});

constants('the top-level entries the helper replaces include the job directory', () => {
  const list = /replaced\[\]\s*=\s*\{([^}]*)\}/.exec(source)?.[1] ?? '';
  const names = [...list.matchAll(/"([^"]*)"/g)].map((match) => match[1]);
  assert.ok(names.includes(JOB_DIR.slice(1)), `${JOB_DIR.slice(1)} in {${list}}`);
});

constants("the loop device's block size is the storage image's ext4 block size", () => {
  const matches = [...source.matchAll(/^#define\s+STORAGE_BLOCK_BYTES\s+(\d+)\s*$/gm)];
  assert.is(matches.length, 1, `exactly one #define STORAGE_BLOCK_BYTES in ${HELPER_SOURCE}`);
  assert.is(Number(matches[0]?.[1]), STORAGE_BLOCK_BYTES);
});

constants.run();
