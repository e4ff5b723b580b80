// Training kernels (the backward rules and the optimizer of src/train), float32 unless noted. Same build flags as
// the other kernels (imported shared memory, no allocation, no static data). The *_chunk exports run on the
// backend's pool (chunk, tid, ...): each chunk owns its outputs, so results never depend on thread timing.
//   attention_bwd_chunk  the backward of the attention op as GEMMs per head (sgemm.ts tiles), one chunk per KV head
//   ce_fwd_chunk / ce_bwd_chunk   cross-entropy over vocabulary rows (loss; softmax - one-hot)
//   silu_bwd_chunk, acc_chunk, rmsnorm_bwd_chunk, rmsnorm_bwd_w   elementwise backward rules
//   adamw_chunk, sum_squares, scale_chunk, abs_max   optim.ts arithmetic (float64, bit-identical to it)
//   fill_zero   gradient buffers
// The products themselves (dX += dY W, dW += dY^T X) are sgemm.ts sgemm_chunk.

import { exp4, expf, expReduced4, fma4, hsum, expShiftSum } from './common';
import { gemm_tile_strided } from './sgemm';

// @ts-ignore: decorator
@inline function dot(a: usize, b: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) acc = fma4(v128.load(a + (<usize>i << 2)), v128.load(b + (<usize>i << 2)), acc);
  let s = hsum(acc);
  for (; i < n; i++) s += load<f32>(a + (<usize>i << 2)) * load<f32>(b + (<usize>i << 2));
  return s;
}

/** gemm_tile_strided over rows i0..i1 and columns j0..j1 in tiles of at most 256 x 256, k blocks <= 384. */
function gemmStrided(a: usize, sai: usize, sak: usize, b: usize, sbk: usize, sbj: usize, c: usize, ldc: usize,
  i0: i32, i1: i32, j0: i32, j1: i32, K: i32, acc: i32, work: usize): void {
  const nk = max(1, (K + 383) / 384);
  const KC = max(1, (K + nk - 1) / nk);
  for (let i = i0; i < i1; i += 256) {
    for (let j = j0; j < j1; j += 256) gemm_tile_strided(a, sai, sak, b, sbk, sbj, c, ldc, i, min(i1, i + 256), j, min(j1, j + 256), K, KC, acc, work);
  }
}

/** Rows per block of the causal products (columns past the block's last position are skipped). */
const ARB: i32 = 64;

/** Keys rows r0..r1-1 attend to: all S, or causally up to the largest position among them. */
// @ts-ignore: decorator
@inline function keysSeen(pos: usize, r0: i32, r1: i32, S: i32, causal: i32): i32 {
  if (!causal) return S;
  let jn = 0;
  for (let t = r0; t < r1; t++) jn = max(jn, load<i32>(pos + (<usize>t << 2)) + 1);
  return min(jn, S);
}

/**
 * The attention backward on the pool, as GEMMs per head (the packed SGEMM tiles of sgemm.ts on strided head slices).
 * Chunk = one KV head g: its query heads h = g*group .. in order, so dk/dv rows of head g are only written
 * by that chunk (deterministic whichever thread runs it). Per head, with Q = q[:, h], K = k[:, g], etc.:
 *   P = softmax(scale Q K^T) (rows masked past pos[t] when causal);  dP = dO V^T;
 *   dS = P * (dP - rowsum(dO * O)) * scale;
 *   dV += P^T dO;  dQ += dS K;  dK += dS^T Q.
 * args: i32[18] at byte offset `args` = q, k, v, out, dout, dq, dk, dv (0: not wanted), pos, T, S, H, KVH,
 * hd, causal, scale (f32 bits), scratch, scratch stride (bytes per thread: 2 T S floats + T floats, 64-byte
 * aligned, then the SGEMM packing scratch (256 + 256) * 384 * 4 + 256).
 */
export function attention_bwd_chunk(chunk: i32, tid: i32, args: usize): void {
  const q = <usize>load<i32>(args), k = <usize>load<i32>(args, 4), v = <usize>load<i32>(args, 8);
  const out = <usize>load<i32>(args, 12), dout = <usize>load<i32>(args, 16);
  const dq = <usize>load<i32>(args, 20), dk = <usize>load<i32>(args, 24), dv = <usize>load<i32>(args, 28);
  const pos = <usize>load<i32>(args, 32);
  const T = load<i32>(args, 36), S = load<i32>(args, 40), H = load<i32>(args, 44), KVH = load<i32>(args, 48), hd = load<i32>(args, 52);
  const causal = load<i32>(args, 56);
  const scale = load<f32>(args, 60);
  const base = <usize>load<i32>(args, 64) + <usize>tid * <usize>load<i32>(args, 68);
  const P = base;
  const dP = P + (<usize>T * <usize>S << 2);
  const rowdot = dP + (<usize>T * <usize>S << 2);
  const work = (rowdot + (<usize>T << 2) + 63) & ~(<usize>63);
  const qW = <usize>(H * hd) << 2; // row strides in bytes
  const kW = <usize>(KVH * hd) << 2;
  const ldp = <usize>S << 2;
  const group = H / KVH;
  const kg = k + (<usize>(chunk * hd) << 2);
  const vg = v + (<usize>(chunk * hd) << 2);
  for (let h = chunk * group; h < (chunk + 1) * group; h++) {
    const ho = <usize>(h * hd) << 2;
    // scores and dP, row block by row block (causal: only the columns the block can see)
    for (let r0 = 0; r0 < T; r0 += ARB) {
      const r1 = min(T, r0 + ARB);
      const jn = keysSeen(pos, r0, r1, S, causal);
      gemmStrided(q + ho, qW, 4, kg, 4, kW, P, ldp, r0, r1, 0, jn, hd, 0, work);
      gemmStrided(dout + ho, qW, 4, vg, 4, kW, dP, ldp, r0, r1, 0, jn, hd, 0, work);
    }
    // softmax rows and dS (in dP); entries past a row's last key are exact zeros
    for (let t = 0; t < T; t++) {
      const n = causal ? min(S, load<i32>(pos + (<usize>t << 2)) + 1) : S;
      const pr = P + <usize>t * ldp;
      const dr = dP + <usize>t * ldp;
      let mx: f32 = -Infinity;
      for (let j = 0; j < n; j++) {
        const sj = load<f32>(pr + (<usize>j << 2)) * scale;
        store<f32>(pr + (<usize>j << 2), sj);
        mx = max(mx, sj);
      }
      const inv: f32 = 1.0 / expShiftSum(pr, n, mx);
      const to = <usize>t * qW + ho;
      const doo = dot(dout + to, out + to, hd);
      for (let j = 0; j < n; j++) {
        const pj = load<f32>(pr + (<usize>j << 2)) * inv;
        store<f32>(pr + (<usize>j << 2), pj);
        store<f32>(dr + (<usize>j << 2), pj * (load<f32>(dr + (<usize>j << 2)) - doo) * scale);
      }
      if (n < S) {
        memory.fill(pr + (<usize>n << 2), 0, <usize>(S - n) << 2);
        memory.fill(dr + (<usize>n << 2), 0, <usize>(S - n) << 2);
      }
    }
    // dV_g += P^T dO_h;  dK_g += dS^T Q_h   (rows: keys j, k: queries t). Causal: a block of keys j0.. skips
    // the leading queries t0 that cannot see it (pos[t] < j0 for every t < t0: their P and dS are zero there)
    for (let j0 = 0; j0 < S; j0 += ARB) {
      const j1 = min(S, j0 + ARB);
      let t0 = 0;
      if (causal) while (t0 < T && load<i32>(pos + (<usize>t0 << 2)) < j0) t0++;
      if (t0 >= T) continue;
      const po = <usize>t0 * ldp;
      const to = <usize>t0 * qW;
      if (dv != 0) gemmStrided(P + po, 4, ldp, dout + to + ho, qW, 4, dv + (<usize>(chunk * hd) << 2), kW, j0, j1, 0, hd, T - t0, 1, work);
      if (dk != 0) gemmStrided(dP + po, 4, ldp, q + to + ho, qW, 4, dk + (<usize>(chunk * hd) << 2), kW, j0, j1, 0, hd, T - t0, 1, work);
    }
    // dQ_h += dS K_g (causal: each row block only over the keys it sees)
    if (dq != 0) {
      for (let r0 = 0; r0 < T; r0 += ARB) {
        const r1 = min(T, r0 + ARB);
        gemmStrided(dP, ldp, 4, kg, kW, 4, dq + ho, qW, r0, r1, 0, hd, keysSeen(pos, r0, r1, S, causal), 1, work);
      }
    }
  }
}

// Cross-entropy over rows of logits x[T,V] (f32) with targets tgt i32[T] (< 0: row not counted), split
// into chunks of `rpc` rows. Forward per row: m = max_i x_i, se = sum_i exp(x_i - m) (f32 lanes over
// blocks of 256 values, blocks summed in f64), loss = m + ln se - x_tgt; it stores loss (f64), m (f32) and
// 1/se (f64) per row. Backward: g_i (+)= s * exp(x_i - m) / se, g_tgt -= s (the softmax minus one-hot,
// times the seed s = dloss/n); mode 1 overwrites g (uncounted rows get zeros), 2 adds to it.

/** exp(x) for x <= 0 (softmax numerators): common.ts exp4's polynomial with cheaper lane ops: the clamp is
 *  one pmax (x >= -87, so 2^n stays normal) and n = round(x log2 e) comes from the 1.5 * 2^23 rounding trick
 *  (its integer is the low mantissa bits) instead of nearest + trunc_sat, which V8 expands to many instructions. */
// @ts-ignore: decorator
@inline function expNeg4(x: v128): v128 {
  x = f32x4.pmax(x, f32x4.splat(-87.0));
  const t = f32x4.add(f32x4.mul(x, f32x4.splat(1.44269504088896341)), f32x4.splat(12582912.0));
  const n = f32x4.sub(t, f32x4.splat(12582912.0));
  const p = expReduced4(x, n);
  // 2^n: (bits(t) - bits(1.5 * 2^23)) is n; + 127, into the exponent field
  const pow2n = i32x4.shl(i32x4.add(i32x4.sub(t, i32x4.splat(0x4b400000)), i32x4.splat(127)), 23);
  return f32x4.mul(p, pow2n);
}

/** Per row: loss[t] (f64), rowMax[t] (f32), invSum[t] (f64). */
export function ce_fwd_chunk(chunk: i32, tid: i32, x: usize, tgt: usize, T: i32, V: i32, rpc: i32, loss: usize, rowMax: usize, invSum: usize): void {
  const t1 = min(T, (chunk + 1) * rpc);
  const V4 = V & ~3;
  for (let t = chunk * rpc; t < t1; t++) {
    const y = load<i32>(tgt + (<usize>t << 2));
    if (y < 0) {
      store<f64>(loss + (<usize>t << 3), 0);
      store<f32>(rowMax + (<usize>t << 2), 0);
      store<f64>(invSum + (<usize>t << 3), 0);
      continue;
    }
    const row = x + (<usize>t * <usize>V << 2);
    let mv = f32x4.splat(-Infinity);
    let i = 0;
    for (; i < V4; i += 4) mv = f32x4.pmax(mv, v128.load(row + (<usize>i << 2)));
    let m = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
    for (; i < V; i++) m = max(m, load<f32>(row + (<usize>i << 2)));
    const ms = f32x4.splat(m);
    let se: f64 = 0;
    i = 0;
    while (i < V4) {
      const e = min(V4, i + 256);
      let acc = f32x4.splat(0);
      for (; i < e; i += 4) acc = f32x4.add(acc, expNeg4(f32x4.sub(v128.load(row + (<usize>i << 2)), ms)));
      se += <f64>hsum(acc);
    }
    for (; i < V; i++) se += <f64>expf(load<f32>(row + (<usize>i << 2)) - m);
    store<f64>(loss + (<usize>t << 3), <f64>m + Math.log(se) - <f64>load<f32>(row + (<usize>y << 2)));
    store<f32>(rowMax + (<usize>t << 2), m);
    store<f64>(invSum + (<usize>t << 3), 1.0 / se);
  }
}

/** g (+)= s * (softmax(x) - onehot(tgt)) per counted row, from ce_fwd_chunk's rowMax / invSum (mode 1 overwrite, 2 add). */
export function ce_bwd_chunk(chunk: i32, tid: i32, x: usize, tgt: usize, T: i32, V: i32, rpc: i32, rowMax: usize, invSum: usize, g: usize, s: f32, mode: i32): void {
  const t1 = min(T, (chunk + 1) * rpc);
  const V4 = V & ~3;
  for (let t = chunk * rpc; t < t1; t++) {
    const y = load<i32>(tgt + (<usize>t << 2));
    const row = x + (<usize>t * <usize>V << 2);
    const grow = g + (<usize>t * <usize>V << 2);
    if (y < 0) {
      if (mode == 1) memory.fill(grow, 0, <usize>V << 2);
      continue;
    }
    const m = load<f32>(rowMax + (<usize>t << 2));
    const c = <f32>(<f64>s * load<f64>(invSum + (<usize>t << 3)));
    const ms = f32x4.splat(m);
    const cs = f32x4.splat(c);
    let i = 0;
    if (mode == 1) {
      for (; i < V4; i += 4) v128.store(grow + (<usize>i << 2), f32x4.mul(expNeg4(f32x4.sub(v128.load(row + (<usize>i << 2)), ms)), cs));
      for (; i < V; i++) store<f32>(grow + (<usize>i << 2), expf(load<f32>(row + (<usize>i << 2)) - m) * c);
    } else {
      for (; i < V4; i += 4) {
        const p = grow + (<usize>i << 2);
        v128.store(p, f32x4.add(v128.load(p), f32x4.mul(expNeg4(f32x4.sub(v128.load(row + (<usize>i << 2)), ms)), cs)));
      }
      for (; i < V; i++) {
        const p = grow + (<usize>i << 2);
        store<f32>(p, load<f32>(p) + expf(load<f32>(row + (<usize>i << 2)) - m) * c);
      }
    }
    const py = grow + (<usize>y << 2);
    store<f32>(py, load<f32>(py) - s);
  }
}

// ---- optimizer (src/train/optim.ts): the same float64 arithmetic, operation for operation, as its
// TypeScript loops (wasm has no fused multiply-add, so f64x2 lanes round exactly as JS numbers do): the
// results are bit-identical to the TypeScript optimizer.

/**
 * AdamW on elements [chunk*per, min(n, (chunk+1)*per)) of p/g/m/v (f32):
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g g;  p = p decay - (stepSize m) / (sqrt(v) / bc2s + eps)
 * with m and v in f64 before they are stored as f32 (as optim.ts AdamW.step).
 */
export function adamw_chunk(chunk: i32, tid: i32, p: usize, g: usize, m: usize, v: usize, n: i32, per: i32,
  b1: f64, b2: f64, eps: f64, decay: f64, stepSize: f64, bc2s: f64): void {
  const i0 = chunk * per;
  const i1 = min(n, i0 + per);
  const c1 = 1 - b1;
  const c2 = 1 - b2;
  const B1 = f64x2.splat(b1), B2 = f64x2.splat(b2), C1 = f64x2.splat(c1), C2 = f64x2.splat(c2);
  const EPS = f64x2.splat(eps), DEC = f64x2.splat(decay), SS = f64x2.splat(stepSize), BC = f64x2.splat(bc2s);
  let i = i0;
  for (; i + 2 <= i1; i += 2) {
    const o = <usize>i << 2;
    const gi = f64x2.promote_low_f32x4(v128.load64_zero(g + o));
    const mi = f64x2.add(f64x2.mul(B1, f64x2.promote_low_f32x4(v128.load64_zero(m + o))), f64x2.mul(C1, gi));
    const vi = f64x2.add(f64x2.mul(B2, f64x2.promote_low_f32x4(v128.load64_zero(v + o))), f64x2.mul(f64x2.mul(C2, gi), gi));
    v128.store64_lane(m + o, f32x4.demote_f64x2_zero(mi), 0);
    v128.store64_lane(v + o, f32x4.demote_f64x2_zero(vi), 0);
    const pi = f64x2.promote_low_f32x4(v128.load64_zero(p + o));
    const upd = f64x2.div(f64x2.mul(SS, mi), f64x2.add(f64x2.div(f64x2.sqrt(vi), BC), EPS));
    v128.store64_lane(p + o, f32x4.demote_f64x2_zero(f64x2.sub(f64x2.mul(pi, DEC), upd)), 0);
  }
  for (; i < i1; i++) {
    const o = <usize>i << 2;
    const gi = <f64>load<f32>(g + o);
    const mi = b1 * <f64>load<f32>(m + o) + c1 * gi;
    const vi = b2 * <f64>load<f32>(v + o) + c2 * gi * gi;
    store<f32>(m + o, <f32>mi);
    store<f32>(v + o, <f32>vi);
    store<f32>(p + o, <f32>(<f64>load<f32>(p + o) * decay - (stepSize * mi) / (Math.sqrt(vi) / bc2s + eps)));
  }
}

/** acc + sum of g[i]^2 in index order (float64, as optim.ts globalNorm's running sum). */
export function sum_squares(g: usize, n: i32, acc: f64): f64 {
  let s = acc;
  for (let i = 0; i < n; i++) {
    const x = <f64>load<f32>(g + (<usize>i << 2));
    s += x * x;
  }
  return s;
}

/** g[i] = f32(g[i] * s) on elements [chunk*per, min(n, (chunk+1)*per)) (s in f64, as optim.ts scaleGrads). */
export function scale_chunk(chunk: i32, tid: i32, g: usize, n: i32, per: i32, s: f64): void {
  const i1 = min(n, (chunk + 1) * per);
  const S = f64x2.splat(s);
  let i = chunk * per;
  for (; i + 2 <= i1; i += 2) {
    const o = g + (<usize>i << 2);
    v128.store64_lane(o, f32x4.demote_f64x2_zero(f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(o)), S)), 0);
  }
  for (; i < i1; i++) store<f32>(g + (<usize>i << 2), <f32>(<f64>load<f32>(g + (<usize>i << 2)) * s));
}

/** Zeroes `bytes` bytes at `ptr` with vector stores (V8's memory.fill and typed-array fill run at ~3 GB/s on
 *  shared memory; this is several times faster). */
export function fill_zero(ptr: usize, bytes: usize): void {
  const z = i32x4.splat(0);
  let p = ptr;
  const end = ptr + bytes;
  while (p < end && (p & 15) != 0) { store<u8>(p, 0); p++; }
  for (; p + 64 <= end; p += 64) {
    v128.store(p, z);
    v128.store(p, z, 16);
    v128.store(p, z, 32);
    v128.store(p, z, 48);
  }
  for (; p + 16 <= end; p += 16) v128.store(p, z);
  for (; p < end; p++) store<u8>(p, 0);
}

// ---- elementwise backward rules (autodiff.ts), float32, on elements/rows [chunk*per, (chunk+1)*per) ----

/** g += dy * s * (1 + x (1 - s)), s = sigmoid(x)  (silu backward). */
export function silu_bwd_chunk(chunk: i32, tid: i32, x: usize, dy: usize, g: usize, n: i32, per: i32): void {
  const i1 = min(n, (chunk + 1) * per);
  let i = chunk * per;
  const one = f32x4.splat(1);
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2;
    const xv = v128.load(x + o);
    const s = f32x4.div(one, f32x4.add(one, exp4(f32x4.neg(xv))));
    const d = f32x4.mul(f32x4.mul(v128.load(dy + o), s), f32x4.add(one, f32x4.mul(xv, f32x4.sub(one, s))));
    v128.store(g + o, f32x4.add(v128.load(g + o), d));
  }
  for (; i < i1; i++) {
    const o = <usize>i << 2;
    const xv = load<f32>(x + o);
    const s: f32 = 1.0 / (1.0 + expf(-xv));
    store<f32>(g + o, load<f32>(g + o) + load<f32>(dy + o) * s * (1 + xv * (1 - s)));
  }
}

/** g += dy (other == 0) or g += dy * other, same lengths. */
export function acc_chunk(chunk: i32, tid: i32, g: usize, dy: usize, other: usize, n: i32, per: i32): void {
  const i1 = min(n, (chunk + 1) * per);
  let i = chunk * per;
  if (other == 0) {
    for (; i + 4 <= i1; i += 4) { const o = <usize>i << 2; v128.store(g + o, f32x4.add(v128.load(g + o), v128.load(dy + o))); }
    for (; i < i1; i++) { const o = <usize>i << 2; store<f32>(g + o, load<f32>(g + o) + load<f32>(dy + o)); }
  } else {
    for (; i + 4 <= i1; i += 4) { const o = <usize>i << 2; v128.store(g + o, f32x4.add(v128.load(g + o), f32x4.mul(v128.load(dy + o), v128.load(other + o)))); }
    for (; i < i1; i++) { const o = <usize>i << 2; store<f32>(g + o, load<f32>(g + o) + load<f32>(dy + o) * load<f32>(other + o)); }
  }
}

/** Row inverse RMS (float64 sum of squares, as the rule): inv = 1 / sqrt(mean(x^2) + eps). */
// @ts-ignore: decorator
@inline function rowInv(xr: usize, G: i32, eps: f64): f64 {
  let ss: f64 = 0;
  for (let i = 0; i < G; i++) { const v = <f64>load<f32>(xr + (<usize>i << 2)); ss += v * v; }
  return 1.0 / Math.sqrt(ss / <f64>G + eps);
}

/** rmsnorm backward, dx only, rows [chunk*per, ..): gx += inv dy w - x inv^3 / G sum(dy w x). */
export function rmsnorm_bwd_chunk(chunk: i32, tid: i32, x: usize, w: usize, dy: usize, gx: usize, rows: i32, G: i32, per: i32, eps: f64): void {
  const r1 = min(rows, (chunk + 1) * per);
  for (let r = chunk * per; r < r1; r++) {
    const ro = <usize>r * <usize>G << 2;
    const inv = rowInv(x + ro, G, eps);
    let dot: f64 = 0;
    for (let i = 0; i < G; i++) {
      const o = <usize>i << 2;
      dot += <f64>load<f32>(dy + ro + o) * <f64>load<f32>(w + o) * <f64>load<f32>(x + ro + o);
    }
    const c = <f32>((inv * inv * inv * dot) / <f64>G);
    const invf = <f32>inv;
    const cv = f32x4.splat(c), iv = f32x4.splat(invf);
    let i = 0;
    for (; i + 4 <= G; i += 4) {
      const o = <usize>i << 2;
      const t = f32x4.sub(f32x4.mul(f32x4.mul(iv, v128.load(dy + ro + o)), v128.load(w + o)), f32x4.mul(v128.load(x + ro + o), cv));
      v128.store(gx + ro + o, f32x4.add(v128.load(gx + ro + o), t));
    }
    for (; i < G; i++) {
      const o = <usize>i << 2;
      store<f32>(gx + ro + o, load<f32>(gx + ro + o) + (invf * load<f32>(dy + ro + o) * load<f32>(w + o) - load<f32>(x + ro + o) * c));
    }
  }
}

/** rmsnorm backward, dw: gw[i] += sum over rows (in order) of dy x inv. */
export function rmsnorm_bwd_w(x: usize, dy: usize, gw: usize, rows: i32, G: i32, eps: f64): void {
  for (let r = 0; r < rows; r++) {
    const ro = <usize>r * <usize>G << 2;
    const inv = <f32>rowInv(x + ro, G, eps);
    const iv = f32x4.splat(inv);
    let i = 0;
    for (; i + 4 <= G; i += 4) {
      const o = <usize>i << 2;
      v128.store(gw + o, f32x4.add(v128.load(gw + o), f32x4.mul(f32x4.mul(v128.load(dy + ro + o), v128.load(x + ro + o)), iv)));
    }
    for (; i < G; i++) {
      const o = <usize>i << 2;
      store<f32>(gw + o, load<f32>(gw + o) + load<f32>(dy + ro + o) * load<f32>(x + ro + o) * inv);
    }
  }
}

/** max |g[i]| over n values; NaN when any value is NaN (f32x4.max propagates NaN): the overflow check of
 *  optim.ts LossScaler.unscale (any NaN, infinity or |x| > limit). */
export function abs_max(g: usize, n: i32): f32 {
  let m = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) m = f32x4.max(m, f32x4.abs(v128.load(g + (<usize>i << 2))));
  let r = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
  for (; i < n; i++) r = max(r, abs(load<f32>(g + (<usize>i << 2))));
  return r;
}
