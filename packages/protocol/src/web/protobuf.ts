/**
 * Just enough of the protobuf wire format for the libsignal messages the web engine must read
 * and write byte for byte (`SenderKeyMessage`, `SenderKeyDistributionMessage`): unsigned varint
 * and length-delimited fields, written in field order as libsignal's encoder writes them.
 *
 * The reader is strict where protobuf allows it to be: a truncated field, a varint longer than
 * ten bytes, a group (wire types 3 and 4), field number 0 or a length past the end is an
 * `INVALID_MESSAGE`. Unknown fields are skipped, as protobuf readers do; a repeated field keeps
 * its last value.
 */
import { ProtocolError } from '../errors.js';

/** Builds one message; fields are written in the order they are added. */
export class ProtoWriter {
  private readonly bytes: number[] = [];

  private varint(value: number): void {
    let v = value;
    while (v >= 0x80) {
      this.bytes.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.bytes.push(v);
  }

  /** An unsigned integer field (wire type 0); values up to 2^53 - 1. */
  uint(field: number, value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) throw new ProtocolError('INTERNAL', `protobuf field ${field} is not an unsigned integer`);
    this.varint(field * 8);
    this.varint(value);
    return this;
  }

  /** A bytes field (wire type 2). */
  bytesField(field: number, value: Uint8Array): this {
    this.varint(field * 8 + 2);
    this.varint(value.length);
    for (const b of value) this.bytes.push(b);
    return this;
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

/** The fields of one message by number: a number for varints, bytes for length-delimited fields. */
export type ProtoFields = Map<number, number | Uint8Array>;

function invalid(name: string, what: string): never {
  throw new ProtocolError('INVALID_MESSAGE', `${name}: ${what}`);
}

/**
 * Reads every field of one message.
 * @example
 * const fields = readProto(body, 'SenderKeyMessage');
 * const iteration = protoUint32(fields, 3, 'SenderKeyMessage.iteration');
 */
export function readProto(bytes: Uint8Array, name: string): ProtoFields {
  const fields: ProtoFields = new Map();
  let pos = 0;
  const varint = (): number => {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= bytes.length) invalid(name, 'truncated varint');
      const b = bytes[pos++]!;
      value += (b & 0x7f) * scale;
      scale *= 0x80;
      if ((b & 0x80) === 0) return value;
    }
    return invalid(name, 'varint longer than ten bytes');
  };
  while (pos < bytes.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    if (field === 0) invalid(name, 'field number 0');
    if (wireType === 0) {
      fields.set(field, varint());
    } else if (wireType === 2) {
      const length = varint();
      if (length > bytes.length - pos) invalid(name, 'length past the end');
      fields.set(field, bytes.slice(pos, pos + length));
      pos += length;
    } else if (wireType === 1 || wireType === 5) {
      const size = wireType === 1 ? 8 : 4;
      if (size > bytes.length - pos) invalid(name, 'truncated fixed-size field');
      pos += size;
    } else {
      invalid(name, `wire type ${wireType}`);
    }
  }
  return fields;
}

/** A required uint32 field. */
export function protoUint32(fields: ProtoFields, field: number, name: string): number {
  const v = fields.get(field);
  if (typeof v !== 'number') invalid(name, 'missing or not an integer');
  if (v > 0xffff_ffff) invalid(name, 'larger than 32 bits');
  return v;
}

/** A required bytes field, of `length` bytes if given. */
export function protoBytes(fields: ProtoFields, field: number, name: string, length?: number): Uint8Array {
  const v = fields.get(field);
  if (!(v instanceof Uint8Array)) invalid(name, 'missing or not bytes');
  if (length !== undefined && v.length !== length) invalid(name, `not ${length} bytes`);
  return v;
}
