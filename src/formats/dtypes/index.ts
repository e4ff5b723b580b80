// Dtype codecs: decode any stored DType to float32 and encode float32 into it, bit-exact with llama.cpp.
//
//   dequantize(dtype, bytes, n, out?)                        n elements from byte 0 of `bytes`
//   dequantizeRow(dtype, bytes, rowIndex, rowLength, out)    one row of a row-major matrix
//   quantize(dtype, values)                                   every DType (f32, f16, bf16, q8_0, q4_0, q4_k, q6_k)
//   rowBytes(dtype, rowLength)                                bytes of one row
//   readTensorAsF32(tensor)                                   zero-copy f32 view when possible, else a decoded copy
//
// Block layouts and rounding recipes are documented in half.ts, quants.ts and kquants.ts.

import { InvalidArgumentError } from '../../errors.js';
import { DTYPE_LAYOUT, numElements, type DType, type HostTensor } from '../tensor.js';
import { decodeBf16, decodeF16, decodeF32, encodeBf16, encodeF16, encodeF32 } from './half.js';
import { dequantizeQ4_0, dequantizeQ8_0, quantizeQ4_0, quantizeQ8_0 } from './quants.js';
import { dequantizeQ4_K, dequantizeQ6_K, quantizeQ4_K, quantizeQ6_K } from './kquants.js';

export * from './half.js';
export { dequantizeQ4_0, dequantizeQ8_0, quantizeQ4_0, quantizeQ8_0 } from './quants.js';
export { dequantizeQ4_K, dequantizeQ6_K, quantizeQ4_K, quantizeQ6_K } from './kquants.js';

/** Decodes `nBlocks` blocks of one dtype from `src` at byte `srcOff` into `out` at element `outOff`. */
type BlockDecoder = (src: Uint8Array, srcOff: number, nBlocks: number, out: Float32Array, outOff: number) => void;

const DECODERS: Record<DType, BlockDecoder> = {
  f32: decodeF32,
  f16: decodeF16,
  bf16: decodeBf16,
  q8_0: dequantizeQ8_0,
  q4_0: dequantizeQ4_0,
  q4_k: dequantizeQ4_K,
  q6_k: dequantizeQ6_K,
};

const ENCODERS: Record<DType, (values: Float32Array) => Uint8Array> = {
  f32: encodeF32,
  f16: encodeF16,
  bf16: encodeBf16,
  q8_0: quantizeQ8_0,
  q4_0: quantizeQ4_0,
  q4_k: quantizeQ4_K,
  q6_k: quantizeQ6_K,
};

function layoutOf(dtype: DType): { blockElems: number; blockBytes: number } {
  const l = DTYPE_LAYOUT[dtype];
  if (l === undefined) throw new InvalidArgumentError(`unknown dtype ${JSON.stringify(dtype)}`);
  return l;
}

function checkCount(what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`${what} must be a non-negative integer, got ${n}`);
}

function blocksOf(dtype: DType, n: number, what: string): number {
  const { blockElems } = layoutOf(dtype);
  if (n % blockElems !== 0) {
    throw new InvalidArgumentError(`${dtype}: ${what} ${n} is not a multiple of the block size ${blockElems}`);
  }
  return n / blockElems;
}

/** Bytes of one row of `rowLength` elements; throws when the row does not split into whole blocks. */
export function rowBytes(dtype: DType, rowLength: number): number {
  checkCount('rowLength', rowLength);
  return blocksOf(dtype, rowLength, 'row length') * layoutOf(dtype).blockBytes;
}

/**
 * Decodes the first `n` elements stored in `bytes` (from byte 0) to float32.
 * `n` must be a multiple of the dtype's block size and `bytes` must hold the whole blocks.
 * Writes into `out` (length >= n) when given, and returns it; otherwise returns a new Float32Array(n).
 */
export function dequantize(dtype: DType, bytes: Uint8Array, n: number, out?: Float32Array): Float32Array {
  checkCount('n', n);
  const nBlocks = blocksOf(dtype, n, 'element count');
  const need = nBlocks * layoutOf(dtype).blockBytes;
  if (bytes.length < need) {
    throw new InvalidArgumentError(`${dtype}: ${n} elements need ${need} bytes, only ${bytes.length} given`);
  }
  const dst = out ?? new Float32Array(n);
  if (dst.length < n) throw new InvalidArgumentError(`${dtype}: output holds ${dst.length} values, ${n} needed`);
  DECODERS[dtype](bytes, 0, nBlocks, dst, 0);
  return dst;
}

/**
 * Decodes row `rowIndex` of a row-major matrix whose rows hold `rowLength` elements each
 * (`rowBytes(dtype, rowLength)` bytes per row, rows back to back from byte 0 of `bytes`)
 * into `out[0 .. rowLength)`. Returns `out`.
 */
export function dequantizeRow(dtype: DType, bytes: Uint8Array, rowIndex: number, rowLength: number, out: Float32Array): Float32Array {
  checkCount('rowIndex', rowIndex);
  const rb = rowBytes(dtype, rowLength);
  const start = rowIndex * rb;
  if (start + rb > bytes.length) {
    throw new InvalidArgumentError(`${dtype}: row ${rowIndex} (bytes ${start}..${start + rb}) is past the end of ${bytes.length} bytes`);
  }
  if (out.length < rowLength) throw new InvalidArgumentError(`${dtype}: output holds ${out.length} values, row has ${rowLength}`);
  DECODERS[dtype](bytes, start, rowLength / layoutOf(dtype).blockElems, out, 0);
  return out;
}

/**
 * Encodes float32 values into `dtype`'s bytes (little-endian, blocks back to back).
 * f16/bf16 round to nearest even; q8_0/q4_0 reproduce gguf-py's `gguf.quants.quantize` bytes;
 * q4_k/q6_k reproduce ggml's C `quantize_row_q4_K_ref` / `quantize_row_q6_K_ref` bytes.
 * `values.length` must be a multiple of the block size (32 for q8_0/q4_0, 256 for q4_k/q6_k).
 */
export function quantize(dtype: DType, values: Float32Array): Uint8Array {
  blocksOf(dtype, values.length, 'element count');
  return ENCODERS[dtype](values);
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * A tensor's values as float32. For f32 data on a little-endian host with a 4-byte aligned start this is a
 * view of `t.data` without a copy (writes go through to the tensor); otherwise a newly decoded array.
 */
export function readTensorAsF32(t: HostTensor): Float32Array {
  const n = numElements(t.shape);
  if (t.dtype === 'f32' && LITTLE_ENDIAN_HOST && t.data.byteOffset % 4 === 0) {
    if (t.data.length < n * 4) {
      throw new InvalidArgumentError(`tensor "${t.name}": f32 shape [${t.shape.join(', ')}] needs ${n * 4} bytes, has ${t.data.length}`);
    }
    return new Float32Array(t.data.buffer, t.data.byteOffset, n);
  }
  try {
    return dequantize(t.dtype, t.data, n);
  } catch (e) {
    if (e instanceof InvalidArgumentError) throw new InvalidArgumentError(`tensor "${t.name}": ${e.message}`);
    throw e;
  }
}
