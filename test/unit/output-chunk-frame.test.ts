import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FrameDecoder, FrameError, MAX_FRAME_BYTES } from '../../shared/framing.ts';
import { outputChunkFrameHead } from '../../shared/output-chunk-frame.ts';
import type { OutputChunk } from '../../shared/executor-protocol.ts';

const frames = suite('output chunk frame');

frames(
  'head + data decode to the reply the executor meant, for every size of id and offset',
  () => {
    const ids = [0, 1, 127, 128, 255, 256, 65_535, 65_536, 0xffffffff];
    const offsets = [0, 1, 200, 70_000, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1];
    for (const id of ids) {
      for (const offset of offsets) {
        for (const stream of ['stdout', 'stderr'] as const) {
          const data = Buffer.from(`bytes at ${offset}`);
          const chunk: OutputChunk = { stream, offset, data };
          const frame = Buffer.concat([outputChunkFrameHead(id, chunk), data]);
          const [value, ...rest] = new FrameDecoder().push(frame);
          assert.is(rest.length, 0);
          assert.equal(
            value,
            { id, chunk: { stream, offset, data } },
            `id ${id}, offset ${offset}`,
          );
        }
      }
    }
  },
);

frames('empty data, and the largest data a frame holds; one byte more is refused', () => {
  const empty = Buffer.alloc(0);
  const [value] = new FrameDecoder().push(
    outputChunkFrameHead(3, { stream: 'stdout', offset: 9, data: empty }),
  );
  assert.equal(value, { id: 3, chunk: { stream: 'stdout', offset: 9, data: empty } });
  const headBytes = outputChunkFrameHead(3, { stream: 'stdout', offset: 9, data: empty }).length;
  const largest = Buffer.alloc(MAX_FRAME_BYTES - (headBytes - 4), 1);
  const head = outputChunkFrameHead(3, { stream: 'stdout', offset: 9, data: largest });
  const [whole] = new FrameDecoder().push(Buffer.concat([head, largest]));
  assert.equal((whole as { chunk: OutputChunk }).chunk.data.length, largest.length);
  assert.throws(
    () =>
      outputChunkFrameHead(3, {
        stream: 'stdout',
        offset: 9,
        data: Buffer.alloc(largest.length + 1),
      }),
    (error: unknown) => error instanceof FrameError && /exceeds the maximum/.test(String(error)),
  );
});

frames.run();
