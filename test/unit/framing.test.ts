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

framing('large frames spanning reads decode whole, from a read buffer that is reused', () => {
  // Frames around and above the size at which a spanning frame gets a buffer of its own.
  const sizes = [10, 70_000, 300_000, 5, 900_000, 64 * 1024, 200_000];
  const values = sizes.map((size, i) => ({
    n: i,
    data: Buffer.alloc(size, i + 1),
  }));
  const stream = Buffer.concat(values.map((value) => encodeFrame(value)));
  for (const size of [1000, 65_536, 100_003, 212_992, 256 * 1024]) {
    const decoder = new FrameDecoder();
    const reads = Buffer.alloc(size);
    const decoded: unknown[] = [];
    for (let at = 0; at < stream.length; at += size) {
      const length = stream.copy(reads, 0, at, at + size);
      // Each value is valid only during the call: keep a copy, as a reader must.
      decoder.pushEach(reads.subarray(0, length), (value) => {
        const { n, data } = value as { n: number; data: Uint8Array };
        decoded.push({ n, data: Buffer.from(data) });
      });
      reads.fill(0xee); // the next read overwrites the buffer
    }
    assert.equal(decoded, values, `read size ${size}`);
    assert.is(decoder.pendingBytes, 0);
  }
});

framing(
  'a header alone reserves nothing: a spanning frame is gathered once 64 KiB of it came',
  () => {
    const decoder = new FrameDecoder();
    const frame = encodeFrame({ data: Buffer.alloc(500_000, 7) });
    decoder.push(frame.subarray(0, 10));
    assert.is(decoder.pendingBytes, 10);
    decoder.push(frame.subarray(10, 100_000));
    assert.is(decoder.pendingBytes, 100_000);
    const [value] = decoder.push(frame.subarray(100_000)) as [{ data: Uint8Array }];
    assert.equal(Buffer.from(value.data), Buffer.alloc(500_000, 7));
    assert.is(decoder.pendingBytes, 0);
  },
);

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
