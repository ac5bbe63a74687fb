import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeFrame, FrameDecoder, FrameError, MAX_FRAME_BYTES } from '../../shared/framing.ts';

const framing = suite('framing');

framing('a value survives encode and decode, in any chunking', () => {
  const values = [
    { id: 1, op: 'get', args: { id: 'x' } },
    { data: Buffer.from([0, 1, 2, 255]) },
    'plain',
    42,
  ];
  const stream = Buffer.concat(values.map((value) => encodeFrame(value)));
  for (const size of [1, 2, 3, 5, 7, stream.length]) {
    const decoder = new FrameDecoder();
    const decoded: unknown[] = [];
    for (let at = 0; at < stream.length; at += size)
      decoded.push(...decoder.push(stream.subarray(at, at + size)));
    assert.equal(decoded, values, `chunk size ${size}`);
    assert.is(decoder.pendingBytes, 0);
  }
});

framing('an oversize length is refused from the header alone, before any body arrives', () => {
  const decoder = new FrameDecoder(100);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(101);
  assert.throws(
    () => decoder.push(header),
    (error: Error) =>
      error instanceof FrameError && /101 exceeds the maximum of 100/.test(error.message),
  );
  assert.throws(() => decoder.push(Buffer.alloc(1)), /already failed/);
});

framing('the default maximum is about 1 MiB, and encoding refuses larger values', () => {
  assert.is(MAX_FRAME_BYTES, 1024 * 1024);
  assert.throws(() => encodeFrame({ big: Buffer.alloc(MAX_FRAME_BYTES) }), /exceeds the maximum/);
});

framing('an undecodable body is a FrameError, not a crash', () => {
  const body = Buffer.from([0xd4, 0x01, 0x00]); // an unknown msgpack extension
  const frame = Buffer.concat([Buffer.from([0, 0, 0, body.length]), body]);
  assert.throws(
    () => new FrameDecoder().push(frame),
    (error: Error) => error instanceof FrameError && /undecodable/.test(error.message),
  );
});

framing.run();
