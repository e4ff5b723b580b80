// Sampling helpers over logits in wasm memory.

/**
 * Index of the first largest value of x[0..n), exactly as the scalar scan `best = 0; for i: if (x[i] > x[best])
 * best = i` (runtime/sampler.ts argmax) finds it: the first of equal maxima, -0 and +0 equal, and its NaN rules
 * (a NaN never wins; a NaN in x[0] stays) through that scan itself whenever x holds a NaN.
 * SIMD: one pass for the maximum (with a NaN check), one for its first position.
 */
export function argmax_f32(x: usize, n: i32): i32 {
  if (n <= 1) return 0;
  const first = load<f32>(x);
  let m0 = f32x4.splat(first), m1 = m0, m2 = m0, m3 = m0;
  let bad = v128.splat<i32>(0);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const p = x + (<usize>i << 2);
    const a = v128.load(p), b = v128.load(p, 16), c = v128.load(p, 32), d = v128.load(p, 48);
    m0 = f32x4.max(m0, a); m1 = f32x4.max(m1, b); m2 = f32x4.max(m2, c); m3 = f32x4.max(m3, d);
    bad = v128.or(bad, v128.or(v128.or(f32x4.ne(a, a), f32x4.ne(b, b)), v128.or(f32x4.ne(c, c), f32x4.ne(d, d))));
  }
  for (; i + 4 <= n; i += 4) {
    const a = v128.load(x + (<usize>i << 2));
    m0 = f32x4.max(m0, a);
    bad = v128.or(bad, f32x4.ne(a, a));
  }
  let mv = f32x4.max(f32x4.max(m0, m1), f32x4.max(m2, m3));
  let m = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
  let nan = v128.any_true(bad) || m != m;
  for (let j = i; j < n; j++) {
    const v = load<f32>(x + (<usize>j << 2));
    if (v != v) nan = true;
    else if (v > m) m = v;
  }
  if (nan) {
    let best = 0;
    let bv = first;
    for (let j = 1; j < n; j++) {
      const v = load<f32>(x + (<usize>j << 2));
      if (v > bv) {
        bv = v;
        best = j;
      }
    }
    return best;
  }
  // the first position of m (x holds it: m is one of its values)
  const ms = f32x4.splat(m);
  i = 0;
  for (; i + 4 <= n; i += 4) {
    const eq = f32x4.eq(v128.load(x + (<usize>i << 2)), ms);
    if (v128.any_true(eq)) {
      const bits = i32x4.bitmask(eq);
      return i + ctz(bits);
    }
  }
  for (; i < n; i++) if (load<f32>(x + (<usize>i << 2)) == m) return i;
  return 0;
}
