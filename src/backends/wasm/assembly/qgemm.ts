// Block-quantized matrix products, second generation: GEMV (decode) for q8_0 / q4_0 / q4_k / q6_k and an
// integer GEMM (prefill) for the 4-bit types (q4_0, q4_k) in the relaxed build. W stays in its GGUF layout
// (see matmul.ts for the block formats): repacking at load was measured (4-row interleave with the 4 rows'
// scales together, 16-byte aligned quants) and bought nothing over this layout on the project's VM (a big-L3
// Xeon whose weight streams beyond L2 are bound by how far ahead the core issues loads, ~6 GB/s per thread,
// not by the layout), while every other reader of a placed tensor (reference fallback, embedding, export)
// would have needed to understand it.
// Integer GEMM for q8_0 (int16 pair dot, i32x4.dot_i16x8_s, 4x2 tile) was measured too: 32-35 GOPS with the
// per-block scaling against 45-48 GFLOPS for the dequantize-to-f32 GEMM, so q8_0 and q6_k prefill stay f32.
//
// Activations are quantized per block of 32 by quant_q8 (matmul.ts): xq int8[K], xd f32[K/32] (scale),
// xs f32[K/32] (sum of the block's xq). The kernels then need them in a build-specific form, made once per
// row by prep_q8_0 / prep_q4_0 (2K bytes at most):
//   q8_0, relaxed:  per block 64 bytes: |xq| (32 B, the 7-bit operand of i16x8.relaxed_dot_i8x16_i7x16_s),
//                   then the sign masks of xq (32 B, 0 or -1): w * x = (w * sign(x)) * |x|, and
//                   w * sign(x) = (w ^ s) - s. (A weight of -128 times a negative x would wrap; GGUF q8_0
//                   quants are -127..127.)
//   q8_0, simd:     xq sign-extended to int16 (64 B per block) for i32x4.dot_i16x8_s.
//   q4_0, relaxed:  xq itself (the nibbles 0..15 are the 7-bit operand).
//   q4_0, simd:     int16 as for q8_0.
//
// GEMV: 4 rows per pass; each row's block dot product is an i32x4 of partial sums, the 4 rows' vectors are
// reduced together by a 4x4 transpose-add (tr4) into one i32x4 (one lane per row), converted once and
// scaled by the 4 rows' block scales (gathered into one f32x4) times the activation block scale.
// Prefetch: each pass touches the byte PF ahead in every row stream (a plain load whose value is dropped:
// wasm has no prefetch instruction, and the hardware prefetchers of the VMs we run on do not run far
// enough ahead on their own; +10-40% on weights streamed from memory). The touches stop more than PF
// bytes before the end of each row, so they never read past the matrix.

import { dot16s, dot32u4, f16at4, fma4 } from './common';
import { gemv_q4_k } from './matmul';

/** Bytes ahead of the current block that the GEMV loops touch (q4_0: PF4; measured best of 256..1536). */
const PF: usize = 512;
const PF4: usize = 256;

/** The 4 lanes-sums of a0..a3 as one i32x4: lane r = sum of ar's lanes (4x4 transpose-add). */
// @ts-ignore: decorator
@inline function tr4(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  const t0 = i32x4.add(i32x4.shuffle(a0, a1, 0, 4, 1, 5), i32x4.shuffle(a0, a1, 2, 6, 3, 7));
  const t1 = i32x4.add(i32x4.shuffle(a2, a3, 0, 4, 1, 5), i32x4.shuffle(a2, a3, 2, 6, 3, 7));
  return i32x4.add(i32x4.shuffle(t0, t1, 0, 1, 4, 5), i32x4.shuffle(t0, t1, 2, 3, 6, 7));
}


/** One f16 at p as f32 (as common.f16). */
// @ts-ignore: decorator
@inline function f16s(p: usize): f32 {
  const h = <u32>load<u16>(p);
  return reinterpret<f32>(((h & 0x8000) << 16) | ((h & 0x7fff) << 13)) * 5.192296858534828e33;
}

// ---------------------------------------------------------------------------------------------
// Activation forms

/** xq int8[K] -> the q8_0 GEMV form at xa (2K bytes): |x| and sign masks (relaxed) or int16 (simd). */
export function prep_q8_0(xq: usize, K: i32, xa: usize): void {
  if (ASC_FEATURE_RELAXED_SIMD) {
    const z = i8x16.splat(0);
    for (let b = 0; b < K >> 5; b++) {
      const q = xq + (<usize>b << 5);
      const o = xa + (<usize>b << 6);
      const v0 = v128.load(q), v1 = v128.load(q, 16);
      v128.store(o, i8x16.abs(v0));
      v128.store(o, i8x16.abs(v1), 16);
      v128.store(o, i8x16.lt_s(v0, z), 32);
      v128.store(o, i8x16.lt_s(v1, z), 48);
    }
  } else {
    for (let i = 0; i < K; i += 8) v128.store(xa + (<usize>i << 1), v128.load8x8_s(xq + <usize>i));
  }
}

/** xq int8[K] -> the q4_0 GEMV form at xa: a copy (relaxed) or int16 (simd, 2K bytes). */
export function prep_q4_0(xq: usize, K: i32, xa: usize): void {
  if (ASC_FEATURE_RELAXED_SIMD) memory.copy(xa, xq, <usize>K);
  else for (let i = 0; i < K; i += 8) v128.store(xa + (<usize>i << 1), v128.load8x8_s(xq + <usize>i));
}

// ---------------------------------------------------------------------------------------------
// GEMV

/** i32x4 partial sums of the q8_0 block at p (34 B) against the prepared activations of its block at q (64 B). */
// @ts-ignore: decorator
@inline function q8dot(p: usize, q: usize): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    const s0 = v128.load(q, 32), s1 = v128.load(q, 48);
    const u0 = i8x16.sub(v128.xor(v128.load(p, 2), s0), s0);
    const u1 = i8x16.sub(v128.xor(v128.load(p, 18), s1), s1);
    // pair sums of (w sign(x)) |x| are <= 2 * 127 * 127 < 2^15: exact in i16, then widened pairwise
    return i32x4.add(i32x4.extadd_pairwise_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(u0, v128.load(q))),
                     i32x4.extadd_pairwise_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(u1, v128.load(q, 16))));
  }
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(v128.load8x8_s(p, 2), v128.load(q)), i32x4.dot_i16x8_s(v128.load8x8_s(p, 10), v128.load(q, 16))),
    i32x4.add(i32x4.dot_i16x8_s(v128.load8x8_s(p, 18), v128.load(q, 32)), i32x4.dot_i16x8_s(v128.load8x8_s(p, 26), v128.load(q, 48))));
}

/** Blocks [b0, b1) of 4 q8_0 rows (r0 + k*rb) into acc (lane r = row r); `pf` touches PF ahead. */
// @ts-ignore: decorator
@inline function q8rows4(r0: usize, rb: usize, xa: usize, xd: usize, b0: i32, b1: i32, acc: v128, pf: bool): v128 {
  const r1 = r0 + rb, r2 = r1 + rb, r3 = r2 + rb;
  for (let b = b0; b < b1; b++) {
    const o = <usize>b * 34;
    const p0 = r0 + o, p1 = r1 + o, p2 = r2 + o, p3 = r3 + o;
    if (pf) {
      load<u8>(p0 + PF);
      load<u8>(p1 + PF);
      load<u8>(p2 + PF);
      load<u8>(p3 + PF);
    }
    const q = xa + (<usize>b << 6);
    const dd = f32x4.mul(f16at4(p0, p1, p2, p3), v128.load32_splat(xd + (<usize>b << 2)));
    acc = fma4(f32x4.convert_i32x4_s(tr4(q8dot(p0, q), q8dot(p1, q), q8dot(p2, q), q8dot(p3, q))), dd, acc);
  }
  return acc;
}

/** y[N] = W[N, K] x (q8_0 W; xa from prep_q8_0, xd from quant_q8). */
export function gemv_q8_0x(w: usize, xa: usize, xd: usize, y: usize, N: i32, K: i32): void {
  const nbk = K >> 5;
  const rb = <usize>nbk * 34;
  const bp = max(0, nbk - 16); // touching PF = 512 B ahead is inside the row for b < nbk - 16
  let n = 0;
  for (; n + 4 <= N; n += 4) {
    const r0 = w + <usize>n * rb;
    let acc = q8rows4(r0, rb, xa, xd, 0, bp, f32x4.splat(0), true);
    acc = q8rows4(r0, rb, xa, xd, bp, nbk, acc, false);
    v128.store(y + (<usize>n << 2), acc);
  }
  for (; n < N; n++) {
    const row = w + <usize>n * rb;
    let acc = i32x4.splat(0);
    let s: f32 = 0;
    for (let b = 0; b < nbk; b++) {
      const p = row + <usize>b * 34;
      const v = q8dot(p, xa + (<usize>b << 6));
      const t = i32x4.add(v, i32x4.shuffle(v, v, 2, 3, 0, 1));
      s += <f32>(i32x4.extract_lane(t, 0) + i32x4.extract_lane(t, 1)) * (f16s(p) * load<f32>(xd + (<usize>b << 2)));
    }
    store<f32>(y + (<usize>n << 2), s);
  }
}

/** i32x4 partial sums of sum_i nib_i * x_i over the q4_0 block at p (18 B); xa as prep_q4_0. */
// @ts-ignore: decorator
@inline function q4dot(p: usize, q: usize, m4: v128): v128 {
  const qs = v128.load(p, 2);
  const lo = v128.and(qs, m4);
  const hi = v128.and(i16x8.shr_u(qs, 4), m4);
  if (ASC_FEATURE_RELAXED_SIMD) {
    // q: 32 int8; pair sums <= 2 * 15 * 128: the two halves add exactly in i16
    return i32x4.extadd_pairwise_i16x8_s(i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(q), lo), i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(q, 16), hi)));
  }
  // q: 32 int16
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(lo), v128.load(q)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(lo), v128.load(q, 16))),
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(hi), v128.load(q, 32)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(hi), v128.load(q, 48))));
}

/** Blocks [b0, b1) of 4 q4_0 rows. acc lane r += dd_r * sum(nib * xq); cv lane r += dd_r * xs (the -8 term). */
// @ts-ignore: decorator
@inline function q4rows4(r0: usize, rb: usize, xa: usize, xd: usize, xs: usize, b0: i32, b1: i32, acc: v128, pf: bool): v128 {
  const r1 = r0 + rb, r2 = r1 + rb, r3 = r2 + rb;
  const m4 = i8x16.splat(15);
  const sh: usize = ASC_FEATURE_RELAXED_SIMD ? 5 : 6; // activation bytes per block: 32 (int8) or 64 (int16)
  for (let b = b0; b < b1; b++) {
    const o = <usize>b * 18;
    const p0 = r0 + o, p1 = r1 + o, p2 = r2 + o, p3 = r3 + o;
    if (pf) {
      load<u8>(p0 + PF4);
      load<u8>(p1 + PF4);
      load<u8>(p2 + PF4);
      load<u8>(p3 + PF4);
    }
    const q = xa + (<usize>b << sh);
    const dd = f32x4.mul(f16at4(p0, p1, p2, p3), v128.load32_splat(xd + (<usize>b << 2)));
    // sum((nib - 8) x) = sum(nib x) - 8 sum(x), the block sum xs exact in f32
    const c8 = f32x4.mul(v128.load32_splat(xs + (<usize>b << 2)), f32x4.splat(8));
    const s = f32x4.sub(f32x4.convert_i32x4_s(tr4(q4dot(p0, q, m4), q4dot(p1, q, m4), q4dot(p2, q, m4), q4dot(p3, q, m4))), c8);
    acc = fma4(s, dd, acc);
  }
  return acc;
}

/** y[N] = W[N, K] x (q4_0 W; xa from prep_q4_0, xd and xs from quant_q8). */
export function gemv_q4_0x(w: usize, xa: usize, xd: usize, xs: usize, y: usize, N: i32, K: i32): void {
  const nbk = K >> 5;
  const rb = <usize>nbk * 18;
  const bp = max(0, nbk - 15); // 15 blocks * 18 B > PF4
  let n = 0;
  for (; n + 4 <= N; n += 4) {
    const r0 = w + <usize>n * rb;
    let acc = q4rows4(r0, rb, xa, xd, xs, 0, bp, f32x4.splat(0), true);
    acc = q4rows4(r0, rb, xa, xd, xs, bp, nbk, acc, false);
    v128.store(y + (<usize>n << 2), acc);
  }
  const m4 = i8x16.splat(15);
  const sh: usize = ASC_FEATURE_RELAXED_SIMD ? 5 : 6;
  for (; n < N; n++) {
    const row = w + <usize>n * rb;
    let s: f32 = 0;
    for (let b = 0; b < nbk; b++) {
      const p = row + <usize>b * 18;
      const v = q4dot(p, xa + (<usize>b << sh), m4);
      const t = i32x4.add(v, i32x4.shuffle(v, v, 2, 3, 0, 1));
      const isum = <f32>(i32x4.extract_lane(t, 0) + i32x4.extract_lane(t, 1));
      s += (isum - 8 * load<f32>(xs + (<usize>b << 2))) * (f16s(p) * load<f32>(xd + (<usize>b << 2)));
    }
    store<f32>(y + (<usize>n << 2), s);
  }
}

/** 1 when any quant of the q8_0 blocks at w (nblocks * 34 bytes) is -128 (the relaxed q8_0 GEMV's sign trick
 *  would wrap it: such tensors take the int16 kernel, matmul.gemv_q8_0). ggml never writes -128. */
export function q8_0_has_m128(w: usize, nblocks: i32): i32 {
  const m = i8x16.splat(-128);
  let any = i32x4.splat(0);
  for (let b = 0; b < nblocks; b++) {
    const p = w + <usize>b * 34;
    any = v128.or(any, v128.or(i8x16.eq(v128.load(p, 2), m), i8x16.eq(v128.load(p, 18), m)));
  }
  return v128.any_true(any) ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Integer GEMM for 4-bit weights (q4_0, q4_k), relaxed build only: y[T, N] = x[T, K] @ W[N, K]^T.
//
// x is quantized once for all T rows by quant_q8 (xq int8 [T][K], xd / xs f32 [T][K/32]). The weights of a
// chunk of columns are unpacked, one panel of NB rows (a multiple of 4) at a time, into the thread's scratch:
//   per group of 4 rows g and block of 32 b, a 160-byte unit at (g * nb + b) * 160:
//     [0, 16)    dw f32 x 4 rows   (q4_0: f16 d; q4_k: d * sc_j)
//     [16, 32)   dm f32 x 4 rows   (q4_0: 8 d;   q4_k: dmin * m_j)
//     [32, 160)  the 4 rows' 32 quants, one byte each (0..15), in element order
//   so that element e of row r in block b is dw_r * q - dm_r, and a block's dot product with x is
//     dx * (dw_r * sum(q * xq) - dm_r * xs)        (xs = sum of the block's xq).
// Rows past N in the last group are zero. The micro-kernel takes 4 rows of W against 2 rows of x: per block
// i16x8.relaxed_dot_i8x16_i7x16_s (pmaddubsw: xq signed, q the 7-bit operand; pair sums <= 2*15*127, so the
// two halves of a block add exactly in i16) then one pairwise widening to i32, tr4 across the 4 rows, and
// the block's scales in f32. Work split over threads: chunks of cpc rows of W (whole panels).

/** Unpacks rows [n0, n0 + rows) of the q4_0 (dt 4) or q4_k (dt 5) matrix at w (row stride rb) into units at dst. */
function unpack4(dt: i32, w: usize, rb: usize, n0: i32, rows: i32, N: i32, K: i32, dst: usize): void {
  const nb = K >> 5;
  const m4 = i8x16.splat(15);
  for (let g = 0; g < (rows + 3) >> 2; g++) {
    const ug = dst + <usize>g * <usize>nb * 160;
    for (let r = 0; r < 4; r++) {
      const n = n0 + 4 * g + r;
      if (n >= N || 4 * g + r >= rows) {
        for (let b = 0; b < nb; b++) {
          const u = ug + <usize>b * 160;
          store<f32>(u + (<usize>r << 2), 0);
          store<f32>(u + (<usize>r << 2), 0, 16);
          v128.store(u + 32 + (<usize>r << 5), i32x4.splat(0));
          v128.store(u + 32 + (<usize>r << 5), i32x4.splat(0), 16);
        }
        continue;
      }
      const row = w + <usize>n * rb;
      if (dt == 4) {
        for (let b = 0; b < nb; b++) {
          const p = row + <usize>b * 18;
          const u = ug + <usize>b * 160;
          const d = f16s(p);
          store<f32>(u + (<usize>r << 2), d);
          store<f32>(u + (<usize>r << 2), 8 * d, 16);
          const qs = v128.load(p, 2);
          v128.store(u + 32 + (<usize>r << 5), v128.and(qs, m4));
          v128.store(u + 32 + (<usize>r << 5), v128.and(i16x8.shr_u(qs, 4), m4), 16);
        }
      } else {
        for (let sb = 0; sb < K >> 8; sb++) {
          const p = row + <usize>sb * 144;
          const d = f16s(p);
          const dmin = f16s(p + 2);
          const s = p + 4;
          for (let j = 0; j < 8; j++) {
            // get_scale_min_k4 (see matmul.ts)
            let sc: u32, mn: u32;
            if (j < 4) {
              sc = <u32>load<u8>(s + j) & 63;
              mn = <u32>load<u8>(s + j + 4) & 63;
            } else {
              sc = (<u32>load<u8>(s + j + 4) & 15) | ((<u32>load<u8>(s + j - 4) >> 6) << 4);
              mn = (<u32>load<u8>(s + j + 4) >> 4) | ((<u32>load<u8>(s + j) >> 6) << 4);
            }
            const u = ug + <usize>(sb * 8 + j) * 160;
            store<f32>(u + (<usize>r << 2), d * <f32>sc);
            store<f32>(u + (<usize>r << 2), dmin * <f32>mn, 16);
            // sub-block j: chunk j >> 1 of 32 bytes, low nibbles for even j, high for odd
            const qa = v128.load(p + 16 + 32 * (j >> 1));
            const qb = v128.load(p + 16 + 32 * (j >> 1), 16);
            if ((j & 1) == 0) {
              v128.store(u + 32 + (<usize>r << 5), v128.and(qa, m4));
              v128.store(u + 32 + (<usize>r << 5), v128.and(qb, m4), 16);
            } else {
              v128.store(u + 32 + (<usize>r << 5), v128.and(i16x8.shr_u(qa, 4), m4));
              v128.store(u + 32 + (<usize>r << 5), v128.and(i16x8.shr_u(qb, 4), m4), 16);
            }
          }
        }
      }
    }
  }
}

/** i32x4 partial sums of one unpacked 32-quant row block at u against x (32 int8 as x0, x1). */
// @ts-ignore: decorator
@inline function u4dot(u: usize, x0: v128, x1: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return i32x4.extadd_pairwise_i16x8_s(i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(x0, v128.load(u)), i16x8.relaxed_dot_i8x16_i7x16_s(x1, v128.load(u, 16))));
  }
  return i32x4.splat(0); // never called: the simd build dequantizes (matmul.ts gemm_deq)
}

/** Stores lanes of v to y (one f32 each) for the rows that exist (n + r < N). */
// @ts-ignore: decorator
@inline function store4(y: usize, v: v128, valid: i32): void {
  if (valid >= 4) {
    v128.store(y, v);
  } else {
    store<f32>(y, f32x4.extract_lane(v, 0));
    if (valid > 1) store<f32>(y, f32x4.extract_lane(v, 1), 4);
    if (valid > 2) store<f32>(y, f32x4.extract_lane(v, 2), 8);
  }
}

/** The unpacked panel at pu (groups of 4 rows, first row n0, `rows` rows) against all T rows of x. */
function panel4(pu: usize, n0: i32, rows: i32, xq: usize, xd: usize, xs: usize, y: usize, T: i32, N: i32, K: i32): void {
  const nb = K >> 5;
  const xr = <usize>K;
  const dr = <usize>nb << 2;
  for (let g = 0; g < (rows + 3) >> 2; g++) {
    const ug = pu + <usize>g * <usize>nb * 160;
    const n = n0 + 4 * g;
    const valid = min(4, rows - 4 * g);
    let t = 0;
    for (; t + 2 <= T; t += 2) {
      const xa = xq + <usize>t * xr, xb = xa + xr;
      const da = xd + <usize>t * dr, db = da + dr;
      const sa = xs + <usize>t * dr, sb = sa + dr;
      let fa = f32x4.splat(0), fb = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const u = ug + <usize>b * 160;
        const o = <usize>b << 5;
        const x0 = v128.load(xa + o), x1 = v128.load(xa + o, 16);
        const z0 = v128.load(xb + o), z1 = v128.load(xb + o, 16);
        const a0 = u4dot(u + 32, x0, x1), b0 = u4dot(u + 32, z0, z1);
        const a1 = u4dot(u + 64, x0, x1), b1 = u4dot(u + 64, z0, z1);
        const a2 = u4dot(u + 96, x0, x1), b2 = u4dot(u + 96, z0, z1);
        const a3 = u4dot(u + 128, x0, x1), b3 = u4dot(u + 128, z0, z1);
        const dw = v128.load(u), dm = v128.load(u, 16);
        const ob = <usize>b << 2;
        fa = fma4(f32x4.sub(f32x4.mul(f32x4.convert_i32x4_s(tr4(a0, a1, a2, a3)), dw), f32x4.mul(dm, v128.load32_splat(sa + ob))), v128.load32_splat(da + ob), fa);
        fb = fma4(f32x4.sub(f32x4.mul(f32x4.convert_i32x4_s(tr4(b0, b1, b2, b3)), dw), f32x4.mul(dm, v128.load32_splat(sb + ob))), v128.load32_splat(db + ob), fb);
      }
      store4(y + ((<usize>t * <usize>N + <usize>n) << 2), fa, valid);
      store4(y + (((<usize>t + 1) * <usize>N + <usize>n) << 2), fb, valid);
    }
    if (t < T) {
      const xa = xq + <usize>t * xr;
      const da = xd + <usize>t * dr;
      const sa = xs + <usize>t * dr;
      let fa = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const u = ug + <usize>b * 160;
        const o = <usize>b << 5;
        const x0 = v128.load(xa + o), x1 = v128.load(xa + o, 16);
        const s = tr4(u4dot(u + 32, x0, x1), u4dot(u + 64, x0, x1), u4dot(u + 96, x0, x1), u4dot(u + 128, x0, x1));
        const ob = <usize>b << 2;
        fa = fma4(f32x4.sub(f32x4.mul(f32x4.convert_i32x4_s(s), v128.load(u)), f32x4.mul(v128.load(u, 16), v128.load32_splat(sa + ob))), v128.load32_splat(da + ob), fa);
      }
      store4(y + ((<usize>t * <usize>N + <usize>n) << 2), fa, valid);
    }
  }
}

/** Bytes of unpacked panel per row of W (units of 160 B per 4 rows and 32 columns). */
export function qgemm4_panel_bytes(K: i32): i32 {
  return (K >> 5) * 40;
}

/**
 * Chunk c of y[T, N] = x[T, K] @ W[N, K]^T for q4_0 (dt 4) / q4_k (dt 5) W, relaxed build (pool JOB_KERNEL):
 * rows [c * cpc, c * cpc + cpc) of W, in panels of NB rows (multiples of 4) unpacked at scratch + tid * stride.
 * xq, xd, xs: quant_q8 of all T rows (T * K values at once).
 */
export function qgemm4_chunk(c: i32, tid: i32, dt: i32, xq: usize, xd: usize, xs: usize, w: usize, y: usize,
  T: i32, N: i32, K: i32, NB: i32, scratch: usize, stride: i32, cpc: i32): void {
  const pu = scratch + <usize>tid * <usize>stride;
  const rb = dt == 4 ? (K >> 5) * 18 : (K >> 8) * 144;
  const end = min(N, (c + 1) * cpc);
  for (let n0 = c * cpc; n0 < end; n0 += NB) {
    const rows = min(NB, end - n0);
    unpack4(dt, w, <usize>rb, n0, rows, N, K, pu);
    panel4(pu, n0, rows, xq, xd, xs, y, T, N, K);
  }
}

// ---------------------------------------------------------------------------------------------
// K-quant GEMV, 4 rows per pass (layouts in matmul.ts). Activations as quant_q8 (int8 per block of 32).


/** The 12 packed scale bytes of a q4_k block at s as 16 bytes: sc[0..8) in lanes 0..7, m[0..8) in lanes 8..15
 *  (ggml's get_scale_min_k4, all 8 sub-blocks at once). Reads 16 bytes at s (inside the 144-byte block). */
// @ts-ignore: decorator
@inline function k4scales(s: usize): v128 {
  const v = v128.load(s);
  // L: sc j<4 = s[j] & 63, sc j>=4 = s[j+4] & 15, m j<4 = s[j+4] & 63, m j>=4 = s[j+4] >> 4
  const L = i8x16.shuffle(v, v, 0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11);
  // H: the top 2 bits (>> 6, << 4) for j >= 4: sc from s[j-4], m from s[j]
  const H = i8x16.shuffle(v, v, 0, 0, 0, 0, 0, 1, 2, 3, 0, 0, 0, 0, 4, 5, 6, 7);
  const Ls = v128.bitselect(v128.and(i16x8.shr_u(L, 4), i8x16.splat(15)), L,
    i8x16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1));
  const lowMask = i8x16(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15);
  const hiBits = v128.and(i16x8.shl(v128.and(i16x8.shr_u(H, 6), i8x16.splat(3)), 4), i8x16(0, 0, 0, 0, 48, 48, 48, 48, 0, 0, 0, 0, 48, 48, 48, 48));
  return v128.or(v128.and(Ls, lowMask), hiBits);
}

/** u8 lanes 4k..4k+3 of v as an f32x4. */
// @ts-ignore: decorator
@inline function u8quad(v: v128, k: i32): v128 {
  const z = i8x16.splat(0);
  let q: v128;
  if (k == 0) q = i8x16.shuffle(v, z, 0, 16, 16, 16, 1, 16, 16, 16, 2, 16, 16, 16, 3, 16, 16, 16);
  else if (k == 1) q = i8x16.shuffle(v, z, 4, 16, 16, 16, 5, 16, 16, 16, 6, 16, 16, 16, 7, 16, 16, 16);
  else if (k == 2) q = i8x16.shuffle(v, z, 8, 16, 16, 16, 9, 16, 16, 16, 10, 16, 16, 16, 11, 16, 16, 16);
  else q = i8x16.shuffle(v, z, 12, 16, 16, 16, 13, 16, 16, 16, 14, 16, 16, 16, 15, 16, 16, 16);
  return f32x4.convert_i32x4_s(q);
}

/** Superblocks [s0, s1) of 4 q4_k rows; acc lane r += d sc_j dx_j sum(q x), cv lane r += dmin m_j dx_j xs_j. */
// @ts-ignore: decorator
@inline function q4krows4(r0: usize, rb: usize, xq: usize, xd: usize, xs: usize, s0: i32, s1: i32, acc: v128, cv: v128, pf: bool): v128 {
  const r1 = r0 + rb, r2 = r1 + rb, r3 = r2 + rb;
  const m4 = i8x16.splat(15);
  for (let sb = s0; sb < s1; sb++) {
    const o = <usize>sb * 144;
    const p0 = r0 + o, p1 = r1 + o, p2 = r2 + o, p3 = r3 + o;
    if (pf) {
      load<u8>(p0 + PF); load<u8>(p0 + PF + 64); load<u8>(p0 + PF + 128);
      load<u8>(p1 + PF); load<u8>(p1 + PF + 64); load<u8>(p1 + PF + 128);
      load<u8>(p2 + PF); load<u8>(p2 + PF + 64); load<u8>(p2 + PF + 128);
      load<u8>(p3 + PF); load<u8>(p3 + PF + 64); load<u8>(p3 + PF + 128);
    }
    const d4 = f16at4(p0, p1, p2, p3);
    const dm4 = f16at4(p0 + 2, p1 + 2, p2 + 2, p3 + 2);
    const D0 = k4scales(p0 + 4), D1 = k4scales(p1 + 4), D2 = k4scales(p2 + 4), D3 = k4scales(p3 + 4);
    // transpose: per sub-block j, the 4 rows' sc_j (S*) and m_j (M*) as 4 consecutive bytes
    const E01 = i8x16.shuffle(D0, D1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const E23 = i8x16.shuffle(D2, D3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const F01 = i8x16.shuffle(D0, D1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const F23 = i8x16.shuffle(D2, D3, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const Slo = i8x16.shuffle(E01, E23, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    const Shi = i8x16.shuffle(E01, E23, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
    const Mlo = i8x16.shuffle(F01, F23, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    const Mhi = i8x16.shuffle(F01, F23, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
    for (let c = 0; c < 4; c++) {
      const xb = (sb << 3) + 2 * c; // activation block of sub-block 2c (low nibbles); xb + 1: 2c + 1 (high)
      const xp = xq + (<usize>xb << 5);
      const xa0 = v128.load(xp), xa1 = v128.load(xp, 16), xb0 = v128.load(xp, 32), xb1 = v128.load(xp, 48);
      const qo = 16 + 32 * <usize>c;
      const A0 = v128.load(p0 + qo), B0 = v128.load(p0 + qo, 16);
      const A1 = v128.load(p1 + qo), B1 = v128.load(p1 + qo, 16);
      const A2 = v128.load(p2 + qo), B2 = v128.load(p2 + qo, 16);
      const A3 = v128.load(p3 + qo), B3 = v128.load(p3 + qo, 16);
      const lo = tr4(dot32u4(v128.and(A0, m4), xa0, v128.and(B0, m4), xa1), dot32u4(v128.and(A1, m4), xa0, v128.and(B1, m4), xa1),
                     dot32u4(v128.and(A2, m4), xa0, v128.and(B2, m4), xa1), dot32u4(v128.and(A3, m4), xa0, v128.and(B3, m4), xa1));
      const hi = tr4(dot32u4(v128.and(i16x8.shr_u(A0, 4), m4), xb0, v128.and(i16x8.shr_u(B0, 4), m4), xb1),
                     dot32u4(v128.and(i16x8.shr_u(A1, 4), m4), xb0, v128.and(i16x8.shr_u(B1, 4), m4), xb1),
                     dot32u4(v128.and(i16x8.shr_u(A2, 4), m4), xb0, v128.and(i16x8.shr_u(B2, 4), m4), xb1),
                     dot32u4(v128.and(i16x8.shr_u(A3, 4), m4), xb0, v128.and(i16x8.shr_u(B3, 4), m4), xb1));
      // sub-blocks j = 2c and 2c + 1: lanes quad (j & 3) of the lo (j < 4) or hi (j >= 4) transposed scales
      const Sv = c < 2 ? Slo : Shi;
      const Mv = c < 2 ? Mlo : Mhi;
      const k0 = (2 * c) & 3;
      const dxp = xd + (<usize>xb << 2);
      const xsp = xs + (<usize>xb << 2);
      const dx0 = v128.load32_splat(dxp), dx1 = v128.load32_splat(dxp, 4);
      acc = fma4(f32x4.convert_i32x4_s(lo), f32x4.mul(f32x4.mul(d4, u8quad(Sv, k0)), dx0), acc);
      acc = fma4(f32x4.convert_i32x4_s(hi), f32x4.mul(f32x4.mul(d4, u8quad(Sv, k0 + 1)), dx1), acc);
      cv = fma4(f32x4.mul(dm4, u8quad(Mv, k0)), f32x4.mul(dx0, v128.load32_splat(xsp)), cv);
      cv = fma4(f32x4.mul(dm4, u8quad(Mv, k0 + 1)), f32x4.mul(dx1, v128.load32_splat(xsp, 4)), cv);
    }
  }
  return f32x4.sub(acc, cv);
}

/** y[N] = W[N, K] x for q4_k W (xq, xd, xs from quant_q8). Rows past the last group of 4: matmul.gemv_q4_k. */
export function gemv_q4_kx(w: usize, xq: usize, xd: usize, xs: usize, y: usize, N: i32, K: i32): void {
  const nsb = K >> 8;
  const rb = <usize>nsb * 144;
  const sp = max(0, nsb - 5); // PF + 128 < 5 * 144: the touches stay inside the row
  let n = 0;
  for (; n + 4 <= N; n += 4) {
    const r0 = w + <usize>n * rb;
    // acc - cv is carried as one vector: the second call starts from it with cv = 0
    const a = q4krows4(r0, rb, xq, xd, xs, 0, sp, f32x4.splat(0), f32x4.splat(0), true);
    v128.store(y + (<usize>n << 2), q4krows4(r0, rb, xq, xd, xs, sp, nsb, a, f32x4.splat(0), false));
  }
  if (n < N) gemv_q4_k(w + <usize>n * rb, xq, xd, xs, y + (<usize>n << 2), N - n, K);
}


/** One q6_k superblock at p (210 B) against activation blocks from xb: d * dx_b * sum_16 sc * (q - 32) * xq
 *  (lane l of the result: activation block l of each half, summed by the caller), added to acc. */
// @ts-ignore: decorator
@inline function q6ksb(p: usize, xq: usize, xd: usize, sb: i32, acc: v128): v128 {
  const m4 = i8x16.splat(15);
  const m3 = i8x16.splat(3);
  const s32 = i8x16.splat(32);
  const d = f16s(p + 208);
  for (let h = 0; h < 2; h++) {
    const ql = p + 64 * h;
    const qh = p + 128 + 32 * h;
    const sc = p + 192 + 8 * h;
    const xb = (sb << 3) + 4 * h; // activation blocks xb .. xb+3 hold lanes l+0, l+32, l+64, l+96
    const xp = xq + (<usize>xb << 5);
    let g0 = i32x4.splat(0), g1 = i32x4.splat(0), g2 = i32x4.splat(0), g3 = i32x4.splat(0);
    for (let l0 = 0; l0 < 32; l0 += 16) {
      const A = v128.load(ql + l0);
      const C = v128.load(ql + 32 + l0);
      const H = v128.load(qh + l0);
      const q1 = i8x16.sub(v128.or(v128.and(A, m4), v128.and(i16x8.shl(H, 4), i8x16.splat(0x30))), s32);
      const q2 = i8x16.sub(v128.or(v128.and(C, m4), v128.and(i16x8.shl(H, 2), i8x16.splat(0x30))), s32);
      const q3 = i8x16.sub(v128.or(v128.and(i16x8.shr_u(A, 4), m4), v128.and(H, i8x16.splat(0x30))), s32);
      const q4 = i8x16.sub(v128.or(v128.and(i16x8.shr_u(C, 4), m4), v128.and(i16x8.shr_u(H, 2), i8x16.splat(0x30))), s32);
      const is = l0 >> 4;
      g0 = i32x4.add(g0, i32x4.mul(dot16s(q1, v128.load(xp + l0)), i32x4.splat(<i32>load<i8>(sc + is))));
      g1 = i32x4.add(g1, i32x4.mul(dot16s(q2, v128.load(xp + 32 + l0)), i32x4.splat(<i32>load<i8>(sc + is + 2))));
      g2 = i32x4.add(g2, i32x4.mul(dot16s(q3, v128.load(xp + 64 + l0)), i32x4.splat(<i32>load<i8>(sc + is + 4))));
      g3 = i32x4.add(g3, i32x4.mul(dot16s(q4, v128.load(xp + 96 + l0)), i32x4.splat(<i32>load<i8>(sc + is + 6))));
    }
    const dxp = xd + (<usize>xb << 2);
    const dv = f32x4.mul(f32x4.splat(d), v128.load(dxp)); // d * dx of the 4 blocks
    const t = tr4(g0, g1, g2, g3);
    acc = fma4(f32x4.convert_i32x4_s(t), dv, acc);
  }
  return acc;
}

/** y[N] = W[N, K] x for q6_k W (xq, xd from quant_q8): one row at a time, prefetching PF ahead. */
export function gemv_q6_kx(w: usize, xq: usize, xd: usize, y: usize, N: i32, K: i32): void {
  const nsb = K >> 8;
  const rb = <usize>nsb * 210;
  const sp = max(0, nsb - 4); // PF + 192 < 4 * 210
  for (let n = 0; n < N; n++) {
    const row = w + <usize>n * rb;
    let acc = f32x4.splat(0);
    for (let sb = 0; sb < sp; sb++) {
      const p = row + <usize>sb * 210;
      load<u8>(p + PF); load<u8>(p + PF + 64); load<u8>(p + PF + 128); load<u8>(p + PF + 192);
      acc = q6ksb(p, xq, xd, sb, acc);
    }
    for (let sb = sp; sb < nsb; sb++) acc = q6ksb(row + <usize>sb * 210, xq, xd, sb, acc);
    // lanes: the 4 activation blocks of each half, summed
    const s = f32x4.add(acc, i32x4.shuffle(acc, acc, 2, 3, 0, 1));
    store<f32>(y + (<usize>n << 2), f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1));
  }
}
