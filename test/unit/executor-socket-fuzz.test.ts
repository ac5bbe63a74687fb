// Fuzzing the executor's choke point: the frame decoder and the op table behind a real
// Connection on a real Unix socket. Random bytes, random msgpack values and mutations of valid
// requests, for a few seconds: every input must get answers (results, or errors with a code) or a
// protocol error and a closed connection; never a crash, an internal error, or a hang. The
// runtime behind the op table is a stand-in that checks it is only ever called with arguments the
// table has validated. The seed is printed; JOBWORKER_FUZZ_SEED=N replays a run.
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { JobRuntime } from '../../executor/runtime/job-runtime.ts';
import { Connection } from '../../executor/socket/connection.ts';
import { isErrorCode, JobError } from '../../shared/errors.ts';
import { EXECUTOR_OPS } from '../../shared/executor-protocol.ts';
import type { OutputChunk } from '../../shared/executor-protocol.ts';
import { encodeFrame, FrameDecoder, FrameError, MAX_FRAME_BYTES } from '../../shared/framing.ts';
import { JOB_ID } from '../../shared/job-id.ts';
import type { JobRecord } from '../../shared/job.ts';
import { jobSpecSchema } from '../../shared/job-spec-schema.ts';
import { parseExecutorConfig } from '../../executor/config.ts';

/** How long the fuzzing runs, in all (the socket part gets most of it). */
const FUZZ_MS = Number(process.env.JOBWORKER_FUZZ_MS ?? 4000);
/** An input whose answers have not all come by then is a hang. */
const HANG_MS = 5000;
const SEED = Number(process.env.JOBWORKER_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** mulberry32: a small seeded generator, so that a failing run can be replayed. */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
const random = generator(SEED);
const below = (n: number) => Math.floor(random() * n);
const pick = <T>(items: readonly T[]): T => items[below(items.length)] as T;
const randomBytes = (n: number) => Buffer.from(Array.from({ length: n }, () => below(256)));

const ID = 'a'.repeat(32);
const packr = new Packr({ useRecords: false });

/** Requests the executor accepts, the seeds of the mutations. */
const VALID: unknown[] = [
  { id: 1, op: 'start', args: { spec: { argv: ['true'] }, owner: 'alice' } },
  {
    id: 2,
    op: 'start',
    args: {
      spec: {
        argv: ['sh', '-c', 'echo hi'],
        env: { A: 'b' },
        workingDir: '/job',
        limits: { cpus: 0.5, memoryBytes: 64 * 1024 * 1024, pids: 10, cpusetCpus: '0-1' },
        timeoutMs: 1000,
      },
      owner: 'bob',
    },
  },
  { id: 3, op: 'stop', args: { id: ID, graceMs: 10 } },
  { id: 4, op: 'get', args: { id: ID } },
  { id: 5, op: 'list', args: { owner: 'alice', state: 'RUNNING', limit: 10, after: ID } },
  { id: 6, op: 'read-output', args: { id: ID, offset: 0 } },
  { id: 7, op: 'owner', args: { id: ID } },
  { id: 0xffffffff, op: 'list', args: {} },
];

/** Values msgpack can carry, nested at random, keys among the protocol's own words. */
function randomValue(depth = 0): unknown {
  const words = ['id', 'op', 'args', 'spec', 'argv', 'owner', 'offset', '__proto__', 'constructor'];
  switch (below(depth > 3 ? 8 : 11)) {
    case 0:
      return below(2 ** 32) - 2 ** 31;
    case 1:
      return pick([0, -1, 2 ** 53, -(2 ** 63), 1.5, Number.NaN, Infinity, 0xffffffff + 1]);
    case 2:
      return randomBytes(below(12)).toString('latin1');
    case 3:
      return pick([...EXECUTOR_OPS, ID, '', 'x'.repeat(40), '\0', 'RUNNING']);
    case 4:
      return pick([null, true, false, undefined]);
    case 5:
      return randomBytes(below(20));
    case 6:
      return below(2 ** 31);
    case 7:
      return 2n ** BigInt(below(63));
    case 8:
      return Array.from({ length: below(5) }, () => randomValue(depth + 1));
    default: {
      const value: Record<string, unknown> = {};
      // defineProperty: an own key named __proto__, as a decoded map has, not a prototype.
      for (let i = below(5); i > 0; i -= 1) {
        Object.defineProperty(value, pick(words), {
          value: randomValue(depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return value;
    }
  }
}

/** A request shaped like the protocol's, with any part replaced by something random. */
function randomRequest(): unknown {
  const base = structuredClone(pick(VALID)) as Record<string, unknown>;
  const args = base.args as Record<string, unknown>;
  const keys = Object.keys(args);
  switch (below(4)) {
    case 0:
      base[pick(['id', 'op', 'args', 'extra'])] = randomValue();
      break;
    case 1:
      if (keys.length > 0) args[pick(keys)] = randomValue();
      break;
    case 2:
      args[pick(['spec', 'owner', 'id', 'offset', 'limit', 'graceMs', 'state'])] = randomValue();
      break;
    default:
      delete base[pick(['id', 'op', 'args'])];
  }
  return base;
}

function frameOf(body: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length);
  return Buffer.concat([header, body]);
}

/** msgpack that hurts decoders: huge declared sizes, deep nesting, extensions, records. */
function hostileBody(): Buffer {
  const count = pick([0xffff, 0xffffffff, 0x7fffffff, 1e8]);
  const u32 = Buffer.alloc(4);
  u32.writeUInt32BE(count >>> 0);
  const depth = pick([1000, 100_000]);
  return pick([
    Buffer.concat([Buffer.from([0xdd]), u32]), // array32 of `count` items, none present
    Buffer.concat([Buffer.from([0xdf]), u32]), // map32
    Buffer.concat([Buffer.from([0xdb]), u32, Buffer.from('x')]), // str32
    Buffer.concat([Buffer.from([0xc6]), u32]), // bin32
    Buffer.alloc(depth, 0x91), // [[[[…]]]]
    Buffer.concat([Buffer.alloc(depth, 0x81), Buffer.from([0xa1, 0x61])]), // {a:{a:…}}
    Buffer.from([0xc1]),
    Buffer.from([0xd4, below(256), 0]), // fixext 1 of any type
    Buffer.concat([Buffer.from([0xc7, 4, below(256)]), randomBytes(4)]), // ext 8
    Buffer.from([0xd4, 0x72, 0x40, 0x91, 0xa1, 0x61, 0x40]), // a record definition, then a use
    Buffer.from([0xc7, 5, 0x69, 0, 0, 0, 1, 0x90]), // structured-clone id
    Buffer.from([0xd6, 0x70, 0, 0, 0, 9]), // structured-clone pointer to nothing
    Buffer.from([0xc7, 4, 0x62, 0, 0, 0, 0xff]), // bundled strings
  ]);
}

function mutate(bytes: Buffer): Buffer {
  const out = Buffer.from(bytes);
  const edits = 1 + below(4);
  let result = out;
  for (let i = 0; i < edits; i += 1) {
    const at = below(result.length + 1);
    switch (below(6)) {
      case 0: // flip a bit
        if (result.length > 0) result[at % result.length]! ^= 1 << below(8);
        break;
      case 1: // any byte
        if (result.length > 0) result[at % result.length] = below(256);
        break;
      case 2: // insert bytes
        result = Buffer.concat([
          result.subarray(0, at),
          randomBytes(1 + below(8)),
          result.subarray(at),
        ]);
        break;
      case 3: // delete bytes
        result = Buffer.concat([result.subarray(0, at), result.subarray(at + 1 + below(8))]);
        break;
      case 4: // an interesting byte
        if (result.length > 0)
          result[at % result.length] = pick([
            0x00, 0x7f, 0x80, 0xc0, 0xc1, 0xcf, 0xd3, 0xdd, 0xdf, 0xff,
          ]);
        break;
      default: // repeat a slice
        result = Buffer.concat([result, result.subarray(at, at + below(16))]);
    }
  }
  return result;
}

/** One input: the bytes sent on one connection. */
function randomInput(): Buffer {
  switch (below(7)) {
    case 0: // random bytes, header and all
      return randomBytes(below(64));
    case 1: // a frame of random bytes
      return frameOf(randomBytes(below(256)));
    case 2: // random msgpack values
      return Buffer.concat(
        Array.from({ length: 1 + below(3) }, () => frameOf(packr.pack(randomValue()))),
      );
    case 3: // protocol-shaped requests with random parts
      return Buffer.concat(
        Array.from({ length: 1 + below(4) }, () => frameOf(packr.pack(randomRequest()))),
      );
    case 4: // mutated valid frames, body only (the header re-computed)
      return frameOf(mutate(packr.pack(pick(VALID))));
    case 5: // mutated valid frames, header included
      return mutate(Buffer.concat([encodeFrame(pick(VALID)), encodeFrame(pick(VALID))]));
    default:
      return frameOf(hostileBody());
  }
}

/** How many complete, acceptable frames the bytes hold, read as the executor would. */
function completeFrames(bytes: Buffer): { frames: number; refusedHeader: boolean } {
  let at = 0;
  let frames = 0;
  while (at + 4 <= bytes.length) {
    const length = bytes.readUInt32BE(at);
    if (length > MAX_FRAME_BYTES) return { frames, refusedHeader: true };
    if (at + 4 + length > bytes.length) break;
    frames += 1;
    at += 4 + length;
  }
  return { frames, refusedHeader: false };
}

const RECORD: JobRecord = {
  id: ID,
  owner: 'alice',
  argv: ['true'],
  envNames: [],
  workingDir: '/job',
  limits: {},
  timeoutMs: null,
  state: 'RUNNING',
  endReason: null,
  exitCode: null,
  signal: null,
  createdAt: 0,
  startedAt: 0,
  endedAt: null,
  outputBytes: 0,
  truncated: false,
  usage: null,
} as unknown as JobRecord;

/**
 * The runtime behind the op table: answers like the real one (a record, a listing, output, or a
 * JobError), and counts every call that reached it with arguments the table should have refused.
 */
function standInRuntime(unchecked: string[]): JobRuntime {
  const expectId = (op: string, id: unknown) => {
    if (typeof id !== 'string' || !JOB_ID.test(id)) unchecked.push(`${op}: id ${String(id)}`);
  };
  const knownOrMissing = (id: string) =>
    id.startsWith('a')
      ? Promise.resolve(RECORD)
      : Promise.reject(new JobError('not-found', `job ${id} not found`));
  const runtime = {
    // The op table reads the configuration in force (maxima, grace) from the runtime.
    config: parseExecutorConfig({}),
    start({ spec, owner, limits }: { spec: unknown; owner: unknown; limits: unknown }) {
      try {
        jobSpecSchema(spec, 'spec');
      } catch {
        unchecked.push(`start: spec ${JSON.stringify(spec)}`);
      }
      if (typeof owner !== 'string' || owner === '')
        unchecked.push(`start: owner ${String(owner)}`);
      if (typeof limits !== 'object' || limits === null)
        unchecked.push(`start: limits ${JSON.stringify(limits)}`);
      return below(3) === 0
        ? Promise.reject(
            new JobError('start-failed', 'exec "x": no such file or directory', {
              errno: 'ENOENT',
            }),
          )
        : Promise.resolve(RECORD);
    },
    stop(id: string, graceMs: number) {
      expectId('stop', id);
      if (!Number.isSafeInteger(graceMs) || graceMs < 0 || graceMs > 60_000)
        unchecked.push(`stop: graceMs ${graceMs}`);
      return knownOrMissing(id);
    },
    get(id: string) {
      expectId('get', id);
      return knownOrMissing(id);
    },
    ownerOf(id: string) {
      expectId('owner', id);
      if (!id.startsWith('a')) throw new JobError('not-found', `job ${id} not found`);
      return { owner: RECORD.owner };
    },
    list(filter: { after?: string }) {
      if (filter.after !== undefined) expectId('list', filter.after);
      return Promise.resolve({ jobs: [RECORD], more: false });
    },
    async *readOutput(id: string, offset: number): AsyncGenerator<OutputChunk> {
      expectId('read-output', id);
      if (!Number.isSafeInteger(offset) || offset < 0)
        unchecked.push(`read-output: offset ${offset}`);
      if (!id.startsWith('a')) throw new JobError('not-found', `job ${id} not found`);
      for (let i = 0; i < 3; i += 1) {
        await new Promise((resolve) => setImmediate(resolve));
        yield {
          stream: i === 1 ? 'stderr' : 'stdout',
          offset: offset + i * 5,
          data: Buffer.from('hello'),
        };
      }
    },
    outputSummary() {
      return Promise.resolve({ outputBytes: 15, truncated: false });
    },
  };
  return runtime as unknown as JobRuntime;
}

interface Context {
  dir: string;
  server: net.Server;
  socketPath: string;
  unchecked: string[];
  /** Lines the executor logged at level error (internal errors). */
  errors: string[];
  crashes: string[];
  /** The executor's ends of the connections, closed after the suite. */
  sockets: Set<net.Socket>;
}

const fuzz = suite<Context>('executor socket fuzzing');

fuzz.before(async (context) => {
  console.log(`  seed ${SEED} (JOBWORKER_FUZZ_SEED=${SEED} replays this run)`);
  context.unchecked = [];
  context.errors = [];
  context.crashes = [];
  const onCrash = (error: unknown) =>
    context.crashes.push(String((error as Error)?.stack ?? error));
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
  context.dir = await mkdtemp(join(tmpdir(), 'jobworker-unit-fuzz-'));
  context.socketPath = join(context.dir, 'executor.sock');
  const logger = pino({ level: 'error' }, { write: (line: string) => context.errors.push(line) });
  const runtime = standInRuntime(context.unchecked);
  let connections = 0;
  context.sockets = new Set();
  context.server = net.createServer({ allowHalfOpen: true }, (socket) => {
    connections += 1;
    context.sockets.add(socket);
    socket.on('close', () => context.sockets.delete(socket));
    new Connection(socket, { runtime, logger, maxRequestsInFlight: 4 }, connections);
  });
  await new Promise<void>((resolve) => context.server.listen(context.socketPath, resolve));
});

fuzz.after(async ({ server, sockets, dir }) => {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

interface Outcome {
  /** Final answers: a result, an error, or the end of a stream. */
  answers: { id: unknown; code?: string }[];
  closedByExecutor: boolean;
  malformed: string[];
}

/** Sends one input on its own connection and collects the answers until all came or it closed. */
function exchange(socketPath: string, input: Buffer, expected: number): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath);
    const decoder = new FrameDecoder();
    const outcome: Outcome = { answers: [], closedByExecutor: false, malformed: [] };
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(`hang: ${outcome.answers.length} of ${expected} answers after ${HANG_MS} ms`),
      );
    }, HANG_MS);
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    socket.on('data', (chunk: Buffer) => {
      for (const reply of decoder.push(chunk) as Record<string, unknown>[]) {
        const error = reply.error as { code?: unknown; message?: unknown } | undefined;
        if (reply.chunk !== undefined) continue;
        if ('ok' in reply || 'end' in reply) outcome.answers.push({ id: reply.id });
        else if (error && isErrorCode(error.code) && typeof error.message === 'string')
          outcome.answers.push({ id: reply.id, code: error.code });
        else outcome.malformed.push(JSON.stringify(reply));
      }
      // After a protocol error the executor closes the connection: wait for that too.
      const refused = outcome.answers.some((answer) => answer.code === 'protocol-error');
      if (outcome.answers.length >= expected && expected > 0 && !refused) finish();
    });
    socket.on('end', () => {
      outcome.closedByExecutor = true;
      finish();
    });
    socket.on('error', () => finish());
    socket.write(input);
    // Nothing more comes: a partial frame then waits for bytes that never arrive, which is the
    // client's business; the test ends the exchange once every complete frame was answered.
    if (expected === 0 && !completeFrames(input).refusedHeader) setTimeout(finish, 20);
  });
}

fuzz('the frame decoder answers any bytes with values or a FrameError, in any chunking', () => {
  const deadline = Date.now() + FUZZ_MS / 4;
  let inputs = 0;
  while (Date.now() < deadline) {
    const input = randomInput();
    const decoder = new FrameDecoder();
    inputs += 1;
    try {
      for (let at = 0; at < input.length;) {
        const size = 1 + below(input.length);
        decoder.push(input.subarray(at, at + size));
        at += size;
      }
      assert.ok(decoder.pendingBytes <= MAX_FRAME_BYTES + 4, 'bounded buffering');
    } catch (error) {
      if (!(error instanceof FrameError))
        assert.unreachable(`input ${input.toString('hex').slice(0, 200)}: ${String(error)}`);
    }
  }
  console.log(`  ${inputs} inputs decoded`);
  // The decoder's state is per frame: a valid frame still decodes after all that.
  assert.equal(new FrameDecoder().push(encodeFrame(VALID[1])), [VALID[1]]);
});

fuzz(
  'every input gets answers or a protocol error; no crash, no internal error, no hang',
  async (context) => {
    const deadline = Date.now() + FUZZ_MS;
    const codes = new Map<string, number>();
    let inputs = 0;
    while (Date.now() < deadline) {
      const input = randomInput();
      const { frames, refusedHeader } = completeFrames(input);
      inputs += 1;
      let outcome: Outcome;
      try {
        outcome = await exchange(context.socketPath, input, frames + (refusedHeader ? 1 : 0));
      } catch (error) {
        assert.unreachable(
          `input ${input.toString('hex').slice(0, 400)}: ${(error as Error).message}`,
        );
        return;
      }
      const where = `input ${input.toString('hex').slice(0, 400)}`;
      assert.equal(outcome.malformed, [], `${where}: malformed replies`);
      for (const answer of outcome.answers) {
        codes.set(answer.code ?? 'ok', (codes.get(answer.code ?? 'ok') ?? 0) + 1);
        assert.is.not(answer.code, 'internal', `${where}: an internal error`);
      }
      const refused = outcome.answers.some((answer) => answer.code === 'protocol-error');
      if (refused) assert.ok(outcome.closedByExecutor, `${where}: refused, then closed`);
      else if (refusedHeader) assert.unreachable(`${where}: an oversize header was not refused`);
      else assert.is(outcome.answers.length, frames, `${where}: one answer per frame`);
    }
    console.log(
      `  ${inputs} connections; answers by code: ${JSON.stringify(Object.fromEntries(codes))}`,
    );
    assert.equal(context.unchecked, [], 'the runtime saw only checked arguments');
    assert.equal(context.errors, [], 'nothing was logged as an internal error');
    assert.equal(context.crashes, [], 'no uncaught exception or unhandled rejection');

    // And the executor still serves a plain request.
    const get = { id: 77, op: 'get', args: { id: ID } };
    const after = await exchange(context.socketPath, encodeFrame(get), 1);
    assert.equal(after.answers, [{ id: 77 }]);
  },
);

fuzz.run();
