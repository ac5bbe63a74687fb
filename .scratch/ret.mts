import { openTestRuntime, shell } from '../test/root/executor-kit.ts';
const t = await openTestRuntime({ retention: { maxRecordBytes: 1024 * 1024 } });
try {
  const { record } = await shell(t.runtime, `echo 1`, { env: { BULKY: 'x'.repeat(300*1024) } });
  console.log(record.state);
} catch (e) { console.log('ERR', e); } finally { await t.close(); }
