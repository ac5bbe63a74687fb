// Frames on the executor socket: a u32 big-endian length, then one msgpack value. The length is
// checked against the maximum before a single byte of the body is kept, so a peer cannot make
// either side buffer more than one maximum-size frame.
//
// The executor decodes what a possibly compromised API sends, as root, so it uses msgpackr's plain
// JavaScript build made for environments that forbid eval (`index-no-eval`): no native addon
// (msgpackr's main entry loads msgpackr-extract, a compiled decoder, unless
// MSGPACKR_NATIVE_ACCELERATION_DISABLED is set before it is imported) and no code generated at
// run time (its main decoder compiles a reader with new Function for repeated record shapes).
import { addExtension, Packr, Unpackr } from 'msgpackr/index-no-eval';

/** About 1 MiB: a start request with the largest argv/env fits; output chunks are far smaller. */
export const MAX_FRAME_BYTES = 1024 * 1024;
/** The u32 length in front of every frame's body. */
export const FRAME_HEADER_BYTES = 4;
/** How much of an unfinished frame must have come before it gets a buffer of its full size. */
const PARTIAL_FRAME_MIN_BYTES = 64 * 1024;

// Records (msgpackr's structure extension) are off: each frame is plain msgpack that any
// implementation reads. (msgpackr still reads a record definition inside a frame, as plain
// objects, and forgets it with the frame: no decoder state is shared between frames.)
// structuredClone is off explicitly: msgpackr refuses its reference extensions only when it is
// false, not when unset.
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, structuredClone: false, mapsAsObjects: true });

/**
 * No msgpack extension type is part of the protocol, yet msgpackr decodes several by default:
 * Date, Set, RegExp, Error, typed arrays, BigInt and the structured-clone references. In this copy
 * of msgpackr (index-no-eval has an extension table of its own) each one now makes the frame
 * undecodable. Type 0 stays: it is how the encoder writes an undefined value.
 */
const UNDEFINED_EXTENSION = 0;
for (let type = 0; type <= 0xff; type += 1) {
  if (type === UNDEFINED_EXTENSION) continue;
  addExtension({
    type,
    unpack: () => {
      throw new Error(`msgpack extension type ${type} is not part of the protocol`);
    },
  });
}

export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

/** Bytes a value takes encoded, without its frame header. */
export function encodedSize(value: unknown): number {
  return packr.pack(value).length;
}

export function encodeFrame(value: unknown, maxBytes = MAX_FRAME_BYTES): Buffer {
  const body = packr.pack(value);
  if (body.length > maxBytes) {
    throw new FrameError(`frame of ${body.length} bytes exceeds the maximum of ${maxBytes}`);
  }
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * Turns a byte stream into decoded values. push() returns the values completed by a chunk and
 * throws FrameError on an oversize length or an undecodable body; after an error the decoder
 * is unusable and the connection should be closed.
 */
export class FrameDecoder {
  private readonly maxBytes: number;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failed = false;
  /**
   * A large frame that spans reads is gathered here, each byte copied once, instead of keeping
   * its pieces and joining them at the end (two copies, and garbage). Made only once the peer
   * has sent PARTIAL_FRAME_MIN_BYTES of it, so that a header alone reserves no memory.
   */
  private partial: Buffer | null = null;
  private partialFilled = 0;

  constructor(maxBytes = MAX_FRAME_BYTES) {
    this.maxBytes = maxBytes;
  }

  push(chunk: Buffer): unknown[] {
    const values: unknown[] = [];
    this.decodeEach(chunk, (value) => values.push(value));
    return values;
  }

  /** As push(), each value going to `emit` with the frame body it was decoded from. */
  private decodeEach(chunk: Buffer, emit: (value: unknown, body: Buffer) => void): void {
    if (this.failed) throw new FrameError('decoder already failed');
    let rest = chunk;
    if (this.partial !== null) {
      const frame = this.partial;
      const used = Math.min(rest.length, frame.length - this.partialFilled);
      rest.copy(frame, this.partialFilled, 0, used);
      this.partialFilled += used;
      rest = rest.subarray(used);
      if (this.partialFilled < frame.length) return;
      this.partial = null;
      const body = frame.subarray(FRAME_HEADER_BYTES);
      emit(this.decode(body), body);
    }
    if (rest.length === 0) return;
    this.chunks.push(rest);
    this.buffered += rest.length;
    for (;;) {
      if (this.buffered < FRAME_HEADER_BYTES) break;
      const length = this.peekLength();
      if (length > this.maxBytes) {
        this.failed = true;
        throw new FrameError(`frame length ${length} exceeds the maximum of ${this.maxBytes}`);
      }
      if (this.buffered < FRAME_HEADER_BYTES + length) {
        if (this.buffered >= PARTIAL_FRAME_MIN_BYTES)
          this.gatherPartial(FRAME_HEADER_BYTES + length);
        break;
      }
      const body = this.take(FRAME_HEADER_BYTES + length).subarray(FRAME_HEADER_BYTES);
      emit(this.decode(body), body);
    }
  }

  private decode(body: Buffer): unknown {
    try {
      return unpackr.unpack(body);
    } catch (error) {
      this.failed = true;
      throw new FrameError(`undecodable frame: ${(error as Error).message}`);
    }
  }

  /** Moves the buffered start of a frame of `size` bytes (header included) into its own buffer. */
  private gatherPartial(size: number): void {
    const frame = Buffer.allocUnsafe(size);
    let at = 0;
    for (const kept of this.chunks) at += kept.copy(frame, at);
    this.partial = frame;
    this.partialFilled = at;
    this.chunks = [];
    this.buffered = 0;
  }

  /**
   * As push(), for a reader that reuses its read buffer: each value goes to `onValue` at once and
   * may hold views of `chunk`, valid only during that call; what `chunk` leaves of an unfinished
   * frame is copied. A frame that lies whole inside `chunk` is never copied.
   *
   * A frame that did not lie whole in `chunk` lies in a buffer the decoder made (its bytes may
   * share that buffer with other frames', or Node's pool for a small one): `onValue` gets that
   * frame's body as `kept`, and may keep views of it and write over the body's own bytes, which
   * nothing else reads (the decoder never writes into what it holds).
   */
  pushEach(chunk: Buffer, onValue: (value: unknown, kept: Buffer | null) => void): void {
    this.decodeEach(chunk, (value, body) =>
      onValue(value, body.buffer === chunk.buffer ? null : body),
    );
    this.chunks = this.chunks.map((kept) =>
      kept.buffer === chunk.buffer ? Buffer.from(kept) : kept,
    );
  }

  /** Bytes received but not yet part of a complete frame. */
  get pendingBytes(): number {
    return this.buffered + (this.partial === null ? 0 : this.partialFilled);
  }

  private peekLength(): number {
    const first = this.chunks[0];
    if (first && first.length >= FRAME_HEADER_BYTES) return first.readUInt32BE(0);
    return Buffer.concat(this.chunks, FRAME_HEADER_BYTES).readUInt32BE(0);
  }

  /** Removes and returns the first n buffered bytes, copying only when a frame spans chunks. */
  private take(n: number): Buffer {
    const first = this.chunks[0];
    let out: Buffer;
    if (first && first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const all = Buffer.concat(this.chunks);
      out = all.subarray(0, n);
      this.chunks = all.length > n ? [all.subarray(n)] : [];
    }
    this.buffered -= n;
    return out;
  }
}
