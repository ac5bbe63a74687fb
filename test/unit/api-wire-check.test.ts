// The strict request check (api/wire-check.ts): the request shapes match the .proto files, what
// the generated encoders write is accepted, and what protobuf-go refuses is refused by field.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import {
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  FileDescriptorSetSchema,
} from '@bufbuild/protobuf/wkt';
import type { DescriptorProto } from '@bufbuild/protobuf/wkt';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { HealthService } from '../../api/generated/grpc/health/v1/health.ts';
import {
  JobServiceService,
  StartJobRequest,
  WatchJobOutputRequest,
} from '../../api/generated/jobworker/v1/jobworker.ts';
import { REQUEST_SHAPES } from '../../api/request-shapes.ts';
import { checkWire } from '../../api/wire-check.ts';
import type { MessageShape } from '../../api/wire-check.ts';

const wire = suite('strict request check');

const START = REQUEST_SHAPES['/jobworker.v1.JobService/StartJob'] as MessageShape;
const WATCH = REQUEST_SHAPES['/jobworker.v1.JobService/WatchJobOutput'] as MessageShape;

/** The message descriptors of proto/, as buf compiles them. */
function protoMessages(): Map<string, DescriptorProto> {
  const dir = mkdtempSync(join(tmpdir(), 'jobworker-unit-'));
  try {
    const image = join(dir, 'image.binpb');
    execFileSync('node_modules/.bin/buf', ['build', '-o', image]);
    // A buf image is a FileDescriptorSet on the wire.
    const files = fromBinary(FileDescriptorSetSchema, readFileSync(image)).file;
    const messages = new Map<string, DescriptorProto>();
    const add = (prefix: string, message: DescriptorProto) => {
      const name = `${prefix}.${message.name}`;
      messages.set(name, message);
      for (const nested of message.nestedType) add(name, nested);
    };
    for (const file of files) for (const message of file.messageType) add(file.package, message);
    return messages;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const KINDS: Partial<Record<Type, string>> = {
  [Type.STRING]: 'string',
  [Type.BYTES]: 'bytes',
  [Type.BOOL]: 'bool',
  [Type.ENUM]: 'enum',
  [Type.INT32]: 'int32',
  [Type.UINT32]: 'uint32',
  [Type.INT64]: 'int64',
  [Type.UINT64]: 'uint64',
  [Type.DOUBLE]: 'double',
};

wire('every method has a request shape, and each shape is its message as proto/ defines it', () => {
  const methods = [...Object.values(JobServiceService), ...Object.values(HealthService)];
  assert.equal(Object.keys(REQUEST_SHAPES).sort(), methods.map((method) => method.path).sort());
  const messages = protoMessages();
  const compare = (shape: MessageShape) => {
    const message = messages.get(shape.name);
    assert.ok(message, `${shape.name} is in proto/`);
    const fromProto: Record<number, string> = {};
    for (const field of message.field) {
      const entry = messages.get(field.typeName.slice(1));
      const kind = entry?.options?.mapEntry
        ? `map<${entry.field.map((f) => KINDS[f.type]).join(', ')}>`
        : field.type === Type.MESSAGE
          ? `message ${field.typeName.slice(1)}`
          : (KINDS[field.type] ?? `type ${field.type}`);
      const repeated = field.label === Label.REPEATED && !entry?.options?.mapEntry;
      fromProto[field.number] = `${field.name} ${kind}${repeated ? ' repeated' : ''}`;
    }
    const fromShape: Record<number, string> = {};
    for (const [number, field] of Object.entries(shape.fields)) {
      const kind =
        field.kind === 'map'
          ? 'map<string, string>'
          : field.kind === 'message'
            ? `message ${field.shape.name}`
            : field.kind;
      fromShape[Number(number)] = `${field.name} ${kind}${'repeated' in field ? ' repeated' : ''}`;
      if (field.kind === 'message') compare(field.shape);
    }
    assert.equal(fromShape, fromProto, shape.name);
  };
  for (const shape of Object.values(REQUEST_SHAPES)) compare(shape);
});

const refusal = (bytes: Uint8Array, shape: MessageShape = START) => {
  try {
    checkWire(bytes, shape);
    return 'accepted';
  } catch (error) {
    return (error as Error).message;
  }
};

wire('what the generated encoders write is accepted, edge values included', () => {
  const full = StartJobRequest.encode({
    argv: ['echo', 'héllo ✓', ''],
    env: { A: '1', EMPTY: '' },
    workingDir: '/job',
    limits: {
      cpus: 0.5,
      memoryBytes: Number.MAX_SAFE_INTEGER,
      memoryHighBytes: 0,
      pids: 4_294_967_295,
      ioReadBps: 1,
      ioWriteBps: 2,
      ioReadIops: 3,
      ioWriteIops: 4,
      cpusetCpus: '0-1',
    },
    timeout: { seconds: -Number.MAX_SAFE_INTEGER, nanos: -1 },
  }).finish();
  assert.is(refusal(full), 'accepted');
  assert.is(refusal(new Uint8Array(0)), 'accepted');
  assert.is(
    refusal(WatchJobOutputRequest.encode({ id: 'x', offset: 2 ** 53 - 1 }).finish(), WATCH),
    'accepted',
  );
  // Unknown fields of every wire type, a group among them, are kept as protobuf-go keeps them.
  const unknown = new BinaryWriter()
    .tag(99, WireType.Varint)
    .uint64(2n ** 64n - 1n)
    .tag(98, WireType.Bit64)
    .fixed64(1)
    .tag(97, WireType.Bit32)
    .fixed32(1)
    .tag(96, WireType.LengthDelimited)
    .bytes(new Uint8Array([0xff, 0xfe]))
    .tag(95, WireType.StartGroup)
    .tag(1, WireType.Varint)
    .uint32(1)
    .tag(95, WireType.EndGroup)
    // A known field with another wire type is unknown too (argv as a varint).
    .tag(1, WireType.Varint)
    .uint32(7)
    .finish();
  assert.is(refusal(unknown), 'accepted');
});

const bytes = (...values: number[]) => new Uint8Array(values);
const writer = () => new BinaryWriter();
const INVALID_UTF8 = bytes(0x61, 0xff, 0x62);

wire('64-bit values a number cannot hold are refused naming the field', () => {
  const limits = (field: number, value: bigint) =>
    writer().tag(4, WireType.LengthDelimited).bytes(writer().tag(field, 0).uint64(value).finish());
  const cases: [Uint8Array, string, MessageShape?][] = [
    [limits(2, 2n ** 64n - 1n).finish(), 'limits.memory_bytes: must be at most 9007199254740991'],
    [limits(5, 2n ** 53n).finish(), 'limits.io_read_bps: must be at most 9007199254740991'],
    [
      writer()
        .tag(5, WireType.LengthDelimited)
        .bytes(
          writer()
            .tag(1, 0)
            .int64(2n ** 62n)
            .finish(),
        )
        .finish(),
      'timeout.seconds: must be between -9007199254740991 and 9007199254740991',
    ],
    [
      writer()
        .tag(2, 0)
        .uint64(2n ** 53n)
        .finish(),
      'offset: must be at most 9007199254740991',
      WATCH,
    ],
  ];
  for (const [message, expected, shape] of cases) assert.is(refusal(message, shape), `${expected}`);
});

wire('strings must be UTF-8, named by index or map key', () => {
  const entry = (key: Uint8Array, value: Uint8Array) =>
    writer()
      .tag(2, WireType.LengthDelimited)
      .bytes(writer().tag(1, 2).bytes(key).tag(2, 2).bytes(value).finish())
      .finish();
  const cases: [Uint8Array, string][] = [
    [
      writer().tag(1, 2).string('ok').tag(1, 2).bytes(INVALID_UTF8).finish(),
      'argv[1]: must be valid UTF-8',
    ],
    [entry(Buffer.from('MY_VAR'), INVALID_UTF8), 'env["MY_VAR"]: must be valid UTF-8'],
    [entry(INVALID_UTF8, Buffer.from('v')), 'env key: must be valid UTF-8'],
    // Surrogate halves and overlong forms are not UTF-8 either.
    [
      writer()
        .tag(3, 2)
        .bytes(bytes(0xed, 0xa0, 0x80))
        .finish(),
      'working_dir: must be valid UTF-8',
    ],
    [writer().tag(3, 2).bytes(bytes(0xc0, 0xaf)).finish(), 'working_dir: must be valid UTF-8'],
    [
      writer().tag(4, 2).bytes(writer().tag(9, 2).bytes(INVALID_UTF8).finish()).finish(),
      'limits.cpuset_cpus: must be valid UTF-8',
    ],
  ];
  for (const [message, expected] of cases) assert.is(refusal(message), expected);
});

wire('broken framing is refused as protobuf-go refuses it', () => {
  const cases: [Uint8Array, string][] = [
    [bytes(0x00, 0x01), 'request: is not valid protobuf: field number 0'],
    [bytes(0x02, 0x00), 'request: is not valid protobuf: field number 0'],
    [
      bytes(0x0a, 0x05, 0x61),
      'request: is not valid protobuf: argv[0] runs past the end of the message',
    ],
    [
      bytes(0x22, 0x03, 0x10, 0x80, 0x80),
      'limits: is not valid protobuf: a number runs past the end of the message',
    ],
    [
      bytes(0x22, 0x02, 0x4a, 0x05),
      'limits: is not valid protobuf: limits.cpuset_cpus runs past the end of the message',
    ],
    [bytes(0x0c), 'request: is not valid protobuf: an end-group tag (field 1) outside a group'],
    [
      bytes(0x0b, 0x14),
      'request: is not valid protobuf: group 1 ends with the end-group tag of field 2',
    ],
    [bytes(0x0b), 'request: is not valid protobuf: group 1 has no end-group tag'],
    [bytes(0x0e), 'request: is not valid protobuf: field 1 has wire type 6'],
    [bytes(0x0f), 'request: is not valid protobuf: field 1 has wire type 7'],
    [
      bytes(0xf8, 0xff, 0xff, 0xff, 0x7f, 0x00),
      'request: is not valid protobuf: field number 4294967295 is above 2^29-1',
    ],
    [
      bytes(0x10, ...Array<number>(10).fill(0xff), 0x01),
      'request: is not valid protobuf: a number does not fit 64 bits',
    ],
    [
      bytes(0x11, 0x00, 0x00),
      'request: is not valid protobuf: field 2 runs past the end of the message',
    ],
    [
      Buffer.concat([
        Buffer.from(Array<number>(70).fill(0x0b)),
        Buffer.from(Array<number>(70).fill(0x0c)),
      ]),
      'request: is not valid protobuf: nested deeper than 64 levels',
    ],
  ];
  for (const [message, expected] of cases) assert.is(refusal(message), expected);
});

wire.run();
