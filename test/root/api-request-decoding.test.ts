// Requests as bytes, through the real API: edge values and malformed protobuf are INVALID_ARGUMENT
// naming the field (never INTERNAL "Error deserializing request"), as protobuf-go refuses them.
import type { Client } from '@grpc/grpc-js';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { outcomeOf, rawUnary, start, startStack } from './api-kit.ts';
import type { Stack } from './api-kit.ts';

const decoding = suite<{ stack: Stack; client: Client; jobId: string }>('request decoding');
decoding.before(async (context) => {
  context.stack = await startStack();
  const ada = await context.stack.client('ada');
  context.client = ada;
  context.jobId = (await start(ada, { argv: ['echo', 'hello'] })).id;
});
decoding.after(async ({ stack }) => {
  await stack.close();
});

const SERVICE = '/jobworker.v1.JobService/';
const writer = () => new BinaryWriter();
const INVALID_UTF8 = new Uint8Array([0x61, 0xff, 0x62]);

/** A WatchJobOutput call with hand-made request bytes; resolves with how the stream ended. */
function rawWatch(client: Client, request: Uint8Array): Promise<void> {
  const identity = (bytes: Buffer) => bytes;
  return new Promise((resolve, reject) => {
    const stream = client.makeServerStreamRequest(
      `${SERVICE}WatchJobOutput`,
      identity,
      identity,
      Buffer.from(request),
    );
    stream.on('data', () => undefined);
    stream.on('error', reject);
    stream.on('end', resolve);
  });
}

const startJob = (bytes: Uint8Array) =>
  writer().tag(1, WireType.LengthDelimited).string('true').raw(bytes);
/** A StartJobRequest of argv ["true"] with one varint in a nested message: limits or timeout. */
const nestedVarint = (message: number, field: number, value: bigint) =>
  startJob(
    writer()
      .tag(message, WireType.LengthDelimited)
      .bytes(writer().tag(field, WireType.Varint).uint64(BigInt.asUintN(64, value)).finish())
      .finish(),
  ).finish();
const limits = (field: number, value: bigint) => nestedVarint(4, field, value);
const timeoutSeconds = (value: bigint) => nestedVarint(5, 1, value);

decoding(
  '64-bit values at or above 2^53 are INVALID_ARGUMENT naming the field',
  async ({ client, jobId }) => {
    // Thunks: each call starts only when its turn comes (a rejection nobody awaits would crash).
    const cases: [() => Promise<unknown>, string][] = [
      [
        () => rawUnary(client, `${SERVICE}StartJob`, limits(2, 2n ** 64n - 1n)),
        'INVALID_ARGUMENT: limits.memory_bytes: must be at most 9007199254740991',
      ],
      [
        () => rawUnary(client, `${SERVICE}StartJob`, limits(5, 2n ** 64n - 1n)),
        'INVALID_ARGUMENT: limits.io_read_bps: must be at most 9007199254740991',
      ],
      [
        () => rawUnary(client, `${SERVICE}StartJob`, limits(8, 2n ** 53n)),
        'INVALID_ARGUMENT: limits.io_write_iops: must be at most 9007199254740991',
      ],
      [
        () => rawUnary(client, `${SERVICE}StartJob`, timeoutSeconds(2n ** 62n)),
        'INVALID_ARGUMENT: timeout.seconds: must be between -9007199254740991 and 9007199254740991',
      ],
      [
        // Representable, but far beyond any timeout: the rule, not "a whole number".
        () => rawUnary(client, `${SERVICE}StartJob`, timeoutSeconds(2n ** 52n)),
        'INVALID_ARGUMENT: timeout: must be at most 31622400000 ms',
      ],
      [
        () =>
          rawWatch(
            client,
            writer()
              .tag(1, WireType.LengthDelimited)
              .string(jobId)
              .tag(2, WireType.Varint)
              .uint64(2n ** 53n)
              .finish(),
          ),
        'INVALID_ARGUMENT: offset: must be at most 9007199254740991',
      ],
    ];
    for (const [call, expected] of cases) assert.is(await outcomeOf(call()), expected);
  },
);

decoding('invalid UTF-8 is refused, named by field, index or map key', async ({ client }) => {
  const envEntry = (key: Uint8Array, value: Uint8Array) =>
    startJob(
      writer()
        .tag(2, WireType.LengthDelimited)
        .bytes(writer().tag(1, 2).bytes(key).tag(2, 2).bytes(value).finish())
        .finish(),
    ).finish();
  // Thunks: each call starts only when its turn comes (a rejection nobody awaits would crash).
  const cases: [() => Promise<unknown>, string][] = [
    [
      () =>
        rawUnary(
          client,
          `${SERVICE}StartJob`,
          startJob(writer().tag(1, WireType.LengthDelimited).bytes(INVALID_UTF8).finish()).finish(),
        ),
      'INVALID_ARGUMENT: argv[1]: must be valid UTF-8',
    ],
    [
      () => rawUnary(client, `${SERVICE}StartJob`, envEntry(Buffer.from('MY_VAR'), INVALID_UTF8)),
      'INVALID_ARGUMENT: env["MY_VAR"]: must be valid UTF-8',
    ],
    [
      () => rawUnary(client, `${SERVICE}StartJob`, envEntry(INVALID_UTF8, Buffer.from('x'))),
      'INVALID_ARGUMENT: env key: must be valid UTF-8',
    ],
    [
      () => rawUnary(client, `${SERVICE}GetJob`, writer().tag(1, 2).bytes(INVALID_UTF8).finish()),
      'INVALID_ARGUMENT: id: must be valid UTF-8',
    ],
    [
      () => rawUnary(client, `${SERVICE}ListJobs`, writer().tag(1, 2).bytes(INVALID_UTF8).finish()),
      'INVALID_ARGUMENT: owner: must be valid UTF-8',
    ],
  ];
  for (const [call, expected] of cases) assert.is(await outcomeOf(call()), expected);
});

decoding(
  'field number 0, lengths past the end and stray end-groups are refused',
  async ({ client }) => {
    const cases: [Uint8Array, string][] = [
      [new Uint8Array([0x00, 0x01]), 'request: is not valid protobuf: field number 0'],
      [
        new Uint8Array([0x0a, 0x7f, 0x61]),
        'request: is not valid protobuf: argv[0] runs past the end of the message',
      ],
      [
        new Uint8Array([0x0a, 0x04, 0x74, 0x72, 0x75, 0x65, 0x22, 0x02, 0x10, 0xff]),
        'limits: is not valid protobuf: a number runs past the end of the message',
      ],
      [
        new Uint8Array([0x0a, 0x04, 0x74, 0x72, 0x75, 0x65, 0x0c]),
        'request: is not valid protobuf: an end-group tag (field 1) outside a group',
      ],
    ];
    for (const [bytes, expected] of cases)
      assert.is(
        await outcomeOf(rawUnary(client, `${SERVICE}StartJob`, bytes)),
        `INVALID_ARGUMENT: ${expected}`,
      );
  },
);

decoding('the health service reads its requests as strictly', async ({ client }) => {
  const check = (bytes: Uint8Array) => rawUnary(client, '/grpc.health.v1.Health/Check', bytes);
  assert.is(await outcomeOf(check(new Uint8Array(0))), 'OK');
  assert.is(
    await outcomeOf(check(writer().tag(1, 2).bytes(INVALID_UTF8).finish())),
    'INVALID_ARGUMENT: service: must be valid UTF-8',
  );
});

decoding.run();
