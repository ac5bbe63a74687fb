import { openTestRuntime, shell } from '../test/root/executor-kit.ts';
const t = await openTestRuntime({});
try {
  const r = await shell(t.runtime, 'trap "" TERM; kill -KILL 1; sleep 0.2; ps -o pid=,comm= -p 1; cat /proc/1/environ 2>&1 >/dev/null | head -c 80; echo');
  console.log(JSON.stringify(r.stdout), JSON.stringify(r.stderr), r.record.state);
} finally { await t.close(); }
