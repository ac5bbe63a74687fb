// A job's output on disk, as the executor reads it: the source of truth for every reader, live
// or late. The job's keeper (executor/helper/jobworker-helper.c) is the only writer:
//
//   output.bin   stdout and stderr bytes, concatenated in order of arrival; an offset into this
//                file is the offset clients see and resume from
//   output.idx   one 8-byte big-endian entry per run of same-stream bytes:
//                (start offset << 1) | stream, written before the run's data, so a reader never
//                sees bytes without their tag
//
// What readers may see is the committed size: the keeper's latest size notice while the job runs
// (grow), the file's size once it has ended. Memory stays bounded whatever the output size: each
// reader holds one window of the index and one chunk of data, read (cheaply, from the page cache)
// only when its consumer asks for more. The cost of a read is linear in bytes and index entries:
// the index is read a window at a time and runs are cut out of one data read.
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { OutputChunk, OutputStream } from '../../shared/executor-protocol.ts';
import { JobError } from '../../shared/errors.ts';

export const OUTPUT_DATA_FILE = 'output.bin';
export const OUTPUT_INDEX_FILE = 'output.idx';
const INDEX_ENTRY_BYTES = 8;
/** Index entries a reader loads at a time. */
const INDEX_WINDOW_ENTRIES = 512;
/**
 * Largest chunk a reader hands out: large, so that per-frame costs (here, in the API, in gRPC)
 * vanish beside the bytes, and still half the socket's frame limit.
 */
export const READ_CHUNK_BYTES = 512 * 1024;

const STREAMS: readonly OutputStream[] = ['stdout', 'stderr'];

interface Run {
  start: number;
  stream: OutputStream;
}

function decodeEntry(bytes: Buffer, at: number): Run {
  const value = bytes.readUInt32BE(at) * 2 ** 32 + bytes.readUInt32BE(at + 4);
  return { start: Math.floor(value / 2), stream: STREAMS[value % 2] ?? 'stdout' };
}

export interface LogState {
  /** Bytes readers may see. */
  size: number;
  truncated: boolean;
  /** True once the job has ended: readers stop at the end instead of waiting for more. */
  finished: boolean;
}

interface LogFiles {
  data: FileHandle;
  index: FileHandle;
}

async function openFiles(dir: string): Promise<LogFiles> {
  const data = await open(join(dir, OUTPUT_DATA_FILE), 'r');
  const index = await open(join(dir, OUTPUT_INDEX_FILE), 'r').catch(async (error: unknown) => {
    await data.close();
    throw error;
  });
  return { data, index };
}

export class OutputLog {
  private readonly dir: string;
  /** Null until a reader comes to a followed log. */
  private files: Promise<LogFiles> | null;
  private committed: number;
  private truncatedFlag: boolean;
  private finished: boolean;
  private readonly waiters = new Set<() => void>();
  private readers = 0;
  private closed = false;

  private constructor(dir: string, files: Promise<LogFiles> | null, state: LogState) {
    this.dir = dir;
    this.files = files;
    this.committed = state.size;
    this.truncatedFlag = state.truncated;
    this.finished = state.finished;
  }

  /** Opens a job's log for reading. Without a known size, the data file's size is committed. */
  static async open(
    dir: string,
    state: Omit<LogState, 'size'> & { size?: number },
  ): Promise<OutputLog> {
    const files = await openFiles(dir);
    const size = state.size ?? (await files.data.stat()).size;
    return new OutputLog(dir, Promise.resolve(files), { ...state, size });
  }

  /**
   * A running job's log, empty so far, whose files (the keeper has made them) are opened when
   * the first reader comes: a start does not wait for two opens, and a job nobody watches while
   * it runs never opens them.
   */
  static follow(dir: string): OutputLog {
    return new OutputLog(dir, null, { size: 0, truncated: false, finished: false });
  }

  get size(): number {
    return this.committed;
  }

  get truncated(): boolean {
    return this.truncatedFlag;
  }

  get isFinished(): boolean {
    return this.finished;
  }

  get activeReaders(): number {
    return this.readers;
  }

  /** The keeper stored more (a size notice). Sizes only grow; a stale notice changes nothing. */
  grow(size: number, truncated: boolean): void {
    if (truncated) this.truncatedFlag = true;
    if (size <= this.committed) return;
    this.committed = size;
    this.wake();
  }

  /** The job has ended with this much output: readers end once they have read it all. */
  finish(size: number, truncated: boolean): void {
    this.grow(size, truncated);
    this.finished = true;
    this.wake();
  }

  async close(): Promise<void> {
    this.finished = true;
    this.closed = true;
    this.wake();
    const files = await this.files?.catch(() => null);
    if (files) await Promise.allSettled([files.data.close(), files.index.close()]);
  }

  private opened(): Promise<LogFiles> {
    // Once closed, no reader may open files that nothing would close.
    if (this.closed && this.files === null) throw new Error('the output log is closed');
    this.files ??= openFiles(this.dir);
    return this.files;
  }

  private wake(): void {
    for (const resolve of this.waiters) resolve();
    this.waiters.clear();
  }

  private waitForMore(offset: number, signal: AbortSignal | undefined): Promise<void> {
    if (offset < this.committed || this.finished || signal?.aborted) return Promise.resolve();
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

  /** Up to INDEX_WINDOW_ENTRIES entries from `first`; fewer at the end of the index. */
  private async readIndex(
    index: FileHandle,
    first: number,
    count = INDEX_WINDOW_ENTRIES,
  ): Promise<Run[]> {
    const bytes = Buffer.allocUnsafe(count * INDEX_ENTRY_BYTES);
    const { bytesRead } = await index.read(bytes, 0, bytes.length, first * INDEX_ENTRY_BYTES);
    const runs: Run[] = [];
    for (let at = 0; at + INDEX_ENTRY_BYTES <= bytesRead; at += INDEX_ENTRY_BYTES)
      runs.push(decodeEntry(bytes, at));
    return runs;
  }

  /** The index entry of the run holding `offset`: the last entry starting at or before it. */
  private async findRun(index: FileHandle, offset: number): Promise<number> {
    const entries = Math.floor((await index.stat()).size / INDEX_ENTRY_BYTES);
    let low = 0;
    let high = entries - 1;
    while (low < high) {
      const middle = Math.ceil((low + high) / 2);
      const [run] = await this.readIndex(index, middle, 1);
      if (run !== undefined && run.start <= offset) low = middle;
      else high = middle - 1;
    }
    return Math.max(0, low);
  }

  /**
   * Every byte from `fromOffset` on, as tagged chunks, following the log until the job has
   * ended and everything was read. Stops early when `signal` aborts.
   */
  async *read(fromOffset: number, signal?: AbortSignal): AsyncGenerator<OutputChunk> {
    if (fromOffset > this.committed) {
      throw new JobError(
        'invalid-argument',
        `offset: ${fromOffset} is beyond the end of the output (${this.committed} bytes so far)`,
        { field: 'offset' },
      );
    }
    this.readers += 1;
    try {
      let files: LogFiles | null = null;
      let offset = fromOffset;
      /** A window of the index: runs[i] is entry windowStart + i. */
      let windowStart = -1;
      let runs: Run[] = [];
      let at = 0; // the run holding `offset`, as an index into runs
      for (;;) {
        if (signal?.aborted) return;
        const available = this.committed;
        if (offset >= available) {
          if (this.finished && offset >= this.committed) return;
          await this.waitForMore(offset, signal);
          continue;
        }
        // Opened for the first byte there is to read: a reader of an empty log opens nothing.
        files ??= await this.opened();
        const { data: dataFile, index } = files;
        if (windowStart < 0) {
          windowStart = await this.findRun(index, offset);
          runs = await this.readIndex(index, windowStart);
          at = 0;
        }
        const data = Buffer.allocUnsafe(Math.min(READ_CHUNK_BYTES, available - offset));
        const { bytesRead } = await dataFile.read(data, 0, data.length, offset);
        if (bytesRead === 0)
          throw new Error(`output file is shorter than its committed size at ${offset}`);
        let used = 0;
        while (used < bytesRead) {
          // A run ends where the next one starts. The keeper may have begun runs since this
          // window was read, and the window may end: look again before trusting "no next run".
          if (at + 1 >= runs.length) {
            windowStart += at;
            runs = await this.readIndex(index, windowStart);
            at = 0;
          }
          const run = runs[at];
          if (run === undefined) throw new Error(`output index has no run for offset ${offset}`);
          const runEnd = runs[at + 1]?.start ?? Infinity;
          // Empty runs (a crash between the index and the data write leaves one) are stepped over.
          if (offset >= runEnd) {
            at += 1;
            continue;
          }
          const length = Math.min(runEnd - offset, bytesRead - used);
          yield { stream: run.stream, offset, data: data.subarray(used, used + length) };
          used += length;
          offset += length;
        }
      }
    } finally {
      this.readers -= 1;
    }
  }
}
