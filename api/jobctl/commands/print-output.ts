// A job's output on jobctl's own stdout and stderr (run, logs). When the stream drops and is
// opened again, a note goes to stderr: always with --verbose, otherwise only on a terminal, so
// that a script capturing the job's stderr gets the job's bytes and nothing else.
import { OutputStream } from '../../generated/jobworker/v1/jobworker.ts';
import { followOutput } from '../follow-output.ts';
import type { FollowOptions, FollowResult } from '../follow-output.ts';
import type { Session } from '../session.ts';

export async function printOutput(
  session: Session,
  id: string,
  options: Omit<FollowOptions, 'onReconnect'>,
): Promise<FollowResult> {
  const noting = session.verbose || process.stderr.isTTY;
  let reconnecting = false;
  return followOutput(
    session.api(),
    id,
    async (chunk) => {
      if (reconnecting && session.verbose) session.note('reconnected');
      reconnecting = false;
      await (chunk.stream === OutputStream.OUTPUT_STREAM_STDERR
        ? session.err(chunk.data)
        : session.out(chunk.data));
    },
    {
      ...options,
      onReconnect: (error, offset) => {
        if (!reconnecting && noting) {
          session.note(
            `lost the output stream at byte ${offset} (${error.details}); reconnecting…`,
          );
        }
        reconnecting = true;
      },
    },
  );
}
