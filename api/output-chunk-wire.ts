// An OutputChunk message serialised by hand: the bytes the generated encoder writes (a unit test
// compares them), with the header written in front of data already in place, so that the data
// is copied once, from the executor's frame into the message. Serialised once per message, the
// same bytes go to every watcher. Every message made here keeps room in front for gRPC's own
// message prefix too, written there in place (grpcFramed): grpc-js would otherwise copy each
// message into a framed buffer of its own, for every watcher (see watch-framing.ts).
import { OutputStream } from './generated/jobworker/v1/jobworker.ts';

/** Room enough for any header (three tags, a stream, an offset below 2^53, a length: at most 16
 * bytes) and gRPC's message prefix in front of it. */
export const MAX_HEADER_BYTES = 24;
/** gRPC's message prefix: a compressed flag (0) and the message's length, 32 bits big-endian. */
export const GRPC_PREFIX_BYTES = 5;

function varintLength(value: number): number {
  let length = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    length += 1;
  }
  return length;
}

function writeVarint(target: Uint8Array, at: number, value: number): number {
  while (value >= 0x80) {
    target[at++] = (value % 0x80) | 0x80;
    value = Math.floor(value / 0x80);
  }
  target[at++] = value;
  return at;
}

/**
 * Writes OutputChunk{stream, offset, data} around `length` bytes of data already at `dataAt` in
 * `target` (fields left out when zero, as proto3 does); returns where the message starts. There
 * must be room for the header and, before it, gRPC's prefix (GRPC_PREFIX_BYTES) before `dataAt`.
 */
export function writeOutputChunkHeader(
  target: Uint8Array,
  dataAt: number,
  stream: OutputStream,
  offset: number,
  length: number,
): number {
  const streamField =
    stream === OutputStream.OUTPUT_STREAM_UNSPECIFIED ? 0 : 1 + varintLength(stream);
  const offsetField = offset === 0 ? 0 : 1 + varintLength(offset);
  const dataField = length === 0 ? 0 : 1 + varintLength(length);
  const start = dataAt - streamField - offsetField - dataField;
  if (start < GRPC_PREFIX_BYTES)
    throw new RangeError('no room for the OutputChunk header and its gRPC prefix');
  let at = start;
  if (streamField > 0) {
    target[at++] = 0x08; // field 1, varint
    at = writeVarint(target, at, stream);
  }
  if (offsetField > 0) {
    target[at++] = 0x10; // field 2, varint
    at = writeVarint(target, at, offset);
  }
  if (dataField > 0) {
    target[at++] = 0x1a; // field 3, length-delimited
    writeVarint(target, at, length);
  }
  return start;
}

/** OutputChunk{stream, offset, data = parts joined}, in a buffer of its own. */
export function encodeOutputChunk(
  stream: OutputStream,
  offset: number,
  parts: readonly Uint8Array[],
): Buffer {
  let length = 0;
  for (const part of parts) length += part.length;
  const wire = Buffer.allocUnsafe(MAX_HEADER_BYTES + length);
  let at = MAX_HEADER_BYTES;
  for (const part of parts) {
    wire.set(part, at);
    at += part.length;
  }
  return wire.subarray(writeOutputChunkHeader(wire, MAX_HEADER_BYTES, stream, offset, length));
}

/**
 * A message made here (by writeOutputChunkHeader, so with its prefix's room in front, inside the
 * buffer it was made in) as gRPC sends it: the prefix written in that room, and the view widened
 * over it. No copy; writing it again for the next watcher writes the same five bytes.
 */
export function grpcFramed(wire: Buffer): Buffer {
  if (wire.byteOffset < GRPC_PREFIX_BYTES) throw new RangeError('no room for the gRPC prefix');
  const framed = Buffer.from(
    wire.buffer,
    wire.byteOffset - GRPC_PREFIX_BYTES,
    wire.length + GRPC_PREFIX_BYTES,
  );
  framed[0] = 0;
  framed.writeUInt32BE(wire.length, 1);
  return framed;
}
