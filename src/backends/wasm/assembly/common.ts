// Shared helpers for the kernels: half-precision decoding, vector exp, horizontal sums.
// No allocation and no static data anywhere in the kernels: TypeScript owns the memory layout,
// every kernel takes byte offsets (usize) and element counts.

// ASC_FEATURE_RELAXED_SIMD is true only in the relaxed build (`--enable relaxed-simd`).

/** a * b + c. The relaxed build fuses it (one rounding); the plain build rounds the product first. */
// @ts-ignore: decorator
@inline export function fma4(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** Sum of the 4 f32 lanes. */
// @ts-ignore: decorator
@inline export function hsum(v: v128): f32 {
  const s = f32x4.add(v, i32x4.shuffle(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

/** Sum of the 4 i32 lanes. */
// @ts-ignore: decorator
@inline export function hsumi(v: v128): i32 {
  const s = i32x4.add(v, i32x4.shuffle(v, v, 2, 3, 0, 1));
  return i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1);
}

// f16 -> f32 without f16 instructions: put the 15 exponent+mantissa bits at bit 13 of a float32
// (exponent bias 15 read as bias 127) and multiply by 2^112 to rebias; the sign bit rides along at
// bit 31. Exact for every finite f16, subnormals included (f32 denormals are IEEE in wasm);
// f16 Inf/NaN decode to large finite values (weights never hold them).
const TWO112: f32 = 5.192296858534828e33;

/** One f16 (the low 16 bits of h) as f32. */
// @ts-ignore: decorator
@inline export function f16(h: u32): f32 {
  return reinterpret<f32>(((h & 0x8000) << 16) | ((h & 0x7fff) << 13)) * TWO112;
}

/** 4 sign-extended f16 bit patterns in i32 lanes (from v128.load16x4_s) -> 4 f32. */
// @ts-ignore: decorator
@inline export function f16x4(h: v128): v128 {
  return f32x4.mul(v128.and(i32x4.shl(h, 13), i32x4.splat(0x8fffe000)), f32x4.splat(TWO112));
}

/** Loads 4 f16 at p and decodes them. */
// @ts-ignore: decorator
@inline export function loadF16x4(p: usize): v128 {
  return f16x4(v128.load16x4_s(p));
}

/** Loads 4 bf16 at p (bf16 -> f32 is a 16-bit shift). */
// @ts-ignore: decorator
@inline export function loadBf16x4(p: usize): v128 {
  return i32x4.shl(v128.load16x4_u(p), 16);
}

/** exp(x - n ln 2) for n = round(x log2 e): the Cephes polynomial on the reduced argument (ln 2 split in two
 *  for the reduction). Shared by exp4 and the training kernels' expNeg4; the caller multiplies by 2^n. */
// @ts-ignore: decorator
@inline export function expReduced4(x: v128, n: v128): v128 {
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  const r2 = f32x4.mul(r, r);
  return f32x4.add(f32x4.add(f32x4.mul(p, r2), r), f32x4.splat(1.0));
}

// ---------------------------------------------------------------------------------------------
// exp(x) for 4 f32 lanes (Cephes expf): x = n ln2 + r, |r| <= ln2/2, exp(r) by a degree-7 polynomial,
// 2^n built in the exponent bits. ~2 ulp over [-87, 88]; inputs are clamped there (exp(-inf) ~ 1e-38).
// @ts-ignore: decorator
@inline export function exp4(x: v128): v128 {
  x = f32x4.min(f32x4.max(x, f32x4.splat(-87.0)), f32x4.splat(88.3));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504088896341)));
  const pow2n = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return f32x4.mul(expReduced4(x, n), pow2n);
}

/** Scalar exp through the vector code (same rounding as exp4). */
// @ts-ignore: decorator
@inline export function expf(x: f32): f32 {
  return f32x4.extract_lane(exp4(f32x4.splat(x)), 0);
}

/** exp(x) in double: x = n ln2 + r, |r| <= ln2/2, Taylor series to r^13 (rel. error < 1e-15). For erf. */
export function exp64(x: f64): f64 {
  if (x < -708.0) return 0.0;
  if (x > 709.0) return Infinity;
  const n = Math.floor(x * 1.4426950408889634 + 0.5);
  const r = (x - n * 0.6931471803691238) - n * 1.9082149292705877e-10;
  let p: f64 = 1.0 / 6227020800.0; // 1/13!
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  // 2^n in two steps so n down to -1074 and up to 1023 stays representable
  const n1 = <i64>n >> 1;
  const n2 = <i64>n - n1;
  return p * reinterpret<f64>((n1 + 1023) << 52) * reinterpret<f64>((n2 + 1023) << 52);
}

/** Softmax numerator in place: scores[j] = exp(scores[j] - mx) for j < n (f32 at byte offset `scores`); returns their sum. */
@inline export function expShiftSum(scores: usize, n: i32, mx: f32): f32 {
  const mv = f32x4.splat(mx);
  let sv = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const e = exp4(f32x4.sub(v128.load(scores + (<usize>j << 2)), mv));
    v128.store(scores + (<usize>j << 2), e);
    sv = f32x4.add(sv, e);
  }
  let sum = hsum(sv);
  for (; j < n; j++) {
    const e = expf(load<f32>(scores + (<usize>j << 2)) - mx);
    store<f32>(scores + (<usize>j << 2), e);
    sum += e;
  }
  return sum;
}

/** The f16 at p0, p1, p2, p3 as one f32x4 (loaded into the low halves of the i32 lanes, sign moved up). */
// @ts-ignore: decorator
@inline export function f16at4(p0: usize, p1: usize, p2: usize, p3: usize): v128 {
  let v = v128.load16_lane(p0, i32x4.splat(0), 0);
  v = v128.load16_lane(p1, v, 2);
  v = v128.load16_lane(p2, v, 4);
  v = v128.load16_lane(p3, v, 6);
  // (h << 16) >> 3 (arithmetic) == sign-extended h << 13, as f16x4 expects
  return f32x4.mul(v128.and(i32x4.shr_s(i32x4.shl(v, 16), 3), i32x4.splat(0x8fffe000)), f32x4.splat(5.192296858534828e33));
}

/** sum over 16 lanes of a * b (both int8, |a*b| <= 16384) as 4 i32 partial sums. */
// @ts-ignore: decorator
@inline export function dot16s(a: v128, b: v128): v128 {
  return i32x4.extadd_pairwise_i16x8_s(i16x8.add(i16x8.extmul_low_i8x16_s(a, b), i16x8.extmul_high_i8x16_s(a, b)));
}

/** sum over 32 lanes of u * x with u in 0..15 (4-bit; 0..63 for 6-bit) and x int8: 4 i32 partial sums.
 *  Relaxed build: i16x8.relaxed_dot_i8x16_i7x16_s (u is the 7-bit operand), then a pairwise add
 *  (not i32x4.relaxed_dot_i8x16_i7x16_add_s, which V8 11.3 miscomputes in its baseline tier). */
// @ts-ignore: decorator
@inline export function dot32u4(u0: v128, x0: v128, u1: v128, x1: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return i32x4.extadd_pairwise_i16x8_s(i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(x0, u0), i16x8.relaxed_dot_i8x16_i7x16_s(x1, u1)));
  }
  const p0 = i16x8.add(i16x8.extmul_low_i8x16_s(u0, x0), i16x8.extmul_high_i8x16_s(u0, x0));
  const p1 = i16x8.add(i16x8.extmul_low_i8x16_s(u1, x1), i16x8.extmul_high_i8x16_s(u1, x1));
  return i32x4.extadd_pairwise_i16x8_s(i16x8.add(p0, p1));
}
