// Where the app's own files are. Its code runs from two places: the TypeScript sources (tests and
// scripts, through tsx) and the JavaScript `npm run build` makes in dist/, which is what
// production, `npm start` and the jobctl bin run with plain node. A module finds the app's root
// from its own location: a source file lies in a folder of the root; compiled code lies below
// dist/ (tsc's output mirrors the source tree; jobctl is bundled into dist/jobctl/jobctl.cjs).
import { join, resolve, sep } from 'node:path';

const here = import.meta.dirname;
const compiled = !import.meta.url.endsWith('.ts');
const parts = here.split(sep);
const buildDirAt = parts.lastIndexOf('dist');

/** The checkout, or the installed app (/opt/jobworker): the directory of package.json. */
export const APP_ROOT =
  compiled && buildDirAt > 0 ? parts.slice(0, buildDirAt).join(sep) || sep : resolve(here, '..');

/** The build's output: dist/<source path>.js for every compiled source file. */
export const BUILD_DIR = join(APP_ROOT, 'dist');

/** The compiled form of a source file: 'executor/main.ts' → <app>/dist/executor/main.js. */
export function compiledPath(source: string): string {
  return join(BUILD_DIR, source.replace(/\.ts$/, '.js'));
}

/** The jobctl bin: api/jobctl/jobctl.ts compiled, then bundled (it starts faster as one file). */
export const JOBCTL_BIN = join(BUILD_DIR, 'jobctl', 'jobctl.cjs');

/**
 * Node flags the services run with (their units' ExecStart=, and every launcher here). V8 starts
 * a small heap with an old-generation limit of a few MiB over what is live, and the buffers that
 * carry output (promoted while a socket holds them) count against it: watching one job then
 * started a full mark every few MiB of output, half the API's CPU. A larger first limit leaves
 * those to the collections external memory starts, a few per hundred MiB; memory still grows
 * only as far as the heap is used.
 */
export const SERVICE_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=64'];
