// GGUF v2/v3 reader and v3 writer (llama.cpp's checkpoint format; little-endian only).
//
// Layout (ggml/docs/gguf.md):
//   u32 magic "GGUF" (bytes 47 47 55 46) | u32 version | u64 tensor_count | u64 metadata_kv_count
//   metadata_kv_count x { string key | u32 value_type | value }
//   tensor_count x { string name | u32 n_dims | u64 ne[n_dims] (innermost first) | u32 ggml_type | u64 offset }
//   padding to `general.alignment` (default 32) | tensor data (offsets are relative to this point)
// string = u64 length + UTF-8 bytes (no NUL); array = u32 element type + u64 count + elements.
// v1 used u32 for counts and lengths and is not supported; v2 and v3 differ only in that v3 allows big-endian
// files (which we reject: a big-endian file's version reads as 0x02000000/0x03000000 here).

import { InvalidArgumentError, UnsupportedError } from '../errors.js';
import { Cursor, FileReader, FileTensorSource, openAndParse, fail, safeNumber, writeAll, type TensorEntry } from './file-reader.js';
import { byteSize, type DType, type HostTensor, type TensorInfo, type TensorSource } from './tensor.js';
import * as fs from 'node:fs';
import { quantize } from './dtypes/index.js';
import { dequantizeTranscoded, isTranscodedType } from './dtypes/transcode.js';

export type GGUFValue = number | bigint | boolean | string | GGUFValue[];

/** GGUF metadata value types as stored in the file (gguf_type). */
export const GGUF_TYPE = {
  uint8: 0, int8: 1, uint16: 2, int16: 3, uint32: 4, int32: 5, float32: 6,
  bool: 7, string: 8, array: 9, uint64: 10, int64: 11, float64: 12,
} as const;
export type GGUFScalarType = Exclude<keyof typeof GGUF_TYPE, 'array'>;
/** A metadata value's type: a scalar type name, or `{ array: elementType }` (arrays may nest). */
export type GGUFValueType = GGUFScalarType | { array: GGUFValueType };

export interface GGUFTensorInfo extends TensorInfo {
  ggmlType: number;
  /** Data offset relative to `dataOffset`, as stored in the file. */
  offset: number;
}

export interface GGUFFile extends TensorSource {
  version: number;
  metadata: Map<string, GGUFValue>;
  /** The stored type of every metadata value (so a file can be rewritten with the same types). */
  metadataTypes: Map<string, GGUFValueType>;
  alignment: number;
  /** Absolute file offset of the tensor data section. */
  dataOffset: number;
  tensorInfos: GGUFTensorInfo[];
}

const GGUF_MAGIC = 0x46554747; // "GGUF" read as little-endian u32
const MAX_ARRAY_DEPTH = 8;
const MAX_STRING_BYTES = 256 * 1024 * 1024; // V8 strings top out near 512M UTF-16 units
const MAX_DIMS = 4; // GGML_MAX_DIMS

/**
 * ggml types 0..39: name and (where fixed) block layout. Types 4/5 (Q4_2/Q4_3) were removed before GGUF existed;
 * 31-33 and 36-38 are the removed repacked Q4_0/IQ4_NL variants (same block layout as Q4_0/IQ4_NL).
 */
const GGML_TYPES: ({ name: string; blockElems: number; blockBytes: number; dtype?: DType } | { name: string })[] = [
  { name: 'F32', blockElems: 1, blockBytes: 4, dtype: 'f32' },
  { name: 'F16', blockElems: 1, blockBytes: 2, dtype: 'f16' },
  { name: 'Q4_0', blockElems: 32, blockBytes: 18, dtype: 'q4_0' },
  { name: 'Q4_1', blockElems: 32, blockBytes: 20 },
  { name: 'Q4_2' }, // removed
  { name: 'Q4_3' }, // removed
  { name: 'Q5_0', blockElems: 32, blockBytes: 22 },
  { name: 'Q5_1', blockElems: 32, blockBytes: 24 },
  { name: 'Q8_0', blockElems: 32, blockBytes: 34, dtype: 'q8_0' },
  { name: 'Q8_1', blockElems: 32, blockBytes: 36 },
  { name: 'Q2_K', blockElems: 256, blockBytes: 84 },
  { name: 'Q3_K', blockElems: 256, blockBytes: 110 },
  { name: 'Q4_K', blockElems: 256, blockBytes: 144, dtype: 'q4_k' },
  { name: 'Q5_K', blockElems: 256, blockBytes: 176 },
  { name: 'Q6_K', blockElems: 256, blockBytes: 210, dtype: 'q6_k' },
  { name: 'Q8_K', blockElems: 256, blockBytes: 292 },
  { name: 'IQ2_XXS', blockElems: 256, blockBytes: 66 },
  { name: 'IQ2_XS', blockElems: 256, blockBytes: 74 },
  { name: 'IQ3_XXS', blockElems: 256, blockBytes: 98 },
  { name: 'IQ1_S', blockElems: 256, blockBytes: 50 },
  { name: 'IQ4_NL', blockElems: 32, blockBytes: 18 },
  { name: 'IQ3_S', blockElems: 256, blockBytes: 110 },
  { name: 'IQ2_S', blockElems: 256, blockBytes: 82 },
  { name: 'IQ4_XS', blockElems: 256, blockBytes: 136 },
  { name: 'I8', blockElems: 1, blockBytes: 1 },
  { name: 'I16', blockElems: 1, blockBytes: 2 },
  { name: 'I32', blockElems: 1, blockBytes: 4 },
  { name: 'I64', blockElems: 1, blockBytes: 8 },
  { name: 'F64', blockElems: 1, blockBytes: 8 },
  { name: 'IQ1_M', blockElems: 256, blockBytes: 56 },
  { name: 'BF16', blockElems: 1, blockBytes: 2, dtype: 'bf16' },
  { name: 'Q4_0_4_4', blockElems: 32, blockBytes: 18 },
  { name: 'Q4_0_4_8', blockElems: 32, blockBytes: 18 },
  { name: 'Q4_0_8_8', blockElems: 32, blockBytes: 18 },
  { name: 'TQ1_0', blockElems: 256, blockBytes: 54 },
  { name: 'TQ2_0', blockElems: 256, blockBytes: 66 },
  { name: 'IQ4_NL_4_4', blockElems: 32, blockBytes: 18 },
  { name: 'IQ4_NL_4_8', blockElems: 32, blockBytes: 18 },
  { name: 'IQ4_NL_8_8', blockElems: 32, blockBytes: 18 },
  { name: 'MXFP4', blockElems: 32, blockBytes: 17 },
];

/** The ggml name of a tensor type id ("Q5_K"), or "type N" when unknown. */
export function ggmlTypeName(t: number): string {
  return GGML_TYPES[t]?.name ?? `type ${t}`;
}

const DTYPE_TO_GGML: Record<DType, number> = { f32: 0, f16: 1, q4_0: 2, q8_0: 8, q4_k: 12, q6_k: 14, bf16: 30 };

/** Minimum encoded size of a value of type `t` (for bounding counts before allocating). */
function minSize(t: number): number {
  switch (t) {
    case 0: case 1: case 7: return 1;
    case 2: case 3: return 2;
    case 4: case 5: case 6: return 4;
    case 8: case 10: case 11: case 12: return 8;
    case 9: return 12;
    default: return 1;
  }
}

function typeFromId(t: number): GGUFValueType | null {
  const e = Object.entries(GGUF_TYPE).find(([, v]) => v === t);
  return e && e[0] !== 'array' ? (e[0] as GGUFScalarType) : null;
}

/** u64/i64 as a number when a safe integer (|v| < 2^53), else a bigint. */
function int64Value(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

class MetaReader {
  constructor(private readonly c: Cursor, private readonly file: string) {}

  string(where: string): string {
    const len = this.c.u64(`${where} length`);
    if (len > BigInt(this.c.remaining)) fail(this.file, `${where} length`, `at most ${this.c.remaining} (bytes left in the file)`, len.toString());
    if (len > BigInt(MAX_STRING_BYTES)) fail(this.file, `${where} length`, `at most ${MAX_STRING_BYTES}`, len.toString());
    return this.c.string(Number(len), where);
  }

  /** Reads a value of type id `t`; returns the value and its type. */
  value(t: number, where: string, depth: number): [GGUFValue, GGUFValueType] {
    const c = this.c;
    switch (t) {
      case 0: return [c.u8(where), 'uint8'];
      case 1: return [c.i8(where), 'int8'];
      case 2: return [c.u16(where), 'uint16'];
      case 3: return [c.i16(where), 'int16'];
      case 4: return [c.u32(where), 'uint32'];
      case 5: return [c.i32(where), 'int32'];
      case 6: return [c.f32(where), 'float32'];
      case 7: {
        const b = c.u8(where);
        if (b > 1) fail(this.file, where, 'bool 0 or 1', String(b));
        return [b === 1, 'bool'];
      }
      case 8: return [this.string(where), 'string'];
      case 10: return [int64Value(c.u64(where)), 'uint64'];
      case 11: return [int64Value(c.i64(where)), 'int64'];
      case 12: return [c.f64(where), 'float64'];
      case 9: {
        if (depth >= MAX_ARRAY_DEPTH) fail(this.file, where, `arrays nested at most ${MAX_ARRAY_DEPTH} deep`, `depth ${depth + 1}`);
        const et = c.u32(`${where} element type`);
        if (et > 12) fail(this.file, `${where} element type`, 'a GGUF value type 0..12', String(et));
        const n = c.u64(`${where} count`);
        const maxN = BigInt(Math.floor(c.remaining / minSize(et)));
        if (n > maxN) fail(this.file, `${where} count`, `at most ${maxN} (bytes left / element size)`, n.toString());
        const count = Number(n);
        const out: GGUFValue[] = new Array(count);
        let elemType: GGUFValueType = typeFromId(et) ?? { array: 'uint8' };
        const fixed = et !== 8 && et !== 9; // per-index field names only where an element can fail on its own
        for (let i = 0; i < count; i++) {
          const [v, vt] = this.value(et, fixed ? `${where} element` : `${where}[${i}]`, depth + 1);
          out[i] = v;
          if (i === 0) elemType = vt;
        }
        return [out, { array: elemType }];
      }
      default:
        return fail(this.file, `${where} type`, 'a GGUF value type 0..12', String(t));
    }
  }
}

/** Opens a GGUF v2/v3 file, validating the header, metadata and tensor table. Tensor data is read lazily. */
export function openGGUF(path: string): GGUFFile {
  return openAndParse(path, parse);
}

function parse(r: FileReader): GGUFFile {
  const file = r.path;
  const c = new Cursor(r, 0);
  const magic = c.u32('magic');
  if (magic !== GGUF_MAGIC) {
    if (magic === 0x47475546) throw new UnsupportedError(`${file}: big-endian GGUF files are not supported`);
    fail(file, 'magic', '"GGUF"', JSON.stringify(String.fromCharCode(magic & 255, (magic >> 8) & 255, (magic >> 16) & 255, magic >>> 24)));
  }
  const version = c.u32('version');
  if (version !== 2 && version !== 3) {
    if (version === 1) throw new UnsupportedError(`${file}: GGUF version 1 is not supported (re-convert with a current llama.cpp)`);
    if (version !== 0 && (version & 0xffff) === 0) {
      throw new UnsupportedError(`${file}: big-endian GGUF files are not supported (version reads as 0x${version.toString(16)})`);
    }
    fail(file, 'version', '2 or 3', String(version));
  }
  const nTensors = c.u64('tensor_count');
  const nKv = c.u64('metadata_kv_count');
  // Each tensor info is at least 24 bytes, each key/value at least 13: bound counts by the file size.
  if (nKv > BigInt(Math.floor(c.remaining / 13))) fail(file, 'metadata_kv_count', `at most ${Math.floor(c.remaining / 13)} for this file size`, nKv.toString());
  if (nTensors > BigInt(Math.floor(c.remaining / 24))) fail(file, 'tensor_count', `at most ${Math.floor(c.remaining / 24)} for this file size`, nTensors.toString());

  const meta = new MetaReader(c, file);
  const metadata = new Map<string, GGUFValue>();
  const metadataTypes = new Map<string, GGUFValueType>();
  for (let i = 0; i < Number(nKv); i++) {
    const key = meta.string(`metadata[${i}].key`);
    if (metadata.has(key)) fail(file, `metadata key "${key}"`, 'unique keys', 'a duplicate');
    const t = c.u32(`metadata "${key}" type`);
    const [v, vt] = meta.value(t, `metadata "${key}"`, 0);
    metadata.set(key, v);
    metadataTypes.set(key, vt);
  }

  let alignment = 32;
  if (metadata.has('general.alignment')) {
    const a = metadata.get('general.alignment');
    if (metadataTypes.get('general.alignment') !== 'uint32') fail(file, 'metadata "general.alignment"', 'type uint32', JSON.stringify(metadataTypes.get('general.alignment')));
    if (typeof a !== 'number' || a === 0 || (a & (a - 1)) !== 0) fail(file, 'metadata "general.alignment"', 'a power of two', String(a));
    alignment = a;
  }

  const tensorInfos: GGUFTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < Number(nTensors); i++) {
    const name = meta.string(`tensor_infos[${i}].name`);
    const where = `tensor "${name}"`;
    if (names.has(name)) fail(file, where, 'unique tensor names', 'a duplicate');
    names.add(name);
    const nDims = c.u32(`${where} n_dims`);
    if (nDims > MAX_DIMS) fail(file, `${where} n_dims`, `at most ${MAX_DIMS}`, String(nDims));
    const ne: number[] = [];
    let nElems = 1n;
    for (let d = 0; d < nDims; d++) {
      const v = c.u64(`${where} ne[${d}]`);
      if (v === 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) fail(file, `${where} ne[${d}]`, `1..${Number.MAX_SAFE_INTEGER}`, v.toString());
      ne.push(Number(v));
      nElems *= v;
    }
    const ggmlType = c.u32(`${where} type`);
    const offset = c.u64(`${where} offset`);
    const ti = GGML_TYPES[ggmlType];
    if (!ti || !('blockElems' in ti)) {
      throw new UnsupportedError(
        `${file}: ${where} has ggml type ${ggmlType}${ti ? ` (${ti.name}, removed from ggml)` : ' (unknown: a newer llama.cpp, or a corrupt file)'}; its size cannot be computed`,
      );
    }
    if ((ne[0] ?? 1) % ti.blockElems !== 0) fail(file, `${where} ne[0]`, `a multiple of the ${ti.name} block size ${ti.blockElems}`, String(ne[0] ?? 1));
    const bytes = (nElems / BigInt(ti.blockElems)) * BigInt(ti.blockBytes);
    if (bytes > BigInt(r.size)) fail(file, `${where} size`, `at most the file size ${r.size}`, `${bytes} bytes (shape [${[...ne].reverse()}] ${ti.name})`);
    tensorInfos.push({
      name,
      dtype: ti.dtype ?? null,
      typeName: ti.name,
      shape: [...ne].reverse(), // GGUF stores ne innermost-first; we use outermost-first
      byteLength: Number(bytes),
      ggmlType,
      offset: safeNumber(offset, file, `${where} offset`),
    });
  }

  // The data section starts at the next multiple of `alignment`. A file without tensor data may end before it.
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  const dataSize = r.size - dataOffset;
  const byOffset = [...tensorInfos].sort((a, b) => a.offset - b.offset);
  let prevEnd = 0;
  let prevName = '';
  for (const t of byOffset) {
    const where = `tensor "${t.name}" offset`;
    if (t.offset % alignment !== 0) fail(file, where, `a multiple of the alignment ${alignment}`, String(t.offset));
    if (t.offset < prevEnd) fail(file, where, `at least ${prevEnd} (end of tensor "${prevName}"; tensors may not overlap)`, String(t.offset));
    if (t.offset + t.byteLength > dataSize) {
      fail(file, where, `data [${t.offset}, ${t.offset + t.byteLength}) inside the data section of ${Math.max(0, dataSize)} bytes at ${dataOffset}`, `file size ${r.size}`);
    }
    prevEnd = t.offset + t.byteLength;
    prevName = t.name;
  }

  const entries = new Map<string, TensorEntry>();
  for (const t of tensorInfos) {
    const info = { name: t.name, dtype: t.dtype, typeName: t.typeName, shape: t.shape, byteLength: t.byteLength };
    const entry: TensorEntry = { info, offset: dataOffset + t.offset };
    if (t.dtype === null && isTranscodedType(t.typeName)) {
      // read exactly, kept as Q8_0 (see dtypes/transcode.ts); info describes the tensor as it will be in memory
      const type = t.typeName;
      const n = t.shape.reduce((a, b) => a * b, 1);
      info.dtype = 'q8_0';
      info.byteLength = (n / 32) * 34;
      entry.transcode = { storedBytes: t.byteLength, convert: (raw) => quantize('q8_0', dequantizeTranscoded(type, raw, n)) };
    }
    entries.set(t.name, entry);
  }
  const src = new FileTensorSource(r, entries);
  return Object.assign(src, { version, metadata, metadataTypes, alignment, dataOffset, tensorInfos });
}

// ---------------------------------------------------------------------------------------------------------------
// Writer

/** One metadata entry for writeGGUF: `[key, type, value]`, e.g. `['llama.embedding_length', 'uint32', 64]`,
 *  `['tokenizer.ggml.tokens', { array: 'string' }, ['<unk>', '<s>']]`. */
export type GGUFMetadataEntry = [key: string, type: GGUFValueType, value: GGUFValue];

/** A tensor of any ggml type given by id, as raw block bytes (types we do not keep in memory, e.g. Q5_K). */
export interface RawGGUFTensor {
  name: string;
  shape: number[];
  ggmlType: number;
  data: Uint8Array;
}

export interface GGUFWriteOptions {
  metadata?: GGUFMetadataEntry[];
  tensors?: (HostTensor | RawGGUFTensor)[];
  /** Data alignment (power of two). Written as `general.alignment` (uint32) when not 32. Default 32. */
  alignment?: number;
}

/**
 * Writes a GGUF v3 file. API: `writeGGUF(path, { metadata: [[key, type, value], ...], tensors, alignment? })`.
 * Tensors are written in the given order, each at the next aligned offset; shapes are outermost-first and are
 * reversed into ggml's `ne` order. Values are checked against their types (InvalidArgumentError on mismatch).
 * Metadata from `openGGUF` round-trips with `[...f.metadata].map(([k, v]) => [k, f.metadataTypes.get(k)!, v])`.
 */
export function writeGGUF(path: string, opts: GGUFWriteOptions): void {
  const alignment = opts.alignment ?? 32;
  if (!Number.isInteger(alignment) || alignment <= 0 || alignment > 0xffffffff || (alignment & (alignment - 1)) !== 0) {
    throw new InvalidArgumentError(`writeGGUF: alignment must be a power of two, got ${alignment}`);
  }
  const metadata = [...(opts.metadata ?? [])].filter(([k]) => k !== 'general.alignment');
  if (alignment !== 32) metadata.unshift(['general.alignment', 'uint32', alignment]);
  const tensors = opts.tensors ?? [];

  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(3);
  w.u64(BigInt(tensors.length));
  w.u64(BigInt(metadata.length));
  const keys = new Set<string>();
  for (const [key, type, value] of metadata) {
    if (keys.has(key)) throw new InvalidArgumentError(`writeGGUF: duplicate metadata key "${key}"`);
    keys.add(key);
    w.string(key);
    w.u32(typeof type === 'string' ? GGUF_TYPE[type] : GGUF_TYPE.array);
    writeValue(w, type, value, key);
  }
  let offset = 0;
  const offsets: number[] = [];
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new InvalidArgumentError(`writeGGUF: duplicate tensor name "${t.name}"`);
    names.add(t.name);
    let size: number;
    let ggmlType: number;
    if ('ggmlType' in t) {
      const ti = GGML_TYPES[t.ggmlType];
      if (!ti || !('blockElems' in ti)) throw new InvalidArgumentError(`writeGGUF: tensor "${t.name}" has unknown ggml type ${t.ggmlType}`);
      const n = t.shape.reduce((a, b) => a * b, 1);
      if ((t.shape[t.shape.length - 1] ?? 1) % ti.blockElems !== 0) throw new InvalidArgumentError(`writeGGUF: tensor "${t.name}" rows are not whole ${ti.name} blocks`);
      size = (n / ti.blockElems) * ti.blockBytes;
      ggmlType = t.ggmlType;
    } else {
      size = byteSize(t.dtype, t.shape);
      ggmlType = DTYPE_TO_GGML[t.dtype];
    }
    if (t.data.byteLength !== size) throw new InvalidArgumentError(`writeGGUF: tensor "${t.name}" has ${t.data.byteLength} bytes, expected ${size}`);
    if (t.shape.length > MAX_DIMS) throw new InvalidArgumentError(`writeGGUF: tensor "${t.name}" has ${t.shape.length} dims, at most ${MAX_DIMS}`);
    w.string(t.name);
    w.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) w.u64(BigInt(d));
    w.u32(ggmlType);
    w.u64(BigInt(offset));
    offsets.push(offset);
    offset += Math.ceil(size / alignment) * alignment;
  }
  const header = w.finish();
  const fd = fs.openSync(path, 'w');
  try {
    writeAll(fd, header);
    let pos = header.length;
    const dataStart = Math.ceil(pos / alignment) * alignment;
    tensors.forEach((t, i) => {
      const at = dataStart + offsets[i]!;
      if (at > pos) writeAll(fd, new Uint8Array(at - pos));
      writeAll(fd, t.data);
      pos = at + t.data.byteLength;
    });
  } finally {
    fs.closeSync(fd);
  }
}

class ByteWriter {
  private chunks: Uint8Array[] = [];
  private cur = new Uint8Array(1 << 16);
  private dv = new DataView(this.cur.buffer);
  private n = 0;
  private room(k: number): void {
    if (this.n + k <= this.cur.length) return;
    this.chunks.push(this.cur.subarray(0, this.n));
    this.cur = new Uint8Array(Math.max(1 << 16, k));
    this.dv = new DataView(this.cur.buffer);
    this.n = 0;
  }
  u8(v: number): void { this.room(1); this.dv.setUint8(this.n, v); this.n += 1; }
  i8(v: number): void { this.room(1); this.dv.setInt8(this.n, v); this.n += 1; }
  u16(v: number): void { this.room(2); this.dv.setUint16(this.n, v, true); this.n += 2; }
  i16(v: number): void { this.room(2); this.dv.setInt16(this.n, v, true); this.n += 2; }
  u32(v: number): void { this.room(4); this.dv.setUint32(this.n, v, true); this.n += 4; }
  i32(v: number): void { this.room(4); this.dv.setInt32(this.n, v, true); this.n += 4; }
  u64(v: bigint): void { this.room(8); this.dv.setBigUint64(this.n, v, true); this.n += 8; }
  i64(v: bigint): void { this.room(8); this.dv.setBigInt64(this.n, v, true); this.n += 8; }
  f32(v: number): void { this.room(4); this.dv.setFloat32(this.n, v, true); this.n += 4; }
  f64(v: number): void { this.room(8); this.dv.setFloat64(this.n, v, true); this.n += 8; }
  bytes(b: Uint8Array): void { this.room(b.length); this.cur.set(b, this.n); this.n += b.length; }
  string(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u64(BigInt(b.length));
    this.bytes(b);
  }
  finish(): Uint8Array {
    this.chunks.push(this.cur.subarray(0, this.n));
    return Buffer.concat(this.chunks);
  }
}

const INT_RANGES: Partial<Record<GGUFScalarType, [number, number]>> = {
  uint8: [0, 255], int8: [-128, 127], uint16: [0, 65535], int16: [-32768, 32767],
  uint32: [0, 0xffffffff], int32: [-0x80000000, 0x7fffffff],
};

function writeValue(w: ByteWriter, type: GGUFValueType, v: GGUFValue, where: string): void {
  const bad = (): never => {
    throw new InvalidArgumentError(`writeGGUF: metadata "${where}": ${JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x))} is not a valid ${JSON.stringify(type)}`);
  };
  if (typeof type === 'object') {
    if (!Array.isArray(v)) return bad();
    const et = type.array;
    w.u32(typeof et === 'string' ? GGUF_TYPE[et] : GGUF_TYPE.array);
    w.u64(BigInt(v.length));
    v.forEach((x, i) => writeValue(w, et, x, `${where}[${i}]`));
    return;
  }
  const range = INT_RANGES[type];
  if (range) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < range[0] || v > range[1]) return bad();
  }
  switch (type) {
    case 'uint8': return w.u8(v as number);
    case 'int8': return w.i8(v as number);
    case 'uint16': return w.u16(v as number);
    case 'int16': return w.i16(v as number);
    case 'uint32': return w.u32(v as number);
    case 'int32': return w.i32(v as number);
    case 'float32': return typeof v === 'number' ? w.f32(v) : bad();
    case 'float64': return typeof v === 'number' ? w.f64(v) : bad();
    case 'bool': return typeof v === 'boolean' ? w.u8(v ? 1 : 0) : bad();
    case 'string': return typeof v === 'string' ? w.string(v) : bad();
    case 'uint64':
    case 'int64': {
      if (typeof v !== 'bigint' && !(typeof v === 'number' && Number.isSafeInteger(v))) return bad();
      const b = BigInt(v as number | bigint);
      if (type === 'uint64' ? b < 0n || b >= 1n << 64n : b < -(1n << 63n) || b >= 1n << 63n) return bad();
      return type === 'uint64' ? w.u64(b) : w.i64(b);
    }
  }
}

