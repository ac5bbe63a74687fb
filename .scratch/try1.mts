import { openTestRuntime, runToEnd } from '../test/root/executor-kit.ts';
const t = await openTestRuntime({ logLevel: 'debug' });
try {
  const r = await runToEnd(t.runtime, { argv: ['sh', '-c', 'echo hello; echo err >&2; exit 3'] });
  console.log(JSON.stringify(r, null, 1));
} finally { await t.close(); }
