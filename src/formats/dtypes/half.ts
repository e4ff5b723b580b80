// Half-precision conversions: IEEE 754 binary16 (f16) and bfloat16 (bf16) to and from float32.
//
// Everything works on bit patterns with integer math, so results are exact and independent of the
// host's float environment:
// - f16 -> f32 is exact (every f16, subnormals included, is a float32); a 65536-entry table of float32
//   bit patterns makes decoding one lookup per element.
// - f32 -> f16 rounds to nearest, ties to even, keeps subnormals, overflows to Inf at >= 65520,
//   keeps the sign of zero, and turns NaN into a quiet NaN (top 9 payload bits kept, quiet bit set).
//   This is numpy's float32 -> float16 cast and ggml's GGML_FP32_TO_FP16.
// - bf16 -> f32 is `bits << 16`.
// - f32 -> bf16 is ggml / gguf-py's rounding: (u + 0x7FFF + ((u >> 16) & 1)) >> 16, with NaN made quiet.
//
// Inputs given as JS numbers are first rounded to float32 (the conversions are defined from float32).

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** The float32 bit pattern of `x` (rounded to float32 first). */
export function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0]!;
}

/** The float32 value whose bit pattern is `bits` (NaN payloads may not survive a JS number round trip). */
export function f32FromBits(bits: number): number {
  scratchU32[0] = bits >>> 0;
  return scratchF32[0]!;
}

// ---------------------------------------------------------------------------------------------
// f16 -> f32

/** The float32 bit pattern of the f16 bit pattern `h` (exact). */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0; // Inf / NaN (payload kept)
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0; // normal: rebias 15 -> 127
  if (mant === 0) return sign >>> 0; // +-0
  // subnormal: value = mant * 2^-24; normalise so the leading 1 is at bit 10
  let e = 113; // float32 biased exponent of 2^-14, decremented per shift
  while ((mant & 0x400) === 0) {
    mant <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((mant & 0x3ff) << 13)) >>> 0;
}

let f16TableU32: Uint32Array | null = null;
let f16TableF32: Float32Array | null = null;

/** A 65536-entry table of float32 bit patterns, indexed by f16 bit pattern (built once, 256 KiB). */
export function f16ToF32BitsTable(): Uint32Array {
  if (f16TableU32 === null) {
    const t = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) t[h] = f16BitsToF32Bits(h);
    f16TableU32 = t;
    f16TableF32 = new Float32Array(t.buffer);
  }
  return f16TableU32;
}

/** The same table viewed as float32 values. */
export function f16ToF32Table(): Float32Array {
  f16ToF32BitsTable();
  return f16TableF32!;
}

/** The value of the f16 bit pattern `h` as a number (exact). */
export function f16BitsToF32(h: number): number {
  return f16ToF32Table()[h & 0xffff]!;
}

// ---------------------------------------------------------------------------------------------
// f32 -> f16

/** f16 bit pattern of the float32 bit pattern `u`: round to nearest even, subnormals kept. */
export function f32BitsToF16Bits(u: number): number {
  u >>>= 0;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) {
    // Inf stays Inf; NaN becomes a quiet NaN keeping the top payload bits.
    return mant === 0 ? sign | 0x7c00 : sign | 0x7c00 | 0x200 | (mant >>> 13);
  }
  const e = exp - 127 + 15; // f16 biased exponent
  if (e >= 0x1f) return sign | 0x7c00; // overflow (>= 65536 before rounding)
  if (e <= 0) {
    // f16 subnormal or zero: result = round(m * 2^(e-14)) units of 2^-24, m with implicit bit
    if (e < -10) return sign; // < 2^-25: rounds to zero (2^-25 exactly is e = -10)
    const m = mant | 0x800000;
    const shift = 14 - e; // 14..24
    let q = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (q & 1) !== 0)) q++; // may carry into the smallest normal: correct
    return sign | q;
  }
  let q = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (q & 1) !== 0)) q++; // carry may reach 0x7c00 = Inf: correct
  return sign | q;
}

/** f16 bit pattern of `x` (rounded to float32 first, then to f16 with round-to-nearest-even). */
export function f32ToF16Bits(x: number): number {
  return f32BitsToF16Bits(f32Bits(x));
}

/** `x` rounded to the nearest f16 value, returned as a number. */
export function roundToF16(x: number): number {
  return f16BitsToF32(f32ToF16Bits(x));
}

// ---------------------------------------------------------------------------------------------
// bf16

/** float32 bit pattern of the bf16 bit pattern `b`. */
export function bf16BitsToF32Bits(b: number): number {
  return ((b & 0xffff) << 16) >>> 0;
}

/** The value of the bf16 bit pattern `b` as a number (exact). */
export function bf16BitsToF32(b: number): number {
  return f32FromBits(bf16BitsToF32Bits(b));
}

/** bf16 bit pattern of the float32 bit pattern `u`: round to nearest even; NaN made quiet. */
export function f32BitsToBf16Bits(u: number): number {
  u >>>= 0;
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) & 0xffff) | 0x40; // quiet NaN, payload top bits
  // u + 0x7fff + lsb <= 0xffffffff + 0x8000 fits a double exactly; no 32-bit overflow issue.
  return Math.floor((u + 0x7fff + ((u >>> 16) & 1)) / 65536) & 0xffff;
}

/** bf16 bit pattern of `x` (rounded to float32 first). */
export function f32ToBf16Bits(x: number): number {
  return f32BitsToBf16Bits(f32Bits(x));
}

// ---------------------------------------------------------------------------------------------
// Bulk conversions over little-endian byte buffers

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function u32View(out: Float32Array): Uint32Array {
  return new Uint32Array(out.buffer, out.byteOffset, out.length);
}

/** Decodes `n` little-endian f16 values from `src` at byte `srcOff` into `out` at `outOff` (bit-exact, NaN payloads kept). */
export function decodeF16(src: Uint8Array, srcOff: number, n: number, out: Float32Array, outOff: number): void {
  const table = f16ToF32BitsTable();
  const o = u32View(out);
  for (let i = 0, p = srcOff; i < n; i++, p += 2) o[outOff + i] = table[src[p]! | (src[p + 1]! << 8)]!;
}

/** Decodes `n` little-endian bf16 values (bit-exact). */
export function decodeBf16(src: Uint8Array, srcOff: number, n: number, out: Float32Array, outOff: number): void {
  const o = u32View(out);
  for (let i = 0, p = srcOff; i < n; i++, p += 2) o[outOff + i] = ((src[p]! << 16) | (src[p + 1]! << 24)) >>> 0;
}

/** Decodes `n` little-endian f32 values (bit-exact, works for any byte alignment and host endianness). */
export function decodeF32(src: Uint8Array, srcOff: number, n: number, out: Float32Array, outOff: number): void {
  if (LITTLE_ENDIAN && (src.byteOffset + srcOff) % 4 === 0) {
    // same-type TypedArray.set copies bytes, so NaN payloads survive
    out.set(new Float32Array(src.buffer, src.byteOffset + srcOff, n), outOff);
    return;
  }
  const o = u32View(out);
  for (let i = 0, p = srcOff; i < n; i++, p += 4) {
    o[outOff + i] = (src[p]! | (src[p + 1]! << 8) | (src[p + 2]! << 16) | (src[p + 3]! << 24)) >>> 0;
  }
}

/** Encodes float32 values as little-endian f16 (round to nearest even). */
export function encodeF16(values: Float32Array): Uint8Array {
  const u = u32View(values);
  const out = new Uint8Array(values.length * 2);
  for (let i = 0; i < values.length; i++) {
    const h = f32BitsToF16Bits(u[i]!);
    out[2 * i] = h & 0xff;
    out[2 * i + 1] = h >>> 8;
  }
  return out;
}

/** Encodes float32 values as little-endian bf16 (round to nearest even). */
export function encodeBf16(values: Float32Array): Uint8Array {
  const u = u32View(values);
  const out = new Uint8Array(values.length * 2);
  for (let i = 0; i < values.length; i++) {
    const b = f32BitsToBf16Bits(u[i]!);
    out[2 * i] = b & 0xff;
    out[2 * i + 1] = b >>> 8;
  }
  return out;
}

/** Encodes float32 values as little-endian f32 bytes (bit-exact). */
export function encodeF32(values: Float32Array): Uint8Array {
  const u = u32View(values);
  const out = new Uint8Array(values.length * 4);
  for (let i = 0; i < values.length; i++) {
    const w = u[i]!;
    out[4 * i] = w & 0xff;
    out[4 * i + 1] = (w >>> 8) & 0xff;
    out[4 * i + 2] = (w >>> 16) & 0xff;
    out[4 * i + 3] = w >>> 24;
  }
  return out;
}
