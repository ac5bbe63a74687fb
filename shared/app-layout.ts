// Where the app's own files are. Its code runs from two places: the TypeScript sources (tests and
// scripts, through tsx) and the JavaScript `npm run build` compiles into dist/, which is what
// production, `npm start` and the jobctl bin run with plain node. dist/ mirrors the source tree,
// so a module knows the app's root from its own location and whether it was compiled.
import { join, resolve } from 'node:path';

const COMPILED = import.meta.url.endsWith('.js');

/** The checkout, or the installed app (/opt/jobworker): the directory of package.json. */
export const APP_ROOT = resolve(import.meta.dirname, COMPILED ? '../..' : '..');

/** The build's output: dist/<source path>.js for every compiled source file. */
export const BUILD_DIR = join(APP_ROOT, 'dist');

/** The compiled form of a source file: 'executor/main.ts' → <app>/dist/executor/main.js. */
export function compiledPath(source: string): string {
  return join(BUILD_DIR, source.replace(/\.ts$/, '.js'));
}
