// Waiting out back-pressure: a writer whose write() returned false waits for 'drain', unless its
// reader goes away first. Used by the executor's output streams and the API's watch streams.
import type { EventEmitter } from 'node:events';

/** Resolves on the stream's next 'drain', or at once when `signal` aborts (the reader left). */
export function drainedOrAborted(stream: EventEmitter, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    stream.on('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}
