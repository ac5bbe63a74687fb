// An output-chunk reply's frame, written by hand in two parts: the head (the frame's length, then
// the msgpack of {id, chunk: {stream, offset, data}} up to the data's bin header), and the data
// itself, written after it as it is. So the executor never copies output into a frame: it hands
// the head and the data it read to one corked socket write. The bytes are plain msgpack, decoded
// by the same decoder as every other frame (a unit test decodes them and compares).
import type { OutputChunk } from './executor-protocol.ts';
import { FRAME_HEADER_BYTES, FrameError, MAX_FRAME_BYTES } from './framing.ts';

/** Room for any head: the frame header, the keys, a u32 id, a float64 offset, a bin32 header. */
const MAX_HEAD_BYTES = 64;

function writeString(target: Buffer, at: number, text: string): number {
  target[at++] = 0xa0 | text.length; // fixstr: every key and stream name is shorter than 32
  return at + target.write(text, at, 'latin1');
}

/** A msgpack unsigned integer (id: a u32), in its shortest form. */
function writeUnsigned(target: Buffer, at: number, value: number): number {
  if (value < 0x80) {
    target[at++] = value;
  } else if (value <= 0xff) {
    target[at++] = 0xcc;
    target[at++] = value;
  } else if (value <= 0xffff) {
    target[at++] = 0xcd;
    at = target.writeUInt16BE(value, at);
  } else if (value <= 0xffffffff) {
    target[at++] = 0xce;
    at = target.writeUInt32BE(value, at);
  } else {
    // Past u32, a float64 (exact below 2^53): what msgpackr itself writes for such a number.
    target[at++] = 0xcb;
    at = target.writeDoubleBE(value, at);
  }
  return at;
}

/** The frame's bytes before `chunk.data`; the frame is complete once the data follows them. */
export function outputChunkFrameHead(id: number, chunk: OutputChunk): Buffer {
  const head = Buffer.allocUnsafe(MAX_HEAD_BYTES);
  let at = FRAME_HEADER_BYTES;
  head[at++] = 0x82; // {id, chunk}
  at = writeString(head, at, 'id');
  at = writeUnsigned(head, at, id);
  at = writeString(head, at, 'chunk');
  head[at++] = 0x83; // {stream, offset, data}
  at = writeString(head, at, 'stream');
  at = writeString(head, at, chunk.stream);
  at = writeString(head, at, 'offset');
  at = writeUnsigned(head, at, chunk.offset);
  at = writeString(head, at, 'data');
  head[at++] = 0xc6; // bin32
  at = head.writeUInt32BE(chunk.data.length, at);
  const bodyBytes = at - FRAME_HEADER_BYTES + chunk.data.length;
  if (bodyBytes > MAX_FRAME_BYTES) {
    throw new FrameError(`frame of ${bodyBytes} bytes exceeds the maximum of ${MAX_FRAME_BYTES}`);
  }
  head.writeUInt32BE(bodyBytes, 0);
  return head.subarray(0, at);
}
