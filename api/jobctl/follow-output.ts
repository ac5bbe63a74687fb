// Reading a job's output: from an offset, then live until the job ends. When the stream drops
// because the API went away (UNAVAILABLE), it is opened again from the last chunk's offset plus
// its length, so that the bytes written out are exactly the job's, none twice, none missing.
import { setTimeout as sleep } from 'node:timers/promises';
import { status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import type { OutputChunk } from '../generated/jobworker/v1/jobworker.ts';
import { isServiceError } from './job-api.ts';
import type { JobApi } from './job-api.ts';

/** Give up when the API has been unreachable for this long without a byte or a new stream. */
export const RECONNECT_GIVE_UP_MS = 5 * 60_000;
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 2000;

export interface FollowOptions {
  /** Offset of the first byte wanted. */
  from: number;
  /** Stop once this offset is reached (logs without -f); by default follow until the job ends. */
  until?: number;
  /** Open the stream again when the connection drops. */
  resume: boolean;
  /** Aborting stops reading (run's second Ctrl-C). */
  signal?: AbortSignal;
  /** Told each time the stream dropped and is being opened again. */
  onReconnect?: (error: ServiceError, offset: number) => void;
}

export interface FollowResult {
  /** The offset after the last byte written. */
  offset: number;
  /** How it finished: the job ended, `until` was reached, or the caller aborted. */
  reason: 'ended' | 'until' | 'aborted';
}

/**
 * An error after which the same call may succeed from a new connection: UNAVAILABLE, and the
 * stream resets an API that is shutting down may cause (resuming from an offset is harmless).
 */
export function isConnectionDrop(error: unknown): error is ServiceError {
  if (!isServiceError(error)) return false;
  if (error.code === status.UNAVAILABLE) return true;
  return (
    (error.code === status.INTERNAL || error.code === status.CANCELLED) &&
    /RST_STREAM|GOAWAY|Connection dropped/i.test(error.details)
  );
}

export async function followOutput(
  api: JobApi,
  id: string,
  write: (chunk: OutputChunk) => Promise<void>,
  options: FollowOptions,
): Promise<FollowResult> {
  let offset = options.from;
  let backoff = FIRST_BACKOFF_MS;
  let lastProgress = Date.now();
  for (;;) {
    if (options.signal?.aborted) return { offset, reason: 'aborted' };
    if (options.until !== undefined && offset >= options.until) return { offset, reason: 'until' };
    const stream = api.watch(id, offset);
    const abort = () => stream.cancel();
    options.signal?.addEventListener('abort', abort, { once: true });
    try {
      for await (const item of stream) {
        const chunk = item as OutputChunk;
        lastProgress = Date.now();
        backoff = FIRST_BACKOFF_MS;
        // A resumed stream starts where asked; never write a byte twice whatever it sends.
        let data = chunk.data;
        if (chunk.offset < offset) data = data.subarray(offset - chunk.offset);
        if (options.until !== undefined && offset + data.length > options.until) {
          data = data.subarray(0, options.until - offset);
        }
        if (data.length > 0) await write({ ...chunk, offset, data });
        offset += data.length;
        if (options.until !== undefined && offset >= options.until) {
          stream.cancel();
          return { offset, reason: 'until' };
        }
      }
      return { offset, reason: 'ended' };
    } catch (error) {
      if (options.signal?.aborted) return { offset, reason: 'aborted' };
      if (!options.resume || !isConnectionDrop(error)) throw error;
      if (Date.now() - lastProgress > RECONNECT_GIVE_UP_MS) throw error;
      options.onReconnect?.(error, offset);
      try {
        await sleep(backoff, undefined, options.signal ? { signal: options.signal } : {});
      } catch {
        return { offset, reason: 'aborted' };
      }
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    } finally {
      options.signal?.removeEventListener('abort', abort);
    }
  }
}
