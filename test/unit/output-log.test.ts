// The output log's format and reader walk, on a real temporary directory (no root needed).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { OutputStream } from '../../shared/executor-protocol.ts';
import { OutputLog, READ_CHUNK_BYTES } from '../../executor/runtime/output-log.ts';

const log = suite<{ dir: string }>('output log');
log.before.each(async (context) => {
  context.dir = await mkdtemp(join(tmpdir(), 'jobworker-unit-'));
});
log.after.each(async ({ dir }) => {
  await rm(dir, { recursive: true, force: true });
});

type Piece = [OutputStream, string];

async function collect(output: OutputLog, from = 0, signal?: AbortSignal): Promise<Piece[]> {
  const pieces: Piece[] = [];
  let expected = from;
  for await (const chunk of output.read(from, signal)) {
    assert.is(chunk.offset, expected, 'contiguous offsets');
    expected += chunk.data.length;
    const last = pieces.at(-1);
    const text = Buffer.from(chunk.data).toString();
    // Adjacent chunks of one stream are one piece: chunking is not part of the contract.
    if (last && last[0] === chunk.stream) last[1] += text;
    else pieces.push([chunk.stream, text]);
  }
  return pieces;
}

const writes: Piece[] = [
  ['stdout', 'aaaa'],
  ['stdout', 'bb'],
  ['stderr', 'CCC'],
  ['stdout', 'd'],
  ['stderr', 'E'],
  ['stderr', 'FF'],
];

log('runs of one stream are merged; a switch starts a new tagged run', async ({ dir }) => {
  const output = await OutputLog.create(dir, 1 << 20);
  for (const [stream, text] of writes) output.append(stream, Buffer.from(text));
  await output.flushed();
  output.finish();
  assert.equal(await collect(output), [
    ['stdout', 'aaaabb'],
    ['stderr', 'CCC'],
    ['stdout', 'd'],
    ['stderr', 'EFF'],
  ]);
  assert.is(output.size, 13);
  await output.close();
});

log('every resume offset yields exactly the rest, live and reopened from disk', async ({ dir }) => {
  const output = await OutputLog.create(dir, 1 << 20);
  for (const [stream, text] of writes) {
    output.append(stream, Buffer.from(text));
    await output.flushed(); // one write per append: runs cross write batches
  }
  output.finish();
  const whole = 'aaaabbCCCdEFF';
  const tags = 'ooooooeeeoeee';
  const reopened = await OutputLog.openFinished(dir, false);
  for (const source of [output, reopened]) {
    for (let from = 0; from <= whole.length; from += 1) {
      const pieces = await collect(source, from);
      assert.is(pieces.map(([, text]) => text).join(''), whole.slice(from), `text from ${from}`);
      const seen = pieces
        .map(([stream, text]) => (stream === 'stdout' ? 'o' : 'e').repeat(text.length))
        .join('');
      assert.is(seen, tags.slice(from), `tags from ${from}`);
    }
  }
  await reopened.close();
  await output.close();
});

log('a live reader follows appends, across stream switches, until finish', async ({ dir }) => {
  const output = await OutputLog.create(dir, 1 << 20);
  const reading = collect(output);
  for (const [stream, text] of writes) {
    output.append(stream, Buffer.from(text));
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  await output.flushed();
  output.finish();
  assert.equal((await reading).map(([, text]) => text).join(''), 'aaaabbCCCdEFF');
  await output.close();
});

log('chunks are at most READ_CHUNK_BYTES', async ({ dir }) => {
  const output = await OutputLog.create(dir, 1 << 24);
  output.append('stdout', Buffer.alloc(READ_CHUNK_BYTES * 3 + 5, 'x'));
  await output.flushed();
  output.finish();
  const sizes: number[] = [];
  for await (const chunk of output.read(0)) sizes.push(chunk.data.length);
  assert.equal(sizes, [READ_CHUNK_BYTES, READ_CHUNK_BYTES, READ_CHUNK_BYTES, 5]);
  await output.close();
});

log(
  'past the cap bytes are dropped, the log is truncated, appends keep succeeding',
  async ({ dir }) => {
    const output = await OutputLog.create(dir, 10);
    assert.ok(output.append('stdout', Buffer.from('0123456')));
    assert.ok(output.append('stderr', Buffer.from('789abc')));
    assert.ok(output.append('stdout', Buffer.from('more')));
    await output.flushed();
    output.finish();
    assert.is(output.size, 10);
    assert.is(output.truncated, true);
    assert.equal(await collect(output), [
      ['stdout', '0123456'],
      ['stderr', '789'],
    ]);
    await output.close();
  },
);

log(
  'an empty run left by a crash between index and data writes is stepped over',
  async ({ dir }) => {
    const output = await OutputLog.create(dir, 1 << 20);
    output.append('stdout', Buffer.from('abc'));
    await output.flushed();
    output.finish();
    await output.close();
    // The crash: an index entry for a stderr run at offset 3 was written, its data never was.
    const entry = Buffer.alloc(8);
    entry.writeUInt32BE(3 * 2 + 1, 4);
    await writeFile(join(dir, 'output.idx'), entry, { flag: 'a' });
    const reopened = await OutputLog.openFinished(dir, false);
    assert.equal(await collect(reopened), [['stdout', 'abc']]);
    await reopened.close();
  },
);

log('an aborted reader stops waiting at once', async ({ dir }) => {
  const output = await OutputLog.create(dir, 1 << 20);
  const controller = new AbortController();
  const reading = collect(output, 0, controller.signal);
  setTimeout(() => controller.abort(), 20);
  assert.equal(await reading, []);
  assert.is(output.activeReaders, 0);
  await output.close();
});

log('reading past the end is refused', async ({ dir }) => {
  const output = await OutputLog.create(dir, 1 << 20);
  output.append('stdout', Buffer.from('abc'));
  await output.flushed();
  try {
    await collect(output, 4);
    assert.unreachable();
  } catch (error) {
    assert.match(
      (error as Error).message,
      /^offset: 4 is beyond the end of the output \(3 bytes so far\)/,
    );
  }
  await output.close();
});

log.run();
