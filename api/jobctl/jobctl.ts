#!/usr/bin/env node
// The `jobctl` bin of the package. `npm run build` compiles it with tsc and bundles it with its
// own modules into one CommonJS file, dist/jobctl/jobctl.cjs, which starts faster than many ES
// modules; plain node runs it, no transpiler. (No top-level await: CommonJS has none.)
import { runJobctl } from './main.ts';

void runJobctl();
