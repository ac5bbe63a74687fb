// The connections read-output streams use, kept open between streams: a watch then begins with
// its request, not with a connect and the executor's accept. A stream still has its connection to
// itself while it runs (a slow watcher holds back only itself); only one that ended cleanly, with
// nothing half read, gives it back, and at most MAX_IDLE wait. An idle connection that closes or
// says anything is let go; one that the executor closed just as it was taken fails that stream as
// any lost connection does (unavailable: the watcher resumes from its offset).
import type net from 'node:net';
import { MAX_REQUEST_ID } from '../shared/executor-protocol.ts';
import { connect } from './executor-connection.ts';

/** Idle connections kept; more are closed as their streams end. */
const MAX_IDLE = 8;
/**
 * Every connection reads into this one buffer: a read is handled (and what is kept, copied)
 * before the next read of any socket, so one buffer serves all, and no read allocates.
 */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

/** One connection, and the stream that reads from it now. */
export class OutputConnection {
  readonly socket: net.Socket;
  /** Where its reads go; false pauses the socket (back-pressure). */
  receive: (data: Buffer) => boolean = () => true;
  private lastRequestId = 0;

  private constructor(socket: net.Socket) {
    this.socket = socket;
  }

  static async open(socketPath: string): Promise<OutputConnection> {
    // Nothing arrives before a request is sent, so `connection` is set by the first read.
    let connection: OutputConnection | null = null;
    const socket = await connect(socketPath, {
      buffer: READ_BUFFER,
      callback: (length, buffer) =>
        connection?.receive(Buffer.from(buffer.buffer, buffer.byteOffset, length)) ?? false,
    });
    connection = new OutputConnection(socket);
    return connection;
  }

  /** The id for the next request on this connection (one stream at a time). */
  nextRequestId(): number {
    this.lastRequestId = this.lastRequestId >= MAX_REQUEST_ID ? 1 : this.lastRequestId + 1;
    return this.lastRequestId;
  }
}

/** An idle connection's errors need no handling: its 'close' follows, and lets it go. */
function ignore(): void {}

export class OutputConnections {
  private readonly socketPath: string;
  /** Idle connections, each with the 'close' listener that forgets it. */
  private readonly idle = new Map<OutputConnection, () => void>();
  private closed = false;

  constructor(socketPath: string) {
    this.socketPath = socketPath;
  }

  /** An idle connection, else a new one. */
  async take(): Promise<OutputConnection> {
    for (const [connection, forget] of this.idle) {
      this.idle.delete(connection);
      const { socket } = connection;
      socket.off('close', forget);
      socket.off('error', ignore);
      if (socket.destroyed || socket.readyState !== 'open') {
        socket.destroy();
        continue;
      }
      socket.ref();
      return connection;
    }
    return OutputConnection.open(this.socketPath);
  }

  /** Takes back the connection of a stream that ended cleanly: kept idle, or closed. */
  give(connection: OutputConnection): void {
    const { socket } = connection;
    if (this.closed || this.idle.size >= MAX_IDLE || socket.destroyed) {
      socket.destroy();
      return;
    }
    // Idle, it says nothing: anything it does say breaks the protocol.
    connection.receive = () => {
      socket.destroy();
      return false;
    };
    const forget = () => this.idle.delete(connection);
    socket.on('error', ignore);
    socket.on('close', forget);
    socket.resume();
    socket.unref(); // an idle connection keeps no process alive
    this.idle.set(connection, forget);
  }

  /** Closes the idle connections; later ones are closed as they are given back. */
  close(): void {
    this.closed = true;
    for (const connection of this.idle.keys()) connection.socket.destroy();
    this.idle.clear();
  }
}
