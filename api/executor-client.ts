// The API's side of the executor socket: one wrapper per op, named to pair with the executor's
// handlers (startJob ↔ answerStartJob). Unary calls share one connection, made on first use and
// again after it drops; each output stream has a connection of its own, so a slow watcher only
// ever holds back itself. Connection trouble surfaces as JobError('unavailable').
import net from 'node:net';
import type {
  ExecutorOp,
  ListArgs,
  ListResult,
  OpArgs,
  OpResults,
  OutputChunk,
  OutputEnd,
  Reply,
  WireError,
} from '../shared/executor-protocol.ts';
import { MAX_REQUEST_ID } from '../shared/executor-protocol.ts';
import { isErrorCode, JobError } from '../shared/errors.ts';
import { encodeFrame, FrameDecoder } from '../shared/framing.ts';
import type { JobRecord, JobSpec } from '../shared/job.ts';

/** Frames a stream may queue before its socket is paused (back-pressure to the executor). */
const STREAM_QUEUE_FRAMES = 16;
const CONNECT_TIMEOUT_MS = 2000;

export type OutputEvent = { chunk: OutputChunk } | { end: OutputEnd };

function fromWire(error: WireError): JobError {
  const code = isErrorCode(error.code) ? error.code : 'internal';
  return new JobError(code, String(error.message), error.details ?? {});
}

function unavailable(socketPath: string, cause: string): JobError {
  return new JobError('unavailable', `executor at ${socketPath} is unavailable: ${cause}`);
}

function connect(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(unavailable(socketPath, 'connect timed out'));
    }, CONNECT_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(unavailable(socketPath, error.code ?? error.message));
    });
  });
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

export class ExecutorClient {
  readonly socketPath: string;
  private connection: Promise<net.Socket> | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(socketPath: string) {
    this.socketPath = socketPath;
  }

  startJob(spec: JobSpec, owner: string): Promise<JobRecord> {
    return this.call('start', { spec, owner });
  }

  stopJob(id: string, graceMs?: number): Promise<JobRecord> {
    return this.call('stop', graceMs === undefined ? { id } : { id, graceMs });
  }

  getJob(id: string): Promise<JobRecord> {
    return this.call('get', { id });
  }

  listJobs(args: ListArgs = {}): Promise<ListResult> {
    return this.call('list', args);
  }

  /**
   * The job's output from `offset`, then one end event. Ends early, closing its connection, when
   * the consumer stops iterating or `signal` aborts.
   */
  async *readOutput(id: string, offset: number, signal?: AbortSignal): AsyncGenerator<OutputEvent> {
    const socket = await connect(this.socketPath);
    const decoder = new FrameDecoder();
    const queue: Reply[] = [];
    // Set by the socket's callbacks, read by the loop below.
    const state: { failure: JobError | null; closed: boolean; wake: (() => void) | null } = {
      failure: null,
      closed: false,
      wake: null,
    };
    const notify = () => {
      state.wake?.();
      state.wake = null;
    };
    socket.on('data', (data: Buffer) => {
      try {
        queue.push(...(decoder.push(data) as Reply[]));
      } catch (error) {
        state.failure = unavailable(this.socketPath, (error as Error).message);
        socket.destroy();
      }
      if (queue.length >= STREAM_QUEUE_FRAMES) socket.pause();
      notify();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      state.failure ??= unavailable(this.socketPath, error.code ?? error.message);
    });
    socket.on('close', () => {
      state.closed = true;
      notify();
    });
    const abort = () => socket.destroy();
    signal?.addEventListener('abort', abort, { once: true });
    try {
      socket.write(encodeFrame({ id: 1, op: 'read-output', args: { id, offset } }));
      for (;;) {
        const reply = queue.shift();
        if (reply === undefined) {
          if (signal?.aborted) return;
          if (state.failure) throw state.failure;
          if (state.closed)
            throw unavailable(this.socketPath, 'connection closed during the output stream');
          await new Promise<void>((resolve) => (state.wake = resolve));
          continue;
        }
        if (queue.length < STREAM_QUEUE_FRAMES / 2) socket.resume();
        if ('chunk' in reply) yield { chunk: reply.chunk };
        else if ('end' in reply) {
          yield { end: reply.end };
          return;
        } else if ('error' in reply) throw fromWire(reply.error);
      }
    } finally {
      signal?.removeEventListener('abort', abort);
      socket.destroy();
    }
  }

  /** Closes the shared connection; calls in flight fail with unavailable. */
  close(): void {
    void this.connection?.then((socket) => socket.destroy()).catch(() => undefined);
    this.connection = null;
  }

  private async call<Op extends Exclude<ExecutorOp, 'read-output'>>(
    op: Op,
    args: OpArgs[Op],
  ): Promise<OpResults[Op]> {
    const socket = await this.connected();
    const id = this.nextId;
    this.nextId = this.nextId >= MAX_REQUEST_ID ? 1 : this.nextId + 1;
    return new Promise<OpResults[Op]>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      socket.write(encodeFrame({ id, op, args }));
    });
  }

  private connected(): Promise<net.Socket> {
    if (this.connection) return this.connection;
    const connection = connect(this.socketPath).then((socket) => {
      const decoder = new FrameDecoder();
      socket.on('data', (data: Buffer) => {
        let replies: Reply[];
        try {
          replies = decoder.push(data) as Reply[];
        } catch (error) {
          socket.destroy(error as Error);
          return;
        }
        for (const reply of replies) {
          const pending = this.pending.get(reply.id);
          if (!pending) continue;
          this.pending.delete(reply.id);
          if ('ok' in reply) pending.resolve(reply.ok);
          else if ('error' in reply) pending.reject(fromWire(reply.error));
        }
      });
      socket.on('error', () => undefined); // 'close' follows and says what matters
      socket.on('close', () => {
        if (this.connection === connection) this.connection = null;
        for (const [id, pending] of this.pending) {
          this.pending.delete(id);
          pending.reject(unavailable(this.socketPath, 'connection closed'));
        }
      });
      return socket;
    });
    connection.catch(() => {
      if (this.connection === connection) this.connection = null;
    });
    this.connection = connection;
    return connection;
  }
}
