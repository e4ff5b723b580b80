// Attention forward as pool chunk kernels (see ../pool.ts JOB_KERNEL): `attention` (KV cache decode and causal
// prefill, positions-based) and `attention_masked` (padded fixed-shape batches with an additive key mask), plus a
// decode path split over keys (attention_decode_chunk, at the end of this file) that the host uses for one query
// row when at most 2 query heads share a kv head.
//
// Work split. For kv head g, the query rows that read its K/V are r = t * group + hh (query row t, query head
// h = g * group + hh, group = H / KVH). A chunk is (g, a block of `rpc` such rows); chunks are numbered so that
// the last row blocks come first: under a causal mask they see the most keys, so the heaviest chunks are claimed
// first and the work-stealing pool balances the triangle. Every thread uses its own scratch
// (scratch + tid * stride, stride = keys * 16 bytes of scores + one dummy output row).
//
// Inside a chunk the rows go in tiles that share one pass over K and V:
//   tile4: 3 or 4 rows (a missing 4th row repeats a real one and writes a dummy row); for every key j the 4
//          scores are one f32x4 (scores scratch [j][4]), so max, exp and sums run across rows in SIMD;
//   tile1: one row (1 or 2 rows left in a block or a sequence), 4 keys per pass, scores scratch [j].
// P.V runs in blocks of PVB keys (the block's V rows stay in cache across the column passes; the partial sums
// wait in the output rows, exact f32).
// Both compute every row with the same arithmetic in the same order (the result of a row does not depend on
// the tile it lands in, on the thread, on the other rows, or on how many padding keys follow it):
//   s_j   = hsum-order reduction of the f32x4 partial products over head_dim chunks ((l0 + l2) + (l1 + l3)),
//           plus the head_dim % 4 tail products in order, times scale, plus mask[j];
//   m     = max_j s_j (keys outside the row's range, and masked keys, are -Infinity);
//   p_j   = exp(s_j - m), exactly 0 for s_j = -Infinity;
//   sum   = (S0 + S2) + (S1 + S3) with Sk = sum of p_j over j = k mod 4 in key order;
//   out_i = (sum_j p_j v_j[i] accumulated in key order) * (1 / sum); a row that sees no key outputs 0.
// Products are accumulated with fma4 (fused in the relaxed build) everywhere, also in the tails.

import { fma4, hsum, exp4, expf, expShiftSum } from './common';

const NEG_INF: f32 = -Infinity;
/** Keys per block of the P.V passes (the block's V rows stay in L1/L2 across the column passes). */
const PVB = 128;

/** [hsum a, hsum b, hsum c, hsum d], each lane summed as hsum does: (x0 + x2) + (x1 + x3). */
// @ts-ignore: decorator
@inline function reduce4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 4, 1, 5), v128.shuffle<f32>(a, b, 2, 6, 3, 7)); // a0+a2 b0+b2 a1+a3 b1+b3
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 4, 1, 5), v128.shuffle<f32>(c, d, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7));
}

/** exp(s - m) per lane, exactly 0 where s is -Infinity (masked keys, keys past a row's range, empty rows). */
// @ts-ignore: decorator
@inline function expMasked(s: v128, m: v128): v128 {
  return v128.and(exp4(f32x4.sub(s, m)), f32x4.ne(s, f32x4.splat(NEG_INF)));
}

/** 1 / sum per lane, 0 where sum is 0 (a row without a visible key). */
// @ts-ignore: decorator
@inline function invSum(sum: v128): v128 {
  return v128.and(f32x4.div(f32x4.splat(1), sum), f32x4.ne(sum, f32x4.splat(0)));
}

/** Lane l of v splat to all lanes. */
// @ts-ignore: decorator
@inline function lane(v: v128, l: i32): v128 {
  if (l == 0) return i32x4.shuffle(v, v, 0, 0, 0, 0);
  if (l == 1) return i32x4.shuffle(v, v, 1, 1, 1, 1);
  if (l == 2) return i32x4.shuffle(v, v, 2, 2, 2, 2);
  return i32x4.shuffle(v, v, 3, 3, 3, 3);
}

/** Up to 3 floats at p (the head_dim % 4 tail) in lanes 0..n-1, zeros above (never reads past p + 4n). */
// @ts-ignore: decorator
@inline function loadTail(p: usize, n: i32): v128 {
  let t = v128.load32_zero(p);
  if (n > 1) t = v128.load32_lane(p, t, 1, 4);
  if (n > 2) t = v128.load32_lane(p, t, 2, 8);
  return t;
}

// ---------------------------------------------------------------------------------------------
// tile4: rows q0..q3 (byte offsets of their head_dim floats), outputs o0..o3 (a padding row writes a dummy row),
// keys kp / values vp (row 0 of the key range, this kv head; ks bytes between key rows), mask mp (0: none,
// else mask[0] of the range), key counts nv (i32x4, one per row), nmax = max of them, scores sc (nmax * 16 bytes).

function tile4(q0: usize, q1: usize, q2: usize, q3: usize, o0: usize, o1: usize, o2: usize, o3: usize,
  kp: usize, vp: usize, ks: usize, mp: usize, nv: v128, nmax: i32, hd: i32, scale: f32, sc: usize): void {
  const hd4 = hd & ~3;
  const vb = <usize>hd4 << 2; // bytes of the vector part of a row
  const nt = hd - hd4;
  // tail of the 4 query rows transposed: qtI = [q0[hd4 + I], q1[..], q2[..], q3[..]]
  let qt0 = f32x4.splat(0), qt1 = f32x4.splat(0), qt2 = f32x4.splat(0);
  if (nt > 0) {
    const a = loadTail(q0 + vb, nt), b = loadTail(q1 + vb, nt), c = loadTail(q2 + vb, nt), d = loadTail(q3 + vb, nt);
    const ab0 = v128.shuffle<f32>(a, b, 0, 4, 1, 5), cd0 = v128.shuffle<f32>(c, d, 0, 4, 1, 5);
    const ab1 = v128.shuffle<f32>(a, b, 2, 6, 3, 7), cd1 = v128.shuffle<f32>(c, d, 2, 6, 3, 7);
    qt0 = v128.shuffle<f32>(ab0, cd0, 0, 1, 4, 5);
    qt1 = v128.shuffle<f32>(ab0, cd0, 2, 3, 6, 7);
    qt2 = v128.shuffle<f32>(ab1, cd1, 0, 1, 4, 5);
  }
  const sv = f32x4.splat(scale);
  const ninf = f32x4.splat(NEG_INF);
  let mx = ninf;

  // scores: two keys per pass, 8 accumulators (4 rows x 2 keys)
  let j = 0;
  for (; j + 2 <= nmax; j += 2) {
    const ka = kp + <usize>j * ks;
    const kb = ka + ks;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
    for (let i: usize = 0; i < vb; i += 16) {
      const x = v128.load(ka + i), y = v128.load(kb + i);
      let w = v128.load(q0 + i); a0 = fma4(w, x, a0); b0 = fma4(w, y, b0);
      w = v128.load(q1 + i); a1 = fma4(w, x, a1); b1 = fma4(w, y, b1);
      w = v128.load(q2 + i); a2 = fma4(w, x, a2); b2 = fma4(w, y, b2);
      w = v128.load(q3 + i); a3 = fma4(w, x, a3); b3 = fma4(w, y, b3);
    }
    let sa = reduce4(a0, a1, a2, a3), sb = reduce4(b0, b1, b2, b3);
    if (nt > 0) {
      sa = fma4(qt0, v128.load32_splat(ka + vb), sa); sb = fma4(qt0, v128.load32_splat(kb + vb), sb);
      if (nt > 1) { sa = fma4(qt1, v128.load32_splat(ka + vb + 4), sa); sb = fma4(qt1, v128.load32_splat(kb + vb + 4), sb); }
      if (nt > 2) { sa = fma4(qt2, v128.load32_splat(ka + vb + 8), sa); sb = fma4(qt2, v128.load32_splat(kb + vb + 8), sb); }
    }
    sa = f32x4.mul(sa, sv); sb = f32x4.mul(sb, sv);
    if (mp) {
      sa = f32x4.add(sa, v128.load32_splat(mp + (<usize>j << 2)));
      sb = f32x4.add(sb, v128.load32_splat(mp + (<usize>j << 2), 4));
    }
    // keys past a row's own range (causal) are -Infinity for that row
    sa = v128.bitselect(sa, ninf, i32x4.lt_s(i32x4.splat(j), nv));
    sb = v128.bitselect(sb, ninf, i32x4.lt_s(i32x4.splat(j + 1), nv));
    v128.store(sc + (<usize>j << 4), sa);
    v128.store(sc + (<usize>j << 4), sb, 16);
    mx = f32x4.max(mx, f32x4.max(sa, sb));
  }
  if (j < nmax) {
    const ka = kp + <usize>j * ks;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let i: usize = 0; i < vb; i += 16) {
      const x = v128.load(ka + i);
      a0 = fma4(v128.load(q0 + i), x, a0);
      a1 = fma4(v128.load(q1 + i), x, a1);
      a2 = fma4(v128.load(q2 + i), x, a2);
      a3 = fma4(v128.load(q3 + i), x, a3);
    }
    let sa = reduce4(a0, a1, a2, a3);
    if (nt > 0) {
      sa = fma4(qt0, v128.load32_splat(ka + vb), sa);
      if (nt > 1) sa = fma4(qt1, v128.load32_splat(ka + vb + 4), sa);
      if (nt > 2) sa = fma4(qt2, v128.load32_splat(ka + vb + 8), sa);
    }
    sa = f32x4.mul(sa, sv);
    if (mp) sa = f32x4.add(sa, v128.load32_splat(mp + (<usize>j << 2)));
    sa = v128.bitselect(sa, ninf, i32x4.lt_s(i32x4.splat(j), nv));
    v128.store(sc + (<usize>j << 4), sa);
    mx = f32x4.max(mx, sa);
  }

  // softmax numerators in place, sums by key index mod 4
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
  j = 0;
  for (; j + 4 <= nmax; j += 4) {
    const p = sc + (<usize>j << 4);
    const e0 = expMasked(v128.load(p), mx), e1 = expMasked(v128.load(p, 16), mx);
    const e2 = expMasked(v128.load(p, 32), mx), e3 = expMasked(v128.load(p, 48), mx);
    v128.store(p, e0); v128.store(p, e1, 16); v128.store(p, e2, 32); v128.store(p, e3, 48);
    s0 = f32x4.add(s0, e0); s1 = f32x4.add(s1, e1); s2 = f32x4.add(s2, e2); s3 = f32x4.add(s3, e3);
  }
  for (; j < nmax; j++) {
    const p = sc + (<usize>j << 4);
    const e = expMasked(v128.load(p), mx);
    v128.store(p, e);
    const m = j & 3;
    if (m == 0) s0 = f32x4.add(s0, e);
    else if (m == 1) s1 = f32x4.add(s1, e);
    else s2 = f32x4.add(s2, e);
  }
  const inv = invSum(f32x4.add(f32x4.add(s0, s2), f32x4.add(s1, s3)));
  const i0 = lane(inv, 0), i1 = lane(inv, 1), i2 = lane(inv, 2), i3 = lane(inv, 3);

  // out_r = sum_j p_rj v_j in blocks of PVB keys: the column passes (8 columns x 4 rows each) go over one
  // block's V rows while they are in cache; between blocks the partial sums wait in the output rows (exact f32
  // stores, so every sum still runs in key order), and the last block scales them by 1 / sum. nmax = 0: one
  // empty block stores zeros.
  const one = f32x4.splat(1);
  const hd8 = <usize>(hd & ~7) << 2;
  let jb = 0;
  do {
    const je = min(nmax, jb + PVB);
    const first = jb == 0;
    const last = je == nmax;
    const f0 = last ? i0 : one, f1 = last ? i1 : one, f2 = last ? i2 : one, f3 = last ? i3 : one;
    const vj = vp + <usize>jb * ks;
    let c: usize = 0;
    for (; c < hd8; c += 32) {
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
      if (!first) {
        a0 = v128.load(o0 + c); b0 = v128.load(o0 + c, 16);
        a1 = v128.load(o1 + c); b1 = v128.load(o1 + c, 16);
        a2 = v128.load(o2 + c); b2 = v128.load(o2 + c, 16);
        a3 = v128.load(o3 + c); b3 = v128.load(o3 + c, 16);
      }
      let vr = vj + c;
      for (let jj = jb; jj < je; jj++) {
        const p = sc + (<usize>jj << 4);
        const x = v128.load(vr), y = v128.load(vr, 16);
        let w = v128.load32_splat(p); a0 = fma4(w, x, a0); b0 = fma4(w, y, b0);
        w = v128.load32_splat(p, 4); a1 = fma4(w, x, a1); b1 = fma4(w, y, b1);
        w = v128.load32_splat(p, 8); a2 = fma4(w, x, a2); b2 = fma4(w, y, b2);
        w = v128.load32_splat(p, 12); a3 = fma4(w, x, a3); b3 = fma4(w, y, b3);
        vr += ks;
      }
      v128.store(o0 + c, f32x4.mul(a0, f0)); v128.store(o0 + c, f32x4.mul(b0, f0), 16);
      v128.store(o1 + c, f32x4.mul(a1, f1)); v128.store(o1 + c, f32x4.mul(b1, f1), 16);
      v128.store(o2 + c, f32x4.mul(a2, f2)); v128.store(o2 + c, f32x4.mul(b2, f2), 16);
      v128.store(o3 + c, f32x4.mul(a3, f3)); v128.store(o3 + c, f32x4.mul(b3, f3), 16);
    }
    if (c < vb) { // 4 more columns
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      if (!first) { a0 = v128.load(o0 + c); a1 = v128.load(o1 + c); a2 = v128.load(o2 + c); a3 = v128.load(o3 + c); }
      let vr = vj + c;
      for (let jj = jb; jj < je; jj++) {
        const p = sc + (<usize>jj << 4);
        const x = v128.load(vr);
        a0 = fma4(v128.load32_splat(p), x, a0);
        a1 = fma4(v128.load32_splat(p, 4), x, a1);
        a2 = fma4(v128.load32_splat(p, 8), x, a2);
        a3 = fma4(v128.load32_splat(p, 12), x, a3);
        vr += ks;
      }
      v128.store(o0 + c, f32x4.mul(a0, f0));
      v128.store(o1 + c, f32x4.mul(a1, f1));
      v128.store(o2 + c, f32x4.mul(a2, f2));
      v128.store(o3 + c, f32x4.mul(a3, f3));
    }
    // tail columns: one f32x4 per column holds the 4 rows
    const fi = last ? inv : one;
    for (let i = 0; i < nt; i++) {
      const off = vb + (<usize>i << 2);
      let a = f32x4.splat(0);
      if (!first) {
        a = v128.load32_splat(o0 + off);
        a = v128.load32_lane(o1 + off, a, 1); a = v128.load32_lane(o2 + off, a, 2); a = v128.load32_lane(o3 + off, a, 3);
      }
      let vr = vj + off;
      for (let jj = jb; jj < je; jj++) {
        a = fma4(v128.load(sc + (<usize>jj << 4)), v128.load32_splat(vr), a);
        vr += ks;
      }
      a = f32x4.mul(a, fi);
      store<f32>(o0 + off, f32x4.extract_lane(a, 0));
      store<f32>(o1 + off, f32x4.extract_lane(a, 1));
      store<f32>(o2 + off, f32x4.extract_lane(a, 2));
      store<f32>(o3 + off, f32x4.extract_lane(a, 3));
    }
    jb = je;
  } while (jb < nmax);
}

// ---------------------------------------------------------------------------------------------
// tile1: one row q -> o over n keys (same arguments as tile4; sc holds n floats, rounded up to 4).

function tile1(qp: usize, o: usize, kp: usize, vp: usize, ks: usize, mp: usize, n: i32, hd: i32, scale: f32, sc: usize): void {
  const hd4 = hd & ~3;
  const vb = <usize>hd4 << 2;
  const nt = hd - hd4;
  const qt = nt > 0 ? loadTail(qp + vb, nt) : f32x4.splat(0);
  const q0 = lane(qt, 0), q1 = lane(qt, 1), q2 = lane(qt, 2);
  const sv = f32x4.splat(scale);
  let mxv = f32x4.splat(NEG_INF);

  // scores: 4 keys per pass
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const ka = kp + <usize>j * ks;
    const kb = ka + ks, kc = kb + ks, kd = kc + ks;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let i: usize = 0; i < vb; i += 16) {
      const w = v128.load(qp + i);
      a0 = fma4(w, v128.load(ka + i), a0);
      a1 = fma4(w, v128.load(kb + i), a1);
      a2 = fma4(w, v128.load(kc + i), a2);
      a3 = fma4(w, v128.load(kd + i), a3);
    }
    let s = reduce4(a0, a1, a2, a3);
    if (nt > 0) {
      // the tail element I of the 4 keys, gathered
      let g = v128.load32_splat(ka + vb);
      g = v128.load32_lane(kb + vb, g, 1); g = v128.load32_lane(kc + vb, g, 2); g = v128.load32_lane(kd + vb, g, 3);
      s = fma4(q0, g, s);
      if (nt > 1) {
        g = v128.load32_splat(ka + vb + 4);
        g = v128.load32_lane(kb + vb + 4, g, 1); g = v128.load32_lane(kc + vb + 4, g, 2); g = v128.load32_lane(kd + vb + 4, g, 3);
        s = fma4(q1, g, s);
      }
      if (nt > 2) {
        g = v128.load32_splat(ka + vb + 8);
        g = v128.load32_lane(kb + vb + 8, g, 1); g = v128.load32_lane(kc + vb + 8, g, 2); g = v128.load32_lane(kd + vb + 8, g, 3);
        s = fma4(q2, g, s);
      }
    }
    s = f32x4.mul(s, sv);
    if (mp) s = f32x4.add(s, v128.load(mp + (<usize>j << 2)));
    v128.store(sc + (<usize>j << 2), s);
    mxv = f32x4.max(mxv, s);
  }
  let mx = max(max(f32x4.extract_lane(mxv, 0), f32x4.extract_lane(mxv, 1)), max(f32x4.extract_lane(mxv, 2), f32x4.extract_lane(mxv, 3)));
  for (; j < n; j++) {
    const ka = kp + <usize>j * ks;
    let a = f32x4.splat(0);
    for (let i: usize = 0; i < vb; i += 16) a = fma4(v128.load(qp + i), v128.load(ka + i), a);
    let s = f32x4.splat(hsum(a));
    if (nt > 0) {
      s = fma4(q0, v128.load32_splat(ka + vb), s);
      if (nt > 1) s = fma4(q1, v128.load32_splat(ka + vb + 4), s);
      if (nt > 2) s = fma4(q2, v128.load32_splat(ka + vb + 8), s);
    }
    s = f32x4.mul(s, sv);
    if (mp) s = f32x4.add(s, v128.load32_splat(mp + (<usize>j << 2)));
    const x = f32x4.extract_lane(s, 0);
    store<f32>(sc + (<usize>j << 2), x);
    mx = max(mx, x);
  }

  // softmax numerators; lane k of sv4 sums the keys j = k mod 4
  const mv = f32x4.splat(mx);
  let s4 = f32x4.splat(0);
  j = 0;
  for (; j + 4 <= n; j += 4) {
    const e = expMasked(v128.load(sc + (<usize>j << 2)), mv);
    v128.store(sc + (<usize>j << 2), e);
    s4 = f32x4.add(s4, e);
  }
  if (j < n) {
    // the last 1..3 keys; lanes past n (stale scratch, within this thread's scores) are zeroed
    const live = i32x4.lt_s(i32x4(0, 1, 2, 3), i32x4.splat(n - j));
    const e = v128.and(expMasked(v128.load(sc + (<usize>j << 2)), mv), live);
    v128.store(sc + (<usize>j << 2), e);
    s4 = f32x4.add(s4, e);
  }
  const inv = invSum(f32x4.splat(hsum(s4)));

  // out = sum_j p_j v_j in blocks of PVB keys as in tile4: 16 columns per pass, then 4, then the tail
  const one = f32x4.splat(1);
  const hd16 = <usize>(hd & ~15) << 2;
  let jb = 0;
  do {
    const je = min(n, jb + PVB);
    const first = jb == 0;
    const f = je == n ? inv : one;
    const vj = vp + <usize>jb * ks;
    let c: usize = 0;
    for (; c < hd16; c += 64) {
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      if (!first) { a0 = v128.load(o + c); a1 = v128.load(o + c, 16); a2 = v128.load(o + c, 32); a3 = v128.load(o + c, 48); }
      let vr = vj + c;
      for (let jj = jb; jj < je; jj++) {
        const p = v128.load32_splat(sc + (<usize>jj << 2));
        a0 = fma4(p, v128.load(vr), a0);
        a1 = fma4(p, v128.load(vr, 16), a1);
        a2 = fma4(p, v128.load(vr, 32), a2);
        a3 = fma4(p, v128.load(vr, 48), a3);
        vr += ks;
      }
      v128.store(o + c, f32x4.mul(a0, f));
      v128.store(o + c, f32x4.mul(a1, f), 16);
      v128.store(o + c, f32x4.mul(a2, f), 32);
      v128.store(o + c, f32x4.mul(a3, f), 48);
    }
    for (; c < vb; c += 16) {
      let a = first ? f32x4.splat(0) : v128.load(o + c);
      let vr = vj + c;
      for (let jj = jb; jj < je; jj++) {
        a = fma4(v128.load32_splat(sc + (<usize>jj << 2)), v128.load(vr), a);
        vr += ks;
      }
      v128.store(o + c, f32x4.mul(a, f));
    }
    if (nt > 0) {
      let a = first ? f32x4.splat(0) : loadTail(o + vb, nt);
      let vr = vj + vb;
      for (let jj = jb; jj < je; jj++) {
        a = fma4(v128.load32_splat(sc + (<usize>jj << 2)), loadTail(vr, nt), a);
        vr += ks;
      }
      a = f32x4.mul(a, f);
      store<f32>(o + vb, f32x4.extract_lane(a, 0));
      if (nt > 1) store<f32>(o + vb, f32x4.extract_lane(a, 1), 4);
      if (nt > 2) store<f32>(o + vb, f32x4.extract_lane(a, 2), 8);
    }
    jb = je;
  } while (jb < n);
}

// ---------------------------------------------------------------------------------------------
// The row loop of one chunk. Query row t of a block sequence: keys [k0, k0 + n) with
//   attention:        k0 = 0,                     n = causal ? pos[t] + 1 : S            (mask = 0, batch = 1)
//   attention_masked: k0 = (t / Tb) * Sb,         n = causal ? t % Tb + 1 : Sb, mask added; trailing keys whose
//                     mask is -Infinity (right padding) are not visited at all (they would add exact zeros).

// @ts-ignore: decorator
@inline function rowKeys(t: i32, pos: usize, S: i32, causal: i32, Tb: i32): i32 {
  if (!causal) return S;
  return pos ? load<i32>(pos + (<usize>t << 2)) + 1 : t % Tb + 1;
}

function runChunk(c: i32, tid: i32, q: usize, k: usize, v: usize, out: usize, pos: usize, mask: usize,
  T: i32, S: i32, heads: i32, hd: i32, causal: i32, scale: f32, scratch: usize, rpc: i32, batch: i32): void {
  const H = heads >>> 16;
  const KVH = heads & 0xffff;
  const group = H / KVH;
  const Tb = T / batch;
  const Sb = S / batch; // keys of one sequence (S when batch = 1)
  const rows = T * group;
  const nrb = (rows + rpc - 1) / rpc;
  const g = c % KVH;
  const rb = nrb - 1 - c / KVH; // heaviest row blocks (latest queries) first
  let r = rb * rpc;
  const r1 = min(rows, r + rpc);
  const qW = <usize>(H * hd) << 2;
  const ks = <usize>(KVH * hd) << 2;
  const hb = <usize>hd << 2;
  // this thread's scratch: scores (Sb keys x 4 rows), then one dummy output row for padded tile rows
  const sc = scratch + <usize>tid * ((<usize>Sb << 4) + (<usize>((hd + 3) & ~3) << 2));
  const dummy = sc + (<usize>Sb << 4);
  while (r < r1) {
    const t = r / group;
    const b = t / Tb;
    let R = min(4, r1 - r);
    R = min(R, (b + 1) * Tb * group - r); // a tile never spans two sequences
    const k0 = <usize>(b * Sb);
    const kp = k + k0 * ks + <usize>g * hb;
    const vp = v + k0 * ks + <usize>g * hb;
    const mp = mask ? mask + (k0 << 2) : 0;
    // per-row key counts (rows r .. r + R - 1)
    let n0 = rowKeys(t, pos, Sb, causal, Tb);
    let n1 = R > 1 ? rowKeys((r + 1) / group, pos, Sb, causal, Tb) : n0;
    let n2 = R > 2 ? rowKeys((r + 2) / group, pos, Sb, causal, Tb) : n0;
    let n3 = R > 3 ? rowKeys((r + 3) / group, pos, Sb, causal, Tb) : n0;
    let nmax = max(max(n0, n1), max(n2, n3));
    if (mp) while (nmax > 0 && load<f32>(mp + (<usize>(nmax - 1) << 2)) == NEG_INF) nmax--;
    n0 = min(n0, nmax); n1 = min(n1, nmax); n2 = min(n2, nmax); n3 = min(n3, nmax);
    if (R >= 3) {
      const p0 = q + <usize>t * qW + <usize>(g * group + r % group) * hb;
      const o0 = out + (p0 - q);
      const t1 = (r + 1) / group, t2 = (r + 2) / group;
      const p1 = q + <usize>t1 * qW + <usize>(g * group + (r + 1) % group) * hb;
      const p2 = q + <usize>t2 * qW + <usize>(g * group + (r + 2) % group) * hb;
      let p3 = p0, o3 = dummy;
      if (R > 3) {
        const t3 = (r + 3) / group;
        p3 = q + <usize>t3 * qW + <usize>(g * group + (r + 3) % group) * hb;
        o3 = out + (p3 - q);
      }
      let nv = i32x4.splat(n0);
      nv = i32x4.replace_lane(nv, 1, n1);
      nv = i32x4.replace_lane(nv, 2, n2);
      nv = i32x4.replace_lane(nv, 3, n3);
      tile4(p0, p1, p2, p3, o0, out + (p1 - q), out + (p2 - q), o3, kp, vp, ks, mp, nv, nmax, hd, scale, sc);
    } else {
      for (let i = 0; i < R; i++) {
        const ri = r + i;
        const ti = ri / group;
        const p = q + <usize>ti * qW + <usize>(g * group + ri % group) * hb;
        tile1(p, out + (p - q), kp, vp, ks, mp, i == 0 ? n0 : n1, hd, scale, sc);
      }
    }
    r += R;
  }
}

/**
 * Chunk c of attention (op `attention`): q [T, H*hd], k/v [S, KVH*hd], pos i32[T], out [T, H*hd] (byte offsets);
 * heads = H * 65536 + KVH; rpc rows (a multiple of 4) per chunk; KVH * ceil(T * H / KVH / rpc) chunks;
 * scratch: threads * (S * 16 + ceil(hd / 4) * 16) bytes.
 */
export function attention_chunk(c: i32, tid: i32, q: usize, k: usize, v: usize, out: usize, pos: usize,
  T: i32, S: i32, heads: i32, hd: i32, causal: i32, scale: f32, scratch: usize, rpc: i32): void {
  runChunk(c, tid, q, k, v, out, pos, 0, T, S, heads, hd, causal, scale, scratch, rpc, 1);
}

/**
 * Chunk c of `attention_masked`: as attention_chunk with mask f32[S] (added to the scores of key j) instead of
 * positions, and cb = batch * 2 + causal (batch sequences of T/batch queries and S/batch keys each).
 * scratch: threads * ((S / batch) * 16 + ceil(hd / 4) * 16) bytes.
 */
export function attention_masked_chunk(c: i32, tid: i32, q: usize, k: usize, v: usize, out: usize, mask: usize,
  T: i32, S: i32, heads: i32, hd: i32, cb: i32, scale: f32, scratch: usize, rpc: i32): void {
  runChunk(c, tid, q, k, v, out, 0, mask, T, S, heads, hd, cb & 1, scale, scratch, rpc, cb >>> 1);
}

// ---------------------------------------------------------------------------------------------
// Decode (one query row) split over keys, flash-decoding style. A per-head pass over the cache [S, KVH*hd]
// reads hd floats and then jumps a whole cache row ahead, a pattern the hardware prefetcher does not follow
// across pages; here chunk c takes the keys [c*kb, min(n, (c+1)*kb)) for every head, and reads K and V rows
// front to back with all heads of a row (or of 4 rows) together. Per head h it leaves, at
// part + (c * H + h) * (hd + 2) floats:
//   o[0..hd) = sum_j exp(s_j - m) v_j (unnormalised), then m = max_j s_j, then l = sum_j exp(s_j - m),
// and attention_decode_combine merges the chunks: M = max_c m_c, w_c = exp(m_c - M),
//   out = sum_c w_c o_c / sum_c w_c l_c.
// scratch: threads * H * kb * 4 bytes of scores (kb a multiple of 4).

export function attention_decode_chunk(c: i32, tid: i32, q: usize, k: usize, v: usize, n: i32, heads: i32, hd: i32,
  scale: f32, scratch: usize, part: usize, kb: i32): void {
  const H = heads >>> 16;
  const KVH = heads & 0xffff;
  const group = H / KVH;
  const j0 = c * kb;
  const m = min(n, j0 + kb) - j0; // keys of this chunk
  const ks = <usize>(KVH * hd) << 2;
  const hb = <usize>hd << 2;
  const hd4 = hd & ~3;
  const vb = <usize>hd4 << 2;
  const nt = hd - hd4;
  const sc = scratch + <usize>tid * (<usize>(H * kb) << 2);
  const sv = f32x4.splat(scale);
  const k0 = k + <usize>j0 * ks;
  const v0 = v + <usize>j0 * ks;

  // scores sc[h * kb + j]: 4 key rows at a time, every head
  let j = 0;
  for (; j + 4 <= m; j += 4) {
    const ra = k0 + <usize>j * ks;
    for (let h = 0; h < H; h++) {
      const qp = q + <usize>h * hb;
      const ka = ra + <usize>(h / group) * hb;
      const kb1 = ka + ks, kc = kb1 + ks, kd = kc + ks;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      for (let i: usize = 0; i < vb; i += 16) {
        const w = v128.load(qp + i);
        a0 = fma4(w, v128.load(ka + i), a0);
        a1 = fma4(w, v128.load(kb1 + i), a1);
        a2 = fma4(w, v128.load(kc + i), a2);
        a3 = fma4(w, v128.load(kd + i), a3);
      }
      let s = reduce4(a0, a1, a2, a3);
      for (let i = hd4; i < hd; i++) {
        const o = <usize>i << 2;
        let g = v128.load32_splat(ka + o);
        g = v128.load32_lane(kb1 + o, g, 1); g = v128.load32_lane(kc + o, g, 2); g = v128.load32_lane(kd + o, g, 3);
        s = fma4(v128.load32_splat(qp + o), g, s);
      }
      v128.store(sc + (<usize>(h * kb + j) << 2), f32x4.mul(s, sv));
    }
  }
  for (; j < m; j++) {
    const ra = k0 + <usize>j * ks;
    for (let h = 0; h < H; h++) {
      const qp = q + <usize>h * hb;
      const ka = ra + <usize>(h / group) * hb;
      let a = f32x4.splat(0);
      for (let i: usize = 0; i < vb; i += 16) a = fma4(v128.load(qp + i), v128.load(ka + i), a);
      let s = hsum(a);
      for (let i = hd4; i < hd; i++) s += load<f32>(qp + (<usize>i << 2)) * load<f32>(ka + (<usize>i << 2));
      store<f32>(sc + (<usize>(h * kb + j) << 2), s * scale);
    }
  }

  // softmax numerators per head; o = 0
  const pw = hd + 2;
  for (let h = 0; h < H; h++) {
    const s = sc + (<usize>(h * kb) << 2);
    let mx: f32 = NEG_INF;
    for (let i = 0; i < m; i++) mx = max(mx, load<f32>(s + (<usize>i << 2)));
    const l = expShiftSum(s, m, mx);
    const pp = part + (<usize>((c * H + h) * pw) << 2);
    memory.fill(pp, 0, hb);
    store<f32>(pp + hb, mx);
    store<f32>(pp + hb, l, 4);
  }

  // o_h += p_hj v_j: 4 value rows at a time, every head (the o rows stay in L1)
  j = 0;
  for (; j + 4 <= m; j += 4) {
    const ra = v0 + <usize>j * ks;
    for (let h = 0; h < H; h++) {
      const s = sc + (<usize>(h * kb + j) << 2);
      const p0 = v128.load32_splat(s), p1 = v128.load32_splat(s, 4), p2 = v128.load32_splat(s, 8), p3 = v128.load32_splat(s, 12);
      const va = ra + <usize>(h / group) * hb;
      const vb1 = va + ks, vc = vb1 + ks, vd = vc + ks;
      const o = part + (<usize>((c * H + h) * pw) << 2);
      for (let i: usize = 0; i < vb; i += 16) {
        let acc = v128.load(o + i);
        acc = fma4(p0, v128.load(va + i), acc);
        acc = fma4(p1, v128.load(vb1 + i), acc);
        acc = fma4(p2, v128.load(vc + i), acc);
        acc = fma4(p3, v128.load(vd + i), acc);
        v128.store(o + i, acc);
      }
      for (let i = hd4; i < hd; i++) {
        const b = <usize>i << 2;
        let acc = load<f32>(o + b);
        acc += f32x4.extract_lane(p0, 0) * load<f32>(va + b);
        acc += f32x4.extract_lane(p1, 0) * load<f32>(vb1 + b);
        acc += f32x4.extract_lane(p2, 0) * load<f32>(vc + b);
        acc += f32x4.extract_lane(p3, 0) * load<f32>(vd + b);
        store<f32>(o + b, acc);
      }
    }
  }
  for (; j < m; j++) {
    const ra = v0 + <usize>j * ks;
    for (let h = 0; h < H; h++) {
      const pj = load<f32>(sc + (<usize>(h * kb + j) << 2));
      const p = f32x4.splat(pj);
      const va = ra + <usize>(h / group) * hb;
      const o = part + (<usize>((c * H + h) * pw) << 2);
      for (let i: usize = 0; i < vb; i += 16) v128.store(o + i, fma4(p, v128.load(va + i), v128.load(o + i)));
      for (let i = hd4; i < hd; i++) {
        const b = <usize>i << 2;
        store<f32>(o + b, load<f32>(o + b) + pj * load<f32>(va + b));
      }
    }
  }
}

/** Merges the `chunks` partial results of attention_decode_chunk into out [H*hd] (see above). */
export function attention_decode_combine(out: usize, part: usize, H: i32, hd: i32, chunks: i32): void {
  const pw = hd + 2;
  const hb = <usize>hd << 2;
  const hd4 = hd & ~3;
  for (let h = 0; h < H; h++) {
    const o = out + <usize>h * hb;
    let M: f32 = NEG_INF;
    for (let c = 0; c < chunks; c++) M = max(M, load<f32>(part + (<usize>((c * H + h) * pw) << 2) + hb));
    memory.fill(o, 0, hb);
    let L: f32 = 0;
    for (let c = 0; c < chunks; c++) {
      const pp = part + (<usize>((c * H + h) * pw) << 2);
      const w = expf(load<f32>(pp + hb) - M);
      L += w * load<f32>(pp + hb, 4);
      const wv = f32x4.splat(w);
      let i = 0;
      for (; i < hd4; i += 4) v128.store(o + (<usize>i << 2), fma4(wv, v128.load(pp + (<usize>i << 2)), v128.load(o + (<usize>i << 2))));
      for (; i < hd; i++) store<f32>(o + (<usize>i << 2), load<f32>(o + (<usize>i << 2)) + w * load<f32>(pp + (<usize>i << 2)));
    }
    const il: f32 = 1 / L;
    const inv = f32x4.splat(il);
    let i = 0;
    for (; i < hd4; i += 4) v128.store(o + (<usize>i << 2), f32x4.mul(v128.load(o + (<usize>i << 2)), inv));
    for (; i < hd; i++) store<f32>(o + (<usize>i << 2), load<f32>(o + (<usize>i << 2)) * il);
  }
}
