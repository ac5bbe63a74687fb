// StartJob for run and start: a program that cannot be executed becomes exit 127 (not found) or
// 126 (not executable), from the `jobworker-errno` trailer, as a shell would answer; only a
// failure of the exec itself (`jobworker-stage` exec) gets those codes and the hints about PATH
// and permissions.
import { status } from '@grpc/grpc-js';
import type { Job, StartJobRequest } from '../../generated/jobworker/v1/jobworker.ts';
import { CliError } from '../cli-errors.ts';
import { startFailureExitCode } from '../exit-codes.ts';
import { isServiceError } from '../job-api.ts';
import type { Session } from '../session.ts';

export async function startJob(session: Session, request: StartJobRequest): Promise<Job> {
  try {
    return await session.api().start(request);
  } catch (error) {
    if (!isServiceError(error) || error.code !== status.FAILED_PRECONDITION) throw error;
    const errno = error.metadata.get('jobworker-errno')[0]?.toString();
    const stage = error.metadata.get('jobworker-stage')[0]?.toString();
    const jobId = error.metadata.get('jobworker-job-id')[0]?.toString();
    const execFailed = stage === undefined || stage === 'exec';
    const hint = !execFailed
      ? ''
      : errno === 'ENOENT'
        ? ' (looked up in the job\'s PATH when it has no "/")'
        : errno === 'EACCES'
          ? ' (is it executable?)'
          : '';
    throw new CliError(`cannot start the job: ${error.details}${hint}`, {
      exitCode: startFailureExitCode(errno, stage),
      detail: `errno ${errno ?? 'none'}${jobId ? `; its record: jobctl status ${jobId}` : ''}`,
    });
  }
}
