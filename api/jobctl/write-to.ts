// jobctl's own output: written with back-pressure, so memory stays bounded whatever a job wrote.
import type { Writable } from 'node:stream';
import { drainedOrAborted } from '../../shared/back-pressure.ts';

/** Writes, then waits while the stream is full (until it drains or closes). */
export async function writeTo(stream: Writable, data: Uint8Array | string): Promise<void> {
  if (!stream.write(data)) await drainedOrAborted(stream);
}
