// A job's output from one executor stream as WatchJobOutput messages: consecutive chunks of one
// stream (stdout or stderr) joined up to MESSAGE_BYTES, so that the cost of a message (a write,
// grpc-js's framing, the client's parse) is spread over many bytes, each serialised once
// (output-chunk-wire.ts). A live job's output is not held back to fill a message: what has
// arrived goes out once the stream is quiet (executor-output.ts).
import type { OutputChunk as ExecutorChunk } from '../shared/executor-protocol.ts';
import type { ExecutorClient } from './executor-client.ts';
import type { ExecutorOutput, OutputCollector } from './executor-output.ts';
import { OutputStream } from './generated/jobworker/v1/jobworker.ts';
import {
  encodeOutputChunk,
  MAX_HEADER_BYTES,
  writeOutputChunkHeader,
} from './output-chunk-wire.ts';

/**
 * The largest message's data. Below every client's default receive limit (4 MiB); large enough
 * that a message's own cost vanishes, small enough that the copies grpc-js holds per watcher
 * (a framed copy of each message in flight) stay small.
 */
export const MESSAGE_BYTES = 1024 * 1024;

export interface OutputMessage {
  /** Offset of the first byte of data, and one past the last. */
  offset: number;
  end: number;
  stream: OutputStream;
  /** The serialised OutputChunk, the same bytes for every watcher. */
  wire: Buffer;
  /** The data, for a watcher that starts part-way into the message. */
  data: Buffer;
}

const STREAMS = {
  stdout: OutputStream.OUTPUT_STREAM_STDOUT,
  stderr: OutputStream.OUTPUT_STREAM_STDERR,
} as const;

/** A chunk at least this large, in a frame of its own, is a message by itself (adopt()). */
const ADOPT_MIN_BYTES = 64 * 1024;

/** The first message of a stream gets this much room; later ones as much as the last took. */
const FIRST_CAPACITY = 64 * 1024;

/** The message holding `from`, serialised from there on (for a watcher joining part-way). */
export function wireFrom(message: OutputMessage, from: number): Buffer {
  if (from === message.offset) return message.wire;
  return encodeOutputChunk(message.stream, from, [message.data.subarray(from - message.offset)]);
}

/**
 * Joins an executor stream's chunks, as they arrive, into messages of at most MESSAGE_BYTES of
 * one stream (stdout or stderr): each chunk's data is copied once, into the message's buffer
 * behind room for its header, and the header is written when the message is handed over.
 */
export class MessageBuilder implements OutputCollector<OutputMessage> {
  private done: OutputMessage[] = [];
  private doneBytes = 0;
  /** The message being filled: data from MAX_HEADER_BYTES on. */
  private buffer: Buffer | null = null;
  private stream: OutputStream = OutputStream.OUTPUT_STREAM_UNSPECIFIED;
  private offset = 0;
  private length = 0;
  private lastLength = FIRST_CAPACITY;

  get bytes(): number {
    return this.doneBytes + this.length;
  }

  add(chunk: ExecutorChunk, frame: Buffer | null): void {
    const stream = STREAMS[chunk.stream];
    if (this.length > 0 && (stream !== this.stream || chunk.offset !== this.offset + this.length))
      this.finish();
    if (this.length === 0 && frame !== null && this.adopt(chunk, stream, frame)) return;
    let data = chunk.data;
    let at = chunk.offset;
    while (data.length > 0) {
      if (this.length === 0) {
        this.stream = stream;
        this.offset = at;
      }
      const part = data.subarray(0, MESSAGE_BYTES - this.length);
      this.room(part.length).set(part, MAX_HEADER_BYTES + this.length);
      this.length += part.length;
      at += part.length;
      data = data.subarray(part.length);
      if (this.length === MESSAGE_BYTES) this.finish();
    }
  }

  drain(): OutputMessage[] {
    if (this.length > 0) this.finish();
    const messages = this.done;
    this.done = [];
    this.doneBytes = 0;
    return messages;
  }

  /**
   * A large chunk that came in a frame of its own becomes a message as it lies: its header is
   * written over the frame's bytes before the data (the msgpack that framed it, decoded by now).
   * No copy, and no buffer allocated: stored output, read in large chunks, takes this path.
   */
  private adopt(chunk: ExecutorChunk, stream: OutputStream, frame: Buffer): boolean {
    const dataAt = chunk.data.byteOffset - frame.byteOffset;
    const length = chunk.data.length;
    if (
      length < ADOPT_MIN_BYTES ||
      chunk.data.buffer !== frame.buffer ||
      dataAt < MAX_HEADER_BYTES ||
      dataAt + length > frame.length
    )
      return false;
    const start = writeOutputChunkHeader(frame, dataAt, stream, chunk.offset, length);
    this.done.push({
      offset: chunk.offset,
      end: chunk.offset + length,
      stream,
      wire: frame.subarray(start, dataAt + length),
      data: frame.subarray(dataAt, dataAt + length),
    });
    this.doneBytes += length;
    return true;
  }

  /** The buffer, with room for `more` bytes of data (grown, by copying, when it has not). */
  private room(more: number): Buffer {
    const needed = MAX_HEADER_BYTES + this.length + more;
    if (this.buffer && this.buffer.length >= needed) return this.buffer;
    const capacity = Math.min(
      MAX_HEADER_BYTES + MESSAGE_BYTES,
      Math.max(needed, MAX_HEADER_BYTES + this.lastLength, 2 * (this.buffer?.length ?? 0)),
    );
    const grown = Buffer.allocUnsafe(capacity);
    this.buffer?.copy(grown, 0, 0, MAX_HEADER_BYTES + this.length);
    this.buffer = grown;
    return grown;
  }

  private finish(): void {
    let buffer = this.buffer as Buffer;
    const end = MAX_HEADER_BYTES + this.length;
    // A message far smaller than its buffer gets one of its own size: the window counts data.
    if (end < buffer.length / 2) buffer = Buffer.from(buffer.subarray(0, end));
    const start = writeOutputChunkHeader(
      buffer,
      MAX_HEADER_BYTES,
      this.stream,
      this.offset,
      this.length,
    );
    this.done.push({
      offset: this.offset,
      end: this.offset + this.length,
      stream: this.stream,
      wire: buffer.subarray(start, end),
      data: buffer.subarray(MAX_HEADER_BYTES, end),
    });
    this.doneBytes += this.length;
    this.lastLength = Math.max(FIRST_CAPACITY, this.length);
    this.buffer = null;
    this.length = 0;
  }
}

/** One executor stream as batches of messages. */
export class MessageSource {
  private readonly output: ExecutorOutput<OutputMessage>;

  private constructor(output: ExecutorOutput<OutputMessage>) {
    this.output = output;
  }

  static async open(executor: ExecutorClient, id: string, offset: number): Promise<MessageSource> {
    return new MessageSource(await executor.openOutput(id, offset, new MessageBuilder()));
  }

  /**
   * The next messages (at least one): what has arrived, once it fills a message or the stream
   * goes quiet; 'end' once the job's output has all been read.
   */
  async next(): Promise<OutputMessage[] | 'end'> {
    for (;;) {
      const { items, ended } = await this.output.take(MESSAGE_BYTES);
      if (items.length > 0) return items;
      if (ended) return 'end';
    }
  }

  close(): void {
    this.output.close();
  }
}
