// Weight blob files of the ANE target (see shared/reference/ane.md, "Weight blob file"):
//   offset 0:   64-byte file header: byte 0 = 1, byte 4 = 2, rest zero
//   offset 64:  64-byte chunk header: bytes 0-3 = EF BE AD DE (0xDEADBEEF LE), byte 4 = dtype (1 = fp16),
//               bytes 8-11 = payload bytes (u32 LE), bytes 16-19 = absolute data offset (u32 LE), rest zero
//   offset 128: payload, fp16 little-endian, row-major [out][in]
// Multi-tensor files repeat [64-byte chunk header | payload] right after the file header, as the spec
// states (no extra alignment); the MIL `offset` of tensor i is the offset of its chunk header.
// The bundle writes one tensor per file, as the ANE projects do, so both readings of the spec agree.

import { f32BitsToF16Bits, decodeF16 } from '../formats/dtypes/half.js';
import { RistrettoError } from '../errors.js';

export const BLOB_FILE_HEADER = 64;
export const BLOB_CHUNK_HEADER = 64;
export const BLOB_MAGIC = 0xdeadbeef;
export const BLOB_DTYPE_FP16 = 1;
export const BLOB_DTYPE_INT8 = 2;

export interface BlobTensorIn {
  /** Values, converted to fp16 (round to nearest even) unless `dtype` is int8. */
  values: Float32Array | Int8Array;
  dtype?: 'fp16' | 'int8';
}

export interface BlobLayout {
  bytes: Uint8Array;
  /** Offset of each tensor's chunk header: the value of `offset = uint64(...)` in MIL. */
  offsets: number[];
}

/** Builds a weight blob file holding `tensors` in order. */
export function buildBlob(tensors: readonly BlobTensorIn[]): BlobLayout {
  let size = BLOB_FILE_HEADER;
  const payloads = tensors.map((t) => (t.dtype === 'int8' ? t.values.length : t.values.length * 2));
  for (const p of payloads) size += BLOB_CHUNK_HEADER + p;
  const bytes = new Uint8Array(size);
  const dv = new DataView(bytes.buffer);
  bytes[0] = 1;
  bytes[4] = 2;
  const offsets: number[] = [];
  let off = BLOB_FILE_HEADER;
  tensors.forEach((t, i) => {
    const payload = payloads[i]!;
    offsets.push(off);
    dv.setUint32(off, BLOB_MAGIC, true);
    bytes[off + 4] = t.dtype === 'int8' ? BLOB_DTYPE_INT8 : BLOB_DTYPE_FP16;
    dv.setUint32(off + 8, payload, true);
    dv.setUint32(off + 16, off + BLOB_CHUNK_HEADER, true);
    const data = off + BLOB_CHUNK_HEADER;
    if (t.dtype === 'int8') {
      bytes.set(new Uint8Array(t.values.buffer, t.values.byteOffset, t.values.length), data);
    } else {
      const v = t.values as Float32Array;
      const u = new Uint32Array(v.buffer, v.byteOffset, v.length);
      for (let j = 0; j < v.length; j++) {
        const h = f32BitsToF16Bits(u[j]!);
        bytes[data + 2 * j] = h & 0xff;
        bytes[data + 2 * j + 1] = h >>> 8;
      }
    }
    off = data + payload;
  });
  return { bytes, offsets };
}

/** One tensor as a blob file (offset 64). */
export function buildBlobFP16(values: Float32Array): Uint8Array {
  return buildBlob([{ values }]).bytes;
}

/** Reads the tensor whose chunk header is at `offset`; checks the headers; returns float32 values (exact fp16). */
export function readBlobTensor(bytes: Uint8Array, offset: number, count: number, file = 'blob'): Float32Array {
  const bad = (what: string): never => {
    throw new RistrettoError('FORMAT', `${file}: ${what}`);
  };
  if (bytes.length < BLOB_FILE_HEADER || bytes[4] !== 2) bad('not a weight blob file (file header version byte 4 must be 2)');
  if (offset < BLOB_FILE_HEADER || offset + BLOB_CHUNK_HEADER > bytes.length) bad(`chunk header offset ${offset} is outside the file (${bytes.length} bytes)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = dv.getUint32(offset, true);
  if (magic !== BLOB_MAGIC) bad(`no 0xDEADBEEF chunk header at offset ${offset} (found 0x${magic.toString(16)}); the MIL offset must point at the chunk header`);
  const dtype = bytes[offset + 4]!;
  const payload = dv.getUint32(offset + 8, true);
  const dataOff = dv.getUint32(offset + 16, true);
  const elem = dtype === BLOB_DTYPE_FP16 ? 2 : dtype === BLOB_DTYPE_INT8 ? 1 : bad(`chunk at ${offset}: unknown dtype byte ${dtype}`);
  if (payload !== count * elem) bad(`chunk at ${offset}: payload is ${payload} bytes, the declared tensor needs ${count * elem}`);
  if (dataOff + payload > bytes.length) bad(`chunk at ${offset}: data [${dataOff}, ${dataOff + payload}) runs past the end of the file`);
  const out = new Float32Array(count);
  if (elem === 2) decodeF16(bytes, dataOff, count, out, 0);
  else for (let i = 0; i < count; i++) out[i] = (bytes[dataOff + i]! << 24) >> 24;
  return out;
}
