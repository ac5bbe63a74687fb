// Waiting out back-pressure: a writer whose write() returned false waits for 'drain', unless its
// reader goes away first. Used by the executor's output streams, the API's watch streams and
// jobctl's own stdout and stderr.
import type { EventEmitter } from 'node:events';

/**
 * Resolves on the stream's next 'drain', or at once when it closes or `signal` aborts (the
 * reader left): a writer never waits for a reader that is gone.
 */
export function drainedOrAborted(stream: EventEmitter, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    signal?.addEventListener('abort', done, { once: true });
  });
}
