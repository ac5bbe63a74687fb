// The output log's reader walk over the on-disk format, on a real temporary directory (no root
// needed). The writer is the job's keeper (C); FormatWriter below writes the same format the same
// way (each run's index entry before its bytes, then a size notice), so every resume offset, live
// and ended, is checked against files laid out exactly as the keeper lays them out. What only the
// keeper decides (the cap, a full disk) is tested with the real keeper in test/root.
import { appendFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
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

/** Appends in the keeper's format and tells the log, as the keeper's size notices do. */
class FormatWriter {
  size = 0;
  private entries = 0;
  private lastStream: OutputStream | null = null;
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  static async create(dir: string): Promise<FormatWriter> {
    await writeFile(join(dir, 'output.bin'), '');
    await writeFile(join(dir, 'output.idx'), '');
    return new FormatWriter(dir);
  }

  async append(stream: OutputStream, text: string, log?: OutputLog): Promise<void> {
    if (stream !== this.lastStream) {
      const entry = Buffer.alloc(8);
      const value = this.size * 2 + (stream === 'stderr' ? 1 : 0);
      entry.writeUInt32BE(Math.floor(value / 2 ** 32), 0);
      entry.writeUInt32BE(value % 2 ** 32, 4);
      await appendFile(join(this.dir, 'output.idx'), entry);
      this.entries += 1;
      this.lastStream = stream;
    }
    await appendFile(join(this.dir, 'output.bin'), text);
    this.size += Buffer.byteLength(text);
    log?.grow(this.size, false);
  }
}

async function liveLog(dir: string): Promise<OutputLog> {
  return OutputLog.open(dir, { size: 0, truncated: false, finished: false });
}

async function endedLog(dir: string): Promise<OutputLog> {
  return OutputLog.open(dir, { truncated: false, finished: true });
}

const writes: Piece[] = [
  ['stdout', 'aaaa'],
  ['stdout', 'bb'],
  ['stderr', 'CCC'],
  ['stdout', 'd'],
  ['stderr', 'E'],
  ['stderr', 'FF'],
];

async function writeAll(dir: string, log?: OutputLog): Promise<FormatWriter> {
  const writer = await FormatWriter.create(dir);
  for (const [stream, text] of writes) await writer.append(stream, text, log);
  return writer;
}

log('runs of one stream are merged; a switch starts a new tagged run', async ({ dir }) => {
  await writeAll(dir);
  const output = await endedLog(dir);
  assert.equal(await collect(output), [
    ['stdout', 'aaaabb'],
    ['stderr', 'CCC'],
    ['stdout', 'd'],
    ['stderr', 'EFF'],
  ]);
  assert.is(output.size, 13);
  await output.close();
});

log('every resume offset yields exactly the rest, live and ended', async ({ dir }) => {
  await FormatWriter.create(dir);
  const live = await liveLog(dir);
  await writeAll(dir, live);
  live.finish(13, false);
  const whole = 'aaaabbCCCdEFF';
  const tags = 'ooooooeeeoeee';
  const ended = await endedLog(dir);
  for (const source of [live, ended]) {
    for (let from = 0; from <= whole.length; from += 1) {
      const pieces = await collect(source, from);
      assert.is(pieces.map(([, text]) => text).join(''), whole.slice(from), `text from ${from}`);
      const seen = pieces
        .map(([stream, text]) => (stream === 'stdout' ? 'o' : 'e').repeat(text.length))
        .join('');
      assert.is(seen, tags.slice(from), `tags from ${from}`);
    }
  }
  await ended.close();
  await live.close();
});

log('a followed log opens its files only for a reader, and closes them', async ({ dir }) => {
  const openFiles = async () => (await readdir('/proc/self/fd')).length;
  const before = await openFiles();
  // A running job's log: nothing is opened until someone reads (the keeper made the files).
  const output = OutputLog.follow(dir);
  assert.is(await openFiles(), before);
  const reading = collect(output);
  await writeAll(dir, output);
  output.finish(13, false);
  assert.is((await reading).map(([, text]) => text).join(''), 'aaaabbCCCdEFF');
  await output.close();
  assert.is(await openFiles(), before);
  // Closed, it opens nothing more: a late reader fails instead of leaking two descriptors.
  const late = OutputLog.follow(dir);
  late.grow(13, false);
  await late.close();
  try {
    await collect(late);
    assert.unreachable('a closed log was read');
  } catch (error) {
    assert.match((error as Error).message, /closed/);
  }
  // An empty one ends at once, files or not.
  const empty = OutputLog.follow(join(dir, 'nowhere'));
  empty.finish(0, false);
  assert.equal(await collect(empty), []);
  assert.is(await openFiles(), before);
});

log('a live reader follows size notices, across stream switches, until finish', async ({ dir }) => {
  const writer = await FormatWriter.create(dir);
  const output = await liveLog(dir);
  const reading = collect(output);
  for (const [stream, text] of writes) {
    await writer.append(stream, text, output);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  output.finish(writer.size, false);
  assert.equal((await reading).map(([, text]) => text).join(''), 'aaaabbCCCdEFF');
  await output.close();
});

log(
  'a reader sees only what a size notice committed, never bytes written since',
  async ({ dir }) => {
    const writer = await FormatWriter.create(dir);
    const output = await liveLog(dir);
    await writer.append('stdout', 'seen', output);
    await writer.append('stderr', 'not yet'); // on disk, but no notice
    output.finish(4, false);
    assert.equal(await collect(output), [['stdout', 'seen']]);
    await output.close();
  },
);

log('chunks are at most READ_CHUNK_BYTES', async ({ dir }) => {
  const writer = await FormatWriter.create(dir);
  await writer.append('stdout', 'x'.repeat(READ_CHUNK_BYTES * 3 + 5));
  const output = await endedLog(dir);
  const sizes: number[] = [];
  for await (const chunk of output.read(0)) sizes.push(chunk.data.length);
  assert.equal(sizes, [READ_CHUNK_BYTES, READ_CHUNK_BYTES, READ_CHUNK_BYTES, 5]);
  await output.close();
});

log('thousands of one-byte runs of alternating streams read back exactly', async ({ dir }) => {
  const writer = await FormatWriter.create(dir);
  let expected = '';
  for (let i = 0; i < 3000; i += 1) {
    const text = String.fromCharCode(97 + (i % 26));
    await writer.append(i % 2 === 0 ? 'stdout' : 'stderr', text);
    expected += text;
  }
  const output = await endedLog(dir);
  const pieces = await collect(output);
  assert.is(pieces.length, 3000);
  assert.is(pieces.map(([, text]) => text).join(''), expected);
  assert.ok(pieces.every(([stream], i) => stream === (i % 2 === 0 ? 'stdout' : 'stderr')));
  await output.close();
});

log(
  'an empty run left by a crash between index and data writes is stepped over',
  async ({ dir }) => {
    const writer = await FormatWriter.create(dir);
    await writer.append('stdout', 'abc');
    // The crash: an index entry for a stderr run at offset 3 was written, its data never was.
    const entry = Buffer.alloc(8);
    entry.writeUInt32BE(3 * 2 + 1, 4);
    await writeFile(join(dir, 'output.idx'), entry, { flag: 'a' });
    const reopened = await endedLog(dir);
    assert.equal(await collect(reopened), [['stdout', 'abc']]);
    await reopened.close();
  },
);

log('an aborted reader stops waiting at once', async ({ dir }) => {
  await FormatWriter.create(dir);
  const output = await liveLog(dir);
  const controller = new AbortController();
  const reading = collect(output, 0, controller.signal);
  setTimeout(() => controller.abort(), 20);
  assert.equal(await reading, []);
  assert.is(output.activeReaders, 0);
  await output.close();
});

log('reading past the end is refused', async ({ dir }) => {
  const writer = await FormatWriter.create(dir);
  const output = await liveLog(dir);
  await writer.append('stdout', 'abc', output);
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
