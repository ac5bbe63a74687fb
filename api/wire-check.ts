// A strict reading of a request's protobuf bytes against its message's shape, before ts-proto
// decodes them. ts-proto is lenient where protobuf-go is not (it replaces invalid UTF-8 with
// U+FFFD, stops at a field number 0 or a stray end-group, reads a length modulo 2^32) and cannot
// hold a 64-bit value above 2^53 in a number. What protobuf-go refuses, and any 64-bit value a
// JavaScript number cannot hold exactly, is refused here as invalid-argument naming the field.
//
// Unknown fields are accepted (as protobuf-go keeps them), but their framing is checked all the
// same; a known field sent with another wire type counts as unknown, as in both decoders.
import { isUtf8 } from 'node:buffer';
import { JobError } from '../shared/errors.ts';

/**
 * Names here are already spelled as the proto spells them (a map key as it was sent), so the
 * error says so, and grpc-status.ts passes them on unrenamed.
 */
function invalid(field: string, rule: string): JobError {
  return new JobError('invalid-argument', `${field}: ${rule}`, { field, spelling: 'proto' });
}

export type ScalarKind =
  'string' | 'bytes' | 'bool' | 'enum' | 'int32' | 'uint32' | 'int64' | 'uint64' | 'double';

export type FieldShape =
  | { name: string; kind: ScalarKind; repeated?: true }
  | { name: string; kind: 'message'; shape: MessageShape; repeated?: true }
  /** map<string, string>: entries are messages { 1: key, 2: value }. */
  | { name: string; kind: 'map' };

export interface MessageShape {
  /** The proto's full name, for messages about the message as a whole. */
  name: string;
  fields: Readonly<Record<number, FieldShape>>;
}

const VARINT = 0;
const FIXED64 = 1;
const LENGTH = 2;
const START_GROUP = 3;
const END_GROUP = 4;
const FIXED32 = 5;

const WIRE_TYPE_OF: Record<FieldShape['kind'], number> = {
  string: LENGTH,
  bytes: LENGTH,
  message: LENGTH,
  map: LENGTH,
  bool: VARINT,
  enum: VARINT,
  int32: VARINT,
  uint32: VARINT,
  int64: VARINT,
  uint64: VARINT,
  double: FIXED64,
};

/** protobuf's largest field number (2^29 - 1). */
const MAX_FIELD_NUMBER = 0x1fffffff;
/** Nested messages and groups deeper than this are refused (protobuf-go allows 10,000). */
const MAX_DEPTH = 64;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Reads one message's bytes; `where` names it in errors ("request", "limits", "env entry"). */
class Reader {
  pos: number;
  readonly bytes: Uint8Array;
  readonly end: number;
  readonly where: string;

  constructor(bytes: Uint8Array, start: number, end: number, where: string) {
    this.bytes = bytes;
    this.pos = start;
    this.end = end;
    this.where = where;
  }

  fail(problem: string): never {
    throw invalid(this.where, `is not valid protobuf: ${problem}`);
  }

  /** A varint of at most 10 bytes whose value fits 64 bits, as protobuf-go reads it. */
  varint(): bigint {
    let value = 0n;
    for (let index = 0; index < 10; index += 1) {
      if (this.pos >= this.end) this.fail('a number runs past the end of the message');
      const byte = this.bytes[this.pos++] ?? 0;
      if (index === 9 && byte > 1) this.fail('a number does not fit 64 bits');
      value |= BigInt(byte & 0x7f) << BigInt(7 * index);
      if (byte < 0x80) return value;
    }
    return this.fail('a number does not fit 64 bits');
  }

  skip(count: bigint, what: string): number {
    const start = this.pos;
    if (count > BigInt(this.end - this.pos)) this.fail(`${what} runs past the end of the message`);
    this.pos += Number(count);
    return start;
  }
}

function fieldPath(parent: string, name: string): string {
  return parent === '' ? name : `${parent}.${name}`;
}

/**
 * Checks `bytes` as a `shape` message; throws invalid-argument naming the field (as the proto
 * spells it: `limits.memory_bytes`, `argv[2]`, `env["NAME"]`) or, for broken framing, the
 * message or field that holds it.
 */
export function checkWire(bytes: Uint8Array, shape: MessageShape): void {
  checkMessage(new Reader(bytes, 0, bytes.length, 'request'), shape, '', 0);
}

function checkMessage(reader: Reader, shape: MessageShape, path: string, depth: number): void {
  if (depth > MAX_DEPTH) reader.fail(`nested deeper than ${MAX_DEPTH} levels`);
  const seen = new Map<number, number>();
  while (reader.pos < reader.end) {
    const { number, wireType } = readTag(reader);
    if (wireType === END_GROUP) reader.fail(`an end-group tag (field ${number}) outside a group`);
    const field = shape.fields[number];
    if (field === undefined || WIRE_TYPE_OF[field.kind] !== wireType) {
      skipValue(reader, number, wireType, depth);
      continue;
    }
    const index = seen.get(number) ?? 0;
    seen.set(number, index + 1);
    const name = fieldPath(path, 'repeated' in field ? `${field.name}[${index}]` : field.name);
    checkField(reader, field, name, depth);
  }
}

function readTag(reader: Reader): { number: number; wireType: number } {
  const tag = reader.varint();
  const number = tag >> 3n;
  if (number === 0n) reader.fail('field number 0');
  if (number > BigInt(MAX_FIELD_NUMBER)) reader.fail(`field number ${number} is above 2^29-1`);
  const wireType = Number(tag & 7n);
  if (wireType > FIXED32) reader.fail(`field ${number} has wire type ${wireType}`);
  return { number: Number(number), wireType };
}

function checkField(reader: Reader, field: FieldShape, name: string, depth: number): void {
  switch (field.kind) {
    case 'int64': {
      const value = BigInt.asIntN(64, reader.varint());
      if (value > MAX_SAFE || value < -MAX_SAFE)
        throw invalid(name, `must be between -${MAX_SAFE} and ${MAX_SAFE}`);
      return;
    }
    case 'uint64':
      if (reader.varint() > MAX_SAFE) throw invalid(name, `must be at most ${MAX_SAFE}`);
      return;
    case 'bool':
    case 'enum':
    case 'int32':
    case 'uint32':
      reader.varint();
      return;
    case 'double':
      reader.skip(8n, name);
      return;
    case 'bytes':
      reader.skip(reader.varint(), name);
      return;
    case 'string':
      checkString(reader, name);
      return;
    case 'message': {
      const length = reader.varint();
      const start = reader.skip(length, name);
      checkMessage(new Reader(reader.bytes, start, reader.pos, name), field.shape, name, depth + 1);
      return;
    }
    case 'map': {
      const length = reader.varint();
      const start = reader.skip(length, `${field.name} entry`);
      checkMapEntry(new Reader(reader.bytes, start, reader.pos, `${name} entry`), name, depth);
      return;
    }
  }
}

/** A string field's bytes, which must be UTF-8 (proto3); returns them decoded. */
function checkString(reader: Reader, name: string): string {
  const start = reader.skip(reader.varint(), name);
  const bytes = reader.bytes.subarray(start, reader.pos);
  if (!isUtf8(bytes)) throw invalid(name, 'must be valid UTF-8');
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}

/**
 * A map<string, string> entry: the key first, so that the value can be named by it
 * (`env["MY_VAR"]`); the key is data, never a field name.
 */
function checkMapEntry(reader: Reader, name: string, depth: number): void {
  let key = '';
  let value: { start: number; end: number } | null = null;
  while (reader.pos < reader.end) {
    const { number, wireType } = readTag(reader);
    if (wireType === END_GROUP) reader.fail(`an end-group tag (field ${number}) outside a group`);
    if (number === 1 && wireType === LENGTH) key = checkString(reader, `${name} key`);
    else if (number === 2 && wireType === LENGTH) {
      const start = reader.pos;
      reader.skip(reader.varint(), `${name} value`);
      value = { start, end: reader.pos };
    } else skipValue(reader, number, wireType, depth);
  }
  if (value)
    checkString(
      new Reader(reader.bytes, value.start, value.end, `${name} value`),
      `${name}[${JSON.stringify(key)}]`,
    );
}

/** Steps over a field this shape does not know, checking its framing as protobuf-go does. */
function skipValue(reader: Reader, number: number, wireType: number, depth: number): void {
  const what = `field ${number}`;
  switch (wireType) {
    case VARINT:
      reader.varint();
      return;
    case FIXED64:
      reader.skip(8n, what);
      return;
    case FIXED32:
      reader.skip(4n, what);
      return;
    case LENGTH:
      reader.skip(reader.varint(), what);
      return;
    case START_GROUP: {
      if (depth + 1 > MAX_DEPTH) reader.fail(`nested deeper than ${MAX_DEPTH} levels`);
      for (;;) {
        if (reader.pos >= reader.end) reader.fail(`group ${number} has no end-group tag`);
        const inner = readTag(reader);
        if (inner.wireType === END_GROUP) {
          if (inner.number !== number)
            reader.fail(`group ${number} ends with the end-group tag of field ${inner.number}`);
          return;
        }
        skipValue(reader, inner.number, inner.wireType, depth + 1);
      }
    }
  }
}
