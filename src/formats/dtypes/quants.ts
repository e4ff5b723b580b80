// Legacy 32-element block quantizations: Q8_0 and Q4_0, bit-exact with llama.cpp.
//
// Dequantization follows ggml's dequantize_row_q8_0 / dequantize_row_q4_0 (identical to gguf-py's numpy code):
// every product is exact in float32 here, and Math.fround makes the float32 rounding explicit anyway.
// Quantization follows gguf-py's gguf.quants.quantize (llama.cpp c392e509), which the golden file records:
// see the notes on each function for the exact rounding recipe.

import { DTYPE_LAYOUT } from '../tensor.js';
import { f16BitsToF32, f32ToF16Bits } from './half.js';

const fr = Math.fround;

// ---------------------------------------------------------------------------------------------
// Q8_0 block, 34 bytes, 32 elements:
//   @0  d   f16 (little-endian)
//   @2  qs  int8[32]
//   y[j] = d * qs[j]
export const Q8_0_BLOCK_ELEMS = 32;
export const Q8_0_BLOCK_BYTES = 2 + 32;

// ---------------------------------------------------------------------------------------------
// Q4_0 block, 18 bytes, 32 elements:
//   @0  d   f16 (little-endian)
//   @2  qs  u8[16]: low nibble of qs[j] = element j, high nibble = element j + 16 (j < 16)
//   y = d * (q - 8)
export const Q4_0_BLOCK_ELEMS = 32;
export const Q4_0_BLOCK_BYTES = 2 + 16;

function assertLayout(name: 'q8_0' | 'q4_0', elems: number, bytes: number): void {
  const l = DTYPE_LAYOUT[name];
  if (l.blockElems !== elems || l.blockBytes !== bytes) {
    throw new Error(`internal: ${name} block layout ${elems}/${bytes} disagrees with DTYPE_LAYOUT ${l.blockElems}/${l.blockBytes}`);
  }
}
assertLayout('q8_0', Q8_0_BLOCK_ELEMS, Q8_0_BLOCK_BYTES);
assertLayout('q4_0', Q4_0_BLOCK_ELEMS, Q4_0_BLOCK_BYTES);

function readF16(src: Uint8Array, p: number): number {
  return f16BitsToF32(src[p]! | (src[p + 1]! << 8));
}

function writeF16(dst: Uint8Array, p: number, x: number): void {
  const h = f32ToF16Bits(x);
  dst[p] = h & 0xff;
  dst[p + 1] = h >>> 8;
}

/** Dequantizes `nBlocks` Q8_0 blocks from `src` at byte `srcOff` into `out` at `outOff`. */
export function dequantizeQ8_0(src: Uint8Array, srcOff: number, nBlocks: number, out: Float32Array, outOff: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const p = srcOff + b * Q8_0_BLOCK_BYTES;
    const o = outOff + b * Q8_0_BLOCK_ELEMS;
    const d = readF16(src, p);
    for (let j = 0; j < 32; j++) {
      const q = (src[p + 2 + j]! << 24) >> 24; // int8
      out[o + j] = fr(d * q);
    }
  }
}

/** Dequantizes `nBlocks` Q4_0 blocks. */
export function dequantizeQ4_0(src: Uint8Array, srcOff: number, nBlocks: number, out: Float32Array, outOff: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const p = srcOff + b * Q4_0_BLOCK_BYTES;
    const o = outOff + b * Q4_0_BLOCK_ELEMS;
    const d = readF16(src, p);
    for (let j = 0; j < 16; j++) {
      const v = src[p + 2 + j]!;
      out[o + j] = fr(d * ((v & 15) - 8));
      out[o + j + 16] = fr(d * ((v >>> 4) - 8));
    }
  }
}

/**
 * Quantizes to Q8_0 exactly as gguf-py (and ggml's quantize_row_q8_0_ref):
 * amax = max|x|; d = fl(amax / 127); id = d ? fl(1 / d) : 0;
 * q = round-half-away-from-zero(fl(x * id)) as int8; stored d = f16(d) (round to nearest even).
 * `values.length` must be a multiple of 32.
 */
export function quantizeQ8_0(values: Float32Array): Uint8Array {
  const nBlocks = values.length / Q8_0_BLOCK_ELEMS;
  const out = new Uint8Array(nBlocks * Q8_0_BLOCK_BYTES);
  for (let b = 0; b < nBlocks; b++) {
    const x0 = b * 32;
    const p = b * Q8_0_BLOCK_BYTES;
    let amax = 0;
    for (let j = 0; j < 32; j++) {
      const a = Math.abs(values[x0 + j]!);
      if (a > amax) amax = a;
    }
    const d = fr(amax / 127);
    const id = d !== 0 ? fr(1 / d) : 0;
    writeF16(out, p, d);
    for (let j = 0; j < 32; j++) {
      const v = fr(values[x0 + j]! * id);
      // round half away from zero; |v| + 0.5 is exact in float64 for a float32 v
      const r = v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
      out[p + 2 + j] = r & 0xff;
    }
  }
  return out;
}

/**
 * Quantizes to Q4_0 exactly as gguf-py:
 * max = the FIRST element with the largest |x|, sign kept; d = fl(max / -8); id = d ? fl(1 / d) : 0;
 * q = min(15, trunc(x * id + 8.5)) with x * id + 8.5 evaluated in float64 (gguf-py's choice;
 * ggml's C code evaluates fl(fl(x * id) + 8.5f) and can differ in rare blocks); stored d = f16(d).
 * The sign trick makes the largest-magnitude element map to q = 0 exactly; its mirror image clamps to 15.
 */
export function quantizeQ4_0(values: Float32Array): Uint8Array {
  const nBlocks = values.length / Q4_0_BLOCK_ELEMS;
  const out = new Uint8Array(nBlocks * Q4_0_BLOCK_BYTES);
  for (let b = 0; b < nBlocks; b++) {
    const x0 = b * 32;
    const p = b * Q4_0_BLOCK_BYTES;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = values[x0 + j]!;
      if (Math.abs(v) > amax) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = fr(max / -8);
    const id = d !== 0 ? fr(1 / d) : 0;
    writeF16(out, p, d);
    for (let j = 0; j < 16; j++) {
      // float32 * float32 is exact in float64; + 8.5 rounds once in float64, as numpy does.
      const q0 = Math.min(15, Math.trunc(values[x0 + j]! * id + 8.5));
      const q1 = Math.min(15, Math.trunc(values[x0 + j + 16]! * id + 8.5));
      out[p + 2 + j] = (q0 & 15) | ((q1 & 15) << 4);
    }
  }
  return out;
}
