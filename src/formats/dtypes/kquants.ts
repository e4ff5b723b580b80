// K-quants (256-element super-blocks): Q4_K and Q6_K, bit-exact with llama.cpp.
//
// Dequantization follows ggml's dequantize_row_q4_K / dequantize_row_q6_K (= gguf-py's numpy code), with the
// float32 rounding order of the golden file's `semantics.layouts`: fl(.) is one float32 operation, no FMA.
// Quantization ports ggml's C reference quantizers quantize_row_q4_K_ref / quantize_row_q6_K_ref
// (llama.cpp c392e509, ggml-quants.c) operation by operation: every float expression of the C code is
// evaluated in float32 (Math.fround after each operation, left to right as C parses it); products and
// quotients of two float32 values are computed in float64 and rounded once, which equals the float32
// operation (float64 has more than 2*24+2 bits, so double rounding cannot occur for + - * / and sqrt).

import { DTYPE_LAYOUT } from '../tensor.js';
import { f16BitsToF32, f32ToF16Bits } from './half.js';

const fr = Math.fround;

export const QK_K = 256;

// ---------------------------------------------------------------------------------------------
// Q4_K super-block, 144 bytes, 256 elements = 8 sub-blocks of 32:
//   @0   d      f16  super-block scale for the 6-bit sub-block scales
//   @2   dmin   f16  super-block scale for the 6-bit sub-block mins
//   @4   scales u8[12]: 8 x (6-bit scale sc, 6-bit min mn), packed; with s = these 12 bytes:
//          j < 4:  sc = s[j] & 63,                          mn = s[j+4] & 63
//          j >= 4: sc = (s[j+4] & 15) | ((s[j-4] >> 6) << 4), mn = (s[j+4] >> 4) | ((s[j] >> 6) << 4)
//   @16  qs     u8[128]: element e: c = e >> 6, k = (e >> 5) & 1, l = e & 31, q = (qs[32c + l] >> 4k) & 15
//   y[e] = fl(fl(d * sc[j]) * q) - fl(dmin * mn[j]),  j = e >> 5
export const Q4_K_BLOCK_BYTES = 2 + 2 + 12 + 128;

// ---------------------------------------------------------------------------------------------
// Q6_K super-block, 210 bytes, 256 elements = 16 sub-blocks of 16:
//   @0   ql     u8[128]: low 4 bits; element e: h = e >> 7, k = (e >> 6) & 1, m = e & 63, lo = (ql[64h + m] >> 4k) & 15
//   @128 qh     u8[64]:  high 2 bits; s = (e >> 5) & 3, l = e & 31, hi = (qh[32h + l] >> 2s) & 3
//   @192 scales int8[16]: one per sub-block of 16
//   @208 d      f16
//   q = (lo | hi << 4) - 32;  y[e] = fl(fl(d * scales[e >> 4]) * q)
export const Q6_K_BLOCK_BYTES = 128 + 64 + 16 + 2;

function assertLayout(name: 'q4_k' | 'q6_k', bytes: number): void {
  const l = DTYPE_LAYOUT[name];
  if (l.blockElems !== QK_K || l.blockBytes !== bytes) {
    throw new Error(`internal: ${name} block layout ${QK_K}/${bytes} disagrees with DTYPE_LAYOUT ${l.blockElems}/${l.blockBytes}`);
  }
}
assertLayout('q4_k', Q4_K_BLOCK_BYTES);
assertLayout('q6_k', Q6_K_BLOCK_BYTES);

function readF16(src: Uint8Array, p: number): number {
  return f16BitsToF32(src[p]! | (src[p + 1]! << 8));
}

function writeF16(dst: Uint8Array, p: number, x: number): void {
  const h = f32ToF16Bits(x);
  dst[p] = h & 0xff;
  dst[p + 1] = h >>> 8;
}

/** ggml's get_scale_min_k4: the 6-bit scale (returned in [0]) and min ([1]) of sub-block j from the 12 packed bytes at s[p..]. */
function scaleMinK4(j: number, s: Uint8Array, p: number, res: Uint8Array): void {
  if (j < 4) {
    res[0] = s[p + j]! & 63;
    res[1] = s[p + j + 4]! & 63;
  } else {
    res[0] = (s[p + j + 4]! & 0xf) | ((s[p + j - 4]! >> 6) << 4);
    res[1] = (s[p + j + 4]! >> 4) | ((s[p + j]! >> 6) << 4);
  }
}

/** Dequantizes `nBlocks` Q4_K super-blocks from `src` at byte `srcOff` into `out` at `outOff`. */
export function dequantizeQ4_K(src: Uint8Array, srcOff: number, nBlocks: number, out: Float32Array, outOff: number): void {
  const sm = new Uint8Array(2);
  for (let b = 0; b < nBlocks; b++) {
    const p = srcOff + b * Q4_K_BLOCK_BYTES;
    let o = outOff + b * QK_K;
    const d = readF16(src, p);
    const dmin = readF16(src, p + 2);
    const qs = p + 16;
    for (let c = 0; c < 4; c++) {
      scaleMinK4(2 * c, src, p + 4, sm);
      const d1 = fr(d * sm[0]!);
      const m1 = fr(dmin * sm[1]!);
      scaleMinK4(2 * c + 1, src, p + 4, sm);
      const d2 = fr(d * sm[0]!);
      const m2 = fr(dmin * sm[1]!);
      const q = qs + 32 * c;
      for (let l = 0; l < 32; l++) out[o + l] = fr(fr(d1 * (src[q + l]! & 0xf)) - m1);
      o += 32;
      for (let l = 0; l < 32; l++) out[o + l] = fr(fr(d2 * (src[q + l]! >> 4)) - m2);
      o += 32;
    }
  }
}

/** Dequantizes `nBlocks` Q6_K super-blocks. */
export function dequantizeQ6_K(src: Uint8Array, srcOff: number, nBlocks: number, out: Float32Array, outOff: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const p = srcOff + b * Q6_K_BLOCK_BYTES;
    const d = readF16(src, p + 208);
    for (let h = 0; h < 2; h++) {
      const ql = p + 64 * h;
      const qh = p + 128 + 32 * h;
      const sc = p + 192 + 8 * h;
      const o = outOff + b * QK_K + 128 * h;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const vh = src[qh + l]!;
        const a = src[ql + l]!;
        const c = src[ql + l + 32]!;
        const q1 = ((a & 0xf) | ((vh & 3) << 4)) - 32;
        const q2 = ((c & 0xf) | (((vh >> 2) & 3) << 4)) - 32;
        const q3 = ((a >> 4) | (((vh >> 4) & 3) << 4)) - 32;
        const q4 = ((c >> 4) | (((vh >> 6) & 3) << 4)) - 32;
        out[o + l] = fr(fr(d * ((src[sc + is]! << 24) >> 24)) * q1);
        out[o + l + 32] = fr(fr(d * ((src[sc + is + 2]! << 24) >> 24)) * q2);
        out[o + l + 64] = fr(fr(d * ((src[sc + is + 4]! << 24) >> 24)) * q3);
        out[o + l + 96] = fr(fr(d * ((src[sc + is + 6]! << 24) >> 24)) * q4);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Quantizers: ports of ggml's C reference code.

const GROUP_MAX_EPS = fr(1e-15);
const F_0_1 = fr(0.1);

/**
 * ggml's nearest_int: adds 1.5 * 2^23 in float32 and reads the mantissa, i.e. round half to even
 * (valid for |x| <= 4194303 as in C). x is a float32 value; x + 12582912 is exact in float64 whenever it matters.
 */
function nearestInt(x: number): number {
  return fr(x + 12582912) - 12582912;
}

/**
 * ggml's make_qkx2_quants: asymmetric quantization of n values to [0, nmax] with a weighted least-squares
 * search over nstep + 1 candidate scales. Writes L, returns the scale; the (positive) min goes to theMin[0].
 */
function makeQkx2Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  weights: Float32Array,
  L: Uint8Array,
  lo: number,
  theMin: Float32Array,
  Laux: Uint8Array,
  rmin: number,
  rdelta: number,
  nstep: number,
  useMad: boolean,
): number {
  let min = x[xo]!;
  let max = x[xo]!;
  let sumW = weights[0]!;
  let sumX = fr(sumW * x[xo]!);
  for (let i = 1; i < n; i++) {
    const xi = x[xo + i]!;
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const w = weights[i]!;
    sumW = fr(sumW + w);
    sumX = fr(sumX + fr(w * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    theMin[0] = -min;
    return 0;
  }
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i]!;
    const l = nearestInt(fr(iscale * fr(xi - min)));
    const li = Math.max(0, Math.min(nmax, l));
    L[lo + i] = li;
    let diff = fr(fr(fr(scale * li) + min) - xi);
    diff = useMad ? Math.abs(diff) : fr(diff * diff);
    bestError = fr(bestError + fr(weights[i]! * diff));
  }
  if (nstep < 1) {
    theMin[0] = -min;
    return scale;
  }
  for (let is = 0; is <= nstep; is++) {
    iscale = fr(fr(fr(rmin + fr(rdelta * is)) + nmax) / fr(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i]!;
      let l = nearestInt(fr(iscale * fr(xi - min)));
      l = Math.max(0, Math.min(nmax, l));
      Laux[i] = l;
      const w = weights[i]!;
      const wl = fr(w * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * xi));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        let diff = fr(fr(fr(thisScale * Laux[i]!) + thisMin) - x[xo + i]!);
        diff = useMad ? Math.abs(diff) : fr(diff * diff);
        curError = fr(curError + fr(weights[i]! * diff));
      }
      if (curError < bestError) {
        for (let i = 0; i < n; i++) L[lo + i] = Laux[i]!;
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  theMin[0] = -min;
  return scale;
}

/**
 * Quantizes to Q4_K as ggml's quantize_row_q4_K_ref (no importance weights). Per sub-block of 32:
 * weights = sqrt(mean(x^2)) + |x|, make_qkx2_quants(nmax 15, rmin -1, rdelta 0.1, 20 steps);
 * the 8 scales and mins are quantized to 6 bits against d = max_scale/63, dmin = max_min/63 (stored as f16),
 * then every element is re-quantized against the stored scales: q = clamp(nearest_int((x + dm) / d), 0, 15).
 * `values.length` must be a multiple of 256.
 */
export function quantizeQ4_K(values: Float32Array): Uint8Array {
  const nb = values.length / QK_K;
  const out = new Uint8Array(nb * Q4_K_BLOCK_BYTES);
  const L = new Uint8Array(QK_K);
  const Laux = new Uint8Array(32);
  const weights = new Float32Array(32);
  const mins = new Float32Array(8);
  const scales = new Float32Array(8);
  const theMin = new Float32Array(1);
  const sm = new Uint8Array(2);
  for (let i = 0; i < nb; i++) {
    const x0 = i * QK_K;
    const p = i * Q4_K_BLOCK_BYTES;
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 8; j++) {
      const xo = x0 + 32 * j;
      let sumX2 = 0;
      for (let l = 0; l < 32; l++) sumX2 = fr(sumX2 + fr(values[xo + l]! * values[xo + l]!));
      const avX = fr(Math.sqrt(fr(sumX2 / 32)));
      for (let l = 0; l < 32; l++) weights[l] = fr(avX + Math.abs(values[xo + l]!));
      scales[j] = makeQkx2Quants(32, 15, values, xo, weights, L, 32 * j, theMin, Laux, -1, F_0_1, 20, false);
      mins[j] = theMin[0]!;
      const scale = scales[j]!;
      if (scale > maxScale) maxScale = scale;
      const min = mins[j]!;
      if (min > maxMin) maxMin = min;
    }
    const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
    const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
    const s = p + 4;
    for (let j = 0; j < 8; j++) {
      const ls = Math.min(63, nearestInt(fr(invScale * scales[j]!)) & 0xff); // uint8_t conversion, then MIN
      const lm = Math.min(63, nearestInt(fr(invMin * mins[j]!)) & 0xff);
      if (j < 4) {
        out[s + j] = ls;
        out[s + j + 4] = lm;
      } else {
        out[s + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
        out[s + j - 4] |= (ls >> 4) << 6;
        out[s + j] |= (lm >> 4) << 6;
      }
    }
    writeF16(out, p, fr(maxScale / 63));
    writeF16(out, p + 2, fr(maxMin / 63));
    const dAll = readF16(out, p);
    const dminAll = readF16(out, p + 2);
    for (let j = 0; j < 8; j++) {
      scaleMinK4(j, out, s, sm);
      const d = fr(dAll * sm[0]!);
      if (d === 0) continue;
      const dm = fr(dminAll * sm[1]!);
      for (let ii = 0; ii < 32; ii++) {
        const l = nearestInt(fr(fr(values[x0 + 32 * j + ii]! + dm) / d));
        L[32 * j + ii] = Math.max(0, Math.min(15, l));
      }
    }
    const q = p + 16;
    for (let c = 0; c < 4; c++) {
      for (let l = 0; l < 32; l++) out[q + 32 * c + l] = L[64 * c + l]! | (L[64 * c + l + 32]! << 4);
    }
  }
  return out;
}

/**
 * ggml's make_qx_quants with rmse_type 1 and no importance weights (weights w = x^2): symmetric quantization
 * of n values to [-nmax, nmax - 1] (stored as l + nmax in L), searching 18 scales around nmax / max.
 */
function makeQxQuantsRmse1(n: number, nmax: number, x: Float32Array, xo: number, L: Uint8Array, lo: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]!);
    if (ax > amax) {
      amax = ax;
      max = x[xo + i]!;
    }
  }
  if (amax < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    return 0;
  }
  let iscale = fr(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i]!;
    let l = nearestInt(fr(iscale * xi));
    l = Math.max(-nmax, Math.min(nmax - 1, l));
    L[lo + i] = l + nmax;
    const w = fr(xi * xi);
    sumlx = fr(sumlx + fr(fr(w * xi) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  let scale = suml2 !== 0 ? fr(sumlx / suml2) : 0;
  let best = fr(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = fr(-fr(nmax + fr(F_0_1 * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i]!;
      let l = nearestInt(fr(iscale * xi));
      l = Math.max(-nmax, Math.min(nmax - 1, l));
      const w = fr(xi * xi);
      sumlx = fr(sumlx + fr(fr(w * xi) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      for (let i = 0; i < n; i++) {
        const l = nearestInt(fr(iscale * x[xo + i]!));
        L[lo + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, l));
      }
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

/**
 * Quantizes to Q6_K as ggml's quantize_row_q6_K_ref (no importance weights). Per sub-block of 16:
 * make_qx_quants(nmax 32, rmse_type 1); the scale with the largest |scale| sets iscale = -128 / max_scale,
 * d = f16(1 / iscale), int8 sub-block scales = min(127, nearest_int(iscale * scale)); every element is then
 * re-quantized as clamp(nearest_int(x / fl(d * scale)), -32, 31) + 32. An all-(near-)zero super-block is all zero bytes.
 * `values.length` must be a multiple of 256.
 */
export function quantizeQ6_K(values: Float32Array): Uint8Array {
  const nb = values.length / QK_K;
  const out = new Uint8Array(nb * Q6_K_BLOCK_BYTES);
  const L = new Uint8Array(QK_K);
  const scales = new Float32Array(16);
  for (let i = 0; i < nb; i++) {
    const x0 = i * QK_K;
    const p = i * Q6_K_BLOCK_BYTES;
    let maxScale = 0;
    let maxAbsScale = 0;
    for (let ib = 0; ib < 16; ib++) {
      const scale = makeQxQuantsRmse1(16, 32, values, x0 + 16 * ib, L, 16 * ib);
      scales[ib] = scale;
      const absScale = Math.abs(scale);
      if (absScale > maxAbsScale) {
        maxAbsScale = absScale;
        maxScale = scale;
      }
    }
    if (maxAbsScale < GROUP_MAX_EPS) continue; // block stays all zero bytes (d = +0)
    const iscale = fr(-128 / maxScale);
    writeF16(out, p + 208, fr(1 / iscale));
    for (let ib = 0; ib < 16; ib++) out[p + 192 + ib] = Math.min(127, nearestInt(fr(iscale * scales[ib]!))) & 0xff;
    const dAll = readF16(out, p + 208);
    for (let j = 0; j < 16; j++) {
      const d = fr(dAll * ((out[p + 192 + j]! << 24) >> 24));
      if (d === 0) continue;
      for (let ii = 0; ii < 16; ii++) {
        let l = nearestInt(fr(values[x0 + 16 * j + ii]! / d));
        l = Math.max(-32, Math.min(31, l));
        L[16 * j + ii] = l + 32;
      }
    }
    for (let h = 0; h < 2; h++) {
      const ql = p + 64 * h;
      const qh = p + 128 + 32 * h;
      const j = 128 * h;
      for (let l = 0; l < 32; l++) {
        const q1 = L[j + l]! & 0xf;
        const q2 = L[j + l + 32]! & 0xf;
        const q3 = L[j + l + 64]! & 0xf;
        const q4 = L[j + l + 96]! & 0xf;
        out[ql + l] = q1 | (q3 << 4);
        out[ql + l + 32] = q2 | (q4 << 4);
        out[qh + l] = (L[j + l]! >> 4) | ((L[j + l + 32]! >> 4) << 2) | ((L[j + l + 64]! >> 4) << 4) | ((L[j + l + 96]! >> 4) << 6);
      }
    }
  }
  return out;
}
