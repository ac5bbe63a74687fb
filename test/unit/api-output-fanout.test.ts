// WatchJobOutput's fan-out (api/output-fanout.ts, output-messages.ts, output-chunk-wire.ts) over
// a fake executor: messages serialised as the generated encoder would, one executor stream per
// job whatever the number of watchers, a stalled watcher that holds back only itself and is
// served from its own offset, and bounded buffering.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ExecutorClient } from '../../api/executor-client.ts';
import type { OutputCollector } from '../../api/executor-output.ts';
import { OutputChunk, OutputStream } from '../../api/generated/jobworker/v1/jobworker.ts';
import { BaseServerInterceptingCall } from '@grpc/grpc-js/build/src/server-interceptors.js';
import { encodeOutputChunk, grpcFramed } from '../../api/output-chunk-wire.ts';
import { OutputFanout, WINDOW_BYTES } from '../../api/output-fanout.ts';
import type { OutputSink } from '../../api/output-fanout.ts';
import { MESSAGE_BYTES, MessageBuilder, wireFrom } from '../../api/output-messages.ts';
import type { OutputMessage } from '../../api/output-messages.ts';
import type { OutputChunk as ExecutorChunk } from '../../shared/executor-protocol.ts';
import { FrameDecoder } from '../../shared/framing.ts';
import { outputChunkFrameHead } from '../../shared/output-chunk-frame.ts';

const fanout = suite('output fan-out');
const KiB = 1024;
const MiB = 1024 * KiB;

fanout('messages are the bytes the generated encoder writes', () => {
  const cases: [OutputStream, number, Uint8Array[]][] = [
    [OutputStream.OUTPUT_STREAM_STDOUT, 0, [Buffer.from('hello')]],
    [OutputStream.OUTPUT_STREAM_STDERR, 1, [Buffer.from('a'), Buffer.from('bc')]],
    [OutputStream.OUTPUT_STREAM_STDOUT, 2 ** 53 - 1, [Buffer.alloc(200_000, 7)]],
    [OutputStream.OUTPUT_STREAM_STDOUT, 300, []],
    [OutputStream.OUTPUT_STREAM_UNSPECIFIED, 0, []],
  ];
  for (const [stream, offset, parts] of cases) {
    const data = Buffer.concat(parts);
    assert.equal(
      encodeOutputChunk(stream, offset, parts),
      Buffer.from(OutputChunk.encode({ stream, offset, data }).finish()),
      `stream ${stream} offset ${offset} ${data.length} bytes`,
    );
  }
});

const chunk = (stream: 'stdout' | 'stderr', offset: number, length: number): ExecutorChunk => ({
  stream,
  offset,
  data: Buffer.alloc(length, stream === 'stdout' ? 1 : 2),
});

fanout('chunks join into messages of one stream, at most MESSAGE_BYTES each, copied once', () => {
  const builder = new MessageBuilder();
  const chunks = [
    chunk('stdout', 0, 64 * KiB),
    chunk('stdout', 64 * KiB, 64 * KiB),
    chunk('stderr', 128 * KiB, 10),
    chunk('stdout', 128 * KiB + 10, MESSAGE_BYTES + 5),
  ];
  for (const each of chunks) {
    builder.add(each, null);
    each.data.fill(9); // the builder copied it: the reader may reuse its buffer
  }
  assert.is(builder.bytes, 128 * KiB + 15 + MESSAGE_BYTES);
  const messages = builder.drain();
  assert.is(builder.bytes, 0);
  assert.equal(
    messages.map((message) => [message.stream, message.offset, message.end]),
    [
      [OutputStream.OUTPUT_STREAM_STDOUT, 0, 128 * KiB],
      [OutputStream.OUTPUT_STREAM_STDERR, 128 * KiB, 128 * KiB + 10],
      [OutputStream.OUTPUT_STREAM_STDOUT, 128 * KiB + 10, 128 * KiB + 10 + MESSAGE_BYTES],
      [
        OutputStream.OUTPUT_STREAM_STDOUT,
        128 * KiB + 10 + MESSAGE_BYTES,
        128 * KiB + 15 + MESSAGE_BYTES,
      ],
    ],
  );
  for (const message of messages) {
    assert.equal(
      message.wire,
      Buffer.from(
        OutputChunk.encode({
          stream: message.stream,
          offset: message.offset,
          data: Buffer.alloc(message.end - message.offset, message.stream),
        }).finish(),
      ),
    );
  }
  const first = messages[0] as OutputMessage;
  const part = OutputChunk.decode(wireFrom(first, 100));
  assert.equal([part.offset, part.data.length], [100, 128 * KiB - 100]);
  assert.is(wireFrom(first, 0), first.wire);
});

fanout('a large chunk that came in a frame of its own becomes a message where it lies', () => {
  const builder = new MessageBuilder();
  const data = Buffer.alloc(512 * KiB, 5);
  const frames = [0, 1].map((n) => {
    const head = outputChunkFrameHead(7, { stream: 'stdout', offset: n * data.length, data });
    return Buffer.concat([head, data]);
  });
  // As the API's reader gets them: 256 KiB reads into one buffer, reused; each frame spans
  // reads, so the decoder gathers it into a buffer it then gives up.
  const decoder = new FrameDecoder();
  const reads = Buffer.alloc(256 * KiB);
  const stream = Buffer.concat(frames);
  const kept: Buffer[] = [];
  for (let at = 0; at < stream.length; at += reads.length) {
    const length = stream.copy(reads, 0, at, at + reads.length);
    decoder.pushEach(reads.subarray(0, length), (value, frame) => {
      assert.ok(frame !== null, "a frame that spanned reads is the collector's to keep");
      kept.push(frame);
      builder.add((value as { chunk: ExecutorChunk }).chunk, frame);
    });
    reads.fill(0xee);
  }
  // A small chunk after them is copied, as ever.
  builder.add(chunk('stdout', 2 * data.length, 10), null);
  const messages = builder.drain();
  assert.equal(
    messages.map((message) => [message.offset, message.end]),
    [
      [0, 512 * KiB],
      [512 * KiB, 1024 * KiB],
      [1024 * KiB, 1024 * KiB + 10],
    ],
  );
  for (const [n, message] of messages.slice(0, 2).entries()) {
    assert.ok(message.wire.buffer === kept[n]?.buffer, 'no copy');
    assert.equal(
      message.wire,
      Buffer.from(
        OutputChunk.encode({
          stream: OutputStream.OUTPUT_STREAM_STDOUT,
          offset: message.offset,
          data,
        }).finish(),
      ),
    );
  }
});

/** A job's stored output (one stream), served by a fake executor in 64 KiB chunks. */
function fakeExecutor(output: Buffer) {
  const opened: number[] = [];
  const executor = {
    openOutput: (_id: string, offset: number, collector: OutputCollector<unknown>) => {
      opened.push(offset);
      let at = offset;
      let closed = false;
      return Promise.resolve({
        take: async (enough: number) => {
          await new Promise((resolve) => setImmediate(resolve));
          if (closed) throw new Error('taken after close');
          while (at < output.length && collector.bytes < Math.max(enough, 1)) {
            const data = output.subarray(at, Math.min(output.length, at + 64 * KiB));
            collector.add({ stream: 'stdout', offset: at, data }, null);
            at += data.length;
          }
          return { items: collector.drain(), ended: at === output.length };
        },
        close: () => {
          closed = true;
        },
      });
    },
  } as unknown as ExecutorClient;
  return { executor, opened };
}

/** A watcher: checks that every message continues where the last ended; can be held. */
function watcher(from = 0) {
  let next = from;
  const parts: Buffer[] = [];
  let release: (() => void) | null = null;
  let held = false;
  const sink: OutputSink = {
    ready: () => (held ? new Promise<void>((resolve) => (release = resolve)) : Promise.resolve()),
    send: (wire) => {
      const message = OutputChunk.decode(wire);
      if (message.offset !== next) throw new Error(`message at ${message.offset}, not ${next}`);
      next += message.data.length;
      parts.push(Buffer.from(message.data));
    },
  };
  return {
    sink,
    received: () => Buffer.concat(parts),
    hold: () => (held = true),
    resume: () => {
      held = false;
      release?.();
    },
    get next() {
      return next;
    },
  };
}

const output = Buffer.from(Array.from({ length: 40 * MiB }, (_, i) => (i * 7 + (i >> 12)) & 0xff));

/** gRPC's framing of a message, as grpc-js writes it: flag 0, length (32 bits, big-endian). */
function framedByGrpc(message: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

fanout('every message is framed for gRPC in place, in the room kept in front of it', () => {
  const builder = new MessageBuilder();
  builder.add(chunk('stdout', 0, 100 * KiB), null);
  const data = Buffer.alloc(128 * KiB, 5);
  const head = outputChunkFrameHead(7, { stream: 'stderr', offset: 100 * KiB, data });
  const frame = Buffer.concat([head, data]);
  // In two reads, so that the decoder gathers the frame into a buffer of its own: it is adopted.
  const decoder = new FrameDecoder();
  let gathered: Buffer | null = null;
  for (const read of [frame.subarray(0, 1000), frame.subarray(1000)])
    decoder.pushEach(read, (value, own) => {
      gathered = own;
      builder.add((value as { chunk: ExecutorChunk }).chunk, own);
    });
  const [built, adopted] = builder.drain();
  assert.ok(built && adopted);
  assert.ok(adopted.wire.buffer === (gathered as Buffer | null)?.buffer, 'adopted where it lies');
  const joined = wireFrom(built, 7);
  for (const wire of [built.wire, adopted.wire, joined, encodeOutputChunk(1, 3, [data])]) {
    const before = Buffer.from(wire);
    const framed = grpcFramed(wire);
    assert.equal(framed, framedByGrpc(before));
    assert.ok(framed.buffer === wire.buffer, 'no copy');
    assert.equal(grpcFramed(wire), framed, 'framing again writes the same bytes');
    assert.equal(wire, before, 'the message itself is untouched');
  }
});

fanout(
  "grpc-js still frames each message in the call's serializeMessage (watch-framing.ts)",
  () => {
    const prototype = BaseServerInterceptingCall.prototype as unknown as Record<string, unknown>;
    assert.type(prototype.serializeMessage, 'function');
  },
);

fanout('all watchers of one job share one executor stream', async () => {
  const { executor, opened } = fakeExecutor(output);
  const fan = new OutputFanout(executor);
  const watchers = Array.from({ length: 20 }, () => watcher());
  await Promise.all(watchers.map((w) => fan.watch('job', 0, w.sink, new AbortController().signal)));
  assert.equal(opened, [0]);
  for (const w of watchers) assert.ok(w.received().equals(output));
  assert.is(fan.sharedStreams, 0, 'closed when its watchers are done');
});

fanout(
  'a stalled watcher holds back only itself, then reads on its own from its offset',
  async () => {
    const { executor, opened } = fakeExecutor(output);
    const fan = new OutputFanout(executor);
    const slow = watcher();
    const fast = watcher();
    const signal = new AbortController().signal;
    const slowDone = fan.watch('job', 0, slow.sink, signal);
    let most = 0;
    const sampling = setInterval(() => (most = Math.max(most, fan.bufferedBytes)), 1);
    // The slow one takes a few messages, then stops taking more.
    await new Promise((resolve) => setTimeout(resolve, 5));
    slow.hold();
    await fan.watch('job', 0, fast.sink, signal);
    assert.ok(fast.received().equals(output), 'the fast watcher got everything');
    clearInterval(sampling);
    assert.ok(most > 0 && most <= WINDOW_BYTES + MESSAGE_BYTES, `held ${most} bytes at most`);
    const heldAt = slow.next;
    assert.ok(heldAt < output.length / 2, `the held watcher got ${heldAt} bytes already`);
    slow.resume();
    await slowDone;
    assert.ok(slow.received().equals(output), 'and so did the slow one, in order');
    assert.equal(opened, [0, heldAt], 'out of the window, it read on its own from its offset');
  },
);

fanout('a watcher that goes away stops at once and frees the shared stream', async () => {
  const { executor } = fakeExecutor(output);
  const fan = new OutputFanout(executor);
  const w = watcher();
  w.hold();
  const gone = new AbortController();
  const done = fan.watch('job', 0, w.sink, gone.signal);
  await new Promise((resolve) => setTimeout(resolve, 5));
  assert.is(fan.sharedStreams, 1);
  gone.abort();
  await done.catch(() => undefined);
  assert.is(fan.sharedStreams, 0);
});

fanout.run();
