// jobctl status: one job's record, as a page for people or (--json) an object for scripts.
import { EXIT } from '../exit-codes.ts';
import { jobJson, statusText } from '../job-view.ts';
import { checkJobIdArgument } from '../job-api.ts';
import type { Session } from '../session.ts';

export async function statusCommand(
  session: Session,
  given: string,
  json: boolean,
): Promise<number> {
  checkJobIdArgument(given);
  const api = session.api();
  const job = await api.get(await api.resolveId(given));
  const now = new Date();
  await session.out(
    json ? `${JSON.stringify(jobJson(job, now), null, 2)}\n` : `${statusText(job, now)}\n`,
  );
  return EXIT.ok;
}
