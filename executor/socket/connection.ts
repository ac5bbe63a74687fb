// One client connection: the choke point every request passes. Frames are bounded before they are
// buffered; an undecodable frame or a request outside the protocol gets one protocol-error answer
// and the connection is closed (fail closed). A request with bad arguments gets invalid-argument
// and the connection stays open. Nothing a peer sends can crash the executor.
import type net from 'node:net';
import type { Logger } from 'pino';
import { MAX_REQUEST_ID } from '../../shared/executor-protocol.ts';
import type { ExecutorOp, OutputChunk, Reply, WireError } from '../../shared/executor-protocol.ts';
import { drainedOrAborted } from '../../shared/back-pressure.ts';
import { GONE, JobError } from '../../shared/errors.ts';
import { encodeFrame, FrameDecoder } from '../../shared/framing.ts';
import { outputChunkFrameHead } from '../../shared/output-chunk-frame.ts';
import { integer, object, oneOf } from '../../shared/schema.ts';
import type { JobRuntime } from '../runtime/job-runtime.ts';
import { OP_TABLE, TABLE_OPS } from './op-table.ts';
import type { OpContext, StreamOp, UnaryOp } from './op-table.ts';

const envelope = object({
  id: integer({ min: 0, max: MAX_REQUEST_ID }),
  op: oneOf(TABLE_OPS),
  args: (value: unknown) => value,
});

/** Replies a client has not read yet; past this the connection stops reading new requests. */
const MAX_UNREAD_REPLY_BYTES = 4 * 1024 * 1024;
/** A connection we closed for a protocol error gets this long to take its answer. */
const CLOSE_GRACE_MS = 1000;
/**
 * A frame must arrive whole within this long of its first byte, or the connection is closed: a
 * peer must not hold a connection (one of maxConnections) forever on a partial frame. Generous:
 * the API writes each frame at once, and only root and the socket group can connect.
 */
export const PARTIAL_FRAME_TIMEOUT_MS = 30_000;

export interface ConnectionParts {
  runtime: JobRuntime;
  logger: Logger;
  maxRequestsInFlight: number;
}

function wireError(error: unknown, logger: Logger, op: string): WireError {
  if (error instanceof JobError) {
    return { code: error.code, message: error.message, details: { ...error.details } };
  }
  // Internals stay in the executor's log; the client learns only that it failed.
  logger.error({ err: error, op }, 'request failed');
  return { code: 'internal', message: 'internal executor error' };
}

export class Connection {
  private readonly socket: net.Socket;
  private readonly parts: ConnectionParts;
  private readonly logger: Logger;
  private readonly decoder = new FrameDecoder();
  private readonly closed = new AbortController();
  private inFlight = 0;
  private streaming = false;
  private failed = false;
  /** Runs while a partial frame is buffered and we are reading (see PARTIAL_FRAME_TIMEOUT_MS). */
  private partialFrameTimer: NodeJS.Timeout | null = null;

  constructor(socket: net.Socket, parts: ConnectionParts, connectionId: number) {
    this.socket = socket;
    this.parts = parts;
    this.logger = parts.logger.child({ connection: connectionId });
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('close', () => {
      this.stopPartialFrameTimer();
      this.closed.abort(GONE);
    });
    socket.on('error', (error) => this.logger.debug({ err: error }, 'connection error'));
  }

  get signal(): AbortSignal {
    return this.closed.signal;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    if (this.failed) return;
    let values: unknown[];
    try {
      values = this.decoder.push(chunk);
    } catch (error) {
      this.refuse(0, (error as Error).message);
      return;
    }
    for (const value of values) {
      if (this.failed) return;
      this.dispatch(value);
    }
    // Each completed frame starts the clock again for the one after it.
    if (values.length > 0) this.stopPartialFrameTimer();
    this.watchPartialFrame();
  }

  /** Starts the partial-frame timer when a frame is under way, stops it when none is. */
  private watchPartialFrame(): void {
    if (this.failed || this.decoder.pendingBytes === 0 || this.socket.isPaused()) {
      this.stopPartialFrameTimer();
      return;
    }
    if (this.partialFrameTimer) return;
    const timer = setTimeout(() => {
      // Timers run before pending reads in the event loop: after a long pause of this process,
      // let the bytes that are already here land first, then judge.
      setImmediate(() => {
        if (this.partialFrameTimer !== timer || this.decoder.pendingBytes === 0) return;
        this.partialFrameTimer = null;
        this.refuse(
          0,
          `no complete frame within ${PARTIAL_FRAME_TIMEOUT_MS / 1000} s of its first byte`,
        );
      });
    }, PARTIAL_FRAME_TIMEOUT_MS);
    timer.unref();
    this.partialFrameTimer = timer;
  }

  private stopPartialFrameTimer(): void {
    if (this.partialFrameTimer) clearTimeout(this.partialFrameTimer);
    this.partialFrameTimer = null;
  }

  private dispatch(value: unknown): void {
    let request: { id: number; op: ExecutorOp; args: unknown };
    try {
      request = envelope(value, 'request');
    } catch (error) {
      const id =
        typeof value === 'object' &&
        value !== null &&
        'id' in value &&
        Number.isSafeInteger(value.id)
          ? Number(value.id)
          : 0;
      this.refuse(id, (error as Error).message);
      return;
    }
    const op = OP_TABLE[request.op];
    const context: OpContext = { runtime: this.parts.runtime, signal: this.closed.signal };
    this.logger.debug({ id: request.id, op: request.op }, 'request');
    if (op.kind === 'unary') this.answerUnary(request.id, request.op, op, request.args, context);
    else this.answerStream(request.id, request.op, op, request.args, context);
  }

  private answerUnary(
    id: number,
    name: ExecutorOp,
    op: UnaryOp,
    args: unknown,
    context: OpContext,
  ): void {
    if (this.inFlight >= this.parts.maxRequestsInFlight) {
      this.send({
        id,
        error: {
          code: 'resource-exhausted',
          message: `at most ${this.parts.maxRequestsInFlight} requests may be outstanding on one connection`,
        },
      });
      return;
    }
    this.inFlight += 1;
    op.run(args, context)
      .then(
        (result) => this.send({ id, ok: result }),
        (error: unknown) => this.sendError(id, name, error),
      )
      .finally(() => {
        this.inFlight -= 1;
      });
  }

  private answerStream(
    id: number,
    name: ExecutorOp,
    op: StreamOp,
    args: unknown,
    context: OpContext,
  ): void {
    if (this.streaming) {
      this.send({
        id,
        error: {
          code: 'resource-exhausted',
          message: 'one output stream per connection; open another connection',
        },
      });
      return;
    }
    this.streaming = true;
    void (async () => {
      try {
        const { chunks, end } = op.run(args, context);
        for await (const chunk of chunks) {
          if (this.closed.signal.aborted) return;
          if (!this.sendChunk(id, chunk)) await drainedOrAborted(this.socket, this.closed.signal);
        }
        const summary = await end();
        if (!this.closed.signal.aborted) this.send({ id, end: summary });
      } catch (error) {
        this.sendError(id, name, error);
      } finally {
        this.streaming = false;
      }
    })();
  }

  private sendError(id: number, op: string, error: unknown): void {
    const wire = wireError(error, this.logger, op);
    if (wire.code !== 'internal')
      this.logger.info({ id, op, code: wire.code, message: wire.message }, 'request refused');
    this.send({ id, error: wire });
  }

  /** Writes a reply; false means the client is behind and we should wait for 'drain'. */
  private send(reply: Reply): boolean {
    if (this.socket.destroyed || !this.socket.writable) return true;
    let frame: Buffer;
    try {
      frame = encodeFrame(reply);
    } catch (error) {
      this.logger.error({ err: error }, 'reply does not fit a frame');
      frame = encodeFrame({
        id: reply.id,
        error: { code: 'internal', message: 'internal executor error' },
      });
    }
    return this.afterWrite(this.socket.write(frame));
  }

  /** An output chunk: its frame's head, then the data as read, in one write (no copy). */
  private sendChunk(id: number, chunk: OutputChunk): boolean {
    if (this.socket.destroyed || !this.socket.writable) return true;
    const head = outputChunkFrameHead(id, chunk);
    this.socket.cork();
    this.socket.write(head);
    const flowing = this.socket.write(chunk.data);
    this.socket.uncork();
    return this.afterWrite(flowing);
  }

  /** After a reply was written: stops reading requests while too much of them is unread. */
  private afterWrite(flowing: boolean): boolean {
    if (this.socket.writableLength > MAX_UNREAD_REPLY_BYTES && !this.socket.isPaused()) {
      // The client is not reading its answers: stop taking its requests until it does (and
      // do not time its partial frame meanwhile: we are the ones not reading it).
      this.socket.pause();
      this.stopPartialFrameTimer();
      this.socket.once('drain', () => {
        this.socket.resume();
        this.watchPartialFrame();
      });
    }
    return flowing;
  }

  /** Outside the protocol: answer once, then close. */
  private refuse(id: number, message: string): void {
    this.failed = true;
    this.stopPartialFrameTimer();
    this.logger.warn({ id, message }, 'protocol error; closing connection');
    this.send({ id, error: { code: 'protocol-error', message } });
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
  }
}
