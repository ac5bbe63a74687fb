// One read-output stream from the executor, on a connection of its own while it runs (taken from,
// and given back to, output-connections.ts): the job's output from an offset, then one end
// event. Each chunk goes to a collector as it arrives (which copies what it keeps: reads go into
// one buffer shared by every stream, and a frame that lies whole in a read is decoded where it
// lies). Past QUEUE_BYTES collected, the socket is paused: back-pressure to
// the executor. The consumer takes everything collected at once, once there is enough for a
// large message, or the stream has been quiet for QUIET_MS (so a live job's output is passed on
// at once, a stored job's in large batches).
import type { OutputChunk, OutputEnd, Reply } from '../shared/executor-protocol.ts';
import type { JobError } from '../shared/errors.ts';
import { encodeFrame, FrameDecoder } from '../shared/framing.ts';
import { fromWire, unavailable } from './executor-connection.ts';
import type { OutputConnection, OutputConnections } from './output-connections.ts';

/** Output bytes collected before the socket is paused. */
const QUEUE_BYTES = 2 * 1024 * 1024;
/** A stream that sent nothing for this long has nothing more right now: take what there is. */
const QUIET_MS = 1;

/** Where a stream's chunks go as they arrive. */
export interface OutputCollector<T> {
  /**
   * A chunk; its data is valid only during the call (copy what is kept), unless `frame` is given:
   * the frame the chunk came in, the collector's to keep (data is a view of it) and to write
   * over, within its bounds.
   */
  add(chunk: OutputChunk, frame: Buffer | null): void;
  /** Bytes of output collected and not yet handed over. */
  readonly bytes: number;
  /** Hands over everything collected. */
  drain(): T[];
}

export type OutputEvent = { chunk: OutputChunk } | { end: OutputEnd };

/** Keeps each chunk as an event of its own, copied (for readers that want the executor's chunks). */
export class ChunkCollector implements OutputCollector<OutputEvent> {
  private events: OutputEvent[] = [];
  private collected = 0;

  get bytes(): number {
    return this.collected;
  }

  add(chunk: OutputChunk): void {
    this.events.push({ chunk: { ...chunk, data: Buffer.from(chunk.data) } });
    this.collected += chunk.data.length;
  }

  drain(): OutputEvent[] {
    const events = this.events;
    this.events = [];
    this.collected = 0;
    return events;
  }
}

export class ExecutorOutput<T> {
  private readonly socketPath: string;
  private readonly connections: OutputConnections;
  private readonly connection: OutputConnection;
  private readonly collector: OutputCollector<T>;
  private readonly onClosed: () => void;
  private readonly decoder = new FrameDecoder();
  private end: OutputEnd | null = null;
  private failure: JobError | null = null;
  private closed = false;
  private wake: (() => void) | null = null;
  private lastArrival = 0;

  private constructor(
    socketPath: string,
    connections: OutputConnections,
    connection: OutputConnection,
    collector: OutputCollector<T>,
    onClosed: () => void,
  ) {
    this.socketPath = socketPath;
    this.connections = connections;
    this.connection = connection;
    this.collector = collector;
    this.onClosed = onClosed;
    connection.receive = (data) => this.receive(data);
    connection.socket.on('error', this.onSocketError);
    connection.socket.on('close', this.onSocketClose);
  }

  /**
   * Opens the stream on a connection from `connections`; `onClosed` is called once the stream
   * has let go of it (closed, or given back).
   */
  static async open<T>(
    socketPath: string,
    connections: OutputConnections,
    id: string,
    offset: number,
    collector: OutputCollector<T>,
    onClosed: () => void,
  ): Promise<ExecutorOutput<T>> {
    const connection = await connections.take();
    const output = new ExecutorOutput(socketPath, connections, connection, collector, onClosed);
    connection.socket.write(
      encodeFrame({ id: connection.nextRequestId(), op: 'read-output', args: { id, offset } }),
    );
    return output;
  }

  private get socket() {
    return this.connection.socket;
  }

  private readonly onSocketError = (error: NodeJS.ErrnoException) => {
    this.failure ??= unavailable(this.socketPath, error.code ?? error.message);
  };

  private readonly onSocketClose = () => {
    this.closed = true;
    this.notify();
    this.onClosed();
  };

  /**
   * Everything collected so far, once it is at least `enough` bytes of output, or the end came,
   * or the stream has been quiet for QUIET_MS; `ended` once the end came and all was taken.
   * Throws the stream's failure (the executor's error answer, or unavailable).
   */
  async take(enough: number): Promise<{ items: T[]; ended: boolean }> {
    for (;;) {
      const bytes = this.collector.bytes;
      if (this.end !== null) break;
      if (bytes === 0) {
        if (this.failure) throw this.failure;
        if (this.closed)
          throw unavailable(this.socketPath, 'connection closed during the output stream');
      } else if (
        bytes >= enough ||
        this.failure !== null ||
        this.closed ||
        performance.now() - this.lastArrival >= QUIET_MS
      ) {
        break;
      }
      await this.nextArrival();
    }
    const items = this.collector.drain();
    if (!this.closed && this.end === null) this.socket.resume();
    return { items, ended: this.end !== null };
  }

  /** The end event's summary (output size, truncation), once it came. */
  get summary(): OutputEnd {
    return this.end ?? { outputBytes: 0, truncated: false };
  }

  /** Ends the stream with `error` (the executor stopped answering). */
  fail(error: JobError): void {
    this.failure ??= error;
    this.socket.destroy();
  }

  /**
   * Lets go of the stream: its connection goes back to be used again when the stream ended
   * cleanly (its end came, nothing failed, no frame half read), else it is closed.
   */
  close(): void {
    if (this.closed) return;
    const clean =
      this.end !== null &&
      this.failure === null &&
      this.decoder.pendingBytes === 0 &&
      !this.socket.destroyed;
    this.closed = true;
    if (clean) {
      this.socket.off('error', this.onSocketError);
      this.socket.off('close', this.onSocketClose);
      this.connections.give(this.connection);
      this.onClosed();
    } else {
      this.socket.destroy();
    }
    this.notify();
  }

  /** One read; false pauses the socket (enough collected). */
  private receive(data: Buffer): boolean {
    if (this.failure !== null) return false;
    try {
      this.decoder.pushEach(data, (value, kept) => {
        const reply = value as Reply;
        if ('chunk' in reply) this.collector.add(reply.chunk, kept);
        else if ('end' in reply) this.end = reply.end;
        else if ('error' in reply) this.failure ??= fromWire(reply.error);
      });
    } catch (error) {
      this.fail(unavailable(this.socketPath, (error as Error).message));
    }
    this.lastArrival = performance.now();
    this.notify();
    return this.collector.bytes < QUEUE_BYTES;
  }

  /** Until something arrives, or, with something collected, until the stream has been quiet. */
  private nextArrival(): Promise<void> {
    return new Promise<void>((resolve) => {
      // Timers run before pending reads: let what is already here land first, then judge.
      const quiet =
        this.collector.bytes > 0
          ? setTimeout(
              () => setImmediate(resolve),
              Math.max(0, this.lastArrival + QUIET_MS - performance.now()),
            )
          : undefined;
      this.wake = () => {
        clearTimeout(quiet);
        resolve();
      };
    });
  }

  private notify(): void {
    this.wake?.();
    this.wake = null;
  }
}
