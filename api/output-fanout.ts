// WatchJobOutput's fan-out. All watchers of one job share one executor stream (SharedOutput):
// its chunks are joined into messages of up to 1 MiB, each serialised once (output-messages.ts),
// and the same bytes go to every watcher.
//
// The shared stream reads when one of its watchers has room for a message and has sent all
// there is: it then takes what the executor has sent meanwhile (executor-output.ts), so a
// watcher that keeps up gets the output as it comes, and the faster the output comes, the larger
// the messages. It keeps the latest output, up to a window: WINDOW_BYTES, or less when many jobs
// are watched at once (their windows share WINDOW_BUDGET_BYTES, each at least MIN_WINDOW_BYTES).
// A watcher that falls out of the window, or asks for an offset outside it, reads on its own
// from its offset (an executor stream of its own: the API never reads the executor's files) and
// joins the shared stream again once its offset is inside the window. So a slow watcher holds
// back only itself, and memory stays bounded whatever the number of watchers: one window per job
// watched, plus, per watcher, the messages grpc-js holds for it (job-service.ts) and, while it
// reads on its own, its stream's queue (2 MiB).
import { JobError } from '../shared/errors.ts';
import type { ExecutorClient } from './executor-client.ts';
import { MessageSource, wireFrom } from './output-messages.ts';
import type { OutputMessage } from './output-messages.ts';

export const WINDOW_BYTES = 16 * 1024 * 1024;
const MIN_WINDOW_BYTES = 1024 * 1024;
const WINDOW_BUDGET_BYTES = 256 * 1024 * 1024;

/** Where a watcher's output goes: serialised OutputChunk messages. */
export interface OutputSink {
  /** Resolves when the watcher has room for another message (flow control). */
  ready(): Promise<void>;
  send(wire: Buffer): void;
}

/** Rejects when `signal` aborts: raced against every wait, so a watcher that goes away stops. */
function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(new JobError('cancelled', 'the watcher went away'));
    else
      signal.addEventListener(
        'abort',
        () => reject(new JobError('cancelled', 'the watcher went away')),
        { once: true },
      );
  });
}

/** A promise that another part resolves: "something changed, look again". */
class Signal {
  private waiters: (() => void)[] = [];

  wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  fire(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}

type Step = { message: OutputMessage } | { wait: Promise<void> } | { end: true } | { behind: true };

/** One job's executor stream, read once for all of its watchers. */
class SharedOutput {
  private readonly messages: OutputMessage[] = [];
  /** Offsets of the first byte kept and one past the last read. */
  private start: number;
  private head: number;
  private ended = false;
  private failure: Error | null = null;
  private closed = false;
  /** Each attached watcher's offset. */
  private readonly cursors = new Map<symbol, number>();
  private readonly grown = new Signal();
  private readonly hungry = new Signal();
  /** A watcher waits at the head for more. */
  private wanted = false;
  private readonly window: () => number;
  private readonly onIdle: () => void;

  constructor(
    executor: ExecutorClient,
    id: string,
    offset: number,
    window: () => number,
    onIdle: () => void,
  ) {
    this.start = offset;
    this.head = offset;
    this.window = window;
    this.onIdle = onIdle;
    void this.read(executor, id, offset);
  }

  /** Output held for its watchers. */
  get bufferedBytes(): number {
    return this.closed ? 0 : this.head - this.start;
  }

  /** Whether a watcher at `offset` can follow this stream from there. */
  covers(offset: number): boolean {
    return !this.closed && this.failure === null && offset >= this.start && offset <= this.head;
  }

  attach(offset: number): symbol {
    const token = Symbol('watcher');
    this.cursors.set(token, offset);
    return token;
  }

  advance(token: symbol, offset: number): void {
    this.cursors.set(token, offset);
  }

  detach(token: symbol): void {
    this.cursors.delete(token);
    if (this.cursors.size === 0) this.close();
  }

  /** What a watcher at `offset` does next. Throws the stream's failure. */
  step(offset: number): Step {
    if (this.failure !== null) throw this.failure;
    if (offset < this.start) return { behind: true };
    if (offset >= this.head) {
      if (this.ended) return { end: true };
      // A watcher with room waits for more: the reader takes what the executor has sent.
      this.wanted = true;
      this.hungry.fire();
      return { wait: this.grown.wait() };
    }
    // The last message starting at or before `offset` holds it (messages are contiguous).
    let low = 0;
    let high = this.messages.length - 1;
    while (low < high) {
      const middle = Math.ceil((low + high) / 2);
      if ((this.messages[middle] as OutputMessage).offset <= offset) low = middle;
      else high = middle - 1;
    }
    return { message: this.messages[low] as OutputMessage };
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.messages.length = 0;
    this.hungry.fire();
    this.grown.fire();
    this.onIdle();
  }

  private async read(executor: ExecutorClient, id: string, offset: number): Promise<void> {
    let source: MessageSource | null = null;
    try {
      source = await MessageSource.open(executor, id, offset);
      while (!this.closed) {
        if (!this.wanted) {
          await this.hungry.wait();
          continue;
        }
        this.wanted = false;
        const batch = await source.next();
        if (batch === 'end') {
          this.ended = true;
          break;
        }
        for (const message of batch) this.messages.push(message);
        this.head = batch.at(-1)?.end ?? this.head;
        this.forget();
        this.grown.fire();
      }
    } catch (error) {
      this.failure = error instanceof Error ? error : new Error(String(error));
    } finally {
      source?.close();
      this.grown.fire();
      if (this.failure !== null) this.close();
    }
  }

  /**
   * Drops what falls out of the window (a message only partly out of it stays whole: the window
   * holds at most one message more). What no watcher needs any more stays while it fits: a
   * watcher that comes later, from the first byte say, can still join.
   */
  private forget(): void {
    const keepFrom = this.head - this.window();
    let drop = 0;
    while (drop < this.messages.length && (this.messages[drop] as OutputMessage).end <= keepFrom)
      drop += 1;
    this.messages.splice(0, drop);
    this.start = this.messages[0]?.offset ?? this.head;
  }
}

export class OutputFanout {
  private readonly executor: ExecutorClient;
  private readonly shared = new Map<string, SharedOutput>();

  constructor(executor: ExecutorClient) {
    this.executor = executor;
  }

  /** Shared streams now open (one per job being watched). */
  get sharedStreams(): number {
    return this.shared.size;
  }

  /** Output the shared streams hold for their watchers, in all. */
  get bufferedBytes(): number {
    let bytes = 0;
    for (const shared of this.shared.values()) bytes += shared.bufferedBytes;
    return bytes;
  }

  /**
   * Sends job `id`'s output from `offset` to `sink`, then resolves once all of it was sent.
   * Fails as the executor does (NOT_FOUND, an offset past the end, UNAVAILABLE); stops quietly
   * when `signal` aborts (the watcher went away).
   */
  async watch(id: string, offset: number, sink: OutputSink, signal: AbortSignal): Promise<void> {
    const gone = aborted(signal);
    gone.catch(() => undefined);
    let cursor: number | 'end' = offset;
    while (cursor !== 'end' && !signal.aborted) {
      const shared = this.join(id, cursor);
      cursor = shared
        ? await this.follow(shared, cursor, sink, gone)
        : await this.readAlone(id, cursor, sink, gone);
    }
  }

  /** The job's shared stream if `offset` is inside it; a new one when the job has none. */
  private join(id: string, offset: number): SharedOutput | null {
    const existing = this.shared.get(id);
    if (existing) return existing.covers(offset) ? existing : null;
    const created = new SharedOutput(
      this.executor,
      id,
      offset,
      () =>
        Math.max(
          MIN_WINDOW_BYTES,
          Math.min(WINDOW_BYTES, WINDOW_BUDGET_BYTES / Math.max(1, this.shared.size)),
        ),
      () => {
        if (this.shared.get(id) === created) this.shared.delete(id);
      },
    );
    this.shared.set(id, created);
    return created;
  }

  /** Follows a shared stream until the end, or until the watcher falls out of its window. */
  private async follow(
    shared: SharedOutput,
    from: number,
    sink: OutputSink,
    gone: Promise<never>,
  ): Promise<number | 'end'> {
    const token = shared.attach(from);
    let cursor = from;
    try {
      for (;;) {
        await Promise.race([sink.ready(), gone]);
        const step = shared.step(cursor);
        if ('behind' in step) return cursor;
        if ('end' in step) return 'end';
        if ('wait' in step) {
          await Promise.race([step.wait, gone]);
          continue;
        }
        sink.send(wireFrom(step.message, cursor));
        cursor = step.message.end;
        shared.advance(token, cursor);
      }
    } finally {
      shared.detach(token);
    }
  }

  /** Reads on its own from `from`, until the end or until a shared stream holds its offset. */
  private async readAlone(
    id: string,
    from: number,
    sink: OutputSink,
    gone: Promise<never>,
  ): Promise<number | 'end'> {
    const opening = MessageSource.open(this.executor, id, from);
    let source: MessageSource;
    try {
      source = await Promise.race([opening, gone]);
    } catch (error) {
      opening.then((late) => late.close()).catch(() => undefined);
      throw error;
    }
    let cursor = from;
    try {
      for (;;) {
        await Promise.race([sink.ready(), gone]);
        if (cursor !== from && this.shared.get(id)?.covers(cursor)) return cursor;
        const batch = await Promise.race([source.next(), gone]);
        if (batch === 'end') return 'end';
        for (const [index, message] of batch.entries()) {
          if (index > 0) await Promise.race([sink.ready(), gone]);
          sink.send(message.wire);
          cursor = message.end;
        }
      }
    } finally {
      source.close();
    }
  }
}
