// Matrix products for the `matmul` op: y[T, N] = x[T, K] @ W[N, K]^T, W in any stored dtype.
//
// dtype codes (shared with ../index.ts): 0 f32, 1 f16, 2 bf16, 3 q8_0, 4 q4_0, 5 q4_k, 6 q6_k.
// Block layouts read here (little-endian, blocks back to back along a row; see src/formats/dtypes):
//   f16/bf16  2 bytes per element
//   q8_0  34 B / 32: f16 d, int8 q[32];                            y = d * q
//   q4_0  18 B / 32: f16 d, u8 qs[16]; q[j] = qs[j] & 15, q[j+16] = qs[j] >> 4;   y = d * (q - 8)
//   q4_k 144 B / 256: f16 d, f16 dmin, u8 scales[12] (8 x 6-bit scale sc / min m, packed as
//        get_scale_min_k4), u8 qs[128]: chunk c (64 elements) = qs[32c .. 32c+32), low nibbles are
//        elements 64c + l, high nibbles 64c + 32 + l;                y = d*sc[e>>5] * q - dmin*m[e>>5]
//   q6_k 210 B / 256: u8 ql[128], u8 qh[64], int8 scales[16], f16 d. Half h (128 elements), lane l < 32:
//        q(l+0)  = ql[64h+l]    & 15 | (qh[32h+l]      & 3) << 4
//        q(l+32) = ql[64h+32+l] & 15 | (qh[32h+l] >> 2 & 3) << 4
//        q(l+64) = ql[64h+l]   >> 4  | (qh[32h+l] >> 4 & 3) << 4
//        q(l+96) = ql[64h+32+l] >> 4 | (qh[32h+l] >> 6)     << 4;      y = d * scales[e>>4] * (q - 32)
//
// Three families of kernels:
//  - deq_row: one row of W to f32, bit-exact with src/formats/dtypes (same float32 operations, no FMA).
//  - GEMV (T = 1): f32/f16/bf16 stream W and convert in registers; the block-quantized types take the
//    activation row quantized to int8 in blocks of 32 (quant_q8: per-block scale dx = max|x|/127 and the
//    block sum of the int8 values, as ggml's q8_0/q8_K activations) and do integer dot products per block.
//  - GEMM (T > 1): a 4x2 register-blocked micro-kernel over K-contiguous rows (4 rows of x against
//    2 rows of W, 8 f32x4 accumulators reduced at the end). f32 W is used in place; every other dtype is
//    dequantized one panel of NB rows at a time into f32 scratch, and each panel serves all T rows.
// The backend now runs the block-quantized GEMVs of qgemm.ts (4 rows per pass for every type, prefetching)
// and, in the relaxed build, qgemm.ts's integer GEMM for q4_0/q4_k; the GEMVs here stay as the reference
// point of scripts/bench-kernels.ts, as tail kernels (q4_k, q6_k), and gemv_q8_0 for q8_0 tensors holding a
// -128 quant in the relaxed build.

import { dot16s, dot32u4, fma4, hsum, hsumi, f16, f16at4, loadF16x4, loadBf16x4 } from './common';

/** Bytes of one row of K elements. */
// @ts-ignore: decorator
@inline function rowBytes(dt: i32, K: i32): usize {
  switch (dt) {
    case 0: return <usize>K << 2;
    case 1: case 2: return <usize>K << 1;
    case 3: return <usize>(K >> 5) * 34;
    case 4: return <usize>(K >> 5) * 18;
    case 5: return <usize>(K >> 8) * 144;
    default: return <usize>(K >> 8) * 210;
  }
}

// ---------------------------------------------------------------------------------------------
// Dequantization of one row

/** 16 int8 lanes -> 16 f32 (d * q) stored at dst. */
// @ts-ignore: decorator
@inline function storeScaledS8(q: v128, d: v128, dst: usize): void {
  const lo = i16x8.extend_low_i8x16_s(q);
  const hi = i16x8.extend_high_i8x16_s(q);
  v128.store(dst, f32x4.mul(d, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo))));
  v128.store(dst, f32x4.mul(d, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo))), 16);
  v128.store(dst, f32x4.mul(d, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi))), 32);
  v128.store(dst, f32x4.mul(d, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi))), 48);
}

/** 16 u8 lanes -> 16 f32 (d * q - m) stored at dst (two roundings, as the reference). */
// @ts-ignore: decorator
@inline function storeScaledU8Min(q: v128, d: v128, m: v128, dst: usize): void {
  const lo = i16x8.extend_low_i8x16_u(q);
  const hi = i16x8.extend_high_i8x16_u(q);
  v128.store(dst, f32x4.sub(f32x4.mul(d, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_u(lo))), m));
  v128.store(dst, f32x4.sub(f32x4.mul(d, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_u(lo))), m), 16);
  v128.store(dst, f32x4.sub(f32x4.mul(d, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_u(hi))), m), 32);
  v128.store(dst, f32x4.sub(f32x4.mul(d, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_u(hi))), m), 48);
}

/** ggml's get_scale_min_k4: sub-block j's 6-bit scale (low byte) and min (second byte). */
// @ts-ignore: decorator
@inline function scaleMinK4(s: usize, j: i32): u32 {
  if (j < 4) return (<u32>load<u8>(s + j) & 63) | ((<u32>load<u8>(s + j + 4) & 63) << 8);
  const sc = (<u32>load<u8>(s + j + 4) & 15) | ((<u32>load<u8>(s + j - 4) >> 6) << 4);
  const mn = (<u32>load<u8>(s + j + 4) >> 4) | ((<u32>load<u8>(s + j) >> 6) << 4);
  return sc | (mn << 8);
}


/** Row `src` (K elements of dtype dt) to f32 at dst. Bit-exact with src/formats/dtypes dequantizers. */
export function deq_row(dt: i32, src: usize, K: i32, dst: usize): void {
  let i = 0;
  switch (dt) {
    case 0: {
      memory.copy(dst, src, <usize>K << 2);
      break;
    }
    case 1: {
      for (; i + 4 <= K; i += 4) v128.store(dst + (<usize>i << 2), loadF16x4(src + (<usize>i << 1)));
      for (; i < K; i++) store<f32>(dst + (<usize>i << 2), f16(load<u16>(src + (<usize>i << 1))));
      break;
    }
    case 2: {
      for (; i + 4 <= K; i += 4) v128.store(dst + (<usize>i << 2), loadBf16x4(src + (<usize>i << 1)));
      for (; i < K; i++) store<u32>(dst + (<usize>i << 2), <u32>load<u16>(src + (<usize>i << 1)) << 16);
      break;
    }
    case 3: {
      for (let b = 0; b < K >> 5; b++) {
        const p = src + <usize>b * 34;
        const o = dst + (<usize>b << 7);
        const d = f32x4.splat(f16(load<u16>(p)));
        storeScaledS8(v128.load(p, 2), d, o);
        storeScaledS8(v128.load(p, 18), d, o + 64);
      }
      break;
    }
    case 4: {
      const m4 = i8x16.splat(15);
      const e8 = i8x16.splat(8);
      for (let b = 0; b < K >> 5; b++) {
        const p = src + <usize>b * 18;
        const o = dst + (<usize>b << 7);
        const d = f32x4.splat(f16(load<u16>(p)));
        const q = v128.load(p, 2);
        storeScaledS8(i8x16.sub(v128.and(q, m4), e8), d, o);
        storeScaledS8(i8x16.sub(i8x16.shr_u(q, 4), e8), d, o + 64);
      }
      break;
    }
    case 5: {
      const m4 = i8x16.splat(15);
      for (let b = 0; b < K >> 8; b++) {
        const p = src + <usize>b * 144;
        const d = f16(load<u16>(p));
        const dmin = f16(load<u16>(p + 2));
        for (let c = 0; c < 4; c++) {
          const sm1 = scaleMinK4(p + 4, 2 * c);
          const sm2 = scaleMinK4(p + 4, 2 * c + 1);
          const d1 = f32x4.splat(d * <f32>(sm1 & 255));
          const m1 = f32x4.splat(dmin * <f32>(sm1 >> 8));
          const d2 = f32x4.splat(d * <f32>(sm2 & 255));
          const m2 = f32x4.splat(dmin * <f32>(sm2 >> 8));
          const qa = v128.load(p + 16 + 32 * c);
          const qb = v128.load(p + 16 + 32 * c, 16);
          const o = dst + ((<usize>b << 8) + 64 * c) * 4;
          storeScaledU8Min(v128.and(qa, m4), d1, m1, o);
          storeScaledU8Min(v128.and(qb, m4), d1, m1, o + 64);
          storeScaledU8Min(i8x16.shr_u(qa, 4), d2, m2, o + 128);
          storeScaledU8Min(i8x16.shr_u(qb, 4), d2, m2, o + 192);
        }
      }
      break;
    }
    default: {
      const m4 = i8x16.splat(15);
      const m3 = i8x16.splat(3);
      const s32 = i8x16.splat(32);
      for (let b = 0; b < K >> 8; b++) {
        const p = src + <usize>b * 210;
        const d = f16(load<u16>(p + 208));
        for (let h = 0; h < 2; h++) {
          const ql = p + 64 * h;
          const qh = p + 128 + 32 * h;
          const sc = p + 192 + 8 * h;
          const o = dst + ((<usize>b << 8) + 128 * h) * 4;
          for (let l0 = 0; l0 < 32; l0 += 16) {
            const A = v128.load(ql + l0);
            const C = v128.load(ql + 32 + l0);
            const H = v128.load(qh + l0);
            const q1 = i8x16.sub(v128.or(v128.and(A, m4), i8x16.shl(v128.and(H, m3), 4)), s32);
            const q2 = i8x16.sub(v128.or(v128.and(C, m4), i8x16.shl(v128.and(i8x16.shr_u(H, 2), m3), 4)), s32);
            const q3 = i8x16.sub(v128.or(i8x16.shr_u(A, 4), i8x16.shl(v128.and(i8x16.shr_u(H, 4), m3), 4)), s32);
            const q4 = i8x16.sub(v128.or(i8x16.shr_u(C, 4), i8x16.shl(i8x16.shr_u(H, 6), 4)), s32);
            const is = l0 >> 4;
            storeScaledS8(q1, f32x4.splat(d * <f32>load<i8>(sc + is)), o + l0 * 4);
            storeScaledS8(q2, f32x4.splat(d * <f32>load<i8>(sc + is + 2)), o + (32 + l0) * 4);
            storeScaledS8(q3, f32x4.splat(d * <f32>load<i8>(sc + is + 4)), o + (64 + l0) * 4);
            storeScaledS8(q4, f32x4.splat(d * <f32>load<i8>(sc + is + 6)), o + (96 + l0) * 4);
          }
        }
      }
    }
  }
}

/** Row `row` of a [rows, K] matrix of dtype dt to f32 (embedding lookup, panels). */
export function deq_matrix_row(dt: i32, w: usize, row: i32, K: i32, dst: usize): void {
  deq_row(dt, w + <usize>row * rowBytes(dt, K), K, dst);
}

// ---------------------------------------------------------------------------------------------
// Dot products over K-contiguous rows. `dt` is a literal at every call site (0 f32, 1 f16, 2 bf16) so
// the inlined branches fold away.

// @ts-ignore: decorator
@inline function ldw4(dt: i32, p: usize, k: i32): v128 {
  if (dt == 0) return v128.load(p + (<usize>k << 2));
  if (dt == 1) return loadF16x4(p + (<usize>k << 1));
  return loadBf16x4(p + (<usize>k << 1));
}

// @ts-ignore: decorator
@inline function ldw1(dt: i32, p: usize, k: i32): f32 {
  if (dt == 0) return load<f32>(p + (<usize>k << 2));
  if (dt == 1) return f16(load<u16>(p + (<usize>k << 1)));
  return reinterpret<f32>(<u32>load<u16>(p + (<usize>k << 1)) << 16);
}

/** y[0..4) = dot(x, w_r) for 4 rows of W starting at w (row stride rb bytes). */
// @ts-ignore: decorator
@inline function dot1x4(dt: i32, x: usize, w: usize, rb: usize, K: i32, y: usize): void {
  const w1 = w + rb, w2 = w1 + rb, w3 = w2 + rb;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let k = 0;
  for (; k + 4 <= K; k += 4) {
    const xv = v128.load(x + (<usize>k << 2));
    a0 = fma4(xv, ldw4(dt, w, k), a0);
    a1 = fma4(xv, ldw4(dt, w1, k), a1);
    a2 = fma4(xv, ldw4(dt, w2, k), a2);
    a3 = fma4(xv, ldw4(dt, w3, k), a3);
  }
  let s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
  for (; k < K; k++) {
    const xs = load<f32>(x + (<usize>k << 2));
    s0 += xs * ldw1(dt, w, k);
    s1 += xs * ldw1(dt, w1, k);
    s2 += xs * ldw1(dt, w2, k);
    s3 += xs * ldw1(dt, w3, k);
  }
  store<f32>(y, s0);
  store<f32>(y, s1, 4);
  store<f32>(y, s2, 8);
  store<f32>(y, s3, 12);
}

// @ts-ignore: decorator
@inline function dot1x1(dt: i32, x: usize, w: usize, K: i32): f32 {
  let a0 = f32x4.splat(0);
  let k = 0;
  for (; k + 4 <= K; k += 4) a0 = fma4(v128.load(x + (<usize>k << 2)), ldw4(dt, w, k), a0);
  let s = hsum(a0);
  for (; k < K; k++) s += load<f32>(x + (<usize>k << 2)) * ldw1(dt, w, k);
  return s;
}

// @ts-ignore: decorator
@inline function gemvDense(dt: i32, w: usize, x: usize, y: usize, N: i32, K: i32): void {
  const rb = rowBytes(dt, K);
  let n = 0;
  for (; n + 4 <= N; n += 4) dot1x4(dt, x, w + <usize>n * rb, rb, K, y + (<usize>n << 2));
  for (; n < N; n++) store<f32>(y + (<usize>n << 2), dot1x1(dt, x, w + <usize>n * rb, K));
}

/** y[N] = W[N, K] x[K], W f32 (4 rows at a time, x loaded once per 4 rows). */
export function gemv_f32(w: usize, x: usize, y: usize, N: i32, K: i32): void {
  gemvDense(0, w, x, y, N, K);
}

/** y[N] = W[N, K] x[K], W f16 decoded in registers (f16x4). */
export function gemv_f16(w: usize, x: usize, y: usize, N: i32, K: i32): void {
  gemvDense(1, w, x, y, N, K);
}

/** y[N] = W[N, K] x[K], W bf16 (<< 16 in registers). */
export function gemv_bf16(w: usize, x: usize, y: usize, N: i32, K: i32): void {
  gemvDense(2, w, x, y, N, K);
}

// ---------------------------------------------------------------------------------------------
// GEMM micro-kernels on f32 rows (row stride K floats for x and w; y row stride ldy floats)

/** 4 rows of x against 2 rows of w: 8 outputs. */
// @ts-ignore: decorator
@inline function mk4x2(x: usize, w: usize, K: i32, y: usize, ldy: usize): void {
  const rb = <usize>K << 2;
  const x1 = x + rb, x2 = x1 + rb, x3 = x2 + rb;
  const w1 = w + rb;
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  let k = 0;
  for (; k + 4 <= K; k += 4) {
    const o = <usize>k << 2;
    const b0 = v128.load(w + o);
    const b1 = v128.load(w1 + o);
    let a = v128.load(x + o);
    c00 = fma4(a, b0, c00);
    c01 = fma4(a, b1, c01);
    a = v128.load(x1 + o);
    c10 = fma4(a, b0, c10);
    c11 = fma4(a, b1, c11);
    a = v128.load(x2 + o);
    c20 = fma4(a, b0, c20);
    c21 = fma4(a, b1, c21);
    a = v128.load(x3 + o);
    c30 = fma4(a, b0, c30);
    c31 = fma4(a, b1, c31);
  }
  let s00 = hsum(c00), s01 = hsum(c01), s10 = hsum(c10), s11 = hsum(c11);
  let s20 = hsum(c20), s21 = hsum(c21), s30 = hsum(c30), s31 = hsum(c31);
  for (; k < K; k++) {
    const o = <usize>k << 2;
    const b0 = load<f32>(w + o), b1 = load<f32>(w1 + o);
    const a0 = load<f32>(x + o), a1 = load<f32>(x1 + o), a2 = load<f32>(x2 + o), a3 = load<f32>(x3 + o);
    s00 += a0 * b0; s01 += a0 * b1;
    s10 += a1 * b0; s11 += a1 * b1;
    s20 += a2 * b0; s21 += a2 * b1;
    s30 += a3 * b0; s31 += a3 * b1;
  }
  const ry = ldy << 2;
  store<f32>(y, s00); store<f32>(y, s01, 4);
  store<f32>(y + ry, s10); store<f32>(y + ry, s11, 4);
  store<f32>(y + 2 * ry, s20); store<f32>(y + 2 * ry, s21, 4);
  store<f32>(y + 3 * ry, s30); store<f32>(y + 3 * ry, s31, 4);
}

/** 4 rows of x against 1 row of w. */
// @ts-ignore: decorator
@inline function mk4x1(x: usize, w: usize, K: i32, y: usize, ldy: usize): void {
  const rb = <usize>K << 2;
  const ry = ldy << 2;
  store<f32>(y, dot1x1(0, x, w, K));
  store<f32>(y + ry, dot1x1(0, x + rb, w, K));
  store<f32>(y + 2 * ry, dot1x1(0, x + 2 * rb, w, K));
  store<f32>(y + 3 * ry, dot1x1(0, x + 3 * rb, w, K));
}

/** y[t, j] (row stride ldy) = x[t, :] . w[j, :] for t < T, j < nb; x and w f32, K-contiguous. */
function gemmBlock(x: usize, w: usize, y: usize, T: i32, nb: i32, K: i32, ldy: i32): void {
  const rb = <usize>K << 2;
  const ry = <usize>ldy << 2;
  let t = 0;
  for (; t + 4 <= T; t += 4) {
    const xt = x + <usize>t * rb;
    const yt = y + <usize>t * ry;
    let j = 0;
    for (; j + 2 <= nb; j += 2) mk4x2(xt, w + <usize>j * rb, K, yt + (<usize>j << 2), ldy);
    if (j < nb) mk4x1(xt, w + <usize>j * rb, K, yt + (<usize>j << 2), ldy);
  }
  for (; t < T; t++) {
    const xt = x + <usize>t * rb;
    const yt = y + <usize>t * ry;
    let j = 0;
    for (; j + 4 <= nb; j += 4) dot1x4(0, xt, w + <usize>j * rb, rb, K, yt + (<usize>j << 2));
    for (; j < nb; j++) store<f32>(yt + (<usize>j << 2), dot1x1(0, xt, w + <usize>j * rb, K));
  }
}

/** y[T, N] = x[T, K] @ W[N, K]^T with f32 W, in panels of NB rows of W (NB*K*4 bytes ~ L2-resident). */
export function gemm_f32(x: usize, w: usize, y: usize, T: i32, N: i32, K: i32, NB: i32): void {
  gemm_f32_ld(x, w, y, T, N, K, NB, N);
}

/** gemm_f32 with an explicit row stride ldy (floats) of y: a thread computes a block of N columns. */
export function gemm_f32_ld(x: usize, w: usize, y: usize, T: i32, N: i32, K: i32, NB: i32, ldy: i32): void {
  for (let n0 = 0; n0 < N; n0 += NB) {
    const nb = min(NB, N - n0);
    gemmBlock(x, w + <usize>n0 * (<usize>K << 2), y + (<usize>n0 << 2), T, nb, K, ldy);
  }
}

/** y[T, N] = x[T, K] @ W[N, K]^T for any dtype: each panel of NB rows is dequantized to f32 at
 *  `panel` (NB*K*4 bytes of scratch) once, then multiplied against all T rows. */
export function gemm_deq(dt: i32, x: usize, w: usize, y: usize, T: i32, N: i32, K: i32, panel: usize, NB: i32): void {
  gemm_deq_ld(dt, x, w, y, T, N, K, panel, NB, N);
}

/** gemm_deq with an explicit row stride ldy (floats) of y. */
export function gemm_deq_ld(dt: i32, x: usize, w: usize, y: usize, T: i32, N: i32, K: i32, panel: usize, NB: i32, ldy: i32): void {
  const rb = rowBytes(dt, K);
  for (let n0 = 0; n0 < N; n0 += NB) {
    const nb = min(NB, N - n0);
    for (let j = 0; j < nb; j++) deq_row(dt, w + <usize>(n0 + j) * rb, K, panel + <usize>j * (<usize>K << 2));
    gemmBlock(x, panel, y + (<usize>n0 << 2), T, nb, K, ldy);
  }
}

// ---------------------------------------------------------------------------------------------
// Integer GEMV for block-quantized W. The activation row is first quantized by quant_q8.

/** x[K] (K % 32 == 0) -> xq int8[K], xd f32[K/32] (scale: x ~ xd * xq), xs f32[K/32] (sum of xq per block).
 *  dx = max|x| / 127, q = round-to-nearest-even(x / dx), as ggml's quantize_row_q8_0 but with an f32 scale. */
export function quant_q8(x: usize, K: i32, xq: usize, xd: usize, xs: usize): void {
  for (let b = 0; b < K >> 5; b++) {
    const p = x + (<usize>b << 7);
    const v0 = v128.load(p), v1 = v128.load(p, 16), v2 = v128.load(p, 32), v3 = v128.load(p, 48);
    const v4 = v128.load(p, 64), v5 = v128.load(p, 80), v6 = v128.load(p, 96), v7 = v128.load(p, 112);
    let m = f32x4.max(f32x4.max(f32x4.abs(v0), f32x4.abs(v1)), f32x4.max(f32x4.abs(v2), f32x4.abs(v3)));
    m = f32x4.max(m, f32x4.max(f32x4.max(f32x4.abs(v4), f32x4.abs(v5)), f32x4.max(f32x4.abs(v6), f32x4.abs(v7))));
    const amax = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
    const d: f32 = amax / 127.0;
    const id = f32x4.splat(d != 0 ? <f32>1.0 / d : 0);
    const i0 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v0, id)));
    const i1 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v1, id)));
    const i2 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v2, id)));
    const i3 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v3, id)));
    const i4 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v4, id)));
    const i5 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v5, id)));
    const i6 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v6, id)));
    const i7 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v7, id)));
    const q = xq + (<usize>b << 5);
    v128.store(q, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(i0, i1), i16x8.narrow_i32x4_s(i2, i3)));
    v128.store(q, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(i4, i5), i16x8.narrow_i32x4_s(i6, i7)), 16);
    const s = i32x4.add(i32x4.add(i32x4.add(i0, i1), i32x4.add(i2, i3)), i32x4.add(i32x4.add(i4, i5), i32x4.add(i6, i7)));
    store<f32>(xd + (<usize>b << 2), d);
    store<f32>(xs + (<usize>b << 2), <f32>hsumi(s));
  }
}



/** xq int8[K] -> x16 int16[K] (sign-extended copy for the pmaddwd-style q8_0 GEMV). */
export function widen_q8(xq: usize, K: i32, x16: usize): void {
  for (let i = 0; i < K; i += 8) v128.store(x16 + (<usize>i << 1), v128.load8x8_s(xq + <usize>i));
}


/** i32x4 partial sums of one q8_0 block (weights at p, 34 bytes) against 32 widened activations xi. */
// @ts-ignore: decorator
@inline function q8blk(p: usize, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(v128.load8x8_s(p, 2), x0), i32x4.dot_i16x8_s(v128.load8x8_s(p, 10), x1)),
    i32x4.add(i32x4.dot_i16x8_s(v128.load8x8_s(p, 18), x2), i32x4.dot_i16x8_s(v128.load8x8_s(p, 26), x3)));
}

/** y[n] = sum_b dw[n,b] * dx[b] * sum_i qw[n,b,i] * xq[b,i]   (q8_0 W, quant_q8 x widened to i16 by widen_q8).
 *  Weights are sign-extended while loading (v128.load8x8_s) and multiplied with i32x4.dot_i16x8_s;
 *  4 rows per pass share the activation loads. */
export function gemv_q8_0(w: usize, x16: usize, xd: usize, y: usize, N: i32, K: i32): void {
  const nbk = K >> 5;
  const rb = <usize>nbk * 34;
  let n = 0;
  for (; n + 4 <= N; n += 4) {
    const r0 = w + <usize>n * rb;
    const r1 = r0 + rb, r2 = r1 + rb, r3 = r2 + rb;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let b = 0; b < nbk; b++) {
      const q = x16 + (<usize>b << 6);
      const x0 = v128.load(q), x1 = v128.load(q, 16), x2 = v128.load(q, 32), x3 = v128.load(q, 48);
      const o = <usize>b * 34;
      const p0 = r0 + o, p1 = r1 + o, p2 = r2 + o, p3 = r3 + o;
      // the 4 rows' block scales at once, times the activation scale
      const dd = f32x4.mul(f16at4(p0, p1, p2, p3), v128.load32_splat(xd + (<usize>b << 2)));
      a0 = fma4(f32x4.convert_i32x4_s(q8blk(p0, x0, x1, x2, x3)), i32x4.shuffle(dd, dd, 0, 0, 0, 0), a0);
      a1 = fma4(f32x4.convert_i32x4_s(q8blk(p1, x0, x1, x2, x3)), i32x4.shuffle(dd, dd, 1, 1, 1, 1), a1);
      a2 = fma4(f32x4.convert_i32x4_s(q8blk(p2, x0, x1, x2, x3)), i32x4.shuffle(dd, dd, 2, 2, 2, 2), a2);
      a3 = fma4(f32x4.convert_i32x4_s(q8blk(p3, x0, x1, x2, x3)), i32x4.shuffle(dd, dd, 3, 3, 3, 3), a3);
    }
    const yo = y + (<usize>n << 2);
    store<f32>(yo, hsum(a0));
    store<f32>(yo, hsum(a1), 4);
    store<f32>(yo, hsum(a2), 8);
    store<f32>(yo, hsum(a3), 12);
  }
  for (; n < N; n++) {
    const row = w + <usize>n * rb;
    let acc = f32x4.splat(0);
    for (let b = 0; b < nbk; b++) {
      const p = row + <usize>b * 34;
      const q = x16 + (<usize>b << 6);
      const s = q8blk(p, v128.load(q), v128.load(q, 16), v128.load(q, 32), v128.load(q, 48));
      acc = fma4(f32x4.convert_i32x4_s(s), f32x4.splat(f16(load<u16>(p)) * load<f32>(xd + (<usize>b << 2))), acc);
    }
    store<f32>(y + (<usize>n << 2), hsum(acc));
  }
}

/** q4_k W: per sub-block j of 32: d*sc_j*dx_j * sum(q*xq) - dmin*m_j*dx_j * sum(xq). */
export function gemv_q4_k(w: usize, xq: usize, xd: usize, xs: usize, y: usize, N: i32, K: i32): void {
  const nsb = K >> 8;
  const m4 = i8x16.splat(15);
  for (let n = 0; n < N; n++) {
    const row = w + <usize>n * <usize>nsb * 144;
    let acc = f32x4.splat(0);
    let corr: f32 = 0;
    for (let sb = 0; sb < nsb; sb++) {
      const p = row + <usize>sb * 144;
      const d = f16(load<u16>(p));
      const dmin = f16(load<u16>(p + 2));
      for (let c = 0; c < 4; c++) {
        const xb = (sb << 3) + 2 * c; // activation block of the low nibbles; xb + 1 for the high ones
        const sm1 = scaleMinK4(p + 4, 2 * c);
        const sm2 = scaleMinK4(p + 4, 2 * c + 1);
        const dx1 = load<f32>(xd + (<usize>xb << 2));
        const dx2 = load<f32>(xd + (<usize>xb << 2), 4);
        const qa = v128.load(p + 16 + 32 * c);
        const qb = v128.load(p + 16 + 32 * c, 16);
        const xp = xq + (<usize>xb << 5);
        const s1 = dot32u4(v128.and(qa, m4), v128.load(xp), v128.and(qb, m4), v128.load(xp, 16));
        const s2 = dot32u4(i8x16.shr_u(qa, 4), v128.load(xp, 32), i8x16.shr_u(qb, 4), v128.load(xp, 48));
        acc = fma4(f32x4.convert_i32x4_s(s1), f32x4.splat(d * <f32>(sm1 & 255) * dx1), acc);
        acc = fma4(f32x4.convert_i32x4_s(s2), f32x4.splat(d * <f32>(sm2 & 255) * dx2), acc);
        corr += dmin * (<f32>(sm1 >> 8) * dx1 * load<f32>(xs + (<usize>xb << 2)) + <f32>(sm2 >> 8) * dx2 * load<f32>(xs + (<usize>xb << 2), 4));
      }
    }
    store<f32>(y + (<usize>n << 2), hsum(acc) - corr);
  }
}

