// safetensors reader/writer, with the checks of the reference Rust `safetensors` crate (Metadata::validate):
//   u64 LE N | N bytes of UTF-8 JSON header | data area
// The header is a JSON object: optional "__metadata__": {string: string}, and per tensor
//   "name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}   (offsets relative to the data area)
// Rules: N <= 100 MB and 8 + N <= file size; header starts with '{'; entries sorted by offset tile the data area
// exactly from 0 (no gaps, no overlaps); end - begin == product(shape) * dtype bits / 8; the data area ends at EOF.
// The writer pads the header with spaces to a multiple of 8 bytes, as the Rust crate does.

import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { InvalidArgumentError, RistrettoError, UnsupportedError } from '../errors.js';
import { FileReader, FileTensorSource, openAndParse, decodeUtf8, fail, writeAll, type TensorEntry } from './file-reader.js';
import { parseJson, readJsonFile } from './hf-config.js';
import { byteSize, type DType, type HostTensor, type TensorInfo, type TensorSource } from './tensor.js';

export type SafetensorsSource = TensorSource & { metadata: Record<string, string> };

const MAX_HEADER = 100_000_000;

/** Every safetensors dtype and its size in bits; the first three are the ones we decode. */
const DTYPE_BITS: Record<string, number> = {
  F32: 32, F16: 16, BF16: 16,
  BOOL: 8, U8: 8, I8: 8, F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8, F4: 4, F6_E2M3: 6, F6_E3M2: 6,
  I16: 16, U16: 16, I32: 32, U32: 32, F64: 64, I64: 64, U64: 64, C64: 64,
};
const DECODED: Record<string, DType> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };
const ENCODED: Partial<Record<DType, string>> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };

/** A short description of a JSON value for error messages (no recursion: values may be hostile and deep). */
function show(v: unknown): string {
  if (Array.isArray(v)) {
    if (v.every((x) => x === null || typeof x !== 'object')) {
      const j = JSON.stringify(v.slice(0, 8));
      return v.length > 8 ? `${j.slice(0, -1)},... (${v.length} items)]` : j;
    }
    return `an array of ${v.length} items`;
  }
  if (v !== null && typeof v === 'object') return 'an object';
  const j = JSON.stringify(v) ?? String(v);
  return j.length > 60 ? `${j.slice(0, 60)}...` : j;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A JSON number that is a non-negative integer exactly representable as a double. */
function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export function openSafetensors(path: string): SafetensorsSource {
  return openAndParse(path, parse);
}

function parse(r: FileReader): SafetensorsSource {
  const file = r.path;
  const n = r.u64(0, 'header length (u64 at offset 0)');
  if (n > BigInt(MAX_HEADER)) fail(file, 'header length', `at most ${MAX_HEADER}`, n.toString());
  if (n + 8n > BigInt(r.size)) fail(file, 'header length', `at most ${r.size - 8} (file size - 8)`, n.toString());
  const headerLen = Number(n);
  const text = decodeUtf8(r.bytes(8, headerLen, 'header'), file, 'header');
  if (!text.startsWith('{')) fail(file, 'header', "a JSON object starting with '{'", JSON.stringify(text.slice(0, 16)));
  const json = parseJson(text, file, 'header');
  if (!isPlainObject(json)) fail(file, 'header', 'a JSON object', Array.isArray(json) ? 'an array' : typeof json);

  const fileBits = BigInt(r.size) * 8n;
  const metadata: Record<string, string> = {};
  const infos: { info: TensorInfo; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isPlainObject(raw)) fail(file, '__metadata__', 'an object of strings', show(raw));
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== 'string') fail(file, `__metadata__."${k}"`, 'a string', show(v));
        metadata[k] = v;
      }
      continue;
    }
    const where = `tensor "${name}"`;
    if (!isPlainObject(raw)) fail(file, where, 'an object {dtype, shape, data_offsets}', show(raw));
    const extra = Object.keys(raw).filter((k) => k !== 'dtype' && k !== 'shape' && k !== 'data_offsets');
    if (extra.length) fail(file, where, 'only the fields dtype, shape, data_offsets', `field "${extra[0]}"`);
    const { dtype, shape, data_offsets: offs } = raw;
    if (typeof dtype !== 'string' || !(dtype in DTYPE_BITS)) {
      fail(file, `${where} dtype`, `one of ${Object.keys(DTYPE_BITS).join(', ')}`, show(dtype));
    }
    if (!Array.isArray(shape) || !shape.every(isIndex)) fail(file, `${where} shape`, 'an array of non-negative integers', show(shape));
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isIndex)) {
      fail(file, `${where} data_offsets`, '[begin, end] non-negative integers', show(offs));
    }
    // Size check with BigInt: product(shape) * bits can overflow 2^53 long before it overflows the file.
    // (Stops early once past the file size, so a shape of a million 2s cannot make a million-bit BigInt.)
    let bits = (shape as number[]).includes(0) ? 0n : BigInt(DTYPE_BITS[dtype]!);
    for (const d of shape as number[]) {
      if (bits > fileBits) break;
      bits *= BigInt(d);
    }
    if (bits % 8n !== 0n) fail(file, `${where} size`, 'a whole number of bytes', `${bits} bits`);
    const [begin, end] = offs as number[];
    if (end! < begin!) fail(file, `${where} data_offsets`, 'begin <= end', `[${begin}, ${end}]`);
    if (BigInt(end! - begin!) !== bits / 8n) {
      fail(file, `${where} data_offsets`, `${bits / 8n} bytes (shape [${shape}] ${dtype})`, `[${begin}, ${end}] = ${end! - begin!} bytes`);
    }
    infos.push({
      info: { name, dtype: DECODED[dtype] ?? null, typeName: dtype, shape: [...(shape as number[])], byteLength: end! - begin! },
      begin: begin!,
      end: end!,
    });
  }

  // Sorted by offset, the tensors must tile [0, data size) exactly.
  const dataStart = 8 + headerLen;
  const sorted = [...infos].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev = 'the start of the data area';
  for (const t of sorted) {
    if (t.begin !== pos) {
      fail(file, `tensor "${t.info.name}" data_offsets`, `begin == ${pos} (end of ${prev}; no gaps or overlaps)`, `[${t.begin}, ${t.end}]`);
    }
    pos = t.end;
    prev = `tensor "${t.info.name}"`;
  }
  if (dataStart + pos !== r.size) {
    fail(file, 'data area', `to end at the file size ${r.size}`, `tensors end at ${dataStart + pos} (header ${headerLen} bytes + ${pos} bytes of data)`);
  }
  const entries = new Map<string, TensorEntry>();
  for (const t of infos) entries.set(t.info.name, { info: t.info, offset: dataStart + t.begin });
  return Object.assign(new FileTensorSource(r, entries), { metadata });
}

/**
 * Writes a safetensors file (F32/F16/BF16 tensors; quantized dtypes throw UnsupportedError).
 * Tensors are stored in the given order; the header is space-padded to a multiple of 8 bytes.
 */
export function writeSafetensors(path: string, tensors: HostTensor[], metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const dt = ENCODED[t.dtype];
    if (!dt) throw new UnsupportedError(`writeSafetensors: tensor "${t.name}" has dtype ${t.dtype}, which safetensors cannot store`);
    if (t.name === '__metadata__' || t.name in header) throw new InvalidArgumentError(`writeSafetensors: duplicate or reserved tensor name "${t.name}"`);
    const size = byteSize(t.dtype, t.shape);
    if (t.data.byteLength !== size) throw new InvalidArgumentError(`writeSafetensors: tensor "${t.name}" has ${t.data.byteLength} bytes, expected ${size}`);
    header[t.name] = { dtype: dt, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const fd = fs.openSync(path, 'w');
  try {
    writeAll(fd, len);
    writeAll(fd, json);
    for (const t of tensors) writeAll(fd, t.data);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Opens a HuggingFace model directory's weights: `model.safetensors`, or else the shards listed in
 * `model.safetensors.index.json` (`{"weight_map": {tensor: shard file}}`) as one combined source.
 * Shard paths must stay inside `dir`; every listed tensor must be in its shard, and no shard may hold
 * tensors the index does not assign to it.
 */
export function openSafetensorsDir(dir: string): SafetensorsSource & { shards: string[] } {
  const single = nodePath.join(dir, 'model.safetensors');
  const indexPath = nodePath.join(dir, 'model.safetensors.index.json');
  if (fs.existsSync(single)) return Object.assign(openSafetensors(single), { shards: [single] });
  if (!fs.existsSync(indexPath)) {
    throw new RistrettoError('NOT_FOUND', `${dir}: neither model.safetensors nor model.safetensors.index.json found`);
  }
  const index = readJsonFile(indexPath);
  if (!isPlainObject(index)) fail(indexPath, 'top level', 'a JSON object', typeof index);
  const wm = index.weight_map;
  if (!isPlainObject(wm)) fail(indexPath, 'weight_map', 'an object {tensor name: shard file}', show(wm));
  const root = nodePath.resolve(dir);
  const shardOf = new Map<string, string>();
  for (const [name, f] of Object.entries(wm)) {
    if (typeof f !== 'string' || f === '') fail(indexPath, `weight_map."${name}"`, 'a shard file name', show(f));
    const p = nodePath.resolve(root, f);
    if (nodePath.isAbsolute(f) || !p.startsWith(root + nodePath.sep)) {
      fail(indexPath, `weight_map."${name}"`, `a file inside ${root}`, JSON.stringify(f));
    }
    shardOf.set(name, p);
  }
  const sources = new Map<string, SafetensorsSource>();
  try {
    for (const p of new Set(shardOf.values())) sources.set(p, openSafetensors(p));
    for (const [name, p] of shardOf) {
      if (!sources.get(p)!.has(name)) fail(indexPath, `weight_map."${name}"`, `tensor present in ${p}`, 'not in that shard');
    }
    for (const [p, s] of sources) {
      for (const t of s.list()) {
        if (shardOf.get(t.name) !== p) fail(p, `tensor "${t.name}"`, 'listed for this shard in model.safetensors.index.json', shardOf.has(t.name) ? `listed for ${shardOf.get(t.name)}` : 'not listed');
      }
    }
  } catch (e) {
    for (const s of sources.values()) s.close();
    throw e;
  }
  const metadata: Record<string, string> = {};
  for (const s of sources.values()) Object.assign(metadata, s.metadata);
  const infos = new Map<string, TensorInfo>();
  for (const s of sources.values()) for (const t of s.list()) infos.set(t.name, t);
  const get = (name: string): SafetensorsSource => {
    const p = shardOf.get(name);
    if (!p) throw new RistrettoError('NOT_FOUND', `${dir}: no tensor named "${name}"`);
    return sources.get(p)!;
  };
  return {
    path: dir,
    metadata,
    shards: [...sources.keys()],
    list: () => [...shardOf.keys()].map((n) => ({ ...infos.get(n)!, shape: [...infos.get(n)!.shape] })),
    has: (name) => shardOf.has(name),
    read: (name) => get(name).read(name),
    close: () => { for (const s of sources.values()) s.close(); },
  };
}
