#!/usr/bin/env node
// The `jobctl` bin of the package. `npm run build` compiles it to dist/api/jobctl/jobctl.js, which
// runs with plain node: no transpiler at run time.
import { runJobctl } from './main.ts';

await runJobctl();
