// The executor socket as the API's peer sees it, with the real executor process: a peer that
// stalls part-way through a frame does not hold its connection forever.
import net from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PARTIAL_FRAME_TIMEOUT_MS } from '../../executor/socket/connection.ts';
import { encodeFrame, FrameDecoder } from '../../shared/framing.ts';
import { sleep } from './executor-kit.ts';
import { startExecutorProcess } from './executor-process-kit.ts';
import type { ExecutorProcess } from './executor-process-kit.ts';

const socketSuite = suite<{ x: ExecutorProcess }>('executor socket peers');
socketSuite.before(async (context) => {
  context.x = await startExecutorProcess();
});
socketSuite.after(async ({ x }) => {
  await x.remove();
});

/** Connects, writes `bytes`, and reports what came back and when the executor closed. */
function stall(
  path: string,
  bytes: Buffer,
): Promise<{ replies: unknown[]; closedAfterMs: number | null }> {
  return new Promise((resolve) => {
    const socket = net.createConnection(path);
    const decoder = new FrameDecoder();
    const replies: unknown[] = [];
    const started = Date.now();
    const giveUp = setTimeout(() => {
      socket.destroy();
      resolve({ replies, closedAfterMs: null });
    }, PARTIAL_FRAME_TIMEOUT_MS + 15_000);
    socket.on('data', (data: Buffer) => replies.push(...decoder.push(data)));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(giveUp);
      resolve({ replies, closedAfterMs: Date.now() - started });
    });
    socket.once('connect', () => socket.write(bytes));
  });
}

socketSuite(
  'a peer that stops part-way through a frame is answered protocol-error and cut off',
  async ({ x }) => {
    const whole = encodeFrame({ id: 5, op: 'list', args: { limit: 1 } });
    // Both at once: half a header, and a whole header with half its body.
    const [header, body] = await Promise.all([
      stall(x.socketPath, whole.subarray(0, 2)),
      stall(x.socketPath, whole.subarray(0, whole.length - 3)),
    ]);
    for (const [name, result] of [
      ['half a header', header],
      ['half a body', body],
    ] as const) {
      assert.ok(result.closedAfterMs !== null, `${name}: the connection is still open`);
      assert.ok(
        result.closedAfterMs >= PARTIAL_FRAME_TIMEOUT_MS - 1000,
        `${name}: closed after ${result.closedAfterMs} ms, before the timeout`,
      );
      assert.equal(result.replies, [
        {
          id: 0,
          error: {
            code: 'protocol-error',
            message: `no complete frame within ${PARTIAL_FRAME_TIMEOUT_MS / 1000} s of its first byte`,
          },
        },
      ]);
    }
    assert.is(x.child.exitCode, null, 'the executor still runs');
  },
);

socketSuite('a peer sending whole frames slowly is never cut off', async ({ x }) => {
  const socket = net.createConnection(x.socketPath);
  const decoder = new FrameDecoder();
  const replies: unknown[] = [];
  let closed = false;
  socket.on('data', (data: Buffer) => replies.push(...decoder.push(data)));
  socket.on('close', () => (closed = true));
  await new Promise((resolve) => socket.once('connect', resolve));
  // Frames split across writes, each completed well within the timeout; idle in between.
  for (let i = 1; i <= 3; i += 1) {
    const frame = encodeFrame({ id: i, op: 'list', args: { limit: 1 } });
    socket.write(frame.subarray(0, 3));
    await sleep(200);
    socket.write(frame.subarray(3));
    await sleep(200);
  }
  socket.destroy();
  assert.not.ok(closed);
  assert.equal(
    replies.map((reply) => (reply as { id: number }).id),
    [1, 2, 3],
  );
});

socketSuite.run();
