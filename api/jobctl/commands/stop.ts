// jobctl stop: SIGTERM, the grace period, then SIGKILL for everything in the job; prints each id
// once its job has ended, as `docker stop` does. Stopping an ended job is not an error.
import { describeFailure } from '../failures.ts';
import { EXIT } from '../exit-codes.ts';
import { checkJobIdArgument } from '../job-api.ts';
import type { Session } from '../session.ts';

export async function stopCommand(
  session: Session,
  ids: readonly string[],
  graceMs: number | undefined,
): Promise<number> {
  for (const given of ids) checkJobIdArgument(given);
  let failed = 0;
  for (const given of ids) {
    try {
      const api = session.api();
      const job = await api.stop(await api.resolveId(given), graceMs);
      await session.out(`${job.id}\n`);
    } catch (error) {
      // One bad id does not keep the others running; each failure is its own line.
      if (ids.length === 1) throw error;
      failed += 1;
      session.note(`${given}: ${describeFailure(error, session.failureContext()).message}`);
    }
  }
  return failed === 0 ? EXIT.ok : EXIT.failed;
}
