// One connection to the executor for unary requests: request ids, replies matched to them, and a
// deadline for every caller. A caller that stops waiting (its deadline passed, it went away, the
// executor stopped answering) gets its answer at once, but its request keeps its place here until
// the executor answers it or the connection closes: the executor counts it against the
// connection's limit until then, and so must we.
import net from 'node:net';
import type { ExecutorOp, Reply, WireError } from '../shared/executor-protocol.ts';
import { MAX_REQUEST_ID } from '../shared/executor-protocol.ts';
import { isErrorCode, JobError } from '../shared/errors.ts';
import { encodeFrame, FrameDecoder } from '../shared/framing.ts';

const CONNECT_TIMEOUT_MS = 2000;

export function fromWire(error: WireError): JobError {
  const code = isErrorCode(error.code) ? error.code : 'internal';
  return new JobError(code, String(error.message), error.details ?? {});
}

export function unavailable(socketPath: string, cause: string): JobError {
  return new JobError('unavailable', `executor at ${socketPath} is unavailable: ${cause}`);
}

export function notInTime(): JobError {
  return new JobError('deadline-exceeded', 'the job executor did not answer in time');
}

/** Connects to the executor's socket; `onread` for a reader with a buffer of its own. */
export function connect(socketPath: string, onread?: net.OnReadOpts): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(
      onread ? { path: socketPath, onread } : { path: socketPath },
    );
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

export interface RequestOptions {
  /** Epoch ms at which the caller stops waiting (DEADLINE_EXCEEDED); Infinity: never. */
  deadline: number;
  /** The caller went away: it stops waiting at once. */
  signal?: AbortSignal;
  /** Whether the caller stops waiting when the executor is found not answering (reads do). */
  leavesOnStall: boolean;
  /** Called once when the request no longer holds a place: answered, failed, or never sent. */
  onFinished?: () => void;
}

interface Pending {
  /** Undefined once the caller stopped waiting: the reply, when it comes, only frees the place. */
  caller: { resolve: (value: unknown) => void; reject: (error: Error) => void } | undefined;
  leavesOnStall: boolean;
  /** The caller stops waiting: its timer and listener go. */
  done: () => void;
  /** The request is over for the executor too: its place is free. */
  finished: () => void;
}

export class ExecutorConnection {
  private readonly socketPath: string;
  private connection: Promise<net.Socket> | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(socketPath: string) {
    this.socketPath = socketPath;
  }

  /** Requests sent and not yet answered, including those whose callers stopped waiting. */
  get inFlight(): number {
    return this.pending.size;
  }

  async request(op: ExecutorOp, args: unknown, options: RequestOptions): Promise<unknown> {
    let socket: net.Socket;
    let frame: Buffer;
    const id = this.takeId();
    try {
      if (options.signal?.aborted) throw new JobError('cancelled', 'the caller went away');
      if (Date.now() >= options.deadline) throw notInTime();
      frame = encodeFrame({ id, op, args });
      socket = await this.connected();
    } catch (error) {
      options.onFinished?.();
      throw error;
    }
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const stopWaiting = (error: Error) => {
        const entry = this.pending.get(id);
        if (!entry?.caller) return;
        entry.caller = undefined;
        entry.done();
        reject(error);
      };
      const onAbort = () => stopWaiting(new JobError('cancelled', 'the caller went away'));
      const entry: Pending = {
        caller: { resolve, reject },
        leavesOnStall: options.leavesOnStall,
        done: () => {
          clearTimeout(timer);
          options.signal?.removeEventListener('abort', onAbort);
        },
        finished: () => options.onFinished?.(),
      };
      this.pending.set(id, entry);
      if (Number.isFinite(options.deadline))
        timer = setTimeout(() => stopWaiting(notInTime()), options.deadline - Date.now());
      options.signal?.addEventListener('abort', onAbort, { once: true });
      socket.write(frame);
    });
  }

  /** The executor stopped answering: callers that leave on a stall get `error` now. */
  stalled(error: JobError): void {
    for (const entry of this.pending.values()) {
      if (!entry.caller || !entry.leavesOnStall) continue;
      const { reject } = entry.caller;
      entry.caller = undefined;
      entry.done();
      reject(error);
    }
  }

  /** Closes the connection; callers still waiting fail with unavailable. */
  close(): void {
    void this.connection?.then((socket) => socket.destroy()).catch(() => undefined);
    this.connection = null;
  }

  private takeId(): number {
    // Skip ids still in flight, so that a late reply is never taken for a new request's.
    for (;;) {
      const id = this.nextId;
      this.nextId = this.nextId >= MAX_REQUEST_ID ? 1 : this.nextId + 1;
      if (!this.pending.has(id)) return id;
    }
  }

  private settle(reply: Reply): void {
    const entry = this.pending.get(reply.id);
    if (!entry) return;
    this.pending.delete(reply.id);
    const caller = entry.caller;
    entry.done();
    entry.finished();
    if (!caller) return;
    if ('ok' in reply) caller.resolve(reply.ok);
    else if ('error' in reply) caller.reject(fromWire(reply.error));
    else caller.reject(unavailable(this.socketPath, 'a stream frame answered a unary request'));
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
        for (const reply of replies) this.settle(reply);
      });
      socket.on('error', () => undefined); // 'close' follows and says what matters
      socket.on('close', () => {
        if (this.connection === connection) this.connection = null;
        for (const [id, entry] of this.pending) {
          this.pending.delete(id);
          const caller = entry.caller;
          entry.done();
          entry.finished();
          caller?.reject(unavailable(this.socketPath, 'connection closed'));
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
