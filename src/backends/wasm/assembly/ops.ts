// Element-wise ops, normalisations, RoPE and argmax on f32 rows (attention: ./attention.ts).
// All pointers are byte offsets into the shared memory; counts are elements.

import { fma4, hsum, exp4, exp64 } from './common';

// ---------------------------------------------------------------------------------------------
// add / mul: out[i] = a[i] (op) b[i % m]; m == n (same shape) or m == cols (row-vector broadcast).

/** op 0: add, 1: mul. */
export function binop(op: i32, a: usize, b: usize, out: usize, n: i32, m: i32): void {
  for (let r = 0; r < n; r += m) {
    const ar = a + (<usize>r << 2);
    const orow = out + (<usize>r << 2);
    let i = 0;
    if (op == 0) {
      for (; i + 4 <= m; i += 4) v128.store(orow + (<usize>i << 2), f32x4.add(v128.load(ar + (<usize>i << 2)), v128.load(b + (<usize>i << 2))));
      for (; i < m; i++) store<f32>(orow + (<usize>i << 2), load<f32>(ar + (<usize>i << 2)) + load<f32>(b + (<usize>i << 2)));
    } else {
      for (; i + 4 <= m; i += 4) v128.store(orow + (<usize>i << 2), f32x4.mul(v128.load(ar + (<usize>i << 2)), v128.load(b + (<usize>i << 2))));
      for (; i < m; i++) store<f32>(orow + (<usize>i << 2), load<f32>(ar + (<usize>i << 2)) * load<f32>(b + (<usize>i << 2)));
    }
    if (m == n) break;
  }
}

// ---------------------------------------------------------------------------------------------
// Activations.
//   op 0 silu:      x / (1 + exp(-x))
//   op 1 gelu_tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), tanh(u) = 1 - 2 / (exp(2u) + 1)
//   op 2 gelu_erf:  0.5 x (1 + erf(x / sqrt(2))), erf in double (Cody, as the reference)

// @ts-ignore: decorator
@inline function act4(op: i32, x: v128): v128 {
  const one = f32x4.splat(1.0);
  if (op == 0) return f32x4.div(x, f32x4.add(one, exp4(f32x4.neg(x))));
  const u = f32x4.mul(f32x4.splat(0.7978845608028654), f32x4.add(x, f32x4.mul(f32x4.splat(0.044715), f32x4.mul(x, f32x4.mul(x, x)))));
  const th = f32x4.sub(one, f32x4.div(f32x4.splat(2.0), f32x4.add(exp4(f32x4.add(u, u)), one)));
  return f32x4.mul(f32x4.mul(f32x4.splat(0.5), x), f32x4.add(one, th));
}

/** erf(x) in double: W. J. Cody's rational approximations (port of src/backends/reference/erf.ts). */
function erf64(x: f64): f64 {
  const y = Math.abs(x);
  if (y <= 0.46875) {
    const z = y > 1.11e-16 ? y * y : 0.0;
    let num = 0.18577770618460315 * z;
    let den = z;
    num = (num + 3.1611237438705656) * z; den = (den + 23.601290952344122) * z;
    num = (num + 113.86415415105016) * z; den = (den + 244.02463793444417) * z;
    num = (num + 377.485237685302) * z; den = (den + 1282.6165260773723) * z;
    return (x * (num + 3209.3775891384694)) / (den + 2844.236833439171);
  }
  let erfc: f64;
  if (y <= 4) {
    let num = 2.1531153547440383e-8 * y;
    let den = y;
    num = (num + 0.5641884969886701) * y; den = (den + 15.744926110709835) * y;
    num = (num + 8.883149794388377) * y; den = (den + 117.6939508913125) * y;
    num = (num + 66.11919063714163) * y; den = (den + 537.1811018620099) * y;
    num = (num + 298.635138197400131) * y; den = (den + 1621.3895745666903) * y;
    num = (num + 881.952221241769) * y; den = (den + 3290.7992357334597) * y;
    num = (num + 1712.0476126340707) * y; den = (den + 4362.619090143247) * y;
    num = (num + 2051.0783778260716) * y; den = (den + 3439.3676741437216) * y;
    erfc = (num + 1230.3393547979972) / (den + 1230.3393548037495);
  } else {
    if (y >= 6) return x > 0 ? 1.0 : -1.0;
    const z = 1 / (y * y);
    let num = 0.016315387137302097 * z;
    let den = z;
    num = (num + 0.30532663496123236) * z; den = (den + 2.568520192289822) * z;
    num = (num + 0.36034489994980445) * z; den = (den + 1.8729528499234604) * z;
    num = (num + 0.12578172611122926) * z; den = (den + 0.5279051029514285) * z;
    num = (num + 0.016083785148742275) * z; den = (den + 0.06051834131244132) * z;
    erfc = (z * (num + 6.587491615298378e-4)) / (den + 0.0023352049762686918);
    erfc = (0.5641895835477563 - erfc) / y;
  }
  const ysq = Math.trunc(y * 16) / 16;
  const del = (y - ysq) * (y + ysq);
  erfc = exp64(-ysq * ysq) * exp64(-del) * erfc;
  return x > 0 ? 1 - erfc : erfc - 1;
}

/** op 0 silu, 1 gelu_tanh, 2 gelu_erf over n elements. */
export function unop(op: i32, x: usize, out: usize, n: i32): void {
  let i = 0;
  if (op == 2) {
    for (; i < n; i++) {
      const v = <f64>load<f32>(x + (<usize>i << 2));
      store<f32>(out + (<usize>i << 2), <f32>(0.5 * v * (1 + erf64(v * 0.7071067811865476))));
    }
    return;
  }
  if (op == 0) {
    for (; i + 4 <= n; i += 4) v128.store(out + (<usize>i << 2), act4(0, v128.load(x + (<usize>i << 2))));
  } else {
    for (; i + 4 <= n; i += 4) v128.store(out + (<usize>i << 2), act4(1, v128.load(x + (<usize>i << 2))));
  }
  for (; i < n; i++) {
    const v = f32x4.splat(load<f32>(x + (<usize>i << 2)));
    store<f32>(out + (<usize>i << 2), f32x4.extract_lane(op == 0 ? act4(0, v) : act4(1, v), 0));
  }
}

// ---------------------------------------------------------------------------------------------
// Normalisation

/** Sum of squares of n floats at p. */
// @ts-ignore: decorator
@inline function sumsq(p: usize, n: i32): f32 {
  let a = f32x4.splat(0), b = f32x4.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const u = v128.load(p + (<usize>i << 2));
    const v = v128.load(p + (<usize>i << 2), 16);
    a = fma4(u, u, a);
    b = fma4(v, v, b);
  }
  let s = hsum(f32x4.add(a, b));
  for (; i < n; i++) {
    const u = load<f32>(p + (<usize>i << 2));
    s += u * u;
  }
  return s;
}

/** out[i] = x[i] * inv * w[i % G]; for every group of G floats, inv = 1 / sqrt(mean(x^2) + eps).
 *  total = all elements (a multiple of G); G == D is plain RMSNorm, G = headDim the per-head form. */
export function rmsnorm(x: usize, w: usize, out: usize, total: i32, G: i32, eps: f32): void {
  for (let base = 0; base < total; base += G) {
    const p = x + (<usize>base << 2);
    const o = out + (<usize>base << 2);
    const inv = <f32>(1.0 / Math.sqrt(<f64>sumsq(p, G) / <f64>G + <f64>eps));
    const iv = f32x4.splat(inv);
    let i = 0;
    for (; i + 4 <= G; i += 4) {
      v128.store(o + (<usize>i << 2), f32x4.mul(f32x4.mul(v128.load(p + (<usize>i << 2)), iv), v128.load(w + (<usize>i << 2))));
    }
    for (; i < G; i++) store<f32>(o + (<usize>i << 2), load<f32>(p + (<usize>i << 2)) * inv * load<f32>(w + (<usize>i << 2)));
  }
}

/** out = (x - mean) / sqrt(var + eps) * w + b per row of D (two passes: mean, then centred variance). */
export function layernorm(x: usize, w: usize, b: usize, out: usize, T: i32, D: i32, eps: f32): void {
  for (let t = 0; t < T; t++) {
    const p = x + (<usize>t * <usize>D << 2);
    const o = out + (<usize>t * <usize>D << 2);
    let a = f32x4.splat(0);
    let i = 0;
    for (; i + 4 <= D; i += 4) a = f32x4.add(a, v128.load(p + (<usize>i << 2)));
    let s = hsum(a);
    for (; i < D; i++) s += load<f32>(p + (<usize>i << 2));
    const mean: f32 = s / <f32>D;
    const mv = f32x4.splat(mean);
    a = f32x4.splat(0);
    i = 0;
    for (; i + 4 <= D; i += 4) {
      const c = f32x4.sub(v128.load(p + (<usize>i << 2)), mv);
      a = fma4(c, c, a);
    }
    let v = hsum(a);
    for (; i < D; i++) {
      const c = load<f32>(p + (<usize>i << 2)) - mean;
      v += c * c;
    }
    const inv = <f32>(1.0 / Math.sqrt(<f64>v / <f64>D + <f64>eps));
    const iv = f32x4.splat(inv);
    i = 0;
    for (; i + 4 <= D; i += 4) {
      const c = f32x4.mul(f32x4.sub(v128.load(p + (<usize>i << 2)), mv), iv);
      v128.store(o + (<usize>i << 2), f32x4.add(f32x4.mul(c, v128.load(w + (<usize>i << 2))), v128.load(b + (<usize>i << 2))));
    }
    for (; i < D; i++) {
      store<f32>(o + (<usize>i << 2), (load<f32>(p + (<usize>i << 2)) - mean) * inv * load<f32>(w + (<usize>i << 2)) + load<f32>(b + (<usize>i << 2)));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// RoPE. cs holds, per row t and pair i < rd/2, (cos, sin) of positions[t] * invFreq[i] as f32 pairs
// (computed by the host in double). For every head: interleaved pairs (2i, 2i+1), neox pairs (i, i + rd/2);
// x0' = x0 c - x1 s, x1' = x0 s + x1 c. Dims >= rd are copied. out may equal x.

export function rope(x: usize, out: usize, cs: usize, T: i32, W: i32, hd: i32, rd: i32, neox: i32): void {
  const half = rd >> 1;
  if (out != x) memory.copy(out, x, <usize>T * <usize>W << 2);
  for (let t = 0; t < T; t++) {
    const c0 = cs + (<usize>t * <usize>half << 3);
    for (let h = 0; h < W; h += hd) {
      const base = out + ((<usize>t * <usize>W + <usize>h) << 2);
      if (neox) {
        let i = 0;
        for (; i + 4 <= half; i += 4) {
          const a = v128.load(c0 + (<usize>i << 3));
          const b = v128.load(c0 + (<usize>i << 3), 16);
          const c = v128.shuffle<f32>(a, b, 0, 2, 4, 6);
          const s = v128.shuffle<f32>(a, b, 1, 3, 5, 7);
          const p0 = base + (<usize>i << 2);
          const p1 = p0 + (<usize>half << 2);
          const x0 = v128.load(p0);
          const x1 = v128.load(p1);
          v128.store(p0, f32x4.sub(f32x4.mul(x0, c), f32x4.mul(x1, s)));
          v128.store(p1, f32x4.add(f32x4.mul(x0, s), f32x4.mul(x1, c)));
        }
        for (; i < half; i++) {
          const c = load<f32>(c0 + (<usize>i << 3));
          const s = load<f32>(c0 + (<usize>i << 3), 4);
          const p0 = base + (<usize>i << 2);
          const p1 = p0 + (<usize>half << 2);
          const x0 = load<f32>(p0);
          const x1 = load<f32>(p1);
          store<f32>(p0, x0 * c - x1 * s);
          store<f32>(p1, x0 * s + x1 * c);
        }
      } else {
        for (let i = 0; i < half; i++) {
          const c = load<f32>(c0 + (<usize>i << 3));
          const s = load<f32>(c0 + (<usize>i << 3), 4);
          const p0 = base + (<usize>i << 3);
          const x0 = load<f32>(p0);
          const x1 = load<f32>(p0, 4);
          store<f32>(p0, x0 * c - x1 * s);
          store<f32>(p0, x0 * s + x1 * c, 4);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Attention: see ./attention.ts (chunk kernels run on the thread pool).

// ---------------------------------------------------------------------------------------------

/** Index of the first maximum of n floats (NaN never wins); -1 when n == 0. */
export function argmax(x: usize, n: i32): i32 {
  let best = -1;
  let bv: f32 = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    if (v > bv || best < 0 && !(v != v)) {
      bv = v;
      best = i;
    }
  }
  return best;
}
