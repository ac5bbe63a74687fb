// A job's output on disk: the source of truth for every reader, live or late.
//
//   output.bin   stdout and stderr bytes, concatenated in order of arrival; an offset into this
//                file is the offset clients see and resume from
//   output.idx   one 8-byte entry per run of same-stream bytes: (start offset << 1) | stream,
//                written before the run's data, so a reader never sees bytes without their tag
//
// Memory stays bounded whatever the output size: the writer holds at most HIGH_WATER bytes
// before it asks its source to pause, and each reader holds one chunk at a time, read from the
// file (the page cache makes that cheap) only when its consumer asks for more.
import { open } from 'node:fs/promises';
import { setImmediate as yieldToIo } from 'node:timers/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { OutputChunk, OutputStream } from '../../shared/executor-protocol.ts';
import { JobError } from '../../shared/errors.ts';

const DATA_FILE = 'output.bin';
const INDEX_FILE = 'output.idx';
const INDEX_ENTRY_BYTES = 8;
/** Largest chunk a reader hands out; frames stay far below the socket's frame limit. */
export const READ_CHUNK_BYTES = 64 * 1024;
const HIGH_WATER = 4 * 1024 * 1024;
const MIN_BATCH_BYTES = 256 * 1024;
const LOW_WATER = 1024 * 1024;

const STREAM_BITS: Record<OutputStream, number> = { stdout: 0, stderr: 1 };
const STREAMS: readonly OutputStream[] = ['stdout', 'stderr'];

interface Run {
  start: number;
  stream: OutputStream;
}

function encodeEntry(run: Run): Buffer {
  const entry = Buffer.allocUnsafe(INDEX_ENTRY_BYTES);
  // offset * 2 stays a safe integer for any output below 4 PiB.
  const value = run.start * 2 + STREAM_BITS[run.stream];
  entry.writeUInt32BE(Math.floor(value / 2 ** 32), 0);
  entry.writeUInt32BE(value % 2 ** 32, 4);
  return entry;
}

function decodeEntry(entry: Buffer): Run {
  const value = entry.readUInt32BE(0) * 2 ** 32 + entry.readUInt32BE(4);
  return { start: Math.floor(value / 2), stream: STREAMS[value % 2] ?? 'stdout' };
}

export class OutputLog {
  private readonly data: FileHandle;
  private readonly index: FileHandle;
  private readonly maxBytes: number;
  /** Committed: what readers may see. */
  private dataBytes: number;
  private indexEntries: number;
  private lastStream: OutputStream | null;
  private finished: boolean;
  private truncatedFlag: boolean;

  private queue: { stream: OutputStream; data: Buffer }[] = [];
  private queuedBytes = 0;
  private flushing: Promise<void> | null = null;
  private writeError: Error | null = null;
  private readonly waiters = new Set<() => void>();
  private readonly drainWaiters = new Set<() => void>();
  private readers = 0;

  private constructor(
    data: FileHandle,
    index: FileHandle,
    state: {
      dataBytes: number;
      indexEntries: number;
      lastStream: OutputStream | null;
      finished: boolean;
    },
    maxBytes: number,
    truncated: boolean,
  ) {
    this.data = data;
    this.index = index;
    this.dataBytes = state.dataBytes;
    this.indexEntries = state.indexEntries;
    this.lastStream = state.lastStream;
    this.finished = state.finished;
    this.maxBytes = maxBytes;
    this.truncatedFlag = truncated;
  }

  /** A new, empty log for a starting job. */
  static async create(dir: string, maxBytes: number): Promise<OutputLog> {
    const data = await open(join(dir, DATA_FILE), 'wx+', 0o600);
    const index = await open(join(dir, INDEX_FILE), 'wx+', 0o600).catch(async (error: unknown) => {
      await data.close();
      throw error;
    });
    return new OutputLog(
      data,
      index,
      { dataBytes: 0, indexEntries: 0, lastStream: null, finished: false },
      maxBytes,
      false,
    );
  }

  /** The stored log of a job that has ended (also after an executor restart). */
  static async openFinished(dir: string, truncated: boolean): Promise<OutputLog> {
    const data = await open(join(dir, DATA_FILE), 'r');
    const index = await open(join(dir, INDEX_FILE), 'r').catch(async (error: unknown) => {
      await data.close();
      throw error;
    });
    const dataBytes = (await data.stat()).size;
    const indexEntries = Math.floor((await index.stat()).size / INDEX_ENTRY_BYTES);
    return new OutputLog(
      data,
      index,
      { dataBytes, indexEntries, lastStream: null, finished: true },
      dataBytes,
      truncated,
    );
  }

  get size(): number {
    return this.dataBytes;
  }

  get truncated(): boolean {
    return this.truncatedFlag;
  }

  get isFinished(): boolean {
    return this.finished;
  }

  /**
   * Queues output for the disk. Returns false when the caller should stop reading its source
   * until whenDrained() resolves. Past the cap, bytes are dropped (and the log marked
   * truncated), and true is returned: the job's pipes are still drained.
   */
  append(stream: OutputStream, chunk: Buffer): boolean {
    if (this.finished) throw new Error('append to a finished output log');
    const room = this.maxBytes - this.dataBytes - this.queuedBytes;
    if (chunk.length > room) {
      this.truncatedFlag = true;
      chunk = chunk.subarray(0, Math.max(0, room));
    }
    if (chunk.length > 0) {
      this.queue.push({ stream, data: chunk });
      this.queuedBytes += chunk.length;
      this.flushing ??= this.flush();
    }
    return this.queuedBytes < HIGH_WATER;
  }

  whenDrained(): Promise<void> {
    if (this.queuedBytes < LOW_WATER) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.add(resolve));
  }

  /** Resolves once everything appended so far is on disk (and visible to readers). */
  async flushed(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.writeError) throw this.writeError;
  }

  /** Marks the log complete: readers end once they have read everything. */
  finish(): void {
    this.finished = true;
    this.wake();
  }

  /** Closes the files once no reader uses them any more. */
  async close(): Promise<void> {
    if (this.flushing) await this.flushing;
    this.finished = true;
    this.wake();
    await Promise.allSettled([this.data.close(), this.index.close()]);
  }

  get activeReaders(): number {
    return this.readers;
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0 && !this.writeError) {
      // Each write costs a thread-pool round trip: let the pipes' pending reads land first (one
      // turn of the event loop), so a busy job is written in batches, not chunk by chunk.
      if (this.queuedBytes < MIN_BATCH_BYTES) await yieldToIo();
      const batch = this.queue;
      this.queue = [];
      const entries: Buffer[] = [];
      let offset = this.dataBytes;
      let lastStream = this.lastStream;
      for (const item of batch) {
        if (item.stream !== lastStream) {
          entries.push(encodeEntry({ start: offset, stream: item.stream }));
          lastStream = item.stream;
        }
        offset += item.data.length;
      }
      try {
        if (entries.length > 0)
          await this.writeAll(this.index, entries, this.indexEntries * INDEX_ENTRY_BYTES);
        await this.writeAll(
          this.data,
          batch.map((item) => item.data),
          this.dataBytes,
        );
      } catch (error) {
        // A full or failing disk: keep draining the job (its pipes must not block) but store
        // nothing more, and report it as truncated output.
        this.writeError = error as Error;
        this.truncatedFlag = true;
      }
      const written = offset - this.dataBytes;
      this.queuedBytes -= written;
      if (!this.writeError) {
        this.indexEntries += entries.length;
        this.dataBytes = offset;
        this.lastStream = lastStream;
      }
      this.wake();
      if (this.queuedBytes < LOW_WATER) {
        for (const resolve of this.drainWaiters) resolve();
        this.drainWaiters.clear();
      }
    }
    if (this.writeError) {
      this.queuedBytes = 0;
      this.queue = [];
    }
    this.flushing = null;
  }

  private async writeAll(file: FileHandle, buffers: Buffer[], position: number): Promise<void> {
    let pending = buffers;
    while (pending.length > 0) {
      const { bytesWritten } = await file.writev(pending, position);
      position += bytesWritten;
      let skip = bytesWritten;
      const rest: Buffer[] = [];
      for (const buffer of pending) {
        if (skip >= buffer.length) skip -= buffer.length;
        else {
          rest.push(buffer.subarray(skip));
          skip = 0;
        }
      }
      pending = rest;
    }
  }

  private wake(): void {
    for (const resolve of this.waiters) resolve();
    this.waiters.clear();
  }

  private waitForMore(offset: number, signal: AbortSignal | undefined): Promise<void> {
    if (offset < this.dataBytes || this.finished || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        signal?.removeEventListener('abort', done);
        this.waiters.delete(done);
        resolve();
      };
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  private async readEntry(entry: number): Promise<Run> {
    const buffer = Buffer.allocUnsafe(INDEX_ENTRY_BYTES);
    const { bytesRead } = await this.index.read(
      buffer,
      0,
      INDEX_ENTRY_BYTES,
      entry * INDEX_ENTRY_BYTES,
    );
    if (bytesRead !== INDEX_ENTRY_BYTES) throw new Error(`output index entry ${entry} is short`);
    return decodeEntry(buffer);
  }

  /** The index entry of the run holding `offset`: the last entry starting at or before it. */
  private async findRun(offset: number): Promise<number> {
    let low = 0;
    let high = this.indexEntries - 1;
    while (low < high) {
      const middle = Math.ceil((low + high) / 2);
      if ((await this.readEntry(middle)).start <= offset) low = middle;
      else high = middle - 1;
    }
    return low;
  }

  /**
   * Every byte from `fromOffset` on, as tagged chunks, following the log until the job has
   * ended and everything was read. Stops early when `signal` aborts.
   */
  async *read(fromOffset: number, signal?: AbortSignal): AsyncGenerator<OutputChunk> {
    if (fromOffset > this.dataBytes) {
      throw new JobError(
        'invalid-argument',
        `offset: ${fromOffset} is beyond the end of the output (${this.dataBytes} bytes so far)`,
        { field: 'offset' },
      );
    }
    this.readers += 1;
    try {
      let offset = fromOffset;
      let entry = -1;
      let run: Run | null = null;
      let runEnd = 0;
      for (;;) {
        if (signal?.aborted) return;
        const available = this.dataBytes;
        if (offset >= available) {
          if (this.finished && offset >= this.dataBytes) return;
          await this.waitForMore(offset, signal);
          continue;
        }
        if (run === null) {
          entry = await this.findRun(offset);
          run = await this.readEntry(entry);
          runEnd = Infinity;
        }
        // A run ends where the next one starts (the writer may have begun one since we looked);
        // move on until the run holds `offset`. Empty runs (a crash between the index and the
        // data write leaves one) are stepped over.
        for (;;) {
          if (runEnd === Infinity && entry + 1 < this.indexEntries) {
            runEnd = (await this.readEntry(entry + 1)).start;
          }
          if (offset < runEnd) break;
          entry += 1;
          run = await this.readEntry(entry);
          runEnd = Infinity;
        }
        const length = Math.min(READ_CHUNK_BYTES, runEnd - offset, available - offset);
        const data = Buffer.allocUnsafe(length);
        const { bytesRead } = await this.data.read(data, 0, length, offset);
        if (bytesRead === 0)
          throw new Error(`output file is shorter than its committed size at ${offset}`);
        yield {
          stream: run.stream,
          offset,
          data: bytesRead === length ? data : data.subarray(0, bytesRead),
        };
        offset += bytesRead;
      }
    } finally {
      this.readers -= 1;
    }
  }
}
