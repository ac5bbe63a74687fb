#!/usr/bin/env node
// The `jobctl` bin of the package: loads the TypeScript sources through tsx and runs the CLI.
import { register } from 'tsx/esm/api';

register();
const { runJobctl } = await import('./main.ts');
await runJobctl();
